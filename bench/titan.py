"""Amazon Bedrock, Titan Text Embeddings v2 (one text a request): documents/s through
the worker against the ceiling of concurrency ÷ latency, with a Bedrock test server
(tests/bedrock.py: SigV4 checked against moto's account) that answers every request
after a fixed `--bedrock-latency` ms. One chunk a document, so a document is a request.
"""

import time

from bedrock import Bedrock
from cluster import Cluster
from s3server import S3Server

TITAN = "amazon.titan-embed-text-v2:0"


def run_titan(args, say):
    n, latency = args.bedrock_docs, args.bedrock_latency / 1000
    s3 = S3Server()
    bedrock = Bedrock(s3)
    bedrock.delay = latency
    bedrock.allow("arn:aws:iam::123456789012:user/postgres-server", TITAN)
    cluster = None
    results = []
    try:
        cluster = Cluster(["shared_preload_libraries = 'ai_loader'"],
                          env=s3.server_env() | {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.url})
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION ai_loader")
        batch = f", batch_size => {args.batch_size}" if args.batch_size else ""
        for concurrency in args.bedrock_concurrency:
            conn.execute("DROP TABLE IF EXISTS doc CASCADE")
            conn.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
            vid = conn.execute(f"""SELECT ai.create_vectorizer('doc'::regclass, name => 'titan_{concurrency}',
                loading => ai.loading_column('body'), embedding => ai.embedding_bedrock('{TITAN}', 256),
                chunking => ai.chunking_none(), indexing => ai.indexing_none(),
                processing => ai.processing_default(concurrency => {concurrency}{batch}))""").fetchone()[0]
            with bedrock.lock:
                bedrock.log.clear()
            say(f"-- Bedrock Titan: {n} documents, {latency * 1000:.0f} ms a request, concurrency {concurrency}")
            started = time.monotonic()
            conn.execute("INSERT INTO doc SELECT g, 'document number ' || g FROM generate_series(1, %s) g", (n,))
            deadline = started + args.timeout
            while conn.execute("SELECT count(*) FROM doc_embedding_store").fetchone()[0] < n:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: timed out waiting for the Titan run")
                time.sleep(0.01)
            seconds = time.monotonic() - started
            statuses = bedrock.statuses()
            if statuses.count(200) != n or len(statuses) != n:
                raise SystemExit(f"bench: {len(statuses)} Bedrock requests, {statuses.count(200)} answered; expected {n}")
            ceiling = concurrency / latency
            results.append({"run": "bedrock-titan", "docs": n, "concurrency": concurrency,
                            "batch_size": args.batch_size or 50,
                            "latency_ms": args.bedrock_latency, "seconds": round(seconds, 2),
                            "docs_per_s": round(n / seconds, 1), "ceiling_docs_per_s": round(ceiling, 1),
                            "fraction_of_ceiling": round(n / seconds / ceiling, 2)})
            say(f"   {n / seconds:.1f} docs/s, {n / seconds / ceiling:.2f} of the ceiling ({ceiling:.0f} docs/s)")
            conn.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))
        return results
    finally:
        if cluster:
            cluster.stop()
        bedrock.stop()
        s3.stop()
