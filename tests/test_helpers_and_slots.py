"""More than one worker per database: helpers the launcher adds while the worker has a
backlog (`ai_loader.workers_per_database`), which share the queue without embedding
any row twice and leave once it is done; and claims given back when, and only when,
the worker that made them is gone (its claim lock is free)."""

import threading
import time

import pytest

from cluster import Cluster
from embedder import vector
from helpers import create_vectorizer, scalar, wait_for

# The claim lock of a transaction: this tag plus its id (crates/core/src/queue.rs).
CLAIM_LOCK_TAG = 0x6169_4C64 << 32


def processes(conn):
    """The database's ai_loader processes by type."""
    return dict(conn.execute("SELECT backend_type, count(*) FROM pg_stat_activity "
                             "WHERE backend_type LIKE 'ai_loader %%' AND datname = current_database() "
                             "GROUP BY 1").fetchall())


class Sampler:
    """Counts the database's helpers every 20 ms, from its own connection."""

    def __init__(self, cluster):
        self.conn = cluster.connect()
        self.most = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.most = max(self.most, processes(self.conn).get("ai_loader helper", 0))
            time.sleep(0.02)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.conn.close()
        return self.most


@pytest.fixture
def cluster(embedder, request):
    """A cluster with the settings the test is marked with."""
    embedder.reset()
    marker = request.node.get_closest_marker("settings")
    c = Cluster(["shared_preload_libraries = 'ai_loader'", embedder.key_setting, *(marker.args if marker else ())],
                env={"OPENAI_API_KEY": embedder.api_key})
    yield c
    c.stop()
    embedder.reset()


def backlog(cluster, embedder, first_id, n=240):
    """Queues `n` one-chunk rows behind a slow embedder; returns the most helpers seen
    at once until every row is embedded."""
    db = cluster.connect()
    embedder.delay = 0.2  # a batch of 4 rows takes at least 0.2 s: a backlog of seconds
    sampler = Sampler(cluster)
    try:
        db.execute("INSERT INTO doc SELECT g, 'T', 'row ' || g FROM generate_series(%s::int, %s::int) g",
                   (first_id, first_id + n - 1))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store WHERE id >= %s", (first_id,)) == n,
                 timeout=60, what=f"{n} rows embedded")
    finally:
        most = sampler.close()
        embedder.delay = 0
    return most


@pytest.mark.settings("ai_loader.workers_per_database = 1")
def test_helpers_share_a_backlog_without_embedding_a_row_twice(cluster, embedder):
    db = cluster.connect()
    db.execute("CREATE EXTENSION ai_loader")
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create_vectorizer(db, embedder, chunking="ai.chunking_none()", template="$chunk",
                      extra=", processing => ai.processing_default(batch_size => 4)")

    # One worker allowed: no helper, however long the backlog.
    assert backlog(cluster, embedder, first_id=1) == 0

    # Three: helpers join while the backlog lasts (the launcher adds one a second)...
    db.execute("ALTER SYSTEM SET ai_loader.workers_per_database = 3")
    db.execute("SELECT pg_reload_conf()")
    embedder.reset()
    assert backlog(cluster, embedder, first_id=1001) == 2
    # ...every row was sent to the embedder once, and stored once with its own vector.
    inputs = sum(r[3] for r in embedder.requests)
    assert inputs == 240
    rows = db.execute("SELECT id, chunk, embedding::text FROM doc_embedding_store WHERE id > 1000 ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(1001, 1241))
    for id_, chunk, emb in rows:
        assert chunk == f"row {id_}"
        assert [float(x) for x in emb.strip("{}[]").split(",")] == pytest.approx(vector(chunk, 8), abs=1e-6)
    # ...and leave once it is done, the worker staying.
    wait_for(lambda: processes(db) == {"ai_loader worker": 1}, timeout=10, what="the helpers gone")
    assert "ERROR" not in cluster.log()


@pytest.mark.settings("ai_loader.workers_per_database = 2")
def test_a_helper_joins_as_soon_as_the_worker_has_more_than_it_keeps_in_flight(cluster, embedder):
    """A turn claims up to 8 batches, two in flight at once; a helper starts when the
    second claim comes back full, not when the turn is over."""
    db = cluster.connect()
    db.execute("CREATE EXTENSION ai_loader")
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create_vectorizer(db, embedder, chunking="ai.chunking_none()", template="$chunk",
                      extra=", processing => ai.processing_default(batch_size => 4)")
    embedder.delay = 0.3  # a turn of 8 batches of 4 takes at least 1.2 s
    try:
        db.execute("INSERT INTO doc SELECT g, 'T', 'row ' || g FROM generate_series(1, 200) g")
        seen = {}

        def helper_seen():
            stored = scalar(db, "SELECT count(*) FROM doc_embedding_store")
            if processes(db).get("ai_loader helper"):
                seen["stored"] = stored
            return seen or stored == 200

        wait_for(helper_seen, timeout=30, interval=0.01, what="a helper")
        # Before the first turn's 8 batches are all written.
        assert seen.get("stored", 200) < 32
    finally:
        embedder.delay = 0
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == 200, timeout=60, what="200 rows")


@pytest.mark.settings("ai_loader.max_workers = 0")  # no worker while the claims are made
def test_a_claim_is_given_back_only_when_its_worker_is_gone(cluster, embedder):
    """Claims made by hand as the worker makes them: rows 1-2 under a claim whose lock a
    live session holds (a worker at work), row 3 under one whose lock nobody holds (a
    worker that ended on an error), row 4 queued. A worker that starts gives back row 3
    only, and row 1-2's claim once its session is gone."""
    db = cluster.connect()
    db.execute("CREATE EXTENSION ai_loader")
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create_vectorizer(db, embedder)
    db.execute("INSERT INTO doc SELECT g, 'T', 'row ' || g FROM generate_series(1, 4) g")
    lease = "UPDATE ai._vectorizer_q_1 SET loading_retry_after = now() + interval '1 hour' WHERE id = ANY(%s)"
    live = cluster.connect()
    with live.transaction():
        live.execute(lease, ([1, 2],))
        live.execute("SELECT pg_advisory_lock(%s + pg_current_xact_id()::xid::text::bigint)", (CLAIM_LOCK_TAG,))
    with db.transaction():
        db.execute(lease, ([3],))

    db.execute("ALTER SYSTEM SET ai_loader.max_workers = 8")
    db.execute("SELECT pg_reload_conf()")
    wait_for(lambda: scalar(db, "SELECT array_agg(DISTINCT id ORDER BY id) FROM doc_embedding_store") == [3, 4],
             what="the left claim's row and the queued row embedded")
    leased = "SELECT array_agg(id ORDER BY id) FROM ai._vectorizer_q_1 WHERE loading_retry_after > now() + interval '50 minutes'"
    assert scalar(db, leased) == [1, 2]

    live.close()  # the claim's worker is gone; the next worker to start gives its rows back
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker'")
    wait_for(lambda: scalar(db, "SELECT array_agg(DISTINCT id ORDER BY id) FROM doc_embedding_store") == [1, 2, 3, 4],
             what="the claim given back once its session is gone")
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_1") == 0


def tenant(cluster, embedder, name, extra=""):
    """A database `name` with ai_loader and a vectorizer of its table doc."""
    with cluster.connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = cluster.connect(name)
    db.execute("CREATE EXTENSION ai_loader")
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    create_vectorizer(db, embedder, chunking="ai.chunking_none()", template="$chunk", extra=extra)
    return db


def worker_count(conn):
    return scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker'")


# The default ai_loader.max_workers (8); max_worker_processes has room for them and the
# launcher, as README's installation asks.
@pytest.mark.settings("ai_loader.idle_timeout = '1s'", "max_worker_processes = 16")
def test_more_databases_than_worker_slots_are_all_served(cluster, embedder):
    """Each database kept its worker for good, so with more databases than
    ai_loader.max_workers the first ones took every slot and the others were never
    served, silently: 16 databases and the default 8 slots. A worker with nothing
    queued leaves after idle_timeout, and a commit that queues rows starts one again."""
    tenants = [tenant(cluster, embedder, f"tenant_{i}") for i in range(16)]
    for i, db in enumerate(tenants):
        db.execute("INSERT INTO doc VALUES (1, 'T', %s)", (f"the row of tenant {i}",))
    for i, db in enumerate(tenants):
        wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1, timeout=60,
                 what=f"tenant {i}'s row embedded")
        assert scalar(db, "SELECT chunk FROM doc_embedding_store") == f"the row of tenant {i}"
    admin = cluster.connect()
    assert worker_count(admin) <= 8
    # Idle: every worker leaves, giving its slot back...
    wait_for(lambda: worker_count(admin) == 0, timeout=30, what="the idle workers gone")
    assert "nothing queued for 1s; leaving until rows are queued" in cluster.log()
    # ...and a commit that queues rows brings one back at once.
    started = time.monotonic()
    tenants[7].execute("INSERT INTO doc VALUES (2, 'T', 'after the worker left')")
    wait_for(lambda: scalar(tenants[7], "SELECT count(*) FROM doc_embedding_store") == 2, timeout=10,
             what="the row embedded by a worker started for it")
    assert time.monotonic() - started < 5

    # Workers that stay: a database with rows once every slot is taken waits, and the log
    # says so once; it is served when a slot is given back.
    def set_idle_timeout(value):
        admin.execute(f"ALTER SYSTEM SET ai_loader.idle_timeout = '{value}'")
        admin.execute("SELECT pg_reload_conf()")
        wait_for(lambda: scalar(admin, "SHOW ai_loader.idle_timeout") == value, what="the setting reloaded")
    wait_for(lambda: worker_count(admin) == 0, timeout=30, what="tenant 7's worker gone")
    set_idle_timeout("1h")
    logged = len(cluster.log())
    for db in tenants[:8]:
        db.execute("INSERT INTO doc VALUES (3, 'T', 'keeps a worker')")
    wait_for(lambda: worker_count(admin) == 8, what="every slot taken")
    tenants[15].execute("INSERT INTO doc VALUES (3, 'T', 'waits for a slot')")
    wait_for(lambda: 'database "tenant_15" has work waiting, but all 8 worker slots' in cluster.log()[logged:],
             what="the wait said in the log")
    assert scalar(tenants[15], "SELECT count(*) FROM doc_embedding_store WHERE id = 3") == 0
    # ai.vectorizer_status says so in each database too.
    assert scalar(tenants[15], "SELECT worker FROM ai.vectorizer_status") == "waiting for a worker slot"
    assert scalar(tenants[0], "SELECT worker FROM ai.vectorizer_status") == "running"
    assert scalar(tenants[12], "SELECT worker FROM ai.vectorizer_status") == "none"
    set_idle_timeout("1s")
    wait_for(lambda: scalar(tenants[15], "SELECT count(*) FROM doc_embedding_store WHERE id = 3") == 1,
             timeout=30, what="tenant 15 served once a slot was given back")
    assert cluster.log()[logged:].count('database "tenant_15" has work waiting') == 1
    admin.close()
    for db in tenants:
        db.close()


@pytest.mark.settings("ai_loader.max_workers = 2", "ai_loader.workers_per_database = 1",
                      "ai_loader.worker_turn = '1s'", "ai_loader.idle_timeout = '1s'")
def test_busy_databases_take_turns_with_the_worker_slots(cluster, embedder):
    """With more busy databases than slots, the waiting ones were served only once a busy
    one had emptied its queue. Now the workers take turns: every database gets rows
    embedded while the others still have theirs queued."""
    one_a_batch = ", processing => ai.processing_default(batch_size => 1)"
    tenants = [tenant(cluster, embedder, f"busy_{i}", one_a_batch) for i in range(3)]
    embedder.delay = 0.1  # 60 rows are 6 s of work for one worker
    for db in tenants:
        db.execute("INSERT INTO doc SELECT g, 'T', 'row ' || g FROM generate_series(1, 60) g")

    def embedded():
        return [scalar(db, "SELECT count(*) FROM doc_embedding_store") for db in tenants]
    wait_for(lambda: all(embedded()), timeout=60, what="every database served")
    assert min(embedded()) < 60 and max(embedded()) < 60, f"one had finished before another began: {embedded()}"
    wait_for(lambda: embedded() == [60, 60, 60], timeout=120, what="every row embedded")
    assert "had its turn (1s) while other databases wait for a worker" in cluster.log()
    embedder.delay = 0
    for db in tenants:
        db.close()


def queue_scans(db, vectorizers):
    """Scans of each vectorizer's queue so far, as the statistics have them."""
    return [scalar(db, "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_all_tables "
                       "WHERE schemaname = 'ai' AND relname = %s", (f"_vectorizer_q_{v}",)) for v in vectorizers]


@pytest.mark.settings("ai_loader.poll_interval = '100ms'", "ai_loader.idle_timeout = '3s'")
def test_an_idle_worker_looks_only_at_the_vectorizers_that_have_work(cluster, embedder):
    """An idle worker claimed from every vectorizer's queue every poll interval: its idle
    cost grew with the vectorizers (a third of a core for 1,000). Now it looks at a
    vectorizer when a commit queues rows for it (or at the slow revisit): over a
    worker's life of rows for one vectorizer and 3 s of idle rounds every 100 ms, the
    eleven others' queues are scanned a few times (its first round, its look at the
    queues before it leaves), not once a round. A worker's statistics are written when
    it exits; the counts are taken between two exits."""
    db = cluster.connect()
    db.execute("CREATE EXTENSION ai_loader")
    vectorizers = []
    for i in range(12):
        db.execute(f"CREATE TABLE doc_{i} (id int PRIMARY KEY, body text NOT NULL)")
        vectorizers.append(create_vectorizer(db, embedder, table=f"doc_{i}", chunking="ai.chunking_none()",
                                             template="$chunk"))
    wait_for(lambda: worker_count(db) == 0, timeout=30, what="the worker gone idle")
    wait_for(lambda: all(queue_scans(db, vectorizers)), what="the worker's statistics written")
    before = queue_scans(db, vectorizers)
    db.execute("INSERT INTO doc_0 SELECT g, 'row ' || g FROM generate_series(1, 10) g")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_0_embedding_store") == 10, what="the rows embedded")
    for n in range(11, 16):
        db.execute("INSERT INTO doc_0 VALUES (%s, 'one more row')", (n,))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_0_embedding_store") == n, what=f"row {n} embedded")
    wait_for(lambda: worker_count(db) == 0, timeout=30, what="the worker gone idle again")
    wait_for(lambda: queue_scans(db, vectorizers)[1] > before[1], what="the worker's statistics written")
    busy, *quiet = [after - b for after, b in zip(queue_scans(db, vectorizers), before)]
    assert max(quiet) <= 4, quiet  # not one a round: ~30 idle rounds went by
    assert busy > max(quiet), (busy, quiet)
    db.close()


@pytest.mark.settings("ai_loader.idle_timeout = '2s'")
def test_rows_queued_without_a_wake_up_are_found(cluster, embedder):
    """A worker looks at a vectorizer when a commit wakes it for it; rows queued without
    one (as a restore queues them: no trigger fires) for a vectorizer it has not been
    woken for are found when the worker looks at the queues before it would leave,
    idle_timeout later, not at the 5-minute revisit."""
    db = tenant(cluster, embedder, "restored")
    db.execute("CREATE TABLE doc2 (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    quiet = create_vectorizer(db, embedder, table="doc2", chunking="ai.chunking_none()", template="$chunk")
    db.execute("INSERT INTO doc VALUES (1, 'T', 'queued by its trigger')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1, what="the first row embedded")
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute("INSERT INTO doc2 VALUES (1, 'T', 'queued as a restore queues it')")
        db.execute(f"INSERT INTO ai._vectorizer_q_{quiet} (id) VALUES (1)")
    assert worker_count(db) == 1
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc2_embedding_store") == 1, timeout=20,
             what="the row queued without a wake-up embedded")
    db.close()
