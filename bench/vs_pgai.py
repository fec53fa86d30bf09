"""Side by side with pgai's vectorizer worker (`--vs-pgai`).

One cluster (ai_loader preloaded) holds two databases: `ai_loader` with the extension,
`pgai` with pgai's catalog (`pgai install`; both use the schema `ai`). One moto S3
server holds the corpus, read through a role both assume (`--pgai-docs` Markdown
documents of `--pgai-size` bytes, `--pgai-pdfs` real PDFs of bench/pdf_corpus.txt), one
test server answers the Ollama API with a prepared 768-dimension vector (its own rate is
measured first). Both get the same vectorizer — `loading_uri` (`parsing_auto`),
`loading_column` (`parsing_none`), or `pdf_uri` (`loading_uri` of the PDFs,
`parsing_pymupdf`, one round), the recursive splitter at 800/400, Ollama, no index;
pgai's in batches of 50 documents, its
best (see `Side.reset`) — and the same rows, inserted in one transaction; a run is
timed from the INSERT's commit until every row's chunks are stored (the INSERT's own
seconds are kept as `insert_s`). pgai's worker (`pgai vectorizer worker --poll-interval
1s`, PyPI, installed into target/bench-tools/pgai-venv with its worker's dependencies
but docling) runs at `-c 1` (its default) and at each `--pgai-concurrency`; ai_loader at
its defaults. Runs alternate, `--pgai-rounds` rounds, medians kept. `--no-pgai` runs
ai_loader's side alone.

The S3 server: moto's GetObject ceiling (16 at once) is measured again before each
`loading_uri` round — its rate drifts by up to a fifth from pass to pass — and each run
is held against its round's. "busy" is the server's CPU-seconds per second of the run
(1.0 at its ceiling). The server shares this machine's cores: after each round its
ceiling is measured again beside as many cores of other work as ai_loader's run had
beside it (its worker, Postgres, the embedder, this bench), and its trace tells how many
GETs it had in hand during the run and for what share of the time it had none.

CPU-seconds: pgai's Python process plus the Postgres sessions it opens; ai_loader's
worker and helper processes (they write in-process) with the parser programs they ran.
Memory: the peak, sampled every 50 ms, of the processes' RssAnon + RssFile together
(shared buffers and the short-lived parser programs not counted).
Latency: single-row inserts into the idle system, INSERT → chunks visible.
"""

import http.client
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cluster import Cluster
from cpu import TICKS, cpu_seconds
from embedder import Embedder
from pdfs import corpus as pdf_corpus
from s3server import BUCKET, ROLE_ARN, S3Server
from stats import percentile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGAI_VENV = os.path.join(ROOT, "target", "bench-tools", "pgai-venv")
# pgai and the requirements of its `vectorizer-worker` extra, docling (and with it torch)
# left out: the runs here parse nothing.
PGAI_PACKAGES = [
    "pgai==0.12.1", "boto3>=1.35.0,<2.0", "boto3-stubs[s3,sts]>=1.37.30", "exceptiongroup>=1.0,<2.0", "filetype==1.2.0", "ijson>=3.3.0",
    "langchain-text-splitters>=0.2,<1.0", "litellm>=1.65.0,<1.73.0", "mistral-common>=1.0,<2.0",
    "ollama>=0.4.5,<0.6.0", "openai>=1.44,<2.0", "pgvector>=0.3,<1.0", "pymupdf4llm==0.0.24",
    "smart-open[s3]==7.1.0", "tiktoken>=0.7,<1.0", "voyageai>=0.3.1,<0.3.2",
    "google-cloud-aiplatform[tokenization]>=1.78.0,<2.0",
]
DIMENSIONS = 768


# Each workload's loading and parsing, the same SQL for both systems.
WORKLOADS = {
    "loading_uri": (f"ai.loading_uri('uri', aws_role_arn => '{ROLE_ARN}')", "ai.parsing_auto()"),
    "loading_column": ("ai.loading_column('body')", "ai.parsing_none()"),
    "pdf_uri": (f"ai.loading_uri('uri', aws_role_arn => '{ROLE_ARN}')", "ai.parsing_pymupdf()"),
}


def pgai_command(say):
    """pgai's command, installed on first use."""
    pgai = os.path.join(PGAI_VENV, "bin", "pgai")
    stamp = os.path.join(PGAI_VENV, ".packages")
    want = "\n".join(PGAI_PACKAGES)
    if not os.path.exists(stamp) or open(stamp).read() != want:
        say(f"-- installing pgai's worker into {PGAI_VENV} (once)")
        subprocess.run([sys.executable, "-m", "venv", PGAI_VENV], check=True)
        subprocess.run([os.path.join(PGAI_VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                        *PGAI_PACKAGES], check=True)
        with open(stamp, "w") as f:
            f.write(want)
    return pgai


def proc_stat(pid):
    """(CPU-seconds, its own and its waited-for children's, and RssAnon + RssFile MiB)
    of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        return cpu_seconds(pid, children=True), sum(int(status.get(k, "0 kB").split()[0]) for k in ("RssAnon", "RssFile")) / 1024
    except (OSError, ValueError):
        return None


class Sampler(threading.Thread):
    """Every 50 ms: the CPU of each process `pids()` names (from the first time it is
    seen) and the peak of their memory together."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.first, self.last, self.peak_mib = pids, {}, {}, 0.0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            total = 0.0
            for pid in self.pids():
                stat = proc_stat(pid)
                if stat:
                    self.first.setdefault(pid, stat[0])
                    self.last[pid] = stat[0]
                    total += stat[1]
            self.peak_mib = max(self.peak_mib, total)
            self.stopped.wait(0.05)

    def stop(self):
        self.stopped.set()
        self.join()
        return sum(self.last[p] - self.first[p] for p in self.last), self.peak_mib


def embedder_rate(embedder, inputs=50, requests=200, clients=4):
    """The test server's own vectors/s: `clients` connections at once, each sending the
    worker's request size and reading the answer's bytes (not decoding them)."""
    body = json.dumps({"model": "nomic-embed-text", "input": ["chunk text " * 80] * inputs}).encode()

    def client(_):
        connection = http.client.HTTPConnection("127.0.0.1", embedder.port)
        for _ in range(requests // clients):
            connection.request("POST", "/api/embed", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            assert answer.status == 200 and len(answer.read()) > inputs * DIMENSIONS
        connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return inputs * (requests // clients) * clients / (time.monotonic() - started)


class Side:
    """One system's database: its vectorizer, its rows, its worker's processes."""

    def __init__(self, name, cluster, embedder, concurrency=None, pgai=None):
        self.name, self.cluster, self.embedder, self.concurrency, self.pgai = name, cluster, embedder, concurrency, pgai
        self.dbname = "pgai" if pgai else "ai_loader"
        self.conn = cluster.connect(self.dbname)
        self.watch = cluster.connect("postgres")
        self.worker = None
        self.worker_log = tempfile.TemporaryFile() if pgai else None

    def log_tail(self):
        if not self.worker_log:
            return ""
        self.worker_log.seek(0)
        return self.worker_log.read().decode(errors="replace")[-3000:]

    def pgai_sessions(self):
        """The Postgres sessions pgai's worker has open."""
        return [p for (p,) in self.watch.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'pgai' AND backend_type = 'client backend' "
            "AND application_name <> 'bench'")]

    def pids(self):
        if self.pgai:
            return [self.worker.pid, *self.pgai_sessions()]
        return [p for (p,) in self.watch.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'ai_loader' AND backend_type LIKE 'ai_loader %'")]

    def reset(self, workload):
        """A fresh table and vectorizer, each system at its best for the workload: for
        Markdown from S3 both parse with `parsing_auto` (pgai's reads Markdown as it is,
        as ai_loader's does: the same chunk texts), for PDFs with `parsing_pymupdf`
        (pgai's PDF parser; ai_loader reads it as `parsing_auto`), and pgai's worker takes
        batches of 50 documents (`processing_default(batch_size => 50)`, its `-c` the
        concurrency); ai_loader at its defaults."""
        loading, parsing = WORKLOADS[workload]
        processing = ", processing => ai.processing_default(batch_size => 50)" if self.pgai else ""
        self.conn.execute("SELECT ai.drop_vectorizer(id, drop_all => true) FROM ai.vectorizer")
        self.conn.execute("DROP TABLE IF EXISTS document CASCADE")
        self.conn.execute("CREATE TABLE document (id bigserial PRIMARY KEY, uri text NOT NULL, body text NOT NULL)")
        self.vid = self.conn.execute(f"""SELECT ai.create_vectorizer('document'::regclass,
            loading => {loading}, parsing => {parsing},
            embedding => ai.embedding_ollama('nomic-embed-text', {DIMENSIONS}, base_url => '{self.embedder.ollama_url}'),
            chunking => ai.chunking_recursive_character_text_splitter(800, 400),
            indexing => ai.indexing_none() {processing})""").fetchone()[0]

    def start_worker(self, env):
        if not self.pgai:
            return
        self.worker = subprocess.Popen(
            [self.pgai, "vectorizer", "worker", "-d", self.cluster_url(), "--poll-interval", "1s",
             "-c", str(self.concurrency), "--log-level", "warn"],
            env=dict(os.environ, AWS_DEFAULT_REGION=env["AWS_REGION"], **env), stdout=subprocess.DEVNULL, stderr=self.worker_log)
        deadline = time.monotonic() + 60
        while not self.pgai_sessions():
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: pgai's worker did not start: {self.log_tail()}")
            time.sleep(0.05)

    def stop_worker(self):
        if self.worker:
            self.worker.terminate()
            self.worker.wait(timeout=30)
            self.worker = None

    def cluster_url(self):
        return f"postgresql://postgres@127.0.0.1:{self.cluster.port}/pgai?application_name=pgai-worker"

    def embedded(self):
        return self.conn.execute("SELECT count(DISTINCT id) FROM document_embedding_store").fetchone()[0]

    def done(self):
        """Documents the worker has counted as done (both record them per vectorizer in
        ai.vectorizer_worker_progress): a PDF without text is done with no chunk."""
        return self.conn.execute("SELECT coalesce(sum(success_count + error_count), 0) "
                                 "FROM ai.vectorizer_worker_progress WHERE vectorizer_id = %s",
                                 (self.vid,)).fetchone()[0]

    def drain(self, n, timeout):
        """Polls the queue — small, cheap to count — every 10 ms, the progress only once
        the queue is empty: the polling takes little of the CPU the run is measured on."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.conn.execute("SELECT ai.vectorizer_queue_pending(%s, exact_count => true)",
                                     (self.vid,)).fetchone()[0] and self.done() >= n:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {self.name}: {n - self.done()} documents not done after {timeout}s"
                                 f" {self.log_tail()}")
            time.sleep(0.01)


def idle_seconds():
    """The machine's idle CPU-seconds so far, all cores."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[4]) / TICKS


def one_run(side, workload, rows, env, timeout, s3):
    """One run, timed from the INSERT's commit (the rows exist from then on; the INSERT's
    own seconds are kept apart) until every row's chunks are stored."""
    side.reset(workload)
    side.start_worker(env)
    try:
        sampler = Sampler(side.pids)
        sampler.start()
        try:
            began = time.monotonic()
            s3.trace()
            with side.conn.cursor() as cur:
                with side.conn.transaction():
                    cur.executemany("INSERT INTO document (uri, body) VALUES (%s, %s)", rows)
            started = time.monotonic()
            idle, s3_cpu = idle_seconds(), proc_stat(s3.process.pid)[0]
            side.drain(len(rows), timeout)
            ended = time.monotonic()
            idle, s3_cpu = idle_seconds() - idle, proc_stat(s3.process.pid)[0] - s3_cpu
            gets = [(b, e) for b, e, method in s3.trace() if method == "GET"]
        finally:
            cpu, peak = sampler.stop()
        chunks = side.conn.execute("SELECT count(*) FROM document_embedding_store").fetchone()[0]
    finally:
        side.stop_worker()
    seconds = ended - started
    return {"run": "vs-pgai", "system": side.name, "workload": workload, "docs": len(rows), "chunks": chunks,
            "insert_s": round(started - began, 2), "seconds": round(seconds, 2),
            "docs_per_s": round(len(rows) / seconds, 1), "chunks_per_s": round(chunks / seconds, 1),
            "cpu_s": round(cpu, 2), "peak_mib": round(peak, 1),
            "s3_server_cpu_s": round(s3_cpu, 2), "s3_server_busy": round(s3_cpu / seconds, 2),
            "machine_idle": round(idle / seconds / os.cpu_count(), 2), **in_server(gets, started, ended)}


def in_server(gets, started, ended):
    """From the S3 server's trace of a run: how many GetObject requests it had in hand
    on average, and for what share of the time between the first GET's start and the
    last one's end it had none — time the server waited on the loader."""
    if not gets:
        return {}
    edges = sorted([(b, 1) for b, _ in gets] + [(e, -1) for _, e in gets])
    held, last, area, none = 0, edges[0][0], 0.0, 0.0
    for at, step in edges:
        area += held * (at - last)
        none += (at - last) if held == 0 else 0.0
        held, last = held + step, at
    return {"s3_gets_in_server": round(area / (ended - started), 1),
            "s3_server_without_a_get": round(none / (edges[-1][0] - edges[0][0]), 3)}


def latencies(side, rows, env):
    """Single-row inserts, INSERT → chunks visible, on the idle system."""
    side.reset("loading_uri")
    side.start_worker(env)
    out = []
    try:
        for uri, body in rows:
            time.sleep(0.1)
            started = time.monotonic()
            (row_id,) = side.conn.execute("INSERT INTO document (uri, body) VALUES (%s, %s) RETURNING id",
                                          (uri, body)).fetchone()
            while not side.conn.execute("SELECT EXISTS (SELECT 1 FROM document_embedding_store WHERE id = %s)",
                                        (row_id,)).fetchone()[0]:
                if time.monotonic() - started > 60:
                    raise SystemExit(f"bench: {side.name}: row {row_id} not embedded after 60 s")
                time.sleep(0.002)
            out.append(time.monotonic() - started)
    finally:
        side.stop_worker()
    return out


def burn(share, stop):
    """Keeps `share` of a core busy, in 1 ms bursts, until `stop` is set."""
    while not stop.is_set():
        until = time.perf_counter() + 0.001
        while time.perf_counter() < until:
            pass
        time.sleep(0.001 * (1 - share) / share)


def ceiling_beside(s3_ceiling, s3, uris, load=0.0):
    """moto's GetObject ceiling (16 at once) and the ceiling client's CPU, in cores. With
    `load`, it is measured while that many cores of other work run beside the server,
    spread over as many processes as there are cores: on a machine the server shares,
    its rate falls with the work beside it, whoever does that work."""
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=burn, args=(load / os.cpu_count(), stop), daemon=True)
               for _ in range(os.cpu_count() if load > 0.01 else 0)]
    for b in burners:
        b.start()
    try:
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
        ceiling = s3_ceiling(s3, ROLE_ARN, uris, 16)["per_second"]
        after, seconds = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - started
    finally:
        stop.set()
        for b in burners:
            b.join()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return ceiling, cpu / seconds


def run_vs_pgai(args, say, text_document, upload, s3_ceiling, rng):
    pgai = None if args.no_pgai else pgai_command(say)
    s3, embedder, cluster = S3Server(traced=True), Embedder(dimensions=DIMENSIONS, fixed=True, dense=True), None
    try:
        documents = {f"vs/{i}.md": text_document(rng, args.pgai_size) for i in range(args.pgai_docs)}
        say(f"-- vs pgai: uploading {len(documents)} Markdown documents of {args.pgai_size} bytes to moto")
        upload(s3, documents)
        rows = [(f"s3://{BUCKET}/{k}", v.decode()) for k, v in documents.items()]
        uris = [u for u, _ in rows]
        workloads = {"loading_uri": rows, "loading_column": rows}
        if args.pgai_pdfs:
            pdfs = {f"vs-pdf/{i}.pdf": open(p, "rb").read() for i, p in enumerate(pdf_corpus(args.pgai_pdfs))}
            say(f"-- vs pgai: uploading {len(pdfs)} real PDFs ({sum(map(len, pdfs.values())) >> 20} MiB) to moto")
            upload(s3, pdfs)
            workloads["pdf_uri"] = [(f"s3://{BUCKET}/{k}", "") for k in pdfs]
        vectors = embedder_rate(embedder)
        say(f"   the test embedder alone {vectors:.0f} vectors/s")
        env = s3.server_env()
        cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.s3_force_path_style = on"], env=env)
        with cluster.connect() as admin:
            for db in ("ai_loader", "pgai"):
                admin.execute(f"CREATE DATABASE {db}")
        with cluster.connect("ai_loader") as c:
            c.execute("CREATE EXTENSION vector")
            c.execute("CREATE EXTENSION ai_loader")
        with cluster.connect("pgai") as c:
            c.execute("CREATE EXTENSION vector")
        sides = [Side("ai_loader", cluster, embedder)]
        if pgai:
            url = f"postgresql://postgres@127.0.0.1:{cluster.port}/pgai"
            subprocess.run([pgai, "install", "-d", url], check=True, capture_output=True)
            sides += [Side(f"pgai -c {c}", cluster, embedder, concurrency=c, pgai=pgai)
                      for c in [1, *args.pgai_concurrency]]
        for side in sides:
            side.conn.execute("SET application_name = 'bench'")
        results = [{"run": "vs-pgai-setup", "docs": len(rows), "embedder_vectors_per_s": round(vectors)}]
        for workload, rows in workloads.items():
            # Parsing real PDFs is CPU-bound and steady: one round of it.
            for r in range(1 if workload == "pdf_uri" else args.pgai_rounds):
                if workload == "loading_uri":
                    # moto's own rate drifts by a fifth from pass to pass: each round's
                    # runs are held against the ceiling measured just before them.
                    ceiling, client = ceiling_beside(s3_ceiling, s3, uris)
                    say(f"   moto's GetObject ceiling {ceiling:.1f}/s")
                for side in sides if r % 2 == 0 else reversed(sides):
                    say(f"   {workload}, round {r + 1}: {side.name}")
                    result = one_run(side, workload, rows, env, args.timeout, s3)
                    if workload == "loading_uri":
                        result["s3_ceiling_gets_per_s"] = round(ceiling, 1)
                        result["fraction_of_s3_ceiling"] = round(result["docs_per_s"] / ceiling, 2)
                    results.append(result)
                if workload == "loading_uri":
                    mine = next(x for x in reversed(results) if x.get("system") == "ai_loader")
                    # The work beside the S3 server in ai_loader's run — its worker,
                    # Postgres, the embedder, this bench — less the ceiling client's own.
                    load = max(0.0, os.cpu_count() * (1 - mine["machine_idle"]) - mine["s3_server_busy"] - client)
                    beside, _ = ceiling_beside(s3_ceiling, s3, uris, load)
                    say(f"   moto's ceiling beside {load:.2f} cores of other work {beside:.1f}/s")
                    mine.update(other_load_cores=round(load, 2), s3_ceiling_beside_load=round(beside, 1),
                                fraction_of_ceiling_beside_load=round(mine["docs_per_s"] / beside, 2))
        samples = workloads["loading_uri"][:args.pgai_latency]
        for side in sides:
            if samples:
                got = latencies(side, samples, env)
                results.append({"run": "vs-pgai-latency", "system": side.name, "samples": len(got),
                                "p50_ms": round(percentile(got, 50) * 1000, 1),
                                "p95_ms": round(percentile(got, 95) * 1000, 1)})
        return results
    except SystemExit:
        if cluster:
            say("the server's log, its end:\n" + cluster.log()[-4000:])
        raise
    finally:
        if cluster:
            cluster.stop()
        s3.stop()
        embedder.stop()


def vs_pgai_table(results, say):
    setup = [r for r in results if r["run"] == "vs-pgai-setup"]
    runs = [r for r in results if r["run"] == "vs-pgai"]
    if not setup or not runs:
        return
    ceilings = sorted(r["s3_ceiling_gets_per_s"] for r in runs if "s3_ceiling_gets_per_s" in r)
    say(f"\n side by side with pgai, {setup[0]['docs']} Markdown documents (pdf_uri: real PDFs), medians (moto GetObject ceiling"
        f" {ceilings[0]}–{ceilings[-1]}/s, measured before each loading_uri round;"
        f" test embedder {setup[0]['embedder_vectors_per_s']} vectors/s)")
    say(" workload        system        docs/s  chunks/s  CPU-s  CPU-s/1000 docs  peak MiB  of S3 ceiling"
        "  S3 server CPU-s (busy)  machine idle")
    for workload in WORKLOADS:
        for system in dict.fromkeys(r["system"] for r in runs):
            mine = [r for r in runs if r["workload"] == workload and r["system"] == system]
            if not mine:
                continue
            med = {k: statistics.median(r[k] for r in mine)
                   for k in ("docs_per_s", "chunks_per_s", "cpu_s", "peak_mib", "s3_server_cpu_s", "s3_server_busy",
                             "machine_idle")}
            of = (f"{statistics.median(r['fraction_of_s3_ceiling'] for r in mine):.2f}"
                  if workload == "loading_uri" else "-")
            per_thousand = med["cpu_s"] / mine[0]["docs"] * 1000
            say(f" {workload:15} {system:11} {med['docs_per_s']:8.1f} {med['chunks_per_s']:9.1f}"
                f" {med['cpu_s']:6.1f} {per_thousand:16.1f} {med['peak_mib']:9.0f}  {of:>13}"
                f"  {med['s3_server_cpu_s']:15.1f}"
                f" ({med['s3_server_busy']:.2f})  {med['machine_idle']:12.2f}")
    say("\n loading_uri against the S3 server, medians: its ceiling on the idle machine, its ceiling beside"
        "\n as many cores of other work as ai_loader's run had beside it, and from its trace the GETs it had"
        "\n in hand and the share of the time it had none")
    say(" system        of ceiling  of ceiling beside (cores)  GETs in server  without a GET")
    for system in dict.fromkeys(r["system"] for r in runs):
        mine = [r for r in runs if r["workload"] == "loading_uri" and r["system"] == system]
        if not mine:
            continue
        def med(key, spec):
            values = [r[key] for r in mine if key in r]
            return format(statistics.median(values), spec) if values else "-"

        beside = f"{med('fraction_of_ceiling_beside_load', '.2f')} ({med('other_load_cores', '.2f')})"
        say(f" {system:11} {med('fraction_of_s3_ceiling', '.2f'):>12}  {beside:>25}"
            f"  {med('s3_gets_in_server', '.1f'):>14}  {med('s3_server_without_a_get', '.3f'):>13}")
    for r in results:
        if r["run"] == "vs-pgai-latency":
            say(f" insert→visible ({r['system']}, {r['samples']} single rows): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
