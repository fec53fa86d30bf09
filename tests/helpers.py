"""Waiting on the worker, with a deadline, and reading what it wrote; clusters and
databases for a test."""

import contextlib
import os
import signal
import subprocess
import time

import psycopg

from cluster import PG_BIN, Cluster


def wait_for(condition, timeout=30.0, interval=0.05, what="condition"):
    """Polls `condition()` until it returns a truthy value; fails at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except psycopg.OperationalError as e:  # a server restarting after a crash
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def scalar(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def worker_pid(conn):
    """The pid of the ai_loader worker of `conn`'s database, or None."""
    return scalar(conn, "SELECT max(pid) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker' "
                        "AND datname = current_database()")


# The signals Postgres handles in a server process.
HANDLED = {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
           signal.SIGALRM}


def threads(pid):
    """The threads of process `pid` other than its main one, by id: their names."""
    tids = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    return {tid: open(f"/proc/{pid}/task/{tid}/comm").read().strip() for tid in tids}


def threads_taking_signals(pid):
    """The threads of process `pid` other than its main one that do not block every signal
    Postgres handles, with the signals they take."""
    taken = {}
    for tid, name in threads(pid).items():
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            mask = int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
        if signals := {s.name for s in HANDLED if not mask >> (s - 1) & 1}:
            taken[f"{tid} ({name})"] = signals
    return taken


def queue_empty(conn, vectorizer_id):
    return scalar(conn, "SELECT ai.vectorizer_queue_pending(%s, exact_count => true)", (vectorizer_id,)) == 0


@contextlib.contextmanager
def database_for(cluster, request):
    """A database of the test's name with ai_loader, dropped when the test ends."""
    name = request.node.name[:60]
    conn = new_database(cluster, name)
    try:
        yield conn
    finally:
        conn.close()
        with cluster.connect() as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextlib.contextmanager
def document_database(cluster, embedder, request, columns=""):
    """`database_for`, with the seed's `document` table (and `columns`, e.g. "size int8,")."""
    embedder.reset()
    with database_for(cluster, request) as conn:
        conn.execute(f"""CREATE TABLE document (id bigserial PRIMARY KEY, title text, uri text NOT NULL UNIQUE,
                                                {columns} updated_at timestamptz DEFAULT now())""")
        yield conn


def create_vectorizer(conn, embedder, table="doc",
                      chunking="ai.chunking_recursive_character_text_splitter(200, 50)",
                      template="$title: $chunk", loading="ai.loading_column('body')", extra=""):
    """A vectorizer of `table` embedding with the OpenAI test server; returns its id."""
    return scalar(conn, f"""
        SELECT ai.create_vectorizer('{table}'::regclass, loading => {loading},
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
            chunking => {chunking},
            formatting => ai.formatting_python_template('{template}') {extra})""", (embedder.openai_url,))


def s3_cluster(s3, embedder, *settings):
    """A cluster with ai_loader preloaded, reading `s3` with the server's own keys."""
    return Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.request_timeout = '3s'",
                    "ai_loader.s3_force_path_style = on", embedder.key_setting, *settings],
                   env=s3.server_env() | {"OPENAI_API_KEY": embedder.api_key})


def new_database(cluster, name):
    with cluster.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    conn = cluster.connect(name)
    conn.execute("CREATE EXTENSION ai_loader")
    return conn


def dump_and_restore(cluster, source, target):
    """pg_dump -Fc of `source`, pg_restore into a new database `target`."""
    dump = os.path.join(cluster.dir, f"{source}.dump")
    subprocess.run([f"{PG_BIN}/pg_dump", "-Fc", "-h", cluster.dir, "-p", str(cluster.port), "-U", "postgres",
                    "-f", dump, source], check=True, capture_output=True, text=True)
    with cluster.connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{target}"')
    restore = subprocess.run([f"{PG_BIN}/pg_restore", "--exit-on-error", "-h", cluster.dir, "-p", str(cluster.port),
                              "-U", "postgres", "-d", target, dump], capture_output=True, text=True)
    assert restore.returncode == 0, restore.stderr[-2000:]
