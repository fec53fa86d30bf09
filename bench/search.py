"""Search latency: `ai.search` in each mode over a store of `--search-chunks` chunks
(default 100,000), without and with its indexes, against the same query in plain SQL —
the ceiling, what ai.search's statement costs when written by hand.

The store is filled directly (random 384-dimensional embeddings; chunks of ~60 words
drawn from a 5,000-word vocabulary with Zipf frequencies, so query words range from rare
to common). The query embedding comes from the local model, in both the ai.search and
the plain-SQL query. First without indexes (the text index dropped; no vector index
yet); then the GIN index is made again and one more row makes the worker build the HNSW
index by the vectorizer's rule (its build time is reported), and the same queries run
again. Each figure: p50 and p95 of `--search-queries` queries, after warm-up.
"""

import random
import time

from cluster import Cluster
from stats import percentile

STORE = "doc_embedding_store"
VECTORIZER = "public_doc_embedding_store"
SYLLABLES = "ka lo mi ne ru ta so vi de pa go li mu fe ra no si tu be ko".split()


def vocabulary(rng, n=5000):
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def zipf_sampler(rng, words):
    weights = [1 / (i + 1) for i in range(len(words))]
    return lambda k: rng.choices(words, weights, k=k)


def plain_vector(query):
    embed = f"ai.vectorizer_embed('{VECTORIZER}', {query})"
    return f"""SELECT jsonb_build_object('id', id) AS key, chunk_seq, chunk,
                      1 - (embedding <=> {embed}) AS score
                 FROM {STORE} ORDER BY embedding <=> {embed}"""


def plain_text(query):
    return f"""WITH words AS (
        SELECT array_to_tsvector(ARRAY[w])::text::tsquery AS word
          FROM unnest(tsvector_to_array(to_tsvector('english', {query}))) w),
    chunks AS MATERIALIZED (SELECT count(*) AS n FROM {STORE}),
    weights AS MATERIALIZED (
        SELECT w.word, ln(1 + (c.n - h.n + 0.5) / (h.n + 0.5)) AS idf
          FROM words w, chunks c,
               LATERAL (SELECT count(*) AS n FROM {STORE} WHERE chunk_tsvector @@ w.word) h)
    SELECT jsonb_build_object('id', s.id) AS key, s.chunk_seq, s.chunk,
           (SELECT sum(x.idf * ts_rank(s.chunk_tsvector, x.word)) FROM weights x
             WHERE s.chunk_tsvector @@ x.word) AS score
      FROM {STORE} s
     WHERE s.chunk_tsvector @@ (SELECT string_agg(word::text, ' | ')::tsquery FROM words)
     ORDER BY score DESC, s.id, s.chunk_seq"""


def plain_hybrid(query):
    return f"""WITH v AS (SELECT *, row_number() OVER (ORDER BY score DESC, key, chunk_seq) AS rank
                            FROM ({plain_vector(query)} LIMIT 40) r),
                    t AS (SELECT *, row_number() OVER (ORDER BY score DESC, key, chunk_seq) AS rank
                            FROM ({plain_text(query)} LIMIT 40) r)
        SELECT coalesce(v.key, t.key) AS key, coalesce(v.chunk_seq, t.chunk_seq) AS chunk_seq,
               coalesce(v.chunk, t.chunk) AS chunk,
               coalesce(1.0 / (60 + v.rank), 0) + coalesce(1.0 / (60 + t.rank), 0) AS score
          FROM v FULL JOIN t ON v.key = t.key AND v.chunk_seq = t.chunk_seq
         ORDER BY score DESC, key, chunk_seq"""


PLAIN = {"vector": plain_vector, "text": plain_text, "hybrid": plain_hybrid}



def timed(conn, sql, params):
    start = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return (time.perf_counter() - start) * 1000, rows


def measure(conn, queries, k, say, stage):
    out = []
    for mode in ("vector", "text", "hybrid"):
        for how, sql in (("ai.search", f"SELECT * FROM ai.search('{VECTORIZER}', %(q)s, {k}, '{mode}')"),
                         ("plain SQL", PLAIN[mode]("%(q)s") + f" LIMIT {k}")):
            for q in queries[:3]:  # warm-up
                timed(conn, sql, {"q": q})
            times, found = [], 0
            for q in queries:
                ms, rows = timed(conn, sql, {"q": q})
                times.append(ms)
                found += len(rows)
            r = {"run": "search", "stage": stage, "mode": mode, "query": how, "queries": len(queries), "k": k,
                 "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
                 "rows_per_query": round(found / len(queries), 1)}
            say(f"   {stage:14} {mode:6} {how:9}  p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms"
                f"  ({r['rows_per_query']} rows)")
            out.append(r)
    return out


def run_search(args, say):
    rng = random.Random(7)
    words = vocabulary(rng)
    sample = zipf_sampler(rng, words)
    n = args.search_chunks
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", f"ai_loader.model_threads = {args.model_threads}",
                       "maintenance_work_mem = '1GB'", "shared_buffers = '512MB'"])
    try:
        conn = cluster.connect()
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        say(f"-- search: filling a store of {n} chunks")
        started = time.monotonic()
        with conn.cursor() as cur:
            with cur.copy("COPY doc (id, body) FROM STDIN") as copy:
                for i in range(1, n + 1):
                    copy.write_row((i, " ".join(sample(rng.randint(40, 80))).capitalize() + "."))
        # The rows are there before the vectorizer, which does not queue them: the
        # worker stays idle while the queries are timed.
        conn.execute(f"""SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
            embedding => ai.embedding_local(), chunking => ai.chunking_none(),
            indexing => ai.indexing_hnsw(min_rows => {n}), text_indexing => ai.text_indexing_fts(),
            enqueue_existing => false)""")
        # Random embeddings (the order of the rows is what a search costs, not their meaning).
        conn.execute(f"""INSERT INTO {STORE} (id, chunk_seq, chunk, embedding)
            SELECT d.id, 0, d.body,
                   (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) WHERE d.id > 0)::real[]::vector
              FROM doc d""")
        conn.execute(f"VACUUM ANALYZE {STORE}")
        say(f"   filled in {time.monotonic() - started:.0f} s")
        gin = conn.execute(f"""SELECT indexrelid::regclass::text FROM pg_index
                                WHERE indrelid = '{STORE}'::regclass AND indexrelid::regclass::text LIKE '%tsvector%'""").fetchone()[0]
        gin_def = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (gin,)).fetchone()[0]
        queries = [" ".join(rng.choice(words[:200]) for _ in range(1)) + " " + " ".join(sample(2))
                   for _ in range(args.search_queries)]
        conn.execute("SELECT ai.vectorizer_embed(%s, 'warm the model up')", (VECTORIZER,))
        conn.execute(f"DROP INDEX {gin}")
        results = measure(conn, queries, 10, say, "no indexes")

        started = time.monotonic()
        conn.execute(gin_def)
        gin_seconds = time.monotonic() - started
        conn.execute("INSERT INTO doc VALUES (0, 'one more row: the worker checks its index rule')")
        started = time.monotonic()
        deadline = started + args.timeout
        while not conn.execute("SELECT vector_index_built_at IS NOT NULL FROM ai.vectorizer_status").fetchone()[0]:
            errors = conn.execute("SELECT string_agg(message, '; ') FROM ai.vectorizer_errors").fetchone()[0]
            if errors or time.monotonic() > deadline:
                raise SystemExit(f"bench: the HNSW index was not built: {errors}")
            time.sleep(0.5)
        hnsw_seconds = time.monotonic() - started
        say(f"   GIN index made in {gin_seconds:.1f} s; HNSW index built by the worker in {hnsw_seconds:.1f} s")
        conn.execute(f"ANALYZE {STORE}")
        results += measure(conn, queries, 10, say, "with indexes")
        results.append({"run": "search-indexes", "chunks": n, "gin_seconds": round(gin_seconds, 1),
                        "hnsw_build_seconds": round(hnsw_seconds, 1)})
        return results
    finally:
        cluster.stop()
