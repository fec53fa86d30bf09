"""Many databases and many vectorizers: what a row waits when its database's worker
must start first; what a single row waits while another vectorizer of its database, or
another database, backfills (`--tenants-backfill` rows behind a provider that answers
in 0.2 s); and what an idle worker and an idle cluster cost — the processes' CPU read
from /proc over a quiet period, as a fraction of one core.
"""

import time

from cluster import Cluster
from cpu import cpu_seconds
from embedder import Embedder
from helpers import create_vectorizer, scalar, wait_for, worker_pid
from stats import percentile


def _doc_table(conn):
    conn.execute("CREATE TABLE IF NOT EXISTS doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")


def _processes(conn):
    """The pids of every ai_loader process (launcher, workers, helpers)."""
    return [pid for (pid,) in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'ai_loader %'").fetchall()]


def _cpu_share(pids, seconds):
    """The CPU the processes used over `seconds`, as a fraction of one core."""
    before = {p: cpu_seconds(p) for p in pids}
    time.sleep(seconds)
    return sum(cpu_seconds(p) - t for p, t in before.items()) / seconds


def _timed_insert(conn, row_id):
    started = time.monotonic()
    conn.execute("INSERT INTO doc VALUES (%s, 'T', 'row')", (row_id,))
    wait_for(lambda: scalar(conn, "SELECT count(*) FROM doc_embedding_store WHERE id = %s", (row_id,)) == 1,
             interval=0.002, timeout=30)
    return (time.monotonic() - started) * 1000



def _beside_backfill(backfill, single, embedder, rows, samples, say, what, first_id):
    """Single rows into `single`'s doc while `backfill`'s doc2 holds `rows` queued
    behind a provider answering in 0.2 s: insert→visible of each, while it lasts."""
    embedder.delay = 0.2
    try:
        backfill.execute("INSERT INTO doc2 SELECT g, 'T', 'backfill ' || g FROM generate_series(1, %s) g", (rows,))
        waits = []
        for i in range(1, samples + 1):
            waits.append(_timed_insert(single, first_id + i))
        left = scalar(backfill, "SELECT count(*) FROM ai._vectorizer_q_2")
    finally:
        embedder.delay = 0
    say(f"-- a single row while {what} backfills {rows} rows ({left} still queued after): p50 "
        f"{percentile(waits, 50):.0f} ms, p99 {percentile(waits, 99):.0f} ms, max {max(waits):.0f} ms")
    return {"run": "fairness", "beside": what, "backfill_rows": rows, "samples": len(waits),
            "still_queued_after": left, "p50_ms": round(percentile(waits, 50), 1),
            "p99_ms": round(percentile(waits, 99), 1), "max_ms": round(max(waits), 1)}


def run_tenants(args, say):
    embedder = Embedder(fixed=True)
    results = []
    base = ["shared_preload_libraries = 'ai_loader'", embedder.key_setting]
    env = {"OPENAI_API_KEY": embedder.api_key}

    # A row whose database has no worker: the commit starts one.
    cluster = Cluster(base + ["ai_loader.idle_timeout = '1s'"], env=env)
    try:
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION ai_loader")
        _doc_table(conn)
        create_vectorizer(conn, embedder, chunking="ai.chunking_none()", template="$chunk")
        cold, warm = [], []
        for i in range(1, args.tenants_samples + 1):
            wait_for(lambda: worker_pid(conn) is None, timeout=30, what="the worker gone")
            cold.append(_timed_insert(conn, i))
            warm.append(_timed_insert(conn, 100_000 + i))
        cold.sort()
        warm.sort()
        say(f"-- insert→visible, {len(cold)} rows each: worker must start p50 {cold[len(cold) // 2]:.1f} ms "
            f"(max {cold[-1]:.1f}); worker running p50 {warm[len(warm) // 2]:.1f} ms (max {warm[-1]:.1f})")
        results.append({"run": "cold-start", "samples": len(cold), "cold_p50_ms": round(cold[len(cold) // 2], 1),
                        "cold_max_ms": round(cold[-1], 1), "warm_p50_ms": round(warm[len(warm) // 2], 1),
                        "warm_max_ms": round(warm[-1], 1)})
        conn.close()
    finally:
        cluster.stop()

    # Fairness: single rows while another vectorizer of the database, then another
    # database, backfills.
    cluster = Cluster(base, env=env)
    try:
        admin = cluster.connect()
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION ai_loader")
        _doc_table(conn)
        create_vectorizer(conn, embedder, chunking="ai.chunking_none()", template="$chunk")
        conn.execute("CREATE TABLE doc2 (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
        create_vectorizer(conn, embedder, table="doc2", chunking="ai.chunking_none()", template="$chunk")
        results.append(_beside_backfill(conn, conn, embedder, args.tenants_backfill, args.tenants_samples, say,
                                        "another vectorizer of its database", 200_000))
        admin.execute('CREATE DATABASE "other"')
        other = cluster.connect("other")
        other.execute("CREATE EXTENSION ai_loader")
        _doc_table(other)
        create_vectorizer(other, embedder, chunking="ai.chunking_none()", template="$chunk")
        other.execute("CREATE TABLE doc2 (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
        create_vectorizer(other, embedder, table="doc2", chunking="ai.chunking_none()", template="$chunk")
        conn.execute("DELETE FROM ai._vectorizer_q_2")
        results.append(_beside_backfill(other, conn, embedder, args.tenants_backfill, args.tenants_samples, say,
                                        "another database", 300_000))
        other.execute("DELETE FROM ai._vectorizer_q_2")
        for c in (conn, other, admin):
            c.close()
    finally:
        cluster.stop()

    # An idle worker that stays (idle_timeout = 0), serving many vectorizers.
    cluster = Cluster(base + ["ai_loader.idle_timeout = 0"], env=env)
    try:
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION ai_loader")
        for i in range(args.tenants_vectorizers):
            conn.execute(f"CREATE TABLE doc_{i} (id int PRIMARY KEY, body text NOT NULL)")
            create_vectorizer(conn, embedder, table=f"doc_{i}", chunking="ai.chunking_none()", template="$chunk")
        wait_for(lambda: worker_pid(conn) is not None, what="the worker")
        time.sleep(2)  # the worker's first rounds over
        share = _cpu_share([worker_pid(conn)], args.tenants_seconds)
        say(f"-- an idle worker with {args.tenants_vectorizers} vectorizers: {share * 100:.1f} % of a core")
        results.append({"run": "idle-worker", "vectorizers": args.tenants_vectorizers,
                        "core_fraction": round(share, 4)})
        conn.close()
    finally:
        cluster.stop()

    # An idle cluster of many databases (the default idle_timeout: workers leave).
    cluster = Cluster(base, env=env)
    try:
        admin = cluster.connect()
        for i in range(args.tenants_databases):
            admin.execute(f'CREATE DATABASE "tenant_{i}"')
            with cluster.connect(f"tenant_{i}") as conn:
                conn.execute("CREATE EXTENSION ai_loader")
                _doc_table(conn)
                create_vectorizer(conn, embedder, chunking="ai.chunking_none()", template="$chunk")
        wait_for(lambda: scalar(admin, "SELECT count(*) FROM pg_stat_activity "
                                       "WHERE backend_type = 'ai_loader worker'") == 0,
                 timeout=120, what="every worker gone idle")
        share = _cpu_share(_processes(admin), args.tenants_seconds)
        say(f"-- an idle cluster of {args.tenants_databases} databases: {share * 100:.2f} % of a core "
            "(the launcher; every worker left)")
        results.append({"run": "idle-cluster", "databases": args.tenants_databases,
                        "core_fraction": round(share, 4)})
        admin.close()
    finally:
        cluster.stop()
        embedder.stop()
    return results
