"""S3 sync: a reconcile of `--sync-objects` objects (default 10,000) in moto with IAM
enforced and an assumed role, against the S3 server's own ListObjectsV2 rate measured in
the same run with the worker's listing code (the ceiling); a reconcile of the unchanged
bucket (it writes nothing); then, with the bucket's notifications on SQS, upload → row
and, with a `loading_uri` vectorizer and the zero-cost embedder, upload → searchable
chunks, `--sync-events` uploads each (p50/p95).
"""

import time
from concurrent.futures import ThreadPoolExecutor

from cluster import Cluster
from embedder import Embedder
from s3server import ACCOUNT, BUCKET, S3Server
from stats import percentile

QUEUE = "bench-events"
SYNC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/S3SyncRole"



def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.002)


def progress(conn):
    return conn.execute("SELECT rows_inserted, rows_updated, rows_deleted, last_listing_at, last_listing_seconds "
                        "FROM ai._s3_sync_progress").fetchone()


def timed_uploads(s3, n, prefix, visible):
    """Seconds from each upload (an event on the queue) to `visible(uri)` being true."""
    out = []
    for i in range(n):
        key = f"{prefix}/{i}.md"
        uri = f"s3://{BUCKET}/{key}"
        started = time.monotonic()
        s3.put(key, f"# Upload {i}\n\nA document that arrives by an S3 event.".encode())
        wait(lambda: visible(uri), 30, f"{uri}")
        out.append(time.monotonic() - started)
    return out


def summary(name, samples):
    return {"run": name, "samples": len(samples), "p50_ms": round(percentile(samples, 50) * 1000, 1),
            "p95_ms": round(percentile(samples, 95) * 1000, 1)}


def run_sync(args, say, tool):
    n = args.sync_objects
    s3 = S3Server()
    embedder = Embedder(dimensions=384, fixed=True)
    cluster = None
    try:
        s3.add_role("S3SyncRole", ["s3:GetObject", "s3:ListBucket", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:GetQueueAttributes"])
        sqs = s3.client("sqs")
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        say(f"-- S3 sync: uploading {n} objects to moto")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: s3.put(f"sync/{i:05}.md", b"x" * 64), range(n)))
        ceiling = max((tool("s3-list", "--prefix", f"s3://{BUCKET}/sync/", "--role", SYNC_ROLE, "--path-style",
                            env=s3.server_env()) for _ in range(2)), key=lambda r: r["per_second"])
        say(f"   the worker's listing code alone: {ceiling['objects']} objects in {ceiling['seconds']:.2f} s "
            f"({ceiling['per_second']:.0f} objects/s)")
        cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.s3_force_path_style = on",
                           embedder.key_setting], env=s3.server_env() | {"OPENAI_API_KEY": embedder.api_key})
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("CREATE TABLE document (id bigserial PRIMARY KEY, title text, uri text NOT NULL UNIQUE, "
                     "updated_at timestamptz)")
        started = time.monotonic()
        conn.execute(f"""SELECT ai.create_s3_sync('document', 's3://{BUCKET}/sync/', aws_role_arn => '{SYNC_ROLE}',
                             sqs_queue_url => '{queue_url}', reconcile_interval => '1 hour',
                             columns => '{{"title": "basename", "updated_at": "last_modified"}}')""")
        wait(lambda: progress(conn)[3] is not None, args.timeout, "the first reconcile")
        seconds = time.monotonic() - started
        rows = conn.execute("SELECT count(*) FROM document").fetchone()[0]
        if rows != n:
            raise SystemExit(f"bench: {rows} rows after the reconcile, expected {n}")
        first = progress(conn)
        results = [{"run": "sync-reconcile", "objects": n, "seconds": round(seconds, 2),
                    "listing_seconds": round(first[4], 2), "objects_per_s": round(n / seconds, 1),
                    "ceiling_objects_per_s": round(ceiling["per_second"], 1),
                    "fraction_of_ceiling": round(n / seconds / ceiling["per_second"], 2)}]
        say(f"   first reconcile: {n} rows in {seconds:.2f} s ({n / seconds:.0f} objects/s; "
            f"the listing {first[4]:.2f} s)")

        before = conn.execute("SELECT max(xmin::text::int8) FROM document").fetchone()[0]
        started = time.monotonic()
        conn.execute("SELECT ai.s3_sync_now(1)")
        wait(lambda: progress(conn)[3] > first[3], args.timeout, "the second reconcile")
        seconds = time.monotonic() - started
        again = progress(conn)
        written = sum(again[:3]) - sum(first[:3])
        after = conn.execute("SELECT max(xmin::text::int8) FROM document").fetchone()[0]
        if written or after != before:
            raise SystemExit(f"bench: the reconcile of the unchanged bucket wrote {written} rows")
        results.append({"run": "sync-unchanged", "objects": n, "seconds": round(seconds, 2), "rows_written": 0})
        say(f"   reconcile of the unchanged bucket: {seconds:.2f} s, nothing written")

        s3.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}",
                                     "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
        row = lambda uri: conn.execute("SELECT EXISTS (SELECT FROM document WHERE uri = %s)", (uri,)).fetchone()[0]
        samples = timed_uploads(s3, args.sync_events, "sync/events", row)
        results.append(summary("sync-event-row", samples))
        say(f"   upload → row, {len(samples)} uploads: p50 {results[-1]['p50_ms']} ms, p95 {results[-1]['p95_ms']} ms")

        conn.execute(f"""SELECT ai.create_vectorizer('document'::regclass,
            loading => ai.loading_uri('uri', aws_role_arn => '{SYNC_ROLE}'),
            embedding => ai.embedding_openai('text-embedding-3-small', 384, base_url => '{embedder.openai_url}'))""")
        wait(lambda: conn.execute("SELECT ai.vectorizer_queue_pending(1, exact_count => true)").fetchone()[0] == 0,
             args.timeout, "the existing rows embedded")
        chunks = lambda uri: conn.execute("SELECT EXISTS (SELECT FROM document_embedding WHERE uri = %s)",
                                          (uri,)).fetchone()[0]
        samples = timed_uploads(s3, args.sync_events, "sync/searchable", chunks)
        results.append(summary("sync-event-searchable", samples))
        say(f"   upload → searchable chunks, {len(samples)} uploads: p50 {results[-1]['p50_ms']} ms, "
            f"p95 {results[-1]['p95_ms']} ms")
        return results
    finally:
        if cluster:
            cluster.stop()
        s3.stop()
        embedder.stop()
