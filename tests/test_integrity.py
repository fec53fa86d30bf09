"""The store matches the source, whatever happens to a row while its document is on the
network, and the worker holds no transaction or lock across a network call."""

import random
import threading
import time

import psycopg
import pytest

from embedder import vector
from helpers import create_vectorizer, database_for, queue_empty, scalar, wait_for, worker_pid


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    with database_for(preloaded, request) as conn:
        yield conn


def create(conn, embedder, batch_size=10):
    conn.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    return create_vectorizer(conn, embedder, chunking="ai.chunking_none()",
                             extra=f", processing => ai.processing_default(batch_size => {batch_size})")


def churn(cluster, dbname, seed, stop, counts):
    """One session's random inserts, updates, deletes and key moves until `stop`."""
    rng = random.Random(seed)
    with cluster.connect(dbname) as conn:
        n = 0
        while not stop.is_set():
            id_ = rng.randrange(1, 400)
            op = rng.choice(("insert", "insert", "update", "update", "delete", "rekey"))
            n += 1
            try:
                if op == "insert":
                    conn.execute("INSERT INTO doc VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE "
                                 "SET body = excluded.body", (id_, f"T{id_}", f"body {seed}.{n}"))
                elif op == "update":
                    conn.execute("UPDATE doc SET body = %s WHERE id = %s", (f"changed {seed}.{n}", id_))
                elif op == "delete":
                    conn.execute("DELETE FROM doc WHERE id = %s", (id_,))
                else:
                    conn.execute("UPDATE doc SET id = id + 1000, title = 'moved' WHERE id = %s", (id_,))
                counts[op] = counts.get(op, 0) + 1
            except psycopg.errors.UniqueViolation:  # a key moved onto a taken one
                counts["conflict"] = counts.get("conflict", 0) + 1
            time.sleep(rng.uniform(0, 0.01))


def assert_store_matches_source(conn):
    source = {id_: (title, body) for id_, title, body in conn.execute("SELECT id, title, body FROM doc")}
    stored = conn.execute("SELECT id, chunk_seq, chunk, embedding FROM doc_embedding_store").fetchall()
    keys = [id_ for id_, _, _, _ in stored]
    assert len(keys) == len(set(keys)), "one chunk per row (chunking_none)"
    orphans = sorted(set(keys) - set(source))
    assert orphans == [], f"chunks of rows that no longer exist: {orphans[:20]}"
    missing = sorted(set(source) - set(keys))
    assert missing == [], f"rows without chunks: {missing[:20]}"
    stale = [id_ for id_, seq, chunk, emb in stored
             if (seq, chunk) != (0, source[id_][1])
             or emb != pytest.approx(vector(f"{source[id_][0]}: {chunk}", 8), abs=1e-6)]
    assert stale == [], f"chunks not of the row's current text: {stale[:20]}"


def test_the_store_matches_the_source_under_concurrent_writes(preloaded, db, embedder):
    """Eight sessions insert, update, delete and re-key rows while a slow embedder
    (0.1 s a request) has batches on the network: at the end every live row has
    exactly its current chunk, and no gone row has any."""
    vid = create(db, embedder)
    embedder.delay = 0.1
    stop = threading.Event()
    counts = {}
    sessions = [threading.Thread(target=churn, args=(preloaded, db.info.dbname, seed, stop, counts))
                for seed in range(8)]
    for s in sessions:
        s.start()
    time.sleep(12)  # the length of the churn, not a wait for the worker
    stop.set()
    for s in sessions:
        s.join()
    embedder.delay = 0
    wait_for(lambda: queue_empty(db, vid), timeout=60, what="the queue drained")
    assert counts["delete"] > 50 and counts["rekey"] > 50, counts
    assert scalar(db, "SELECT count(*) FROM doc") > 50
    assert_store_matches_source(db)
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0


def worker_transaction_age(conn):
    """The age in seconds of the worker's open transaction, 0 when it has none."""
    return scalar(conn, """SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8
                           FROM pg_stat_activity WHERE backend_type = 'ai_loader worker'
                            AND datname = current_database()""")


def test_a_hung_provider_holds_no_transaction_or_lock(db, embedder):
    """While the embedding request of a batch hangs, the worker has no transaction
    open: ALTER TABLE of the source gets its lock at once, and the row is embedded
    (with the new column in place) once the provider answers."""
    vid = create(db, embedder)
    embedder.set("hang")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'on the network')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker' "
                                "AND query LIKE '%embedding 1 rows'"), what="the batch on the network")
    ages = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        ages.append(worker_transaction_age(db))
        time.sleep(0.05)
    assert max(ages) < 1.0, f"the worker held a transaction for {max(ages):.1f} s"
    db.execute("SET lock_timeout = '3s'")
    started = time.monotonic()
    db.execute("ALTER TABLE doc ADD COLUMN extra int")
    assert time.monotonic() - started < 1.0
    db.execute("RESET lock_timeout")
    embedder.set("ok")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1,
             timeout=30, what="embedded after the hang")
    assert_store_matches_source(db)


def test_a_worker_waiting_for_a_lock_stops_at_once(preloaded, db, embedder):
    """A transaction holds the source locked: the worker waits at most its lock_timeout
    each round, records no error for it, and SIGTERM (pg_terminate_backend) ends it at
    once even while it waits; the next worker embeds the row once the lock is gone."""
    vid = create(db, embedder)
    pid = wait_for(lambda: worker_pid(db), what="the worker")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'behind a lock')")
    with preloaded.connect(db.info.dbname) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE doc IN ACCESS EXCLUSIVE MODE")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s "
                                    "AND wait_event_type = 'Lock'", (pid,)), what="the worker waiting for the lock")
        started = time.monotonic()
        assert scalar(db, "SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == 0,
                 timeout=5, interval=0.02, what="the worker gone")
        assert time.monotonic() - started < 1.0
        wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker' "
                                    "AND datname = current_database() AND wait_event_type = 'Lock'"),
                 what="the next worker waiting for the lock")
        time.sleep(2.5)  # holds the lock past the worker's lock_timeout (2 s)
        holder.execute("COMMIT")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1,
             what="embedded once the lock is released")
    assert worker_pid(db) != pid
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0
