"""`make demo`: ai_loader doing its job on this machine, with no key and no network.

It starts a throwaway PostgreSQL cluster with ai_loader preloaded and a local S3 and SQS
(moto, with IAM enforced; the bucket's event notifications go to a queue), creates the
`document` table, an S3 sync that keeps it in step with a prefix of the bucket, and a
vectorizer that loads each document through an IAM role and embeds it with the
in-process model. Then it uploads a handful of documents of every type ai_loader reads:
their events make the rows, the rows make the embeddings. It shows progress, asks
questions and prints the nearest documents, then overwrites one document in the bucket
and asks again. It fails loudly if a question's best match is not the document that
answers it. `--keep` leaves everything running and prints how to connect.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from cluster import Cluster  # noqa: E402
from documents import docx, pdf  # noqa: E402
from s3server import ACCOUNT, BUCKET, S3Server  # noqa: E402

DOCUMENTS = {
    "aurora-guide.md": None,
    "sourdough.html": None,
    "tide-pools.txt": None,
    "solar-panels.pdf": pdf(
        "Solar panels: rinse dust and pollen off the modules twice a year, keep trees trimmed so "
        "nothing shades them, and check that the inverter light is green."),
    "bike-repair.docx": docx([
        "Fixing a flat tyre on a bicycle.",
        "Lever the tyre off the rim, pull out the inner tube and find the puncture by pumping "
        "it up and listening for the hiss. Patch it or fit a new tube, then reseat the tyre.",
        "Keep the chain clean and oiled, and check the brake pads when they squeal."]),
}
COLD_BREW = (b"Cold brew coffee: steep coarse grounds in cold water for 12 to 18 hours, "
             b"then strain it and keep it in the fridge.")
PREFIX = "library/"
QUEUE = "docs-events"

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
    say("== Starting a local S3 and SQS (moto, IAM enforced) and a PostgreSQL cluster with ai_loader preloaded")
    s3 = S3Server()
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.s3_force_path_style = on"],
                      env=s3.server_env())
    try:
        # The role the server assumes may list and read the bucket and take its events.
        role = s3.add_role("DocsSyncRole", ["s3:GetObject", "s3:ListBucket", "sqs:ReceiveMessage",
                                            "sqs:DeleteMessage", "sqs:GetQueueAttributes"])
        queue_url = s3.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
        s3.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}",
                                     "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
        say(f"   bucket s3://{BUCKET}/ sends its object events to the queue {queue_url}")

        conn = cluster.connect()
        has_vector = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").fetchone()[0]
        if has_vector:
            conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("""CREATE TABLE document (id bigserial PRIMARY KEY, title text, uri text NOT NULL UNIQUE,
                                               updated_at timestamptz DEFAULT now())""")
        sql = f"""SELECT ai.create_vectorizer('document'::regclass,
    loading    => ai.loading_uri(column_name => 'uri', aws_role_arn => '{role}'),
    embedding  => ai.embedding_local('all-MiniLM-L6-v2', 384),
    chunking   => ai.chunking_recursive_character_text_splitter(800, 400),
    formatting => ai.formatting_python_template('$title: $chunk'),
    text_indexing => ai.text_indexing_fts('english'))"""
        say("\n== Creating the vectorizer\n" + sql + ";")
        conn.execute(sql)
        sync = f"""SELECT ai.create_s3_sync('document', 's3://{BUCKET}/{PREFIX}',
    aws_role_arn  => '{role}',
    sqs_queue_url => '{queue_url}',
    columns       => '{{"title": "basename"}}')"""
        say("\n== Keeping the table in step with the bucket: no row written by hand\n" + sync + ";")
        conn.execute(sync)
        for key, content in DOCUMENTS.items():
            body = content if content is not None else open(os.path.join(HERE, "docs", key), "rb").read()
            s3.put(PREFIX + key, body)
        say(f"   uploaded {len(DOCUMENTS)} documents to s3://{BUCKET}/{PREFIX}: {', '.join(DOCUMENTS)}")
        say("   their events make the rows, and the worker inside Postgres embeds them\n")

        start = time.monotonic()
        last = None
        while True:
            rows, pending, done, chunks, errors = conn.execute(
                """SELECT (SELECT count(*) FROM document), s.pending_items,
                          (SELECT count(DISTINCT id) FROM document_embedding_store),
                          (SELECT count(*) FROM document_embedding_store),
                          s.error_count + (SELECT error_count FROM ai.s3_sync_status)
                     FROM ai.vectorizer_status s""").fetchone()
            bar = "#" * done + "." * (len(DOCUMENTS) - done)
            line = (f"   [{bar}] {rows} rows, {done}/{len(DOCUMENTS)} documents embedded, {chunks} chunks, "
                    f"{pending} queued, {errors} errors")
            if sys.stdout.isatty():  # a live line; in a log, one line per change
                print(f"\r{line}, {time.monotonic() - start:4.1f}s", end="", flush=True)
            elif line != last:
                say(f"{line}, {time.monotonic() - start:4.1f}s")
            last = line
            if done == len(DOCUMENTS) and pending == 0:
                break
            if errors or time.monotonic() - start > 180:
                say("\n" + "\n".join(m for (m,) in conn.execute(
                    "SELECT message FROM ai.vectorizer_errors UNION ALL SELECT message FROM ai.s3_sync_errors")))
                raise SystemExit("demo: the documents were not all embedded")
            time.sleep(0.2)
        say("\n" if sys.stdout.isatty() else "")
        name, objects, inserted, events = conn.execute(
            "SELECT name, objects_known, rows_inserted, events_processed FROM ai.s3_sync_status").fetchone()
        say(f"   S3 sync {name}: {objects} objects known, {inserted} rows inserted, {events} events applied\n")

        search = """SELECT DISTINCT ON (d.uri) d.uri, d.title, r.score
                      FROM ai.search('public_document_embedding_store', %s, 20, 'vector') r
                      JOIN document d ON d.id = (r.key ->> 'id')::bigint
                     ORDER BY d.uri, r.score DESC"""
        say("== Semantic search: the best chunk of each document, scored 1 - cosine distance\n" + search + ";\n")
        def answers(question):
            return sorted(conn.execute(search, (question,)).fetchall(), key=lambda r: -r[2])

        failures = []
        for question, expected in QUESTIONS:
            rows = answers(question)
            say(f"== {question}")
            for uri, title, score in rows[:3]:
                say(f"   {score:.3f}  {title:30}  {uri}")
            if not rows[0][0].endswith(expected):
                failures.append(f"{question!r}: expected {expected}, got {rows[0][0]}")
            say()
        if failures:
            raise SystemExit("demo: wrong answers:\n  " + "\n  ".join(failures))
        say("Every question found the document that answers it.\n")

        # An object put again under its key: its event updates the row (to the same
        # values), and the sync queues it, so its new content is embedded.
        key, question = "tide-pools.txt", "How long should cold brew coffee steep?"
        say(f"== Overwriting s3://{BUCKET}/{PREFIX}{key} with new content")
        say(f"   before: {question}  ->  {answers(question)[0][1]}")
        s3.put(PREFIX + key, COLD_BREW)
        deadline = time.monotonic() + 60
        while not conn.execute("SELECT count(*) FROM document_embedding WHERE title = %s AND chunk = %s",
                               (key, COLD_BREW.decode())).fetchone()[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: the new content of {key} was not embedded")
            time.sleep(0.2)
        after = answers(question)[0][1]
        say(f"   after:  {question}  ->  {after}")
        if after != key:
            raise SystemExit(f"demo: after the overwrite, {question!r} found {after}, not {key}")
        say("The overwritten document answers for its new content.")
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
