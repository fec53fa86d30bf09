"""Untrusted documents and providers: what one row brings fails that row alone, and
nothing invalid reaches a table."""

import pytest

from helpers import database_for, queue_empty, scalar, wait_for


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    with database_for(preloaded, request) as conn:
        yield conn


def create(conn, embedder, column_type="text"):
    conn.execute(f"CREATE TABLE doc (id int PRIMARY KEY, body {column_type} NOT NULL)")
    return scalar(conn, """
        SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body', retries => 0),
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
            chunking => ai.chunking_none())""", (embedder.openai_url,))


def test_a_non_finite_embedding_fails_its_row_alone(db, embedder):
    """The provider answers 1e39 (infinite as f32) for one input of a batch: that row
    fails at the embedding step and moves to the failed queue; the others are stored."""
    vid = create(db, embedder)
    embedder.overflow = "overflowing"
    db.execute("INSERT INTO doc SELECT g, CASE WHEN g = 5 THEN 'an overflowing row' ELSE 'row ' || g END "
               "FROM generate_series(1, 10) g")
    wait_for(lambda: queue_empty(db, vid), what="the batch settled")
    assert [r[0] for r in db.execute("SELECT id FROM doc_embedding_store ORDER BY id")] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert db.execute("SELECT id, failure_step FROM ai._vectorizer_q_failed_1").fetchall() == [(5, "embedding")]
    message, step = db.execute("SELECT message, details ->> 'step' FROM ai.vectorizer_errors").fetchone()
    assert step == "embedding"
    assert "non-finite value (inf)" in message, message
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 1


def test_nul_characters_never_reach_a_text_column(db, embedder):
    """A bytea document holding NUL bytes: its text is stored without them, whole
    (what follows a NUL is not cut off, and the value dumps and restores as it is)."""
    vid = create(db, embedder, "bytea")
    db.execute("INSERT INTO doc VALUES (1, 'hello\\000 world\\000!'::bytea)")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1,
             what="embedded")
    chunk, chars, octets = db.execute("SELECT chunk, length(chunk), octet_length(chunk) FROM doc_embedding_store").fetchone()
    assert chunk == "hello world!"
    assert (chars, octets) == (12, 12)
