"""S3 syncs against moto's S3, STS and SQS with IAM enforced: a prefix kept in step with a
table by listing and by the bucket's event notifications, with an assumed role."""

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import document_database, dump_and_restore, queue_empty, s3_cluster, scalar, wait_for
from s3server import ACCOUNT, BUCKET, S3Server

SYNC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/S3SyncRole"
NO_LIST_ROLE = f"arn:aws:iam::{ACCOUNT}:role/NoListRole"
QUEUE = "docs-events"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}"


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    server.add_role("S3SyncRole", ["s3:GetObject", "s3:ListBucket", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:GetQueueAttributes"])
    server.add_role("NoListRole", ["s3:GetObject"])
    server.sqs = server.client("sqs")
    # A message a worker received just before its test's database was dropped is in flight
    # for the visibility timeout: short, so that the next test soon finds the queue drained.
    server.queue_url = server.sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(s3, embedder):
    c = s3_cluster(s3, embedder)
    yield c
    c.stop()


@pytest.fixture
def db(cluster, embedder, request):
    with document_database(cluster, embedder, request, columns="size int8,") as conn:
        yield conn


def notify_queue(s3, on):
    config = {"QueueConfigurations": [{"QueueArn": QUEUE_ARN, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]}
    s3.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=config if on else {})


def rows(conn, prefix="s3://docs/"):
    return {uri: (title, size, xmin) for uri, title, size, xmin in conn.execute(
        "SELECT uri, title, size, xmin::text FROM document WHERE starts_with(uri, %s)", (prefix,)).fetchall()}


def status(conn, name):
    return conn.execute("SELECT * FROM ai.s3_sync_status WHERE name = %s", (name,)).fetchone()


def progress(conn, sync_id):
    return conn.execute("SELECT rows_inserted, rows_updated, rows_deleted, events_processed, last_listing_at "
                        "FROM ai._s3_sync_progress WHERE sync_id = %s", (sync_id,)).fetchone()


def reconcile(conn, sync_id):
    """Asks for a listing and waits until it was applied."""
    before = progress(conn, sync_id)[4]
    conn.execute("SELECT ai.s3_sync_now(%s)", (sync_id,))
    wait_for(lambda: (p := progress(conn, sync_id)[4]) is not None and (before is None or p > before),
             what="a complete listing")
    return progress(conn, sync_id)


def errors(conn, sync_id):
    return [m for (m,) in conn.execute("SELECT message FROM ai.s3_sync_errors WHERE id = %s ORDER BY recorded",
                                        (sync_id,)).fetchall()]


def test_a_listing_keeps_the_table_in_step(cluster, s3, db):
    keys = ["list/a b.md", "list/x+y.md", "list/ü/deep/er/c.md", "list/skip.txt", "list/drafts/d.md", "other/e.md"]
    for k in keys:
        s3.put(k, f"# {k}\n".encode())
    db.execute("INSERT INTO document (title, uri) VALUES ('outside', 's3://docs/other/keep.md'), "
               "('excluded', 's3://docs/list/manual.txt')")
    sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/list/', aws_role_arn => %s,
                             include => '{*.md}', exclude => '{list/drafts/**}',
                             columns => '{"title": "basename", "updated_at": "last_modified", "size": "size"}',
                             reconcile_interval => '1 hour')""", (SYNC_ROLE,))
    expected = {"s3://docs/list/a b.md": "a b.md", "s3://docs/list/x+y.md": "x+y.md",
                "s3://docs/list/ü/deep/er/c.md": "c.md"}
    wait_for(lambda: len(rows(db, "s3://docs/list/")) == 4, what="the listed objects' rows")
    listed = rows(db, "s3://docs/list/")
    assert {u: r[0] for u, r in listed.items() if u in expected} == expected
    assert listed["s3://docs/list/a b.md"][1] == len(b"# list/a b.md\n")
    assert listed["s3://docs/list/manual.txt"][0] == "excluded"  # untouched
    first = progress(db, sync)
    assert first[:3] == (3, 0, 0)
    assert status(db, "public_document_s3_sync")[7] == 3  # objects_known

    # A listing of the unchanged bucket writes nothing.
    again = reconcile(db, sync)
    assert again[:3] == first[:3]
    assert rows(db, "s3://docs/list/") == listed

    # An overwrite is an update, a deleted object a deleted row; nothing else moves.
    s3.put("list/a b.md", b"# a longer body than before\n")
    s3.s3.delete_object(Bucket=BUCKET, Key="list/x+y.md")
    after = reconcile(db, sync)
    assert after[:3] == (3, 1, 1)
    now = rows(db, "s3://docs/list/")
    assert "s3://docs/list/x+y.md" not in now
    assert now["s3://docs/list/a b.md"][1] == len(b"# a longer body than before\n")
    assert now["s3://docs/list/a b.md"][2] != listed["s3://docs/list/a b.md"][2]
    assert now["s3://docs/list/ü/deep/er/c.md"] == listed["s3://docs/list/ü/deep/er/c.md"]
    assert now["s3://docs/list/manual.txt"] == listed["s3://docs/list/manual.txt"]
    assert scalar(db, "SELECT title FROM document WHERE uri = 's3://docs/other/keep.md'") == "outside"

    # A row deleted by hand comes back; dropping the sync leaves the rows.
    db.execute("DELETE FROM document WHERE uri = 's3://docs/list/ü/deep/er/c.md'")
    assert reconcile(db, sync)[:3] == (4, 1, 1)
    db.execute("SELECT ai.drop_s3_sync(%s)", (sync,))
    assert len(rows(db, "s3://docs/list/")) == 3
    assert errors(db, sync) == []


class FailingPages:
    """A proxy in front of moto that fails every ListObjectsV2 request for a page after
    the first: a listing cut short."""

    def __init__(self, target):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if "continuation-token" in self.path:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = urllib.request.Request(target + self.path, headers=dict(self.headers), method="GET")
                try:
                    with urllib.request.urlopen(request) as r:
                        status, headers, body = r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    status, headers, body = e.code, e.headers, e.read()
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        outer.stop = self.server.shutdown


def test_a_listing_that_fails_halfway_deletes_nothing(cluster, s3, db):
    for i in range(1005):
        s3.put(f"many/{i:04}.md", b"x")
    sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/many/', aws_role_arn => %s,
                             reconcile_interval => '1 hour')""", (SYNC_ROLE,))
    wait_for(lambda: len(rows(db, "s3://docs/many/")) == 1005, what="1005 rows")
    proxy = FailingPages(s3.url)
    try:
        with cluster.connect() as admin:
            admin.execute(f"ALTER SYSTEM SET ai_loader.s3_endpoint = '{proxy.url}'")
            admin.execute("SELECT pg_reload_conf()")
        s3.s3.delete_object(Bucket=BUCKET, Key="many/0000.md")  # would be a delete
        db.execute("SELECT ai.s3_sync_now(%s)", (sync,))
        wait_for(lambda: any("nothing was deleted" in e for e in errors(db, sync)), what="the failed listing")
        assert len(rows(db, "s3://docs/many/")) == 1005
        assert progress(db, sync)[:3] == (1005, 0, 0)
    finally:
        with cluster.connect() as admin:
            admin.execute("ALTER SYSTEM RESET ai_loader.s3_endpoint")
            admin.execute("SELECT pg_reload_conf()")
        proxy.stop()
    assert "listing s3://docs/many/ failed" in errors(db, sync)[0]
    # With S3 reachable again, the next listing deletes the row.
    wait_for(lambda: reconcile(db, sync)[2] == 1, what="the delete")
    assert len(rows(db, "s3://docs/many/")) == 1004


def send(s3, body):
    s3.sqs.send_message(QueueUrl=s3.queue_url, MessageBody=body if isinstance(body, str) else json.dumps(body))


def record(name, key, sequencer, etag="e1", size=1):
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
                         "eventTime": "2026-11-30T10:00:00.000Z",
                         "s3": {"bucket": {"name": BUCKET},
                                "object": {"key": key, "size": size, "eTag": etag, "sequencer": sequencer}}}]}


def queue_drained(s3, url=None):
    a = s3.sqs.get_queue_attributes(QueueUrl=url or s3.queue_url, AttributeNames=["All"])["Attributes"]
    return a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_events_keep_the_table_in_step(cluster, s3, db):
    notify_queue(s3, True)
    try:
        sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/events/', aws_role_arn => %s,
                                 sqs_queue_url => %s, columns => '{"title": "key"}',
                                 reconcile_interval => '1 hour')""", (SYNC_ROLE, s3.queue_url))
        wait_for(lambda: progress(db, sync)[4] is not None, what="the first listing")
        # An upload is a row, a delete removes it: keys URL-encoded in the events.
        s3.put("events/n 1+2 ü.md", b"hello")
        wait_for(lambda: "s3://docs/events/n 1+2 ü.md" in rows(db), timeout=10, what="the uploaded object's row")
        assert scalar(db, "SELECT title FROM document WHERE uri = 's3://docs/events/n 1+2 ü.md'") == "events/n 1+2 ü.md"
        s3.s3.delete_object(Bucket=BUCKET, Key="events/n 1+2 ü.md")
        wait_for(lambda: "s3://docs/events/n 1+2 ü.md" not in rows(db), timeout=10, what="the row deleted")

        # Late and duplicate events: the sequencer decides.
        send(s3, record("ObjectCreated:Put", "events/seq.md", "0000000000000002"))
        wait_for(lambda: "s3://docs/events/seq.md" in rows(db), timeout=10, what="the created row")
        send(s3, record("ObjectRemoved:Delete", "events/seq.md", "0000000000000001"))
        send(s3, record("ObjectCreated:Put", "events/seq.md", "0000000000000002"))
        send(s3, {"Type": "Notification", "MessageId": "m",
                  "Message": json.dumps(record("ObjectRemoved:Delete", "events%2Fother.md", "01"))})
        wait_for(lambda: queue_drained(s3) and progress(db, sync)[3] >= 6, timeout=15, what="the events applied")
        assert "s3://docs/events/seq.md" in rows(db)
        # A newer delete, in an SNS envelope; a creation in EventBridge's shape.
        send(s3, {"Type": "Notification", "MessageId": "m2",
                  "Message": json.dumps(record("ObjectRemoved:Delete", "events/seq.md", "0000000000000003"))})
        send(s3, {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
                  "time": "2026-11-30T10:00:01Z",
                  "detail": {"bucket": {"name": BUCKET}, "object": {"key": "events/eb+key.md", "size": 3,
                                                                    "etag": "e2", "sequencer": "05"}}})
        wait_for(lambda: "s3://docs/events/seq.md" not in rows(db) and "s3://docs/events/eb+key.md" in rows(db),
                 timeout=10, what="the SNS and EventBridge events")
        # A poison message is recorded and deleted, not received forever.
        send(s3, "not json at all")
        wait_for(lambda: any("not an S3 event notification" in e for e in errors(db, sync)), timeout=10,
                 what="the poison message's error")
        wait_for(lambda: queue_drained(s3), timeout=10, what="the poison message deleted")
        wait_for(lambda: status(db, "public_document_s3_sync")[11] == 0, timeout=30, what="events_pending")

        # A missed event is caught by the next listing (which also removes the rows of
        # the events about objects that never were).
        notify_queue(s3, False)
        s3.put("events/missed.md", b"missed")
        reconcile(db, sync)
        assert set(rows(db, "s3://docs/events/")) == {"s3://docs/events/missed.md"}
    finally:
        notify_queue(s3, False)


def test_access_denied_names_the_permission(cluster, s3, db):
    sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/denied/', aws_role_arn => %s,
                             sqs_queue_url => %s, reconcile_interval => '1 hour')""", (NO_LIST_ROLE, s3.queue_url))
    wait_for(lambda: len(errors(db, sync)) >= 2, what="the errors")
    found = "\n".join(errors(db, sync))
    assert f"access denied listing s3://docs/denied/ (AccessDenied): the role {NO_LIST_ROLE} needs s3:ListBucket " \
           f"on arn:aws:s3:::docs; nothing was deleted" in found, found
    assert f"the role {NO_LIST_ROLE} needs sqs:ReceiveMessage on {QUEUE_ARN}" in found, found
    assert status(db, "public_document_s3_sync")[-1] is not None


def test_a_sync_and_a_vectorizer_make_every_object_searchable(cluster, s3, embedder, db):
    notify_queue(s3, True)
    try:
        vectorizer = scalar(db, f"""
            SELECT ai.create_vectorizer('document'::regclass,
                loading => ai.loading_uri(column_name => 'uri', aws_role_arn => '{SYNC_ROLE}'),
                embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
                chunking => ai.chunking_recursive_character_text_splitter(200, 50),
                formatting => ai.formatting_python_template('$title: $chunk'))""", (embedder.openai_url,))
        db.execute("""SELECT ai.create_s3_sync('document', 's3://docs/both/', aws_role_arn => %s,
                          sqs_queue_url => %s, columns => '{"title": "basename"}')""", (SYNC_ROLE, s3.queue_url))
        for i in range(3):
            s3.put(f"both/doc {i}.md", f"# Document {i}\n\nVectors of document {i} live in Postgres.".encode())
        wait_for(lambda: scalar(db, "SELECT count(DISTINCT d.id) FROM document_embedding d "
                                    "WHERE starts_with(d.uri, 's3://docs/both/')") == 3,
                 timeout=30, what="chunks for every object")
        chunks = dict(db.execute("SELECT title, chunk FROM document_embedding WHERE starts_with(uri, 's3://docs/both/')"
                                 " ORDER BY title").fetchall())
        assert chunks == {f"doc {i}.md": f"# Document {i}\n\nVectors of document {i} live in Postgres."
                          for i in range(3)}
        s3.s3.delete_object(Bucket=BUCKET, Key="both/doc 1.md")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM document_embedding_store s JOIN document d USING (id) "
                                    "WHERE starts_with(d.uri, 's3://docs/both/')") == 2
                 and scalar(db, "SELECT count(*) FROM document_embedding_store") == 2,
                 timeout=15, what="the deleted object's chunks gone")
        assert queue_empty(db, vectorizer)
    finally:
        notify_queue(s3, False)


def test_an_overwritten_object_is_embedded_again(cluster, s3, embedder, db):
    """The README's sync (`columns => '{"title": "basename"}'`) with a loading_uri
    vectorizer: an object put again under its key has a new ETag, but its row's values
    stay the same, so no trigger queued it and the store kept the old text for good. A
    changed ETag queues the row, by event and by listing."""
    def chunk():
        return scalar(db, "SELECT string_agg(chunk, ' ') FROM document_embedding "
                          "WHERE uri = 's3://docs/again/a.md'")

    vectorizer = scalar(db, f"""
        SELECT ai.create_vectorizer('document'::regclass,
            loading => ai.loading_uri(column_name => 'uri', aws_role_arn => '{SYNC_ROLE}'),
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
            chunking => ai.chunking_none())""", (embedder.openai_url,))
    s3.put("again/a.md", b"The first text.")
    notify_queue(s3, True)
    try:
        sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/again/', aws_role_arn => %s,
                                 sqs_queue_url => %s, columns => '{"title": "basename"}',
                                 reconcile_interval => '1 hour')""", (SYNC_ROLE, s3.queue_url))
        wait_for(lambda: chunk() == "The first text.", what="the first text embedded")
        s3.put("again/a.md", b"The second text, by an event.")
        wait_for(lambda: chunk() == "The second text, by an event.", timeout=20, what="the event's text embedded")
    finally:
        notify_queue(s3, False)
    s3.put("again/a.md", b"The third text, by a listing.")
    reconcile(db, sync)
    wait_for(lambda: chunk() == "The third text, by a listing.", timeout=20, what="the listing's text embedded")
    assert scalar(db, "SELECT count(*) FROM document WHERE uri = 's3://docs/again/a.md'") == 1
    assert queue_empty(db, vectorizer)


def test_a_temporary_table_is_refused(cluster, s3, embedder, db):
    """A sync on a TEMP table was accepted, and left a dangling OID (and a log line every
    round) when its session ended; the worker, another session, never sees such a table."""
    import psycopg
    db.execute("CREATE TEMP TABLE scratch (id bigserial PRIMARY KEY, uri text UNIQUE NOT NULL)")
    for call, args in [
        ("SELECT ai.create_s3_sync('scratch', 's3://docs/temp/', aws_role_arn => %s)", (SYNC_ROLE,)),
        ("SELECT ai.create_vectorizer('scratch'::regclass, loading => ai.loading_uri('uri'), "
         "embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), chunking => ai.chunking_none())",
         (embedder.openai_url,)),
    ]:
        with pytest.raises(psycopg.errors.WrongObjectType) as err:
            db.execute(call, args)
        assert err.value.diag.message_primary.endswith('"scratch" is a temporary table'), err.value.diag.message_primary
        assert "use a regular or unlogged table" in err.value.diag.message_hint
    assert scalar(db, "SELECT count(*) FROM ai.s3_sync") == 0
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0


def test_a_queue_feeds_one_sync_and_a_copy_starts_paused(cluster, s3, db):
    """A second sync could name a queue another sync reads, and the two split its events;
    a pg_dump | pg_restore copy of a database (a staging clone) kept a live sync on the
    original's queue and took about half of its events, silently."""
    import psycopg
    name = db.info.dbname
    create = """SELECT ai.create_s3_sync(%s, %s, aws_role_arn => %s, sqs_queue_url => %s,
                                         reconcile_interval => '1 hour')"""
    notify_queue(s3, True)
    try:
        sync = scalar(db, create, ("document", "s3://docs/one/", SYNC_ROLE, s3.queue_url))
        wait_for(lambda: progress(db, sync)[4] is not None, what="the first listing")
        db.execute("CREATE TABLE other (id bigserial PRIMARY KEY, uri text UNIQUE NOT NULL)")
        with pytest.raises(psycopg.errors.DuplicateObject) as err:
            db.execute(create, ("other", "s3://docs/two/", SYNC_ROLE, s3.queue_url))
        assert err.value.diag.message_primary == \
            f"the SQS queue {s3.queue_url} already feeds another S3 sync of this database"
        assert "give each sync its own queue" in err.value.diag.message_hint

        dump_and_restore(cluster, name, "copy_of_a_sync")
        copy = cluster.connect("copy_of_a_sync")
        wait_for(lambda: scalar(copy, "SELECT paused FROM ai.s3_sync WHERE id = %s", (sync,)) and errors(copy, sync),
                 what="the copy's sync paused, and why")
        message = errors(copy, sync)[-1]
        assert "this database is a copy" in message and f"SELECT ai.resume_s3_sync({sync})" in message, message
        assert scalar(copy, "SELECT last_error FROM ai.s3_sync_status WHERE id = %s", (sync,)) == message
        for i in range(6):
            s3.put(f"one/e{i}.md", b"an event")
        wait_for(lambda: len(rows(db, "s3://docs/one/")) == 6 and queue_drained(s3), timeout=30,
                 what="every event applied by the original")
        assert rows(copy, "s3://docs/one/") == {}
        with pytest.raises(psycopg.errors.DuplicateObject) as err:
            copy.execute("SELECT ai.resume_s3_sync(%s)", (sync,))
        assert err.value.diag.message_primary == f'the SQS queue {s3.queue_url} already feeds an S3 sync of database "{name}"'
        with pytest.raises(psycopg.errors.DuplicateObject):
            copy.execute(create, ("other", "s3://docs/two/", SYNC_ROLE, s3.queue_url))

        # Once the original is gone, the copy may take over: resuming makes it its home.
        db.execute("SELECT ai.drop_s3_sync(%s)", (sync,))

        def resumed():
            try:
                copy.execute("SELECT ai.resume_s3_sync(%s)", (sync,))
                return True
            except psycopg.errors.DuplicateObject:
                return False
        wait_for(resumed, what="the original's queue given back")
        s3.put("one/after.md", b"after the takeover")
        wait_for(lambda: "s3://docs/one/after.md" in rows(copy, "s3://docs/one/"), timeout=20,
                 what="the copy applying events")
        assert not scalar(copy, "SELECT paused FROM ai.s3_sync WHERE id = %s", (sync,))
        copy.close()
    finally:
        notify_queue(s3, False)
        with cluster.connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "copy_of_a_sync" WITH (FORCE)')


def test_hostile_events_are_bounded(cluster, s3, db):
    """Whoever may send to the queue writes events. A key with %00 stored a NUL in the
    table (and two keys equal up to one made the worker spin in one upsert); a forged
    sequencer of 300 F's with a time in 9999 pinned a key against every later real
    event; a message that could not be applied was received again for the queue's whole
    retention."""
    sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/hostile/', aws_role_arn => %s,
                             sqs_queue_url => %s, columns => '{"title": "key"}',
                             reconcile_interval => '1 hour')""", (SYNC_ROLE, s3.queue_url))
    wait_for(lambda: progress(db, sync)[4] is not None, what="the first listing")
    send(s3, {"Records": [record("ObjectCreated:Put", "hostile/zero%00tail.md", "10")["Records"][0],
                          record("ObjectCreated:Put", "hostile/zero", "11")["Records"][0],
                          record("ObjectCreated:Put", "hostile/" + "k" * 1100, "12")["Records"][0]]})
    wait_for(lambda: "s3://docs/hostile/zero" in rows(db) and queue_drained(s3), timeout=15,
             what="the message's good record applied")
    assert not any("\x00" in uri for uri in rows(db)), rows(db)
    dropped = [e for e in errors(db, sync) if "an event of the queue was dropped" in e]
    assert len(dropped) == 2 and 'is not one S3 makes (1 to 1024 bytes of UTF-8, no NUL)' in dropped[0], dropped

    # One key three times in one message: applied in order, once each.
    send(s3, {"Records": [record("ObjectCreated:Put", "hostile/twice.md", "30", etag="a")["Records"][0],
                          record("ObjectRemoved:Delete", "hostile/twice.md", "31")["Records"][0],
                          record("ObjectCreated:Put", "hostile/twice.md", "32", etag="b")["Records"][0]]})
    wait_for(lambda: "s3://docs/hostile/twice.md" in rows(db) and queue_drained(s3), timeout=15,
             what="the key's three events applied")
    assert scalar(db, "SELECT etag FROM ai._s3_sync_object WHERE key = 'hostile/twice.md'") == "b"

    forged = record("ObjectRemoved:Delete", "hostile/pinned.md", "F" * 300)
    forged["Records"][0]["eventTime"] = "9999-12-31T23:59:59.000Z"
    send(s3, forged)
    wait_for(lambda: queue_drained(s3), timeout=15, what="the forged event applied")
    send(s3, record("ObjectCreated:Put", "hostile/pinned.md", "0000000000000020"))
    wait_for(lambda: "s3://docs/hostile/pinned.md" in rows(db), timeout=15, what="a real event after the forged one")
    db.execute("SELECT ai.drop_s3_sync(%s)", (sync,))


def test_a_message_that_keeps_failing_is_deleted_after_five_receipts(cluster, s3, db):
    """A message whose events cannot be applied (here a CHECK constraint refuses the row)
    is received again after the queue's visibility timeout; at the fifth receipt it is
    recorded and deleted, and the other messages go on meanwhile."""
    queue = s3.sqs.create_queue(QueueName="failing-events", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    db.execute("ALTER TABLE document ADD CONSTRAINT no_poison CHECK (uri NOT LIKE '%poison%')")
    sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/failing/', aws_role_arn => %s,
                             sqs_queue_url => %s, reconcile_interval => '1 hour')""", (SYNC_ROLE, queue))
    wait_for(lambda: progress(db, sync)[4] is not None, what="the first listing")
    s3.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record("ObjectCreated:Put", "failing/poison.md", "01")))
    s3.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record("ObjectCreated:Put", "failing/fine.md", "02")))
    wait_for(lambda: any("for the 5th time" in e for e in errors(db, sync)), timeout=60,
             what="the failing message given up")
    failed = [e for e in errors(db, sync) if "applying an event failed" in e]
    assert len(failed) == 5 and failed[-1].endswith("; the message is deleted"), failed
    assert "no_poison" in failed[0]
    wait_for(lambda: queue_drained(s3, queue), what="the queue empty", timeout=10)
    assert set(rows(db, "s3://docs/failing/")) == {"s3://docs/failing/fine.md"}
    db.execute("SELECT ai.drop_s3_sync(%s)", (sync,))


def test_check_s3_access_walks_what_a_sync_needs(cluster, s3, db):
    steps = {step: (ok, detail, hint) for step, ok, detail, hint in db.execute(
        "SELECT * FROM ai.check_s3_access('s3://docs/', %s, %s)", (SYNC_ROLE, s3.queue_url)).fetchall()}
    assert [s for s in steps] == ["uri", "credentials", "role", "bucket", "object", "queue"]
    assert {s: v[0] for s, v in steps.items()} == {"uri": True, "credentials": True, "role": True,
                                                   "bucket": True, "object": None, "queue": True}
    assert "sqs:DeleteMessage" in steps["queue"][2]
    denied = {step: (ok, detail, hint) for step, ok, detail, hint in db.execute(
        "SELECT * FROM ai.check_s3_access('s3://docs/reports/', %s, %s)", (NO_LIST_ROLE, s3.queue_url)).fetchall()}
    assert denied["bucket"][0] is False and "s3:ListBucket on arn:aws:s3:::docs" in denied["bucket"][2]
    assert denied["queue"] == (False, f"access denied receiving from the queue {s3.queue_url} (AccessDenied): "
                                      f"the role {NO_LIST_ROLE} needs sqs:ReceiveMessage on {QUEUE_ARN}",
                               denied["queue"][2])


def test_the_worker_writes_with_the_owners_rights(cluster, s3, db):
    """The sync's owner's privileges and row-level security apply to what the worker
    writes; a row the policy refuses is an error row and holds back no other; an owner
    that leaves ai_loader_s3_reader stops its sync until it is back."""
    db.execute("DROP ROLE IF EXISTS syncer")
    db.execute("CREATE ROLE syncer")
    db.execute("SELECT ai.grant_ai_usage('syncer')")
    db.execute("GRANT ai_loader_s3_reader TO syncer")
    db.execute("ALTER TABLE document OWNER TO syncer")
    db.execute("ALTER TABLE document ENABLE ROW LEVEL SECURITY")
    db.execute("ALTER TABLE document FORCE ROW LEVEL SECURITY")
    db.execute("CREATE POLICY readable ON document FOR SELECT USING (true)")
    db.execute("CREATE POLICY public_only ON document FOR INSERT WITH CHECK (uri NOT LIKE '%%secret%%')")
    for key in ("rls/a.md", "rls/secret.md", "rls/b.md"):
        s3.put(key, b"x")
    db.execute("SET ROLE syncer")
    sync = scalar(db, "SELECT ai.create_s3_sync('document', 's3://docs/rls/', aws_role_arn => %s, "
                      "reconcile_interval => '1 hour')", (SYNC_ROLE,))
    db.execute("RESET ROLE")
    wait_for(lambda: any("rls/secret.md" in e for e in errors(db, sync)), what="the refused row's error")
    wait_for(lambda: progress(db, sync)[4] is not None, what="the listing recorded")
    assert set(rows(db, "s3://docs/rls/")) == {"s3://docs/rls/a.md", "s3://docs/rls/b.md"}
    assert "row-level security" in [e for e in errors(db, sync) if "secret" in e][0]

    db.execute("REVOKE ai_loader_s3_reader FROM syncer")
    s3.put("rls/c.md", b"x")
    db.execute("SELECT ai.s3_sync_now(%s)", (sync,))
    wait_for(lambda: any("may no longer read S3" in e for e in errors(db, sync)), what="the stopped sync's error")
    assert "s3://docs/rls/c.md" not in rows(db)
    db.execute("GRANT ai_loader_s3_reader TO syncer")
    wait_for(lambda: "s3://docs/rls/c.md" in rows(db), what="the sync resumed")
    db.execute("SELECT ai.drop_s3_sync(%s)", (sync,))
    db.execute("DROP OWNED BY syncer")
    db.execute("DROP ROLE syncer")
