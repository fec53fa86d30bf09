"""embedding_local: all-MiniLM-L6-v2 inside the worker, checked against an independent
NumPy implementation of the same model on the same weights."""

import os
import subprocess

import numpy as np
import pytest

from helpers import new_database, queue_empty, scalar, threads, threads_taking_signals, wait_for, worker_pid
from minilm_reference import MiniLM

SHAREDIR = subprocess.run(["/usr/lib/postgresql/15/bin/pg_config", "--sharedir"],
                          check=True, capture_output=True, text=True).stdout.strip()
MODEL_DIR = os.path.join(SHAREDIR, "extension", "ai_loader", "models", "all-MiniLM-L6-v2")

SENTENCES = [
    "The cat sits on the mat.",
    "PostgreSQL stores embeddings next to the rows they describe.",
    "Köln, Zürich and São Paulo — cities with diacritics.",
    "日本語のテキストも埋め込めます。",
    "emoji 🚀🔥 and symbols ∑∫√",
    "a",
    "?!",
    "How do I reset my password if I no longer have access to my email?",
    "UPPER CASE AND lower case are the same to an uncased model",
    " ".join(f"word{i} filler text that goes on" for i in range(120)),  # past 256 tokens
]


@pytest.fixture(scope="module")
def reference():
    return MiniLM(MODEL_DIR)


def test_local_vectors_match_an_independent_implementation(preloaded, reference):
    db = new_database(preloaded, "local_model")
    try:
        db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        vid = scalar(db, """SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
            embedding => ai.embedding_local(), chunking => ai.chunking_none())""")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO doc VALUES (%s, %s)", list(enumerate(SENTENCES)))
        wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == len(SENTENCES),
                 timeout=120, what="every sentence embedded by the local model")
        stored = dict(db.execute("SELECT id, embedding FROM doc_embedding_store").fetchall())
        for i, sentence in enumerate(SENTENCES):
            ours = np.array(stored[i], dtype=np.float64)
            theirs = reference.embed(sentence)
            assert len(ours) == 384
            assert abs(np.linalg.norm(ours) - 1.0) < 1e-4
            cosine = float(ours @ theirs / np.linalg.norm(ours))
            assert cosine >= 0.999, (sentence[:40], cosine)
    finally:
        db.close()


def test_the_models_threads_take_no_signal(preloaded):
    """ONNX Runtime starts threads of its own, in the worker and in a backend embedding a
    query: like the pipeline's (test_worker.py), they block every signal Postgres handles."""
    with preloaded.connect() as admin:
        admin.execute("ALTER SYSTEM SET ai_loader.model_threads = 2")  # a pool of its own
        admin.execute("SELECT pg_reload_conf()")
    wait_for(lambda: preloaded.connect().execute("SHOW ai_loader.model_threads").fetchone()[0] == "2",
             what="the setting loaded")
    db = new_database(preloaded, "model_threads")
    try:
        db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        vid = scalar(db, """SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
            embedding => ai.embedding_local(), chunking => ai.chunking_none())""")
        db.execute("INSERT INTO doc VALUES (1, 'a sentence for the worker')")
        wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1,
                 timeout=120, what="the row embedded by the local model")
        assert len(scalar(db, "SELECT ai.vectorizer_embed(%s, 'a query for this backend')", (vid,))) == 384
        for pid in (worker_pid(db), scalar(db, "SELECT pg_backend_pid()")):
            assert len(threads(pid)) >= 2, "the model's threads and the pipeline's"
            assert threads_taking_signals(pid) == {}
    finally:
        db.close()
        with preloaded.connect() as admin:
            admin.execute("ALTER SYSTEM RESET ai_loader.model_threads")
            admin.execute("SELECT pg_reload_conf()")


def test_a_missing_model_is_refused_at_create_time(preloaded):
    db = new_database(preloaded, "no_model")
    try:
        db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        with preloaded.connect() as admin:
            admin.execute("ALTER SYSTEM SET ai_loader.model_dir = '/nonexistent/models'")
            admin.execute("SELECT pg_reload_conf()")
        try:
            wait_for(lambda: preloaded.connect("no_model").execute("SHOW ai_loader.model_dir").fetchone()[0]
                     == "/nonexistent/models", what="the setting reloaded")
            with preloaded.connect("no_model") as conn:
                with pytest.raises(Exception) as err:
                    conn.execute("SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),"
                                 " embedding => ai.embedding_local(), chunking => ai.chunking_none())")
                assert err.value.sqlstate == "58P01"
                assert "/nonexistent/models/all-MiniLM-L6-v2/tokenizer.json is missing" in str(err.value)
                assert "make setup" in err.value.diag.message_hint
        finally:
            with preloaded.connect() as admin:
                admin.execute("ALTER SYSTEM RESET ai_loader.model_dir")
                admin.execute("SELECT pg_reload_conf()")
    finally:
        db.close()
