"""The worker, end to end: a real cluster with ai_loader preloaded, the embedding test
server, and LangChain's splitter as the reference for the chunks."""

import ctypes
import os
import random
import signal

import psycopg
import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from cluster import Cluster
from embedder import vector
from helpers import create_vectorizer as create
from helpers import database_for, new_database, queue_empty, scalar, wait_for, worker_pid
from helpers import threads, threads_taking_signals

WORDS = ("vector store postgres embedding chunk document bucket object worker queue "
         "latency throughput index search semantic model token batch retry failure").split()


def document(rng, n):
    """A document of `n` sentences in a few paragraphs."""
    paragraphs = []
    while n > 0:
        k = min(n, rng.randint(1, 6))
        paragraphs.append(" ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18))).capitalize() + rng.choice(".?!")
            for _ in range(k)))
        n -= k
    return "\n\n".join(paragraphs)


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    with database_for(preloaded, request) as conn:
        yield conn


def store(conn, table="doc_embedding_store"):
    rows = conn.execute(f"SELECT id, chunk_seq, chunk, embedding FROM {table} ORDER BY id, chunk_seq").fetchall()
    out = {}
    for id_, seq, chunk, emb in rows:
        out.setdefault(id_, []).append((seq, chunk, emb))
    return out


def test_rows_are_embedded_as_langchain_splits_them(db, embedder):
    rng = random.Random(7)
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    rows = [(i, f"Doc {i}", document(rng, rng.randint(1, 30))) for i in range(1, 201)]
    vid = create(db, embedder)
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s, %s)", rows)
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 200, timeout=60, what="200 rows embedded")

    splitter = RecursiveCharacterTextSplitter(chunk_size=200, chunk_overlap=50,
                                              separators=["\n\n", "\n", ".", "?", "!", " ", ""])
    embedded = store(db)
    for id_, title, body in rows:
        expected = splitter.split_text(body)
        got = embedded[id_]
        assert [c for _, c, _ in got] == expected, f"row {id_}"
        assert [s for s, _, _ in got] == list(range(len(expected)))
        for _, chunk, emb in got:
            assert len(emb) == 8
            assert emb == pytest.approx(vector(f"{title}: {chunk}", 8), abs=1e-6)
    status = db.execute("SELECT pending_items, success_count, error_count FROM ai.vectorizer_status").fetchone()
    assert status == (0, 200, 0)


def test_a_chunk_row_that_fits_a_page_stays_whole_in_it(db, embedder):
    """768 dimensions and 800-character chunks make rows of about 4 kB. Past Postgres's
    default 2 kB target the chunk's text would be compressed and moved to the TOAST
    table: a second insert for every row, and a second read for every search."""
    rng = random.Random(11)
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = scalar(db, """SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_openai('test-embedding', 768, base_url => %s),
        chunking => ai.chunking_recursive_character_text_splitter(800, 0))""", (embedder.openai_url,))
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s)", [(i, document(rng, 60)) for i in range(1, 21)])
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 20, timeout=60, what="20 rows embedded")

    target = scalar(db, "SELECT current_setting('block_size')::int - 32")
    options, toast = db.execute("""SELECT reloptions, reltoastrelid::regclass::text FROM pg_class
                                   WHERE oid = 'doc_embedding_store'::regclass""").fetchone()
    assert f"toast_tuple_target={target}" in options
    rows = db.execute("SELECT pg_column_size(t.*), pg_column_compression(chunk) FROM doc_embedding_store t").fetchall()
    assert len(rows) > 100 and min(size for size, _ in rows) > 3000, "rows well above the default 2 kB target"
    assert {compression for _, compression in rows} == {None}
    assert scalar(db, f"SELECT count(*) FROM {toast}") == 0


def chunks_of(body, size=200, overlap=50):
    return RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap,
                                          separators=["\n\n", "\n", ".", "?", "!", " ", ""]).split_text(body)


def test_store_follows_updates_deletes_and_truncate(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL, hits int DEFAULT 0)")
    vid = create(db, embedder)
    db.execute("INSERT INTO doc (id, title, body) VALUES (1, 'One', 'first body'), (2, 'Two', 'second body')")
    wait_for(lambda: len(store(db)) == 2, what="two rows embedded")
    uuids = dict(db.execute("SELECT id, embedding_uuid FROM doc_embedding_store").fetchall())

    # A column the embedding does not read: the store is not touched.
    db.execute("UPDATE doc SET hits = hits + 1")
    assert queue_empty(db, vid)
    assert dict(db.execute("SELECT id, embedding_uuid FROM doc_embedding_store").fetchall()) == uuids

    # The loading column: re-embedded, the old chunks gone.
    long_body = "Paragraph one is here.\n\n" + "word " * 100
    db.execute("UPDATE doc SET body = %s WHERE id = 1", (long_body,))
    wait_for(lambda: [c for _, c, _ in store(db).get(1, [])] == chunks_of(long_body), what="row 1 re-embedded")
    # A column the template names: re-embedded with the new title.
    db.execute("UPDATE doc SET title = 'Deux' WHERE id = 2")
    wait_for(lambda: store(db)[2][0][2] == pytest.approx(vector("Deux: second body", 8), abs=1e-6),
             what="row 2 re-embedded with its new title")
    assert scalar(db, "SELECT count(*) FROM doc_embedding_store WHERE id = 2") == 1

    db.execute("DELETE FROM doc WHERE id = 1")
    assert 1 not in store(db)
    db.execute("TRUNCATE doc")
    assert store(db) == {}
    assert scalar(db, "SELECT success_count FROM ai.vectorizer_status") >= 4


def test_outage_keeps_rows_queued_until_recovery(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder)
    embedder.set("error500")
    db.execute("INSERT INTO doc SELECT g, 'T' || g, 'body of ' || g FROM generate_series(1, 20) g")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai.vectorizer_errors WHERE message LIKE '%%HTTP 500%%'") >= 1,
             what="an error row for the outage")
    assert scalar(db, "SELECT count(*) FROM doc_embedding_store") == 0
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 20
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0
    assert scalar(db, "SELECT max(loading_retries) FROM ai._vectorizer_q_1") == 0  # no retry spent
    details = scalar(db, "SELECT details FROM ai.vectorizer_errors ORDER BY recorded LIMIT 1")
    assert details["batch"] is True

    embedder.set("ok")
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 20, what="all rows embedded after recovery")
    assert scalar(db, "SELECT count(*) FROM doc_embedding_store") == 20  # each once


def test_retry_after_is_honoured(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder)
    embedder.set("rate_limit", count=1, retry_after=2)
    db.execute("INSERT INTO doc VALUES (1, 'T', 'throttled once')")
    wait_for(lambda: len(store(db)) == 1, what="the row embedded after the 429")
    with embedder.lock:
        requests = [(t, s) for t, _, s, _ in embedder.requests]
    assert [s for _, s in requests] == [429, 200]
    assert requests[1][0] - requests[0][0] >= 2.0
    assert queue_empty(db, vid)


def test_poison_documents_fail_alone(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body bytea NOT NULL)")
    embedder.reject = "poison"
    vid = create(db, embedder, loading="ai.loading_column('body', retries => 1)")
    rows = [(i, f"T{i}", f"document number {i}".encode()) for i in range(1, 51)]
    rows[16] = (17, "T17", b"\xff\xfe\x00\xd8 not text")          # undecodable
    rows[32] = (33, "T33", b"this one is poison for the provider")   # rejected by the provider
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s, %s)", rows)
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 2, timeout=60,
             what="both poison rows in the failed queue")
    assert sorted(store(db)) == [i for i in range(1, 51) if i not in (17, 33)]
    failed = dict(db.execute("SELECT id, failure_step FROM ai._vectorizer_q_failed_1").fetchall())
    assert failed == {17: "parsing", 33: "embedding"}
    errors = db.execute("SELECT message, details FROM ai.vectorizer_errors ORDER BY recorded").fetchall()
    by_row = {}
    for message, details in errors:
        by_row.setdefault(int(details["key"]["id"]), []).append(
            (message, details["attempt"], details["deterministic"], details["moved_to_failed_queue"]))
    # Bytes that cannot be text fail the same way every time: failed at the first attempt.
    assert [(a, d, m) for _, a, d, m in by_row[17]] == [(1, True, True)]
    assert "UTF-16" in by_row[17][0][0]
    # The provider's refusal may pass: retried once (retries => 1), then failed.
    assert [(a, d, m) for _, a, d, m in by_row[33]] == [(1, False, False), (2, False, True)]
    assert "HTTP 400" in by_row[33][0][0] and "cannot be embedded" in by_row[33][0][0]
    assert queue_empty(db, vid)
    status = db.execute("SELECT success_count, error_count FROM ai.vectorizer_status").fetchone()
    assert status == (48, 3)


def test_a_new_row_is_embedded_within_two_seconds(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create(db, embedder)
    wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker' "
                                "AND datname = current_database() AND query = 'idle'") == 1, what="an idle worker")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'fresh row')")
    wait_for(lambda: len(store(db)) == 1, timeout=2.0, what="the row embedded within 2 s")


def test_a_commit_wakes_the_worker(embedder):
    """With an hour between polls, only the commit of the queued rows can wake the worker."""
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.poll_interval = '1h'",
                       embedder.key_setting],
                      env={"OPENAI_API_KEY": embedder.api_key})
    try:
        db = cluster.connect()
        db.execute("CREATE EXTENSION ai_loader")
        db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
        create(db, embedder)
        db.execute("INSERT INTO doc VALUES (1, 'T', 'woken by its commit')")
        wait_for(lambda: len(store(db)) == 1, timeout=2.0, what="the row embedded within 2 s")
        with cluster.connect() as other:
            with other.transaction():
                other.execute("INSERT INTO doc VALUES (2, 'T', 'committed later')")
                other.execute("INSERT INTO doc VALUES (3, 'T', 'committed later')")
            wait_for(lambda: len(store(db)) == 3, timeout=2.0, what="both rows embedded within 2 s of the commit")
            with pytest.raises(psycopg.errors.UniqueViolation):
                with other.transaction():
                    other.execute("INSERT INTO doc VALUES (4, 'T', 'rolled back')")
                    other.execute("INSERT INTO doc VALUES (1, 'T', 'duplicate')")
            other.execute("INSERT INTO doc VALUES (5, 'T', 'after a rollback')")
            wait_for(lambda: len(store(db)) == 4, timeout=2.0, what="a commit after a rollback wakes it too")
        assert sorted(store(db)) == [1, 2, 3, 5]
    finally:
        cluster.stop()


def test_every_vectorizer_and_database_is_served(preloaded, embedder, db):
    db.execute("CREATE TABLE a (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    db.execute("CREATE TABLE b (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create(db, embedder, table="a")
    create(db, embedder, table="b")
    other = new_database(preloaded, "second_database")
    try:
        other.execute("CREATE TABLE a (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
        create(other, embedder, table="a")
        for conn in (db, other):
            conn.execute("INSERT INTO a SELECT g, 't', 'a ' || g FROM generate_series(1, 10) g")
        db.execute("INSERT INTO b SELECT g, 't', 'b ' || g FROM generate_series(1, 10) g")
        wait_for(lambda: len(store(db, "a_embedding_store")) == 10 and len(store(db, "b_embedding_store")) == 10
                 and len(store(other, "a_embedding_store")) == 10, what="three vectorizers served")

        # Dropping the extension stops that database's worker; dropping a database too.
        def workers():
            return dict(preloaded.connect().execute(
                "SELECT datname, count(*) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker' GROUP BY 1"
            ).fetchall())
        assert workers().get("second_database") == 1
        other.execute("DROP EXTENSION ai_loader CASCADE")
        wait_for(lambda: "second_database" not in workers(), what="the worker gone after DROP EXTENSION")
        other.execute("CREATE EXTENSION ai_loader")
        wait_for(lambda: workers().get("second_database") == 1, timeout=5, what="a worker for the new installation")
    finally:
        other.close()
    # A plain DROP DATABASE stops the worker first instead of failing on its connection.
    with preloaded.connect() as conn:
        conn.execute("DROP DATABASE second_database")
    assert "second_database" not in workers()


def test_a_disabled_vectorizer_keeps_its_queue(db, embedder):
    for t in ("paused", "active"):
        db.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    paused = create(db, embedder, table="paused")  # served before "active" in each pass
    create(db, embedder, table="active")
    db.execute("SELECT ai.disable_vectorizer_schedule(%s)", (paused,))
    db.execute("INSERT INTO paused VALUES (1, 't', 'waits')")
    db.execute("INSERT INTO active VALUES (1, 't', 'goes')")
    wait_for(lambda: len(store(db, "active_embedding_store")) == 1, what="the enabled vectorizer served")
    assert store(db, "paused_embedding_store") == {}
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (paused,)) == 1
    db.execute("SELECT ai.enable_vectorizer_schedule(%s)", (paused,))
    wait_for(lambda: len(store(db, "paused_embedding_store")) == 1, what="served once enabled")


def test_settings_are_reread_on_reload(preloaded, db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder, loading="ai.loading_column('body', retries => 0)")
    db.execute("INSERT INTO doc VALUES (1, 't', 'short')")
    wait_for(lambda: len(store(db)) == 1, what="a first row embedded")
    with preloaded.connect() as admin:
        try:
            admin.execute("ALTER SYSTEM SET ai_loader.max_object_bytes = 10")
            admin.execute("SELECT pg_reload_conf()")
            wait_for(lambda: preloaded.connect().execute("SHOW ai_loader.max_object_bytes").fetchone()[0] == "10B",
                     what="the new setting loaded")
            db.execute("INSERT INTO doc VALUES (2, 't', 'longer than ten bytes')")
            wait_for(lambda: scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 1,
                     what="the oversized row failed")
            message = scalar(db, "SELECT message FROM ai.vectorizer_errors")
            assert message == ("loading failed: the document (21 bytes) is larger than "
                               "ai_loader.max_object_bytes (10 bytes)")
            assert queue_empty(db, vid)
        finally:
            admin.execute("ALTER SYSTEM RESET ai_loader.max_object_bytes")
            admin.execute("SELECT pg_reload_conf()")


def test_ollama_provider(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = scalar(db, """SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_ollama('nomic-embed-text', 8, base_url => %s, keep_alive => '1m'),
        chunking => ai.chunking_none())""", (embedder.ollama_url,))
    db.execute("INSERT INTO doc VALUES (1, 'T', 'served by ollama')")
    wait_for(lambda: len(store(db)) == 1, what="embedded through /api/embed")
    assert store(db)[1][0][2] == pytest.approx(vector("served by ollama", 8), abs=1e-6)
    assert queue_empty(db, vid)


def test_wrong_dimensions_consume_nothing(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder)
    embedder.set("wrong_dims")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'x')")
    message = wait_for(lambda: scalar(db, "SELECT max(message) FROM ai.vectorizer_errors"), what="an error row")
    assert "embeddings of 9 dimensions, the vectorizer expects 8" in message
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
    embedder.set("ok")
    wait_for(lambda: len(store(db)) == 1, what="embedded once the provider is right")


def test_a_hung_request_times_out_and_is_retried(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create(db, embedder)
    embedder.set("hang", count=1)  # ai_loader.request_timeout is 3 s in this cluster
    db.execute("INSERT INTO doc VALUES (1, 'T', 'slow')")
    wait_for(lambda: len(store(db)) == 1, timeout=20, what="embedded after the timeout")
    assert [s for s in embedder.statuses() if s] == [200]  # the hung request never answered; its retry did


def test_a_killed_worker_loses_nothing_and_repeats_nothing(preloaded, embedder, db):
    name = db.info.dbname
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder, extra=", processing => ai.processing_default(batch_size => 5)")
    embedder.delay = 0.2  # each batch takes a while: the kill lands in the middle of one
    db.execute("INSERT INTO doc SELECT g, 'T' || g, 'document ' || g FROM generate_series(1, 60) g")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") >= 10, what="some batches committed")
    pid = worker_pid(db)
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) > 0
    os.kill(pid, signal.SIGKILL)  # the postmaster restarts every backend after this

    def settled():
        with preloaded.connect(name) as conn:
            return queue_empty(conn, vid) and scalar(conn, "SELECT count(*) FROM doc_embedding_store") == 60
    wait_for(settled, timeout=90, interval=0.25, what="every row embedded after the crash")
    with preloaded.connect(name) as conn:
        rows = conn.execute("SELECT id, chunk_seq, chunk FROM doc_embedding_store ORDER BY id").fetchall()
        assert rows == [(i, 0, f"document {i}") for i in range(1, 61)]  # each row exactly once
        assert conn.execute("SELECT count(*) FROM ai._vectorizer_q_failed_1").fetchone()[0] == 0


def test_query_embedding_with_each_provider_honours_statement_timeout(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    openai = create(db, embedder)
    ollama = scalar(db, """SELECT ai.create_vectorizer('doc'::regclass, name => 'by_ollama',
        destination => ai.destination_table('doc_ollama'), loading => ai.loading_column('body'),
        embedding => ai.embedding_ollama('nomic-embed-text', 8, base_url => %s))""", (embedder.ollama_url,))
    for vid in (openai, ollama):
        query = scalar(db, "SELECT ai.vectorizer_embed(%s, 'where is the bucket?')", (vid,))
        assert query == pytest.approx(vector("where is the bucket?", 8), abs=1e-6)
    assert [r[1] for r in embedder.requests] == ["/v1/embeddings", "/api/embed"]
    embedder.set("hang")
    db.execute("SET statement_timeout = '300ms'")
    for vid in (openai, ollama):
        with pytest.raises(psycopg.errors.QueryCanceled):
            db.execute("SELECT ai.vectorizer_embed(%s, 'never answered')", (vid,))
    db.execute("RESET statement_timeout")
    embedder.set("ok")
    assert scalar(db, "SELECT ai.vectorizer_embed(%s, 'x')", (openai,)) == pytest.approx(vector("x", 8), abs=1e-6)


@pytest.mark.parametrize("pgvector", [False, True], ids=["real[]", "vector"])
def test_destination_column_vectorizers_run_beside_others(db, embedder, pgvector):
    """An embedding column on the source (chunking_none), in the same database as a
    store vectorizer: inserts, updates and deletes of both are served."""
    if pgvector:
        db.execute("CREATE EXTENSION vector")
    db.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    column = scalar(db, """SELECT ai.create_vectorizer('note'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), chunking => ai.chunking_none(),
        destination => ai.destination_column('body_embedding'))""", (embedder.openai_url,))
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    table = create(db, embedder)
    expected_type = "vector(8)" if pgvector else "real[]"
    assert scalar(db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                      "WHERE attrelid = 'note'::regclass AND attname = 'body_embedding'") == expected_type

    def embeddings():
        return dict(db.execute("SELECT id, body_embedding::real[] FROM note ORDER BY id").fetchall())

    db.execute("INSERT INTO note VALUES (1, 'first note'), (2, 'second note')")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'a document')")
    wait_for(lambda: queue_empty(db, column) and queue_empty(db, table) and len(store(db)) == 1
             and all(e is not None for e in embeddings().values()), what="both vectorizers served")
    got = embeddings()
    assert got[1] == pytest.approx(vector("first note", 8), abs=1e-6)
    assert got[2] == pytest.approx(vector("second note", 8), abs=1e-6)

    db.execute("UPDATE note SET body = 'first note, changed' WHERE id = 1")
    wait_for(lambda: queue_empty(db, column)
             and embeddings()[1] == pytest.approx(vector("first note, changed", 8), abs=1e-6),
             what="the changed note embedded again")
    db.execute("DELETE FROM note WHERE id = 2")
    db.execute("INSERT INTO doc VALUES (2, 'T', 'another document')")
    wait_for(lambda: len(store(db)) == 2, what="the store vectorizer still served")
    assert list(embeddings()) == [1]
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0


def test_dropping_a_busy_vectorizer_leaves_the_worker_serving_the_others(db, embedder):
    """drop_vectorizer(…, drop_all) while the worker has the vectorizer's rows on the
    network: the worker goes on (the same process) and serves the other vectorizers."""
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    busy = create(db, embedder)
    db.execute("CREATE TABLE note (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    other = create(db, embedder, table="note")

    pid = wait_for(lambda: worker_pid(db), what="the database's worker")
    embedder.delay = 0.3
    with db.cursor() as cur:  # many batches, so that the drop lands between two of them
        cur.executemany("INSERT INTO doc VALUES (%s, 'T', %s)", [(i, f"row {i}") for i in range(1, 1001)])
    wait_for(lambda: embedder.requests, what="the worker embedding the busy vectorizer's rows")
    db.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (busy,))
    embedder.delay = 0
    db.execute("INSERT INTO note VALUES (1, 'T', 'served after the drop')")
    wait_for(lambda: queue_empty(db, other) and len(store(db, "note_embedding_store")) == 1, timeout=10,
             what="the other vectorizer served")
    assert worker_pid(db) == pid
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer WHERE id = %s", (busy,)) == 0


def test_the_launcher_needs_no_database(embedder):
    """The launcher reads the list of databases from the shared catalog, connected to
    none: the database postgres can be dropped without FORCE, and after a restart the
    other databases are served as before."""
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", embedder.key_setting],
                      env={"OPENAI_API_KEY": embedder.api_key})
    try:
        with cluster.connect() as admin:
            admin.execute("CREATE DATABASE app")
        app = cluster.connect("app")
        app.execute("CREATE EXTENSION ai_loader")
        app.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
        vid = create(app, embedder)
        app.execute("DROP DATABASE postgres")
        app.execute("INSERT INTO doc VALUES (1, 'T', 'served without postgres')")
        wait_for(lambda: queue_empty(app, vid) and len(store(app)) == 1, what="served")
        app.close()
        cluster.shutdown()
        cluster.start()
        app = cluster.connect("app")
        app.execute("INSERT INTO doc VALUES (2, 'T', 'served after a restart')")
        wait_for(lambda: queue_empty(app, vid) and len(store(app)) == 2, what="served after the restart")
        app.close()
        assert 'database "postgres" does not exist' not in cluster.log()
    finally:
        cluster.stop()


def test_a_terminated_worker_is_back_at_once(db, embedder):
    """pg_terminate_backend of a database's worker, even one just started: the launcher
    starts another within a second or two."""
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder)

    for _ in range(2):  # the second one has run for well under ten seconds
        pid = wait_for(lambda: worker_pid(db), what="the database's worker")
        assert scalar(db, "SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(lambda: worker_pid(db) not in (None, pid), timeout=3, interval=0.05, what="a new worker")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'served by the new worker')")
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 1, timeout=5, what="served")


def test_a_signal_sent_to_a_pipeline_thread_leaves_the_server_up(preloaded, db, embedder):
    """A signal to the worker's process may be delivered to any thread that does not
    block it (the kernel picks another when the main thread already has one pending).
    Postgres's handlers and pgrx's are for the main thread: run in another, one aborted
    the worker, and the postmaster then reset the whole cluster. The pipeline's threads
    block every signal, so one sent to them straight stays pending and harms nothing."""
    logged = len(preloaded.log())
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder)
    db.execute("INSERT INTO doc VALUES (1, 't', 'the worker runs its pipeline')")
    wait_for(lambda: len(store(db)) == 1, what="a first row embedded")
    pid = worker_pid(db)
    pipeline = threads(pid)
    assert pipeline, "the worker runs its pipeline on threads of its own"
    assert threads_taking_signals(pid) == {}
    libc = ctypes.CDLL(None, use_errno=True)
    for tid in pipeline:
        for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM):
            assert libc.tgkill(pid, tid, s) == 0, os.strerror(ctypes.get_errno())
    db.execute("INSERT INTO doc VALUES (2, 't', 'and serves the next row')")
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 2, what="the next row embedded")
    assert worker_pid(db) == pid
    assert "terminated by signal" not in preloaded.log()[logged:]


def test_a_served_database_can_be_copied_and_renamed(preloaded, embedder, request):
    """CREATE DATABASE … TEMPLATE and ALTER DATABASE … RENAME need the database to
    themselves: its worker steps aside, and both databases are served after."""
    embedder.reset()
    name = request.node.name[:40]
    db = new_database(preloaded, name)
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    vid = create(db, embedder)
    db.execute("INSERT INTO doc VALUES (1, 'T', 'in the original')")
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 1 and worker_pid(db), what="served")
    db.close()
    copy = None
    try:
        with preloaded.connect() as admin:
            admin.execute(f'CREATE DATABASE "{name}_copy" TEMPLATE "{name}"')
            admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_renamed"')
        copy = preloaded.connect(f"{name}_copy")
        renamed = preloaded.connect(f"{name}_renamed")
        for conn, row in ((copy, "in the copy"), (renamed, "in the renamed one")):
            conn.execute("INSERT INTO doc VALUES (2, 'T', %s)", (row,))
            wait_for(lambda: queue_empty(conn, vid) and len(store(conn)) == 2, what=f"served {row}")
        renamed.close()
    finally:
        if copy:
            copy.close()
        with preloaded.connect() as admin:
            for database in (name, f"{name}_copy", f"{name}_renamed"):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
