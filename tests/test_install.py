"""Installing ai_loader on a real server, and the queue filling from committed work."""

import threading

import psycopg
import pytest


def test_refuses_to_load_without_preload(plain):
    with plain.connect() as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as err:
            conn.execute("CREATE EXTENSION ai_loader")
        assert err.value.diag.message_primary == "ai_loader must be loaded via shared_preload_libraries"
        assert "shared_preload_libraries = 'ai_loader'" in err.value.diag.message_hint
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            conn.execute("LOAD 'ai_loader'")
        # Nothing was left behind by the failed CREATE EXTENSION.
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'ai_loader'").fetchone() == (0,)


def test_installs_in_several_databases(preloaded):
    with preloaded.connect() as conn:
        for db in ("one", "two"):
            conn.execute(f"CREATE DATABASE {db}")
    for db in ("one", "two"):
        with preloaded.connect(db) as conn:
            conn.execute("CREATE EXTENSION ai_loader")
            schema = conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'ai_loader'"
            ).fetchone()
            assert schema == ("ai",)


def test_concurrent_committed_inserts_are_all_queued(preloaded):
    with preloaded.connect() as conn:
        conn.execute("CREATE DATABASE queueing")
    with preloaded.connect("queueing") as conn:
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("CREATE TABLE doc (id bigserial PRIMARY KEY, title text, uri text NOT NULL)")
        vid = conn.execute(
            "SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('uri'),"
            " embedding => ai.embedding_local())"
        ).fetchone()[0]

    writers, rows_each = 4, 50

    def write(n):
        with preloaded.connect("queueing") as c:
            for i in range(rows_each):
                with c.transaction():
                    c.execute("INSERT INTO doc (title, uri) VALUES (%s, %s)",
                              (f"w{n}-{i}", f"s3://b/{n}/{i}.md"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    with preloaded.connect("queueing") as conn:
        queued = conn.execute("SELECT ai.vectorizer_queue_pending(%s, exact_count => true)", (vid,)).fetchone()[0]
        assert queued == writers * rows_each
        # One queue row per source row, keyed as the source is.
        missing = conn.execute(
            "SELECT count(*) FROM doc d WHERE NOT EXISTS (SELECT 1 FROM ai._vectorizer_q_1 q WHERE q.id = d.id)"
        ).fetchone()[0]
        assert missing == 0
        # An update of a column the embedding does not read queues nothing more.
        conn.execute("ALTER TABLE doc ADD COLUMN hits int DEFAULT 0")
        conn.execute("UPDATE doc SET hits = hits + 1")
        assert conn.execute("SELECT count(*) FROM ai._vectorizer_q_1").fetchone()[0] == writers * rows_each
        # Dropping the vectorizer without drop_all keeps the store; the triggers are gone.
        conn.execute("SELECT ai.drop_vectorizer(%s)", (vid,))
        conn.execute("INSERT INTO doc (title, uri) VALUES ('late', 's3://b/late.md')")
        assert conn.execute("SELECT to_regclass('ai._vectorizer_q_1')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM doc_embedding_store").fetchone() == (0,)
