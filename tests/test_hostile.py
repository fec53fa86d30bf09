"""Untrusted documents and providers: what one row brings fails that row alone, and
nothing invalid reaches a table."""

import os
import shutil
import tempfile
import time

import pytest

import documents
from cluster import Cluster
from helpers import create_vectorizer, database_for, queue_empty, scalar, wait_for, worker_pid


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    with database_for(preloaded, request) as conn:
        yield conn


def create(conn, embedder, column_type="text", retries=0):
    conn.execute(f"CREATE TABLE doc (id int PRIMARY KEY, body {column_type} NOT NULL)")
    return create_vectorizer(conn, embedder, chunking="ai.chunking_none()", template="$chunk",
                             loading=f"ai.loading_column('body', retries => {retries})")


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


def test_an_oversized_answer_fails_the_batch_not_the_worker(db, embedder):
    """The provider streams 100 MB for every request of one embedding: the worker reads
    no more than such an answer can take, the batch waits (nothing consumed, the probe
    fails too) with an error row saying why, and is embedded once the provider answers
    properly."""
    vid = create(db, embedder)
    pid = wait_for(lambda: worker_pid(db), what="the worker")
    embedder.set("huge")
    db.execute("INSERT INTO doc VALUES (1, 'asked for once')")
    message = wait_for(lambda: scalar(db, "SELECT max(message) FROM ai.vectorizer_errors"), what="an error row")
    assert "the provider's answer is larger than 1049856 bytes" in message, message
    assert scalar(db, "SELECT max(loading_retries) FROM ai._vectorizer_q_1") == 0
    embedder.set("ok")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1,
             timeout=30, what="embedded once the provider answers properly")
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0
    assert worker_pid(db) == pid
    assert peak_memory(pid) < 200, f"worker peak memory {peak_memory(pid):.0f} MiB"


def test_a_provider_answering_too_few_embeddings_consumes_nothing(db, embedder):
    """Every answer holds one embedding fewer than the inputs (the probe's too): the
    provider's fault, so the rows wait without spending a retry, and are embedded once
    it answers in full."""
    vid = create(db, embedder, retries=1)
    embedder.set("fewer")
    db.execute("INSERT INTO doc SELECT g, 'row ' || g FROM generate_series(1, 5) g")
    message = wait_for(lambda: scalar(db, "SELECT max(message) FROM ai.vectorizer_errors"), what="an error row")
    assert "the provider returned 4 embeddings for 5 inputs" in message, message
    assert scalar(db, "SELECT max(loading_retries) FROM ai._vectorizer_q_1") == 0
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0
    embedder.set("ok")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 5,
             what="embedded once the provider answers in full")


def test_a_row_the_provider_keeps_failing_on_fails_alone(db, embedder):
    """The provider answers 500 to every request holding one row's input and embeds
    everything else (it answers the worker's probe): that row spends its retries and
    moves to the failed queue with the last error; the rest of its batch is embedded.
    (A provider failing every request spends no retry: test_worker's outage test.)"""
    vid = create(db, embedder, retries=1)
    embedder.crash = "crashes the provider"
    db.execute("INSERT INTO doc SELECT g, CASE WHEN g = 4 THEN 'this one crashes the provider' ELSE 'row ' || g END "
               "FROM generate_series(1, 10) g")
    wait_for(lambda: queue_empty(db, vid), timeout=90, interval=0.25, what="the batch settled")
    assert [r[0] for r in db.execute("SELECT id FROM doc_embedding_store ORDER BY id")] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert db.execute("SELECT id, failure_step FROM ai._vectorizer_q_failed_1").fetchall() == [(4, "embedding")]
    attempts = db.execute("""SELECT (details ->> 'attempt')::int, details ->> 'moved_to_failed_queue', message
                               FROM ai.vectorizer_errors ORDER BY recorded""").fetchall()
    assert [(a, moved) for a, moved, _ in attempts] == [(1, "false"), (2, "true")], attempts
    assert all("HTTP 500" in m and "the provider embeds other inputs" in m for _, _, m in attempts), attempts


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


def test_special_files_fail_alone_and_a_fast_shutdown_is_fast(embedder):
    """Under ai_loader.file_root, a FIFO and a directory are refused before they are
    opened (a FIFO would block the read forever) while a regular file beside them is
    embedded; and with a batch hung on the provider, pg_ctl stop -m fast takes moments."""
    embedder.reset()
    root = tempfile.mkdtemp(prefix="ai_loader_files.")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "ok.txt"), "w") as f:
        f.write("A regular file.")
    os.mkfifo(os.path.join(root, "pipe"))
    os.mkdir(os.path.join(root, "dir"))
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.request_timeout = '3s'",
                       f"ai_loader.file_root = '{root}'", embedder.key_setting],
                      env={"OPENAI_API_KEY": embedder.api_key})
    try:
        db = cluster.connect()
        db.execute("CREATE EXTENSION ai_loader")
        db.execute("CREATE TABLE doc (id int PRIMARY KEY, uri text NOT NULL)")
        vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()", template="$chunk",
                                loading="ai.loading_uri('uri', retries => 0)")
        db.execute("INSERT INTO doc VALUES (1, %s), (2, %s), (3, %s)",
                   tuple(f"file://{root}/{name}" for name in ("pipe", "ok.txt", "dir")))
        wait_for(lambda: queue_empty(db, vid), what="the batch settled")
        assert db.execute("SELECT id, chunk FROM doc_embedding_store").fetchall() == [(2, "A regular file.")]
        failed = db.execute("SELECT id, failure_step FROM ai._vectorizer_q_failed_1 ORDER BY id").fetchall()
        assert failed == [(1, "loading"), (3, "loading")]
        messages = [m for (m,) in db.execute("SELECT message FROM ai.vectorizer_errors ORDER BY message")]
        assert all("is not a regular file (a directory, FIFO, socket or device)" in m for m in messages), messages

        embedder.set("hang")
        db.execute("INSERT INTO doc VALUES (4, %s)", (f"file://{root}/ok.txt",))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ai_loader worker' "
                                    "AND query LIKE '%embedding 1 rows'"), what="a batch on the network")
        db.close()
        started = time.monotonic()
        cluster.shutdown()
        assert time.monotonic() - started < 5, "pg_ctl stop -m fast waited on the worker"
        assert "ai_loader worker stopping; the rows it had claimed are queued again" in cluster.log()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def peak_memory(pid):
    """A process's peak resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def limited_cluster(embedder, *settings):
    """A cluster whose processes may each map 4 GiB: a worker running away fails (and
    the test with it) instead of the machine."""
    embedder.reset()
    return Cluster(["shared_preload_libraries = 'ai_loader'", embedder.key_setting, *settings],
                   env={"OPENAI_API_KEY": embedder.api_key}, address_space=4 << 30)


def test_chunking_stays_within_its_budget(embedder):
    """1 MB of text without a space, split into chunks of 800 characters overlapping by
    799 (each chunk one character after the one before: 800 MB of chunks): the document
    fails at its chunks' budget, the worker stays small, and a text beside it is
    embedded."""
    cluster = limited_cluster(embedder)
    try:
        db = cluster.connect()
        db.execute("CREATE EXTENSION ai_loader")
        db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        vid = create_vectorizer(db, embedder, chunking="ai.chunking_recursive_character_text_splitter(800, 799)",
                                template="$chunk", loading="ai.loading_column('body', retries => 0)")
        pid = wait_for(lambda: worker_pid(db), what="the worker")
        db.execute("INSERT INTO doc VALUES (1, repeat('x', 1000000)), (2, 'A short text.')")
        wait_for(lambda: queue_empty(db, vid), timeout=120, interval=0.5, what="the batch settled")
        assert db.execute("SELECT id, chunk FROM doc_embedding_store").fetchall() == [(2, "A short text.")]
        message = scalar(db, "SELECT message FROM ai.vectorizer_errors")
        assert "the document's chunks would hold more than 50331648 bytes" in message, message
        assert scalar(db, "SELECT failure_step FROM ai._vectorizer_q_failed_1 WHERE id = 1") == "chunking"
        assert peak_memory(pid) < 1024, f"worker peak memory {peak_memory(pid):.0f} MiB"
        db.close()
        assert "reinitializing" not in cluster.log()
    finally:
        cluster.stop()


def test_hostile_documents_fail_alone_within_bounded_memory(embedder):
    """Bombs and monsters in one batch with good documents, the server's processes
    limited to 4 GiB of address space each: each hostile document ends as its own
    parsing failure, the good ones are embedded, the worker's peak memory stays under
    1 GiB, and nothing resets the cluster."""
    cluster = limited_cluster(embedder, "ai_loader.parse_timeout = '10s'")
    hostile = {
        1: ("a DOCX of 20 million empty paragraphs", documents.docx_bomb("<w:p/>", 20_000_000)),
        2: ("a DOCX inflating to 1 GiB of spaces", documents.docx_bomb(" ", 1 << 30)),
        3: ("a PDF whose stream inflates to 1 GiB", documents.pdf_bomb(1 << 30)),
        4: ("HTML nested 100,000 deep", b"<html><body>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000),
        5: ("60 MB of text", b"many words " * 6_000_000),
    }
    good = {6: documents.docx(["A good document."]), 7: documents.pdf("A good PDF."), 8: b"A good text."}
    try:
        db = cluster.connect()
        db.execute("CREATE EXTENSION ai_loader")
        vid = create(db, embedder, "bytea")
        pid = wait_for(lambda: worker_pid(db), what="the worker")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO doc VALUES (%s, %s)",
                            [(k, v) for k, (_, v) in hostile.items()] + list(good.items()))
        wait_for(lambda: queue_empty(db, vid), timeout=120, interval=0.5, what="the batch settled")
        stored = db.execute("SELECT id, chunk FROM doc_embedding_store ORDER BY id").fetchall()
        errors = dict(db.execute("SELECT (details -> 'key' ->> 'id')::int, message FROM ai.vectorizer_errors"))
        assert stored == [(6, "A good document."), (7, "A good PDF."), (8, "A good text.")], (stored, errors)
        failed = dict(db.execute("SELECT id, failure_step FROM ai._vectorizer_q_failed_1").fetchall())
        assert failed == {k: "parsing" for k in hostile}
        for k, (what, _) in hostile.items():  # each stopped by a bound, whichever came first
            print(f"{what}: {errors[k]}")
        for k in (1, 2, 3):
            assert any(bound in errors[k] for bound in ("ai_loader.parse_memory", "ai_loader.parse_timeout")), \
                (hostile[k][0], errors[k])
        assert "its elements nest more than 5000 deep" in errors[4], errors[4]
        assert "ai_loader.max_document_text" in errors[5], errors[5]
        print(f"worker peak memory: {peak_memory(pid):.0f} MiB")
        assert worker_pid(db) == pid, "the same worker served the whole batch"
        assert peak_memory(pid) < 1024, f"worker peak memory {peak_memory(pid):.0f} MiB"
        db.close()
        log = cluster.log()
        assert "terminated by signal" not in log and "reinitializing" not in log
    finally:
        cluster.stop()


def test_error_rows_are_bounded(db, embedder):
    """Each vectorizer keeps its newest 10,000 error rows: older ones go as new ones come."""
    vid = create(db, embedder)
    db.execute("""INSERT INTO ai._vectorizer_errors (id, message, details, recorded)
                  SELECT %s, 'old ' || g, '{}', now() - interval '1 day' + g * interval '1 ms'
                    FROM generate_series(1, 10005) g""", (vid,))
    embedder.overflow = "overflowing"
    db.execute("INSERT INTO doc VALUES (1, 'an overflowing row')")
    wait_for(lambda: queue_empty(db, vid), what="the row failed")
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_errors WHERE id = %s", (vid,)) == 10_000
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_errors WHERE message LIKE '%%non-finite%%'") == 1
    kept = {m for (m,) in db.execute("SELECT message FROM ai._vectorizer_errors WHERE message LIKE 'old %%'")}
    assert kept == {f"old {g}" for g in range(7, 10006)}  # the six oldest went
