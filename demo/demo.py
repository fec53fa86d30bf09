"""`make demo`: ai_loader doing its job on this machine, with no key and no network.

It starts a throwaway PostgreSQL cluster with ai_loader preloaded and a local S3 (moto,
with IAM enforced), uploads a handful of documents of every type ai_loader reads,
creates the `document` table and a vectorizer that loads them from S3 through an IAM
role and embeds them with the in-process model, shows progress, then asks questions
and prints the nearest documents. It fails loudly if a question's best match is not the
document that answers it. `--keep` leaves everything running and prints how to connect.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from cluster import Cluster  # noqa: E402
from documents import docx, pdf  # noqa: E402
from s3server import BUCKET, ROLE_ARN, S3Server  # noqa: E402

DOCUMENTS = {
    "aurora-guide.md": ("Seeing the Northern Lights", None),
    "sourdough.html": ("Baking sourdough bread", None),
    "tide-pools.txt": ("Exploring tide pools", None),
    "solar-panels.pdf": ("Looking after solar panels", pdf(
        "Solar panels: rinse dust and pollen off the modules twice a year, keep trees trimmed so "
        "nothing shades them, and check that the inverter light is green.")),
    "bike-repair.docx": ("Fixing a bicycle", docx([
        "Fixing a flat tyre on a bicycle.",
        "Lever the tyre off the rim, pull out the inner tube and find the puncture by pumping "
        "it up and listening for the hiss. Patch it or fit a new tube, then reseat the tyre.",
        "Keep the chain clean and oiled, and check the brake pads when they squeal."])),
}

QUESTIONS = [
    ("When is the best time to see the northern lights?", "aurora-guide.md"),
    ("How do I repair a puncture in my bike tyre?", "bike-repair.docx"),
    ("What makes sourdough rise?", "sourdough.html"),
    ("Which animals live in rock pools at low tide?", "tide-pools.txt"),
    ("How should I clean the panels on my roof?", "solar-panels.pdf"),
]


def say(text=""):
    print(text, flush=True)


def main():
    keep = "--keep" in sys.argv
    say("== Starting a local S3 (moto, IAM enforced) and a PostgreSQL cluster with ai_loader preloaded")
    s3 = S3Server()
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.s3_force_path_style = on"],
                      env=s3.server_env())
    try:
        for key, (_, content) in DOCUMENTS.items():
            body = content if content is not None else open(os.path.join(HERE, "docs", key), "rb").read()
            s3.put(key, body)
        say(f"   uploaded {len(DOCUMENTS)} documents to s3://{BUCKET}/: {', '.join(DOCUMENTS)}")

        conn = cluster.connect()
        has_vector = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").fetchone()[0]
        if has_vector:
            conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("""CREATE TABLE document (id bigserial PRIMARY KEY, title text, uri text NOT NULL UNIQUE,
                                               updated_at timestamptz DEFAULT now())""")
        sql = f"""SELECT ai.create_vectorizer('document'::regclass,
    loading    => ai.loading_uri(column_name => 'uri', aws_role_arn => '{ROLE_ARN}'),
    embedding  => ai.embedding_local('all-MiniLM-L6-v2', 384),
    chunking   => ai.chunking_recursive_character_text_splitter(800, 400),
    formatting => ai.formatting_python_template('$title: $chunk'),
    text_indexing => ai.text_indexing_fts('english'))"""
        say("\n== Creating the vectorizer\n" + sql + ";")
        conn.execute(sql)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO document (title, uri) VALUES (%s, %s)",
                            [(title, f"s3://{BUCKET}/{key}") for key, (title, _) in DOCUMENTS.items()])
        say(f"   inserted {len(DOCUMENTS)} rows; the worker inside Postgres takes it from here\n")

        start = time.monotonic()
        last = None
        while True:
            pending, done, chunks, errors = conn.execute(
                """SELECT s.pending_items, (SELECT count(DISTINCT id) FROM document_embedding_store),
                          (SELECT count(*) FROM document_embedding_store), s.error_count
                     FROM ai.vectorizer_status s""").fetchone()
            bar = "#" * done + "." * (len(DOCUMENTS) - done)
            line = f"   [{bar}] {done}/{len(DOCUMENTS)} documents, {chunks} chunks, {pending} queued, {errors} errors"
            if sys.stdout.isatty():  # a live line; in a log, one line per change
                print(f"\r{line}, {time.monotonic() - start:4.1f}s", end="", flush=True)
            elif line != last:
                say(f"{line}, {time.monotonic() - start:4.1f}s")
            last = line
            if done == len(DOCUMENTS) and pending == 0:
                break
            if errors or time.monotonic() - start > 180:
                say("\n" + "\n".join(m for (m,) in conn.execute("SELECT message FROM ai.vectorizer_errors")))
                raise SystemExit("demo: the documents were not all embedded")
            time.sleep(0.2)
        say("\n" if sys.stdout.isatty() else "")

        search = """SELECT DISTINCT ON (d.uri) d.uri, d.title, r.score
                      FROM ai.search('public_document_embedding_store', %s, 20, 'vector') r
                      JOIN document d ON d.id = (r.key ->> 'id')::bigint
                     ORDER BY d.uri, r.score DESC"""
        say("== Semantic search: the best chunk of each document, scored 1 - cosine distance\n" + search + ";\n")
        failures = []
        for question, expected in QUESTIONS:
            rows = conn.execute(search, (question,)).fetchall()
            rows.sort(key=lambda r: -r[2])
            say(f"== {question}")
            for uri, title, score in rows[:3]:
                say(f"   {score:.3f}  {title:30}  {uri}")
            if not rows[0][0].endswith(expected):
                failures.append(f"{question!r}: expected {expected}, got {rows[0][0]}")
            say()
        if failures:
            raise SystemExit("demo: wrong answers:\n  " + "\n  ".join(failures))
        say("Every question found the document that answers it.")
        if keep:
            say(f"\nStill running. Connect with:\n  psql -h {cluster.dir} -p {cluster.port} -U postgres postgres\n"
                "Press Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        cluster.stop()
        s3.stop()


if __name__ == "__main__":
    main()
