"""The worker, end to end: a real cluster with ai_loader preloaded, the embedding test
server, and LangChain's splitter as the reference for the chunks."""

import random

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from embedder import vector
from helpers import new_database, queue_empty, scalar, wait_for

WORDS = ("vector store postgres embedding chunk document bucket object worker queue "
         "latency throughput index search semantic model token batch retry failure").split()


def document(rng, n):
    """A document of `n` sentences in a few paragraphs."""
    paragraphs = []
    while n > 0:
        k = min(n, rng.randint(1, 6))
        paragraphs.append(" ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18))).capitalize() + rng.choice(".?!")
            for _ in range(k)))
        n -= k
    return "\n\n".join(paragraphs)


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    conn = new_database(preloaded, request.node.name[:60])
    yield conn
    conn.close()


def create(conn, embedder, table="doc", chunking="ai.chunking_recursive_character_text_splitter(200, 50)",
           template="$title: $chunk", loading="ai.loading_column('body')", extra=""):
    return scalar(conn, f"""
        SELECT ai.create_vectorizer('{table}'::regclass, loading => {loading},
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
            chunking => {chunking},
            formatting => ai.formatting_python_template('{template}') {extra})""", (embedder.openai_url,))


def store(conn, table="doc_embedding_store"):
    rows = conn.execute(f"SELECT id, chunk_seq, chunk, embedding FROM {table} ORDER BY id, chunk_seq").fetchall()
    out = {}
    for id_, seq, chunk, emb in rows:
        out.setdefault(id_, []).append((seq, chunk, emb))
    return out


def test_rows_are_embedded_as_langchain_splits_them(db, embedder):
    rng = random.Random(7)
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    rows = [(i, f"Doc {i}", document(rng, rng.randint(1, 30))) for i in range(1, 201)]
    vid = create(db, embedder)
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s, %s)", rows)
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 200, timeout=60, what="200 rows embedded")

    splitter = RecursiveCharacterTextSplitter(chunk_size=200, chunk_overlap=50,
                                              separators=["\n\n", "\n", ".", "?", "!", " ", ""])
    embedded = store(db)
    for id_, title, body in rows:
        expected = splitter.split_text(body)
        got = embedded[id_]
        assert [c for _, c, _ in got] == expected, f"row {id_}"
        assert [s for s, _, _ in got] == list(range(len(expected)))
        for _, chunk, emb in got:
            assert len(emb) == 8
            assert emb == pytest.approx(vector(f"{title}: {chunk}", 8), abs=1e-6)
    status = db.execute("SELECT pending_items, success_count, error_count FROM ai.vectorizer_status").fetchone()
    assert status == (0, 200, 0)
