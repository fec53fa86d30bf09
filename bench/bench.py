"""`make bench`: how fast ai_loader's worker moves documents from S3 into the store.

For each S3 server (moto with IAM enforced, and s3s-fs, a Rust server), it uploads
`--docs` documents, measures the server's own GetObject ceiling from a Rust client
(the worker's loader, no Postgres), then starts a throwaway cluster with ai_loader
preloaded at default settings, inserts one row per document and times the worker until
the queue is empty: documents/s, chunks/s, the worker's peak memory and its S3 and STS
calls. Then, on the idle system, it times single-row inserts until their embeddings are
visible (p50/p95/p99). Embedders: `zero` (the OpenAI-compatible test server answering
a fixed vector at once, so the pipeline itself is measured) and `local` (the in-process
model, compared with its raw rate outside Postgres on the same chunks).

Then the S3 sync (bench/sync.py): a reconcile of `--sync-objects` objects against the
worker's listing code alone (the ceiling), a reconcile of the unchanged bucket, and
upload → row and upload → searchable chunks through the bucket's events on SQS.

Then Amazon Bedrock (bench/titan.py): Titan, one text a request, through a test server
answering after a fixed latency, against the ceiling of concurrency ÷ latency.

Then CPU per chunk (bench/cpu.py): the worker's CPU-seconds per 1,000 chunks at
384, 768 and 1,536 dimensions, documents from a column and a test embedder answering
a prepared dense vector (`--cpu-profile` adds the top of a `perf` profile). Then the
scaling with `ai_loader.workers_per_database` (1, 2, 4): documents/s, with an instant
embedder and one taking 100 ms a request.

Then search latency (bench/search.py): `ai.search` in each mode over a store of
`--search-chunks` chunks, without and with its indexes, against the same query in plain
SQL.

Then real PDFs (bench/pdfs.py): ai_loader's PDF engine beside PyMuPDF and PDFium on
the same ~770 manuals and papers from Debian's documentation packages: CPU-seconds,
failures, and how alike their texts are.

With `--vs-pgai`, alone: ai_loader and pgai's vectorizer worker side by side
(bench/vs_pgai.py) on the same documents, S3 server and embedding server.

Every run prints one JSON line; a table follows. Examples:
    bench.py                                  # the default suite
    bench.py --docs 10000 --s3 s3s --embedder zero --latency 0
    bench.py --type pdf --pages 20 --docs 200 --concurrency 16
    bench.py --search-only --search-chunks 100000
    bench.py --sync-only --sync-objects 10000 --sync-events 50
    bench.py --bedrock-only --bedrock-docs 2000 --bedrock-latency 50
    bench.py --cpu-only --cpu-dims 384 768 1536 --cpu-profile
    bench.py --cpu-only --cpu-docs 0 --scaling-workers 1 2 4 --scaling-latency 0 100
    bench.py --pdf-only --pdf-docs 300
    bench.py --vs-pgai --pgai-docs 1000 --pgai-rounds 3 --pgai-concurrency 4
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import boto3  # noqa: E402

from cluster import Cluster, free_port  # noqa: E402
from documents import pdf_pages  # noqa: E402
from embedder import Embedder  # noqa: E402
from helpers import worker_pid  # noqa: E402
from s3server import BUCKET, ROLE_ARN, S3Server, server_env, wait_for_port  # noqa: E402

sys.path.insert(0, HERE)
from search import run_search  # noqa: E402
from stats import percentile  # noqa: E402
from sync import run_sync  # noqa: E402
from titan import run_titan  # noqa: E402
from vs_pgai import run_vs_pgai, vs_pgai_table  # noqa: E402
from cpu import run_cpu, run_scaling  # noqa: E402
from tenants import run_tenants  # noqa: E402
import pdfs  # noqa: E402

TOOL = os.path.join(ROOT, "target", "release", "ai-loader-bench")
S3S_FS = os.path.join(ROOT, "target", "bench-tools", "bin", "s3s-fs")
# processing_default()'s defaults, as the extension applies them.
DEFAULT_CONCURRENCY, DEFAULT_BATCH_SIZE = 16, 50
WORDS = ("vector store postgres embedding chunk document bucket object worker queue latency "
         "throughput index search semantic model token batch retry failure river mountain "
         "library harbour orchard lantern meadow compass").split()


def say(text=""):
    print(text, file=sys.stderr, flush=True)


def text_document(rng, size):
    """Prose of about `size` bytes in paragraphs of sentences."""
    out, n = [], 0
    while n < size:
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."
                     for _ in range(rng.randint(2, 5))]
        paragraph = " ".join(sentences)
        out.append(paragraph)
        n += len(paragraph) + 2
    return "\n\n".join(out)[:size].encode()


def pdf_document(rng, pages):
    return pdf_pages([[" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(50)] for _ in range(pages)])


class S3S:
    """s3s-fs, an S3-compatible server in Rust over a directory, keys enforced."""

    KEY = ("AKIAS3SFSBENCHMARK01", "s3s-fs-benchmark-secret")

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="ai_loader_s3s.")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [S3S_FS, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", self.KEY[0],
             "--secret-key", self.KEY[1], self.root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                               aws_access_key_id=self.KEY[0], aws_secret_access_key=self.KEY[1])
        self.s3.create_bucket(Bucket=BUCKET)

    def put(self, key, body):
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def server_env(self):
        return server_env(self.url, self.KEY)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def start_s3(kind):
    if kind == "moto":
        return S3Server(), ROLE_ARN
    return S3S(), None


def upload(s3, documents):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: s3.put(*kv), documents.items()))


def tool(*args, env=None):
    out = subprocess.run([TOOL, *args], check=True, capture_output=True, text=True,
                         env=dict(os.environ, **(env or {})))
    return json.loads(out.stdout)


def pg_config(flag):
    return subprocess.run(["/usr/lib/postgresql/15/bin/pg_config", flag],
                          check=True, capture_output=True, text=True).stdout.strip()


def model_ceilings(inputs, threads, model_dir=None):
    """The local model outside Postgres on the same chunks: the worker's own code (its raw
    rate), and the same graph on ONNX Runtime's Python API (the reference)."""
    model_dir = os.path.join(model_dir or os.path.join(pg_config("--sharedir"), "extension", "ai_loader", "models"),
                             "all-MiniLM-L6-v2")
    raw = tool("model", "--inputs", inputs, "--threads", str(threads), "--model-dir", model_dir,
               "--runtime", os.path.join(pg_config("--pkglibdir"), "ai_loader", "libonnxruntime.so"))
    reference = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "reference_model.py"),
                                "--inputs", inputs, "--threads", str(threads), "--model-dir", model_dir],
                               check=True, capture_output=True, text=True)
    return raw, json.loads(reference.stdout)


def s3_ceiling(s3, role, uris, concurrency):
    """The server's GetObject rate at the worker's concurrency: the better of two passes."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("\n".join(uris))
        f.flush()
        args = ["s3-get", "--uris", f.name, "--concurrency", str(concurrency), "--path-style"]
        if role:
            args += ["--role", role]
        return max((tool(*args, env=s3.server_env()) for _ in range(2)), key=lambda r: r["per_second"])


def memory(pid):
    """(VmHWM, RssAnon) of a process, in MiB."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                fields[name] = int(value.split()[0]) / 1024 if value.strip().endswith("kB") else None
    except OSError:
        return None, None
    return fields.get("VmHWM"), fields.get("RssAnon")


def worker_calls(cluster):
    counts = re.findall(r"(\d+) S3 GetObject request\(s\), (\d+) AssumeRole call", cluster.log())
    return tuple(map(int, counts[-1])) if counts else (0, 0)



def create_vectorizer(conn, embedder, role, args, local):
    embedding = ("ai.embedding_local('all-MiniLM-L6-v2', 384)" if local else
                 f"ai.embedding_openai('text-embedding-3-small', 384, base_url => '{embedder.openai_url}')")
    processing = []
    if args.batch_size:
        processing.append(f"batch_size => {args.batch_size}")
    if args.concurrency:
        processing.append(f"concurrency => {args.concurrency}")
    role_arg = f", aws_role_arn => '{role}'" if role else ""
    conn.execute(f"""SELECT ai.create_vectorizer('document'::regclass,
        loading => ai.loading_uri('uri'{role_arg}), embedding => {embedding},
        processing => ai.processing_default({', '.join(processing)}))""")


def drain(conn, cluster, n_docs, started, timeout):
    """Waits until every document is embedded; returns seconds and peak memory."""
    pid, peak_hwm, peak_anon = None, 0.0, 0.0
    deadline = time.monotonic() + timeout
    while True:
        pid = pid or worker_pid(conn)
        if pid:
            hwm, anon = memory(pid)
            peak_hwm, peak_anon = max(peak_hwm, hwm or 0), max(peak_anon, anon or 0)
        # The queue alone while it drains: counting the store would slow the run.
        if conn.execute("SELECT ai.vectorizer_queue_pending(1, exact_count => true)").fetchone()[0]:
            done = None
        else:
            seconds = time.monotonic() - started
            done, failed = conn.execute(
                """SELECT (SELECT count(DISTINCT id) FROM document_embedding_store),
                          (SELECT count(*) FROM ai._vectorizer_q_failed_1)""").fetchone()
        if done is not None and done + failed >= n_docs:
            if failed:
                raise SystemExit(f"bench: {failed} documents failed: "
                                 + "; ".join(m for (m,) in conn.execute("SELECT message FROM ai.vectorizer_errors LIMIT 3")))
            return seconds, peak_hwm, peak_anon
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: documents still queued after {timeout}s")
        time.sleep(0.05)


def latency(conn, s3, samples, size, rng):
    """Single-row inserts into the idle system: seconds from the INSERT to a visible embedding."""
    keys = [f"latency/{i}.txt" for i in range(samples)]
    upload(s3, {k: text_document(rng, size) for k in keys})
    watcher = conn  # the same session polls; each statement sees what has committed
    out = []
    for i, key in enumerate(keys):
        time.sleep(rng.uniform(0.05, 0.3))  # land anywhere in the worker's cycle
        started = time.monotonic()
        (row_id,) = conn.execute("INSERT INTO document (uri) VALUES (%s) RETURNING id",
                                 (f"s3://{BUCKET}/{key}",)).fetchone()
        while not watcher.execute("SELECT EXISTS (SELECT 1 FROM document_embedding_store WHERE id = %s)",
                                  (row_id,)).fetchone()[0]:
            if time.monotonic() - started > 30:
                raise SystemExit(f"bench: row {row_id} not embedded after 30 s")
            time.sleep(0.002)
        out.append(time.monotonic() - started)
    return out


def run(args, kind, local, rng):
    """One pipeline run: an S3 server, a cluster, N documents through the worker."""
    n = args.local_docs if local else args.docs
    s3, role = start_s3(kind)
    embedder = None if local else Embedder(dimensions=384, fixed=True)
    cluster = None
    try:
        if args.type == "pdf":
            documents = {f"bench/{i}.pdf": pdf_document(rng, args.pages) for i in range(n)}
        else:
            documents = {f"bench/{i}.txt": text_document(rng, args.size) for i in range(n)}
        say(f"-- {kind}, {'local model' if local else 'zero-cost embedder'}: uploading {n} {args.type} documents")
        upload(s3, documents)
        uris = [f"s3://{BUCKET}/{k}" for k in documents]
        concurrency = args.concurrency or DEFAULT_CONCURRENCY
        ceiling = None if local else s3_ceiling(s3, role, uris, concurrency)
        env = dict(s3.server_env(), **({"OPENAI_API_KEY": embedder.api_key} if embedder else {}))
        settings = ["shared_preload_libraries = 'ai_loader'", "ai_loader.s3_force_path_style = on",
                    f"ai_loader.model_threads = {args.model_threads}", *([embedder.key_setting] if embedder else [])]
        cluster = Cluster(settings, env=env)
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("CREATE TABLE document (id bigserial PRIMARY KEY, uri text NOT NULL)")
        create_vectorizer(conn, embedder, role, args, local)
        say(f"   inserting {n} rows; timing the worker")
        started = time.monotonic()
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO document (uri) VALUES (%s)", [(u,) for u in uris])
        seconds, hwm, anon = drain(conn, cluster, n, started, args.timeout)
        chunks = conn.execute("SELECT count(*) FROM document_embedding_store").fetchone()[0]
        time.sleep(0.2)  # the worker logs its counters once it finds the queue empty
        gets, assumes = worker_calls(cluster)
        result = {"run": "local" if local else "pipeline", "s3": kind, "type": args.type,
                  "docs": n, "bytes_per_doc": sum(map(len, documents.values())) // n, "chunks": chunks,
                  "concurrency": concurrency, "batch_size": args.batch_size or DEFAULT_BATCH_SIZE,
                  "seconds": round(seconds, 3), "docs_per_s": round(n / seconds, 1),
                  "chunks_per_s": round(chunks / seconds, 1), "worker_peak_rss_mib": round(hwm, 1),
                  "worker_peak_anon_mib": round(anon, 1), "s3_get_requests": gets, "sts_calls": assumes}
        if ceiling:
            result["s3_ceiling_gets_per_s"] = round(ceiling["per_second"], 1)
            result["fraction_of_s3_ceiling"] = round(n / seconds / ceiling["per_second"], 2)
        if local:
            inputs = [c for (c,) in conn.execute(
                f"SELECT chunk FROM document_embedding_store ORDER BY id, chunk_seq LIMIT {args.raw_chunks}")]
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump(inputs, f)
                f.flush()
                model_dir = conn.execute("SELECT current_setting('ai_loader.model_dir', true)").fetchone()[0]
                raw, reference = model_ceilings(f.name, args.model_threads, model_dir)
            result["model_threads"] = args.model_threads
            result["model_chunks"] = len(inputs)
            result["raw_model_chunks_per_s"] = round(raw["per_second"], 2)
            result["fraction_of_raw_model"] = round(chunks / seconds / raw["per_second"], 2)
            result["reference_model"] = reference["runtime"]
            result["reference_model_chunks_per_s"] = round(reference["per_second"], 2)
            result["raw_of_reference_model"] = round(raw["per_second"] / reference["per_second"], 2)
        print(json.dumps(result), flush=True)
        results = [result]
        if args.latency and not local:
            samples = latency(conn, s3, args.latency, args.size, rng)
            lat = {"run": "latency", "s3": kind, "samples": len(samples),
                   "p50_ms": round(percentile(samples, 50) * 1000, 1),
                   "p95_ms": round(percentile(samples, 95) * 1000, 1),
                   "p99_ms": round(percentile(samples, 99) * 1000, 1),
                   "max_ms": round(max(samples) * 1000, 1)}
            print(json.dumps(lat), flush=True)
            results.append(lat)
        return results
    finally:
        if cluster:
            cluster.stop()
        s3.stop()
        if embedder:
            embedder.stop()


def table(results):
    quiet = ("latency", "search", "search-indexes", "sync-reconcile", "sync-unchanged", "sync-event-row",
             "sync-event-searchable", "bedrock-titan", "cpu-per-chunk", "scaling",
             "vs-pgai", "vs-pgai-setup", "vs-pgai-latency", "cold-start", "idle-worker", "idle-cluster",
             "fairness", "pdf-engine")
    if any(r["run"] not in quiet for r in results):
        say("\n run       s3    docs  chunks   seconds   docs/s  chunks/s  of S3 ceiling  of raw model  peak RSS  GETs  STS")
    for r in results:
        if r["run"] in quiet:
            continue
        say(f" {r['run']:9} {r['s3']:5} {r['docs']:5} {r['chunks']:7} {r['seconds']:9.2f} {r['docs_per_s']:8.1f}"
            f" {r['chunks_per_s']:9.1f}  {str(r.get('fraction_of_s3_ceiling', '-')):>13}"
            f"  {str(r.get('fraction_of_raw_model', '-')):>12}  {r['worker_peak_rss_mib']:6.0f}MiB"
            f" {r['s3_get_requests']:5} {r['sts_calls']:4}")
    for r in results:
        if "reference_model" in r:
            say(f" local model outside Postgres ({r['model_chunks']} of its chunks, {r['model_threads']} threads): ai_loader's runtime {r['raw_model_chunks_per_s']}"
                f" chunks/s, {r['reference_model']} {r['reference_model_chunks_per_s']} chunks/s"
                f" (ai_loader at {r['raw_of_reference_model']} of it)")
    for r in results:
        if r["run"] == "latency":
            say(f" insert→visible latency ({r['s3']}, {r['samples']} single-row inserts): p50 {r['p50_ms']} ms,"
                f" p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms")
    searches = [r for r in results if r["run"] == "search"]
    if searches:
        say(f"\n search latency, k = 10, {searches[0]['queries']} queries each   ai.search p50 / p95"
            "      plain SQL p50 / p95 (ceiling)")
        for a, b in zip(searches[::2], searches[1::2]):
            say(f" {a['stage']:13} {a['mode']:7} {a['p50_ms']:10.1f} / {a['p95_ms']:7.1f} ms"
                f" {b['p50_ms']:12.1f} / {b['p95_ms']:7.1f} ms")
    for r in results:
        line = SUMMARY.get(r["run"])
        if line:
            say(line(r))


# One line each for the runs the table above leaves out, in the order they ran.
SUMMARY = {
    "search-indexes": lambda r: (f" {r['chunks']} chunks: GIN index {r['gin_seconds']} s, HNSW index built by the"
                                 f" worker in {r['hnsw_build_seconds']} s"),
    "sync-reconcile": lambda r: (f" S3 sync (moto): reconcile of {r['objects']} objects {r['seconds']} s,"
                                 f" {r['objects_per_s']} objects/s ({r['fraction_of_ceiling']} of the listing"
                                 f" ceiling, {r['ceiling_objects_per_s']} objects/s)"),
    "sync-unchanged": lambda r: (f" S3 sync: reconcile of the unchanged bucket {r['seconds']} s,"
                                 f" {r['rows_written']} rows written"),
    "sync-event-row": lambda r: (f" S3 sync: upload → row ({r['samples']} uploads): p50 {r['p50_ms']} ms,"
                                 f" p95 {r['p95_ms']} ms"),
    "sync-event-searchable": lambda r: (f" S3 sync: upload → searchable chunks ({r['samples']} uploads):"
                                        f" p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms"),
    "cpu-per-chunk": lambda r: (f" CPU per chunk, {r['dims']} dimensions ({r['chunks']} chunks, median of"
                                f" {r['rounds']} rounds): {r['cpu_s_per_1000_chunks']} worker CPU-s per 1,000"
                                f" chunks; {r['chunks_per_s']} chunks/s"),
    "scaling": lambda r: (f" {r['workers_per_database']} worker(s) per database, embedder latency"
                          f" {r['latency_ms']} ms: {r['docs_per_s']} docs/s, {r['chunks_per_s']} chunks/s"
                          f" ({r['docs']} docs, 768 dimensions)"),
    "cold-start": lambda r: (f" insert→visible ({r['samples']} rows each): worker must start p50 {r['cold_p50_ms']} ms"
                             f" (max {r['cold_max_ms']}), worker running p50 {r['warm_p50_ms']} ms"
                             f" (max {r['warm_max_ms']})"),
    "fairness": lambda r: (f" a single row while {r['beside']} backfills {r['backfill_rows']} rows"
                           f" ({r['samples']} rows): p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms (goal ≤ 1,500)"),
    "idle-worker": lambda r: (f" an idle worker with {r['vectorizers']} vectorizers:"
                              f" {round(r['core_fraction'] * 100, 2)} % of a core (goal ≤ 1 %)"),
    "idle-cluster": lambda r: (f" an idle cluster of {r['databases']} databases:"
                               f" {round(r['core_fraction'] * 100, 2)} % of a core (goal ≤ 1 %)"),
    "bedrock-titan": lambda r: (f" Bedrock Titan ({r['docs']} docs, {r['latency_ms']} ms a request,"
                                f" concurrency {r['concurrency']}): {r['docs_per_s']} docs/s,"
                                f" {r['fraction_of_ceiling']} of the ceiling ({r['ceiling_docs_per_s']} docs/s)"),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=1000, help="documents for the zero-cost embedder")
    p.add_argument("--local-docs", type=int, default=24, help="documents for the local model")
    p.add_argument("--size", type=int, default=4096, help="bytes of each text document")
    p.add_argument("--type", choices=["text", "pdf"], default="text")
    p.add_argument("--pages", type=int, default=10, help="pages of each PDF")
    p.add_argument("--embedder", choices=["zero", "local", "both"], default="both")
    p.add_argument("--s3", choices=["moto", "s3s", "both"], default="both")
    p.add_argument("--concurrency", type=int, help="processing_default(concurrency); default: the extension's")
    p.add_argument("--batch-size", type=int, help="processing_default(batch_size); default: the extension's")
    p.add_argument("--latency", type=int, default=100, help="single-row inserts timed (0: none)")
    p.add_argument("--model-threads", type=int, default=os.cpu_count(), help="ai_loader.model_threads")
    p.add_argument("--raw-chunks", type=int, default=120, help="chunks the raw model rate is measured on")
    p.add_argument("--timeout", type=int, default=1800, help="seconds a run may take")
    p.add_argument("--search-chunks", type=int, default=100_000, help="chunks in the search store (0: no search run)")
    p.add_argument("--search-queries", type=int, default=30, help="queries timed per mode and stage")
    p.add_argument("--search-only", action="store_true", help="only the search run")
    p.add_argument("--sync-objects", type=int, default=10_000, help="objects the S3 sync reconciles (0: no sync run)")
    p.add_argument("--sync-events", type=int, default=50, help="uploads timed through the sync's events")
    p.add_argument("--sync-only", action="store_true", help="only the S3 sync run")
    p.add_argument("--bedrock-docs", type=int, default=2000, help="documents embedded with Titan (0: no Bedrock run)")
    p.add_argument("--bedrock-latency", type=int, default=50, help="ms the Bedrock test server takes a request")
    p.add_argument("--bedrock-concurrency", type=int, nargs="+", default=[4, 16],
                   help="processing_default(concurrency) values run")
    p.add_argument("--bedrock-only", action="store_true", help="only the Bedrock run")
    p.add_argument("--cpu-docs", type=int, default=1000, help="documents of each CPU-per-chunk round (0: no run)")
    p.add_argument("--cpu-dims", type=int, nargs="+", default=[384, 768, 1536], help="dimensions measured")
    p.add_argument("--cpu-rounds", type=int, default=3, help="rounds per dimension (the median is kept)")
    p.add_argument("--cpu-profile", action="store_true", help="print the top of a perf profile of the worker")
    p.add_argument("--cpu-only", action="store_true", help="only the CPU-per-chunk and scaling runs")
    p.add_argument("--scaling-docs", type=int, default=4000, help="documents of each scaling round (0: no run)")
    p.add_argument("--scaling-workers", type=int, nargs="+", default=[1, 2, 4], help="workers_per_database values")
    p.add_argument("--scaling-latency", type=int, nargs="+", default=[0, 100],
                   help="ms the embedder takes a request, for each scaling series")
    p.add_argument("--tenants-databases", type=int, default=100,
                   help="databases of the idle-cluster run (0: no many-tenants run)")
    p.add_argument("--tenants-vectorizers", type=int, default=1000, help="vectorizers of the idle-worker run")
    p.add_argument("--tenants-samples", type=int, default=20, help="rows timed with and without a running worker")
    p.add_argument("--tenants-seconds", type=int, default=10, help="seconds the idle CPU is read over")
    p.add_argument("--tenants-backfill", type=int, default=20000,
                   help="rows another vectorizer (or database) backfills while single rows are timed")
    p.add_argument("--tenants-only", action="store_true", help="only the many-tenants run")
    p.add_argument("--pdf-docs", type=int, default=0,
                   help="PDFs of the real corpus read by each engine (0: all; -1: no run)")
    p.add_argument("--pdf-only", action="store_true", help="only the PDF engines on the real corpus")
    p.add_argument("--vs-pgai", action="store_true",
                   help="only the side by side with pgai's worker (installs it into target/bench-tools/pgai-venv)")
    p.add_argument("--pgai-docs", type=int, default=1000, help="documents of each side-by-side run")
    p.add_argument("--pgai-size", type=int, default=4900, help="bytes of each side-by-side document")
    p.add_argument("--pgai-pdfs", type=int, default=20,
                   help="real PDFs of the side-by-side PDF run (every k-th of the corpus; 0: none)")
    p.add_argument("--pgai-rounds", type=int, default=3, help="side-by-side rounds (the median is kept)")
    p.add_argument("--pgai-concurrency", type=int, nargs="*", default=[4],
                   help="pgai worker -c values run besides its default 1")
    p.add_argument("--pgai-latency", type=int, default=20, help="single-row inserts timed for each system")
    p.add_argument("--no-pgai", action="store_true",
                   help="with --vs-pgai: ai_loader's side alone (pgai not installed or run)")
    args = p.parse_args()
    rng = random.Random(42)
    servers = ["moto", "s3s"] if args.s3 == "both" else [args.s3]
    results = []
    # The parts asked for alone (`--search-only`, …); none: every part.
    alone = {part for part in ("search", "sync", "bedrock", "cpu", "tenants", "pdf") if getattr(args, f"{part}_only")}
    alone |= {"pgai"} if args.vs_pgai else set()
    for kind in [] if alone else servers:
        if args.embedder in ("zero", "both"):
            results += run(args, kind, local=False, rng=rng)
    if args.embedder in ("local", "both") and not alone:
        results += run(args, servers[-1], local=True, rng=rng)
    parts = [("cpu", args.cpu_docs, lambda: run_cpu(args, say, text_document, rng)),
             ("cpu", args.scaling_docs, lambda: run_scaling(args, say, text_document, rng)),
             ("bedrock", args.bedrock_docs, lambda: run_titan(args, say)),
             ("sync", args.sync_objects, lambda: run_sync(args, say, tool)),
             ("search", args.search_chunks, lambda: run_search(args, say)),
             ("tenants", args.tenants_databases, lambda: run_tenants(args, say)),
             ("pdf", args.pdf_docs >= 0, lambda: pdfs.run_pdfs(args, say)),
             ("pgai", args.vs_pgai and args.pgai_docs, lambda: run_vs_pgai(args, say, text_document, upload,
                                                                        s3_ceiling, rng))]
    for part, size, measure in parts:
        if size and (not alone or part in alone):
            for r in measure():
                print(json.dumps({k: v for k, v in r.items() if k != "profile_top"}), flush=True)
                results.append(r)
    table(results)
    pdfs.table([r for r in results if r["run"] == "pdf-engine"], say)
    vs_pgai_table(results, say)


if __name__ == "__main__":
    main()
