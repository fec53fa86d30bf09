"""CPU per chunk: the worker's CPU-seconds per 1,000 chunks stored, at each of
`--cpu-dims` dimensions. Documents come from a column (`loading_column`, no S3) and
every chunk embeds through the OpenAI-compatible test server answering one prepared
dense vector (every component set, OpenAI's digits), so what is measured is the
worker's own work: claiming, chunking, reading the provider's answer, writing the
vectors. The CPU is the worker process's (all its threads: the writes run in it),
read from /proc before and after each round; rounds alternate the dimensions and the
median is kept. With `--cpu-profile`, `perf record` samples the worker during one more
round at each dimension and the top of its profile is printed.
"""

import os
import signal
import statistics
import subprocess
import tempfile
import time

from cluster import Cluster
from embedder import Embedder
from helpers import wait_for, worker_pid

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, children=False):
    """User + system CPU-seconds of a process, all its threads; with `children`, also
    those of the children it has waited for (a worker's parser programs)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if children else 13]) / TICKS


def profile_top(data, say, lines=25):
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
                          "--percent-limit", "0.8"], capture_output=True, text=True)
    rows = [line for line in out.stdout.splitlines() if line.strip() and not line.startswith("#")]
    for line in rows[:lines]:
        say("   " + line.strip())
    return rows[:lines]


class Setup:
    """A cluster (with `settings`) and a test embedder answering after `delay` seconds,
    a vectorizer of `dims` dimensions."""

    def __init__(self, dims, args, settings=(), delay=0.0):
        self.dims = dims
        self.embedder = Embedder(dimensions=dims, fixed=True, dense=True)
        self.embedder.delay = delay
        self.cluster = Cluster(["shared_preload_libraries = 'ai_loader'", self.embedder.key_setting, *settings],
                               env={"OPENAI_API_KEY": self.embedder.api_key})
        self.conn = self.cluster.connect()
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self.conn.execute("CREATE EXTENSION ai_loader")
        self.conn.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        batch = f"batch_size => {args.batch_size}" if args.batch_size else ""
        self.conn.execute(f"""SELECT ai.create_vectorizer('doc'::regclass,
            loading => ai.loading_column('body'),
            embedding => ai.embedding_openai('text-embedding-3-small', {dims}, base_url => '{self.embedder.openai_url}'),
            indexing => ai.indexing_none(), processing => ai.processing_default({batch}))""")
        self.pid = wait_for(lambda: worker_pid(self.conn), what="the database's ai_loader worker")
        self.next_id = 0

    def round(self, documents, timeout, profile=None):
        """Inserts the documents, waits until their chunks are stored; returns
        (seconds, chunks, the worker's CPU-seconds: not its helpers')."""
        self.conn.execute("TRUNCATE doc_embedding_store")
        first = self.next_id
        self.next_id += len(documents)
        perf = None
        if profile:
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(self.pid), "-o", profile],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # perf attaches
        cpu0, started = cpu_seconds(self.pid), time.monotonic()
        with self.conn.transaction():
            with self.conn.cursor() as cur:
                cur.executemany("INSERT INTO doc (id, body) VALUES (%s, %s)",
                                [(first + i, d) for i, d in enumerate(documents)])
        deadline = started + timeout
        while self.conn.execute("SELECT ai.vectorizer_queue_pending(1, exact_count => true)").fetchone()[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: documents still queued after {timeout}s")
            time.sleep(0.02)
        seconds, cpu = time.monotonic() - started, cpu_seconds(self.pid) - cpu0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        chunks, failed, norm_ok = self.conn.execute(
            """SELECT (SELECT count(*) FROM doc_embedding_store),
                      (SELECT count(*) FROM ai._vectorizer_q_failed_1),
                      (SELECT bool_and(abs(vector_norm(embedding) - 1) < 1e-4 AND vector_dims(embedding) = %s)
                         FROM doc_embedding_store)""", (self.dims,)).fetchone()
        if failed or not norm_ok or chunks == 0:
            raise SystemExit(f"bench: {failed} documents failed, or vectors not of {self.dims} unit components")
        return seconds, chunks, cpu

    def stop(self):
        self.cluster.stop()
        self.embedder.stop()


def run_cpu(args, say, text_document, rng):
    documents = [text_document(rng, args.size).decode() for _ in range(args.cpu_docs)]
    setups = []
    results = []
    try:
        for dims in args.cpu_dims:
            # One process: the CPU measured is all of the work.
            setups.append(Setup(dims, args, settings=["ai_loader.workers_per_database = 1"]))
        rounds = {s.dims: [] for s in setups}
        for r in range(args.cpu_rounds):
            for s in setups:
                seconds, chunks, cpu = s.round(documents, args.timeout)
                rounds[s.dims].append((seconds, chunks, cpu))
                say(f"-- CPU per chunk, {s.dims} dimensions, round {r + 1}: {chunks} chunks in {seconds:.2f} s,"
                    f" worker {cpu:.2f} CPU-s = {cpu / chunks * 1000:.3f} CPU-s per 1,000 chunks")
        for s in setups:
            per_k = [cpu / chunks * 1000 for _, chunks, cpu in rounds[s.dims]]
            median = statistics.median(per_k)
            seconds = statistics.median(x[0] for x in rounds[s.dims])
            chunks = rounds[s.dims][0][1]
            result = {"run": "cpu-per-chunk", "dims": s.dims, "docs": len(documents), "chunks": chunks,
                      "rounds": len(per_k), "cpu_s_per_1000_chunks": round(median, 3),
                      "seconds": round(seconds, 2), "chunks_per_s": round(chunks / seconds, 1),
                      "docs_per_s": round(len(documents) / seconds, 1)}
            if args.cpu_profile:
                with tempfile.TemporaryDirectory() as tmp:
                    data = os.path.join(tmp, "perf.data")
                    s.round(documents, args.timeout, profile=data)
                    say(f"-- profile of the worker, {s.dims} dimensions (perf, top symbols):")
                    result["profile_top"] = profile_top(data, say)
            results.append(result)
        return results
    finally:
        for s in setups:
            s.stop()


def run_scaling(args, say, text_document, rng):
    """Documents/s with 1, 2, 4… workers per database (`--scaling-workers`), with an
    instant embedder and one answering each request after `--scaling-latency` ms."""
    documents = [text_document(rng, args.size).decode() for _ in range(args.scaling_docs)]
    results = []
    for latency in args.scaling_latency:
        for workers in args.scaling_workers:
            s = Setup(768, args, settings=[f"ai_loader.workers_per_database = {workers}"], delay=latency / 1000)
            try:
                rounds = [s.round(documents, args.timeout) for _ in range(args.cpu_rounds)]
            finally:
                s.stop()
            seconds = statistics.median(r[0] for r in rounds)
            result = {"run": "scaling", "workers_per_database": workers, "latency_ms": latency,
                      "docs": len(documents), "chunks": rounds[0][1], "rounds": len(rounds),
                      "seconds": round(seconds, 2), "docs_per_s": round(len(documents) / seconds, 1),
                      "chunks_per_s": round(rounds[0][1] / seconds, 1)}
            say(f"-- {workers} worker(s) per database, embedder latency {latency} ms:"
                f" {result['docs_per_s']} docs/s, {result['chunks_per_s']} chunks/s")
            results.append(result)
    return results
