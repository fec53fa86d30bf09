"""loading_uri against moto's S3 and STS with IAM enforced: the seed's SQL as written,
assumed-role credentials, per-document failures, an S3 outage, unchanged objects."""

import re

import psycopg

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from helpers import document_database, queue_empty, s3_cluster, scalar, wait_for
from documents import docx, pdf
from s3server import BUCKET, ROLE_ARN

SPLITTER = RecursiveCharacterTextSplitter(chunk_size=200, chunk_overlap=50,
                                          separators=["\n\n", "\n", ".", "?", "!", " ", ""])


@pytest.fixture(scope="module")
def cluster(s3, embedder):
    c = s3_cluster(s3, embedder, "ai_loader.max_object_bytes = '1MB'")
    yield c
    c.stop()


@pytest.fixture
def db(cluster, embedder, request):
    with document_database(cluster, embedder, request) as conn:
        yield conn


def vectorize(conn, embedder, role=True, retries=6):
    arn = f", aws_role_arn => '{ROLE_ARN}'" if role else ""
    return scalar(conn, f"""
        SELECT ai.create_vectorizer('document'::regclass,
            loading => ai.loading_uri(column_name => 'uri', retries => {retries}{arn}),
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
            chunking => ai.chunking_recursive_character_text_splitter(200, 50),
            formatting => ai.formatting_python_template('$title: $chunk'))""", (embedder.openai_url,))


def chunks(conn):
    out = {}
    for title, seq, chunk in conn.execute(
            "SELECT title, chunk_seq, chunk FROM document_embedding ORDER BY title, chunk_seq").fetchall():
        out.setdefault(title, []).append(chunk)
    return out


def insert(conn, rows):
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO document (title, uri) VALUES (%s, %s)", rows)


def errors(conn):
    return dict(conn.execute("SELECT d.title, e.message FROM ai.vectorizer_errors e "
                             "JOIN document d ON d.id::text = e.details -> 'key' ->> 'id'").fetchall())


def worker_calls(cluster):
    """(GetObject requests, AssumeRole calls) as the worker last logged them."""
    counts = re.findall(r"(\d+) S3 GetObject request\(s\), (\d+) AssumeRole call", cluster.log())
    return tuple(map(int, counts[-1])) if counts else (0, 0)


GUIDE = "# Guide\n\n" + "\n\n".join(f"Section {i}. Vectors live in Postgres and S3 holds the documents." for i in range(12))


def test_the_seed_sql_with_an_assumed_role(cluster, s3, embedder, db):
    s3.put("guide.md", GUIDE.encode())
    s3.put("notes.txt", b"\xef\xbb\xbfPlain notes, with a byte-order mark.")
    s3.put("page.html", b"<html><body><h1>Title</h1><p>Some <b>HTML</b> text.</p><script>x()</script></body></html>")
    s3.put("report.pdf", pdf("Quarterly report in a PDF"))
    s3.put("a dir/\u00fcn\u00efcode file.md", "K\u00f6ln \u2014 unicode key".encode())
    s3.put("manual.docx", docx(["A Word manual.", "Its second paragraph."]))
    before = worker_calls(cluster)
    vid = vectorize(db, embedder)
    insert(db, [("Guide", f"s3://{BUCKET}/guide.md"), ("Notes", f"s3://{BUCKET}/notes.txt"),
                ("Page", f"s3://{BUCKET}/page.html"), ("Report", f"s3://{BUCKET}/report.pdf"),
                ("Unicode", f"https://{BUCKET}.s3.us-east-1.amazonaws.com/a%20dir/%C3%BCn%C3%AFcode%20file.md"),
                ("Manual", f"s3://{BUCKET}/manual.docx")])
    wait_for(lambda: queue_empty(db, vid) and len(chunks(db)) == 6, what="six documents embedded")
    got = chunks(db)
    assert got["Guide"] == SPLITTER.split_text(GUIDE)
    assert got["Notes"] == ["Plain notes, with a byte-order mark."]
    assert "Title" in got["Page"][0] and "Some HTML text." in got["Page"][0] and "x()" not in got["Page"][0]
    assert got["Report"] == ["Quarterly report in a PDF"]
    assert got["Unicode"] == ["K\u00f6ln \u2014 unicode key"]
    assert got["Manual"] == ["A Word manual.\n\nIts second paragraph."]
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0

    # A hundred more documents: the role's credentials are cached, not assumed per document.
    for i in range(100):
        s3.put(f"bulk/{i}.txt", f"bulk document {i}".encode())
    insert(db, [(f"Bulk {i}", f"s3://{BUCKET}/bulk/{i}.txt") for i in range(100)])
    wait_for(lambda: queue_empty(db, vid) and len(chunks(db)) == 106, what="106 documents embedded")
    wait_for(lambda: worker_calls(cluster)[0] - before[0] == 106, what="106 GetObject requests logged")
    assert worker_calls(cluster)[1] - before[1] == 1


def test_without_the_role_access_is_denied(cluster, s3, embedder, db):
    s3.put("private.md", b"not for the server's own keys")
    vid = vectorize(db, embedder, role=False, retries=1)
    insert(db, [("Private", f"s3://{BUCKET}/private.md")])
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 1, timeout=30,
             what="the row in the failed queue after its retry")
    messages = [m for (m,) in db.execute("SELECT message FROM ai.vectorizer_errors").fetchall()]
    assert len(messages) == 2
    assert all("AccessDenied" in m and "s3:GetObject on arn:aws:s3:::docs/private.md" in m for m in messages)
    assert all("AKIA" not in m and "Signature" not in m for m in messages)
    assert queue_empty(db, vid) and chunks(db) == {}


def test_each_bad_document_fails_alone(cluster, s3, embedder, db):
    s3.put("good1.md", b"first good document")
    s3.put("good2.md", b"second good document")
    s3.put("big.txt", b"x" * (2 * 1024 * 1024))
    s3.put("corrupt.pdf", b"%PDF-1.7\nthis is not really a pdf")
    s3.put("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"))
    vid = vectorize(db, embedder, retries=0)
    insert(db, [("Good 1", f"s3://{BUCKET}/good1.md"), ("Missing key", f"s3://{BUCKET}/nope.md"),
                ("Missing bucket", "s3://no-such-bucket/x.md"), ("Big", f"s3://{BUCKET}/big.txt"),
                ("Corrupt", f"s3://{BUCKET}/corrupt.pdf"), ("Latin-1", f"s3://{BUCKET}/latin1.txt"),
                ("Bad URI", "ftp://example.com/x.md"), ("Good 2", f"s3://{BUCKET}/good2.md")])
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 6, what="six failures")
    assert sorted(chunks(db)) == ["Good 1", "Good 2"]
    e = errors(db)
    assert "does not exist (NoSuchKey)" in e["Missing key"]
    assert 'bucket "no-such-bucket" does not exist (NoSuchBucket)' in e["Missing bucket"]
    assert "larger than ai_loader.max_object_bytes" in e["Big"] and "2097152 bytes" in e["Big"]
    assert e["Corrupt"].startswith("parsing failed: PDF could not be read")
    assert "content is not UTF-8 text" in e["Latin-1"]
    assert 'unsupported URI scheme "ftp"' in e["Bad URI"]
    steps = dict(db.execute("SELECT d.title, f.failure_step FROM ai._vectorizer_q_failed_1 f "
                            "JOIN document d USING (id)").fetchall())
    assert steps == {"Missing key": "loading", "Missing bucket": "loading", "Big": "loading",
                     "Corrupt": "parsing", "Latin-1": "parsing", "Bad URI": "loading"}
    assert queue_empty(db, vid)


def test_an_s3_outage_loses_nothing(cluster, s3, embedder, db):
    for i in range(10):
        s3.put(f"outage/{i}.md", f"document {i} survives the outage".encode())
    vid = vectorize(db, embedder, retries=0)  # no retries to spend: only waiting can save them
    s3.pause()
    try:
        insert(db, [(f"Doc {i}", f"s3://{BUCKET}/outage/{i}.md") for i in range(10)])
        wait_for(lambda: scalar(db, "SELECT count(*) FROM ai.vectorizer_errors WHERE (details ->> 'batch')::bool"),
                 timeout=60, what="the outage recorded for the batch")
        assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 10
    finally:
        s3.resume()
    wait_for(lambda: queue_empty(db, vid) and len(chunks(db)) == 10, timeout=90, what="all embedded after S3 returns")
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0


def test_an_unchanged_object_is_not_embedded_again(cluster, s3, embedder, db):
    s3.put("living.md", b"version one")
    vid = vectorize(db, embedder)
    insert(db, [("Living", f"s3://{BUCKET}/living.md")])
    wait_for(lambda: chunks(db) == {"Living": ["version one"]}, what="the first version embedded")
    calls = len(embedder.statuses())

    db.execute("UPDATE document SET updated_at = now()")  # touched, object unchanged
    wait_for(lambda: queue_empty(db, vid), what="the touched row processed")
    assert len(embedder.statuses()) == calls
    assert chunks(db) == {"Living": ["version one"]}

    s3.put("living.md", b"version two")
    db.execute("UPDATE document SET updated_at = now()")
    wait_for(lambda: chunks(db) == {"Living": ["version two"]}, what="the new version embedded")
    assert len(embedder.statuses()) == calls + 1


def check(conn, uri, role=None):
    rows = conn.execute("SELECT step, ok, detail, hint FROM ai.check_s3_access(%s, aws_role_arn => %s)",
                        (uri, role)).fetchall()
    return {step: (ok, detail, hint) for step, ok, detail, hint in rows}


def test_check_s3_access_pinpoints_each_failure(cluster, s3, db):
    s3.put("checked.md", b"twelve bytes")
    ok = check(db, f"s3://{BUCKET}/checked.md", ROLE_ARN)
    assert [ok[s][0] for s in ("uri", "credentials", "role", "bucket", "object")] == [True] * 5, ok
    assert ok["credentials"][1] == "found, from the environment (AWS_ACCESS_KEY_ID) [EnvironmentVariable]"
    assert ok["object"][1] == f"s3://{BUCKET}/checked.md: 12 bytes, binary/octet-stream"
    assert all(s3.server_key[0] not in str(v) and s3.server_key[1] not in str(v) for v in ok.values())

    # The server's own keys: no S3 permissions at all.
    own = check(db, f"s3://{BUCKET}/checked.md")
    assert own["role"][0] is None
    assert own["bucket"][0] is False and "s3:ListBucket on arn:aws:s3:::docs" in own["bucket"][2]
    assert own["object"][0] is False and "s3:GetObject on arn:aws:s3:::docs/checked.md" in own["object"][2]

    # A role the server may not assume.
    wrong = check(db, f"s3://{BUCKET}/checked.md", "arn:aws:iam::123456789012:role/NotTrusted")
    assert wrong["role"][0] is False and "sts:AssumeRole on arn:aws:iam::123456789012:role/NotTrusted" in wrong["role"][2]
    assert wrong["bucket"][0] is None and wrong["object"][0] is None

    missing = check(db, f"s3://{BUCKET}/nope.md", ROLE_ARN)
    assert missing["object"][0] is False and "does not exist (NoSuchKey)" in missing["object"][1]
    no_bucket = check(db, "s3://no-such-bucket/x.md", ROLE_ARN)
    assert no_bucket["bucket"][0] is False and "NoSuchBucket" in no_bucket["bucket"][1]
    assert no_bucket["object"][0] is None

    bad = check(db, "ftp://x/y")
    assert bad["uri"][0] is False and list(bad) == ["uri"]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        check(db, f"s3://{BUCKET}/checked.md", "not-an-arn")
    # Not for everyone: it uses the server's credentials.
    db.execute("CREATE ROLE someone")
    try:
        db.execute("SET ROLE someone")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            check(db, f"s3://{BUCKET}/checked.md")
    finally:
        db.execute("RESET ROLE")
        db.execute("DROP ROLE someone")


def test_check_s3_access_honours_statement_timeout(cluster, s3, db):
    s3.pause()
    try:
        db.execute("SET statement_timeout = '500ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            check(db, f"s3://{BUCKET}/checked.md")
    finally:
        s3.resume()
        db.execute("RESET statement_timeout")


TOPICS = {
    "cats.md": "Cats are small domesticated felines. They purr, chase mice and sleep most of the day.",
    "postgres.md": "PostgreSQL is a relational database. It supports SQL queries, indexes and transactions.",
    "bread.md": "To bake bread, mix flour, water, yeast and salt, knead the dough, let it rise, then bake.",
}


@pytest.mark.parametrize("pgvector", [True, False])
def test_semantic_search_with_the_local_model(cluster, s3, db, pgvector):
    for key, text in TOPICS.items():
        s3.put(f"topics/{key}", text.encode())
    if pgvector:
        db.execute("DROP EXTENSION ai_loader")
        db.execute("DROP SCHEMA ai")
        db.execute("CREATE EXTENSION vector")
        db.execute("CREATE EXTENSION ai_loader")
    vid = scalar(db, f"""SELECT ai.create_vectorizer('document'::regclass, name => 'docs',
        loading => ai.loading_uri('uri', aws_role_arn => '{ROLE_ARN}'),
        embedding => ai.embedding_local('all-MiniLM-L6-v2', 384))""")
    insert(db, [(key.split(".")[0], f"s3://{BUCKET}/topics/{key}") for key in TOPICS])
    wait_for(lambda: queue_empty(db, vid) and len(chunks(db)) == 3, timeout=60, what="three documents embedded")
    if pgvector:
        top = """SELECT title, embedding <=> ai.vectorizer_embed('docs', %s) AS distance
                   FROM document_embedding ORDER BY distance LIMIT 1"""
        assert scalar(db, "SELECT pg_typeof(ai.vectorizer_embed('docs', 'x'))::text") == "vector"
    else:
        top = """SELECT title, ai.cosine_distance(embedding, ai.vectorizer_embed('docs', %s)) AS distance
                   FROM document_embedding ORDER BY distance LIMIT 1"""
        assert scalar(db, "SELECT pg_typeof(ai.vectorizer_embed('docs', 'x'))::text") == "real[]"
    for question, expected in [("Which animal purrs?", "cats"),
                               ("How do I run a SQL query on a database?", "postgres"),
                               ("What do I need to make a loaf of bread?", "bread")]:
        title, distance = db.execute(top, (question,)).fetchone()
        assert title == expected, (question, title, distance)
        assert 0 <= distance < 1
    # The query's vector is the documents' model's: a document's own text is nearest itself.
    same = scalar(db, "SELECT ai.cosine_distance(ai.vectorizer_embed('docs', %s)::real[], "
                      "ai.vectorizer_embed(%s, %s)::real[])", (TOPICS["cats.md"], vid, TOPICS["cats.md"]))
    assert same < 1e-6
