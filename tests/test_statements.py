"""Every statement the worker runs resolves its names in pg_catalog, never through a
search path. The statements are taken from a real run: auto_explain logs each one the
worker's backends execute, with its text, while the worker embeds, retries, fails,
indexes, deletes and keeps an S3 sync in step. Each is then resolved again in a session
whose search path puts a hostile schema first, where a copy of nearly every operator,
function, aggregate, base type and relation of pg_catalog waits, and Postgres's own
dependency records (a function with the statement as its SQL-standard body) say
whether any name went to a copy."""

import glob
import json

import psycopg
import pytest

from helpers import document_database, queue_empty, s3_cluster, scalar, wait_for
from s3server import ACCOUNT, BUCKET, S3Server

SYNC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/StatementsRole"
QUEUE = "statements-events"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}"

# A copy of pg_catalog's objects in schema mallory, each doing nothing; run with
# search_path = pg_catalog so the copies are made of pg_catalog's types and functions.
SHADOWS = r"""
CREATE SCHEMA mallory;
-- Runs one copy's DDL; 1 if it was made, 0 if Postgres refused it (a pseudo-type, …).
CREATE FUNCTION pg_temp.shadow(ddl text) RETURNS int4 LANGUAGE plpgsql AS $shadow$
    BEGIN
        EXECUTE ddl;
        RETURN 1;
    EXCEPTION WHEN others THEN
        RETURN 0;
    END $shadow$;
CREATE TABLE public.shadows (kind text, made int4);
INSERT INTO public.shadows
SELECT 'operator', sum(pg_temp.shadow(format(
           'CREATE FUNCTION mallory.op_%1$s(%2$s) RETURNS %3$s LANGUAGE plpgsql VOLATILE '
           'AS $f$BEGIN RETURN NULL; END$f$; '
           'CREATE OPERATOR mallory.%4$s (%5$s RIGHTARG = %6$s, FUNCTION = mallory.op_%1$s)',
           o.oid, concat_ws(', ', CASE WHEN o.oprleft <> 0 THEN o.oprleft::regtype::text END, o.oprright::regtype::text),
           o.oprresult::regtype, o.oprname,
           CASE WHEN o.oprleft <> 0 THEN format('LEFTARG = %s,', o.oprleft::regtype) END, o.oprright::regtype)))
  FROM pg_operator o WHERE o.oprnamespace = 'pg_catalog'::regnamespace
UNION ALL
SELECT 'function', sum(pg_temp.shadow(format(
           'CREATE FUNCTION mallory.%I(%s) RETURNS %s LANGUAGE plpgsql VOLATILE AS $f$BEGIN %s END$f$',
           p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
           CASE WHEN p.proretset OR p.proallargtypes IS NOT NULL THEN 'RETURN;' ELSE 'RETURN NULL;' END)))
  FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
UNION ALL
SELECT 'aggregate', sum(pg_temp.shadow(format(
           'CREATE AGGREGATE mallory.%I(%s) (SFUNC = %s, STYPE = %s%s%s)', p.proname,
           coalesce(nullif(pg_get_function_arguments(p.oid), ''), '*'), a.aggtransfn::regproc,
           a.aggtranstype::regtype,
           CASE WHEN a.aggfinalfn <> 0 THEN format(', FINALFUNC = %s', a.aggfinalfn::regproc) END,
           CASE WHEN a.agginitval IS NOT NULL THEN format(', INITCOND = %L', a.agginitval) END)))
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
 WHERE p.pronamespace = 'pg_catalog'::regnamespace AND a.aggkind = 'n'
UNION ALL
SELECT 'type', sum(pg_temp.shadow(format('CREATE DOMAIN mallory.%I AS pg_catalog.%I', t.typname, t.typname)))
  FROM pg_type t
 WHERE t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype = 'b' AND t.typname !~ '^_'
UNION ALL
SELECT 'relation', sum(pg_temp.shadow(format('CREATE VIEW mallory.%I AS SELECT * FROM pg_catalog.%I',
                                              c.relname, c.relname)))
  FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind IN ('r', 'v');
"""


def shadowed(conn, statement):
    """The hostile copies `statement` resolves to under search_path = mallory, pg_catalog:
    the objects its body depends on, as Postgres records them for a function whose
    SQL-standard body is the statement (parameters typed as PREPARE infers them)."""
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL search_path = mallory, pg_catalog")
        try:
            with conn.transaction():
                conn.execute(f"PREPARE statement_check AS {statement}")
            conn.execute("SET LOCAL search_path = pg_catalog")
            types = scalar(conn, """SELECT coalesce(array_agg(format('%I.%I', n.nspname, t.typname) ORDER BY p.i), '{}')
                                      FROM pg_prepared_statements s, unnest(s.parameter_types) WITH ORDINALITY p(t, i)
                                      JOIN pg_type t ON t.oid = p.t JOIN pg_namespace n ON n.oid = t.typnamespace
                                     WHERE s.name = 'statement_check'""")
            conn.execute("DEALLOCATE statement_check")
        except psycopg.errors.SyntaxError as e:
            if "multiple commands" not in str(e):
                raise
            types = []
        conn.execute("SET LOCAL search_path = mallory, pg_catalog")
        conn.execute(f"CREATE FUNCTION public.statement_check({', '.join(types)}) RETURNS void "
                     f"LANGUAGE sql BEGIN ATOMIC {statement}; END")
        conn.execute("SET LOCAL search_path = pg_catalog")
        return [d for (d,) in conn.execute("""
            SELECT DISTINCT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
              FROM pg_depend d CROSS JOIN LATERAL pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) o
             WHERE d.classid = 'pg_proc'::regclass AND d.objid = 'public.statement_check'::regproc
               AND o.schema = 'mallory' ORDER BY 1""").fetchall()]


def logged_statements(cluster):
    """The text of each statement the worker's backends executed, once each (a background
    worker's log entries name no database: the cluster serves one at a time)."""
    seen = {}
    for path in sorted(glob.glob(f"{cluster.data}/log/*.json")):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                message = entry.get("message", "")
                if entry.get("backend_type", "").startswith("ai_loader ") and "plan:\n" in message:
                    text = json.loads(message.split("plan:\n", 1)[1])["Query Text"]
                    seen.setdefault(text.strip(), None)
    return list(seen)


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    server.add_role("StatementsRole", ["s3:GetObject", "s3:ListBucket", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                                       "sqs:GetQueueAttributes"])
    server.sqs = server.client("sqs")
    server.queue_url = server.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(s3, embedder):
    c = s3_cluster(s3, embedder, "shared_preload_libraries = 'ai_loader, auto_explain'",
                   "auto_explain.log_min_duration = 0", "auto_explain.log_format = json",
                   "auto_explain.log_nested_statements = off",
                   "logging_collector = on", "log_destination = 'stderr, jsonlog'")
    yield c
    c.stop()


@pytest.fixture
def db(cluster, embedder, request):
    with document_database(cluster, embedder, request) as conn:
        yield conn


def test_the_checker_sees_a_name_resolved_through_the_search_path(cluster, db):
    """The control: bare names go to the copies, qualified ones do not."""
    db.execute("SET search_path = pg_catalog")
    db.execute(SHADOWS)
    made = dict(db.execute("SELECT kind, made FROM public.shadows").fetchall())
    assert made["operator"] > 500 and made["function"] > 2000 and made["aggregate"] > 50, made
    assert made["type"] > 50 and made["relation"] > 100, made
    found = shadowed(db, "SELECT count(*) FROM pg_class c WHERE c.oid = $1 AND c.relname::text IS DISTINCT FROM $2")
    assert found == ["column oid of view mallory.pg_class", "column relname of view mallory.pg_class",
                     "function mallory.count()", "operator mallory.=(oid,oid)", "operator mallory.=(text,text)",
                     "type mallory.text"], found
    assert shadowed(db, "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c "
                        "WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid") == []


def notify_queue(s3, on):
    config = {"QueueConfigurations": [{"QueueArn": QUEUE_ARN, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]}
    s3.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=config if on else {})


def vectorizer(conn, embedder, table, loading, chunking="ai.chunking_recursive_character_text_splitter(200, 50)",
               **extra):
    more = "".join(f", {k} => {v}" for k, v in extra.items())
    return scalar(conn, f"""SELECT ai.create_vectorizer('{table}'::regclass, loading => {loading},
        embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), chunking => {chunking},
        processing => ai.processing_default(batch_size => 2){more})""", (embedder.openai_url,))


def count(conn, sql):
    return scalar(conn, f"SELECT count(*) FROM {sql}")


def test_every_statement_the_worker_runs_resolves_in_pg_catalog(cluster, s3, embedder, db):
    """A run through what the worker does — embed, update, delete, retry, give up, build
    an index, write an embedding column, load S3 objects, list a prefix, apply events,
    record errors — and then each statement it ran, resolved against the copies."""
    db.execute("CREATE EXTENSION vector")
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    db.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    docs = vectorizer(db, embedder, "doc", "ai.loading_column('body', retries => 1)",
                      indexing="ai.indexing_hnsw(min_rows => 3)")
    notes = vectorizer(db, embedder, "note", "ai.loading_column('body')",
                       chunking="ai.chunking_none()", destination="ai.destination_column('emb')")
    uris = vectorizer(db, embedder, "document", f"ai.loading_uri('uri', retries => 0, aws_role_arn => '{SYNC_ROLE}')")

    # Embedded, updated, deleted; a failure retried; a document refused for good.
    db.execute("INSERT INTO doc SELECT i, 'document number ' || i FROM generate_series(1, 5) i")
    db.execute("INSERT INTO note VALUES (1, 'a note'), (2, 'another note')")
    wait_for(lambda: queue_empty(db, docs) and count(db, "doc_embedding_store") == 5, what="docs embedded")
    db.execute("UPDATE doc SET body = 'document one, again' WHERE id = 1")
    db.execute("DELETE FROM doc WHERE id = 2")
    embedder.set("error500", count=1)
    db.execute("INSERT INTO doc VALUES (6, 'after a failure')")
    embedder.reject = "poison"
    db.execute("INSERT INTO doc VALUES (7, 'poison')")
    wait_for(lambda: count(db, f"ai._vectorizer_q_failed_{docs}") == 1 and queue_empty(db, docs),
             timeout=60, what="the poison document failed, the others stored")
    wait_for(lambda: count(db, "pg_indexes WHERE tablename = 'doc_embedding_store' AND indexdef LIKE '%hnsw%'"),
             what="the index built")
    wait_for(lambda: count(db, "note WHERE emb IS NOT NULL") == 2, what="the embedding column written")

    # A sync: a listing, then events (an upload, a delete, a poison message); the
    # uploaded objects loaded by their URIs.
    s3.put("statements/first.md", b"The first object.")
    sync = scalar(db, """SELECT ai.create_s3_sync('document', 's3://docs/statements/', aws_role_arn => %s,
                             sqs_queue_url => %s, columns => '{"title": "basename"}')""", (SYNC_ROLE, s3.queue_url))
    wait_for(lambda: count(db, "document") == 1, what="the listing's row")
    notify_queue(s3, True)
    try:
        s3.put("statements/second.md", b"The second object.")
        wait_for(lambda: count(db, "document") == 2, timeout=20, what="the event's row")
        s3.s3.delete_object(Bucket=BUCKET, Key="statements/first.md")
        s3.sqs.send_message(QueueUrl=s3.queue_url, MessageBody="not json at all")
        wait_for(lambda: count(db, "document") == 1 and count(db, f"ai.s3_sync_errors WHERE id = {sync}") >= 1,
                 timeout=20, what="the delete and the poison message")
    finally:
        notify_queue(s3, False)
    db.execute("INSERT INTO document (uri) VALUES ('s3://docs/statements/missing.md')")
    wait_for(lambda: queue_empty(db, uris) and count(db, "document_embedding_store") == 1, timeout=30,
             what="the object loaded, the missing one given up")
    # A listing: the row of no object, and that of an object deleted without an event,
    # removed (the sync forgets the object).
    s3.s3.delete_object(Bucket=BUCKET, Key="statements/second.md")
    db.execute("SELECT ai.s3_sync_now(%s)", (sync,))
    wait_for(lambda: count(db, "document") == 0, what="a listing removing the rows without objects")

    statements = logged_statements(cluster)
    # What the run went through is in the list: each part of the worker ran statements.
    for part in ["FOR UPDATE SKIP LOCKED", "ai._vectorizer_errors", "_vectorizer_q_failed_", "ai.vectorizer_worker_progress",
                 "ai._s3_sync_object", "ai._s3_sync_progress", "ai._s3_sync_errors", "UPDATE \"public\".\"note\"",
                 "pg_catalog.current_setting(s.name)", "AS leftover", "left_behind", "OR (NOT o.present",
                 "ai._wake_worker_at_commit"]:
        assert any(part in s for s in statements), f"no statement with {part!r} in {len(statements)}"

    db.execute("SET search_path = pg_catalog")
    db.execute(SHADOWS)
    resolved = {s: checked(db, s) for s in statements}
    bad = {s: r for s, r in resolved.items() if r}
    assert not bad, f"{len(bad)} of {len(statements)} statements resolve names through the search path:\n" + \
        "\n\n".join(f"{s}\n  -> {', '.join(r)}" for s, r in bad.items())


def checked(conn, statement):
    """`shadowed`, or why the statement cannot be checked (a parameter whose type only
    the caller's arguments fix is cast in the statement)."""
    try:
        return shadowed(conn, statement)
    except psycopg.Error as e:
        return [f"cannot be checked: {e}"]
