"""Search, end to end: a query embeds its text once whatever the plan, the worker
builds the vector index by its rule, and ai.search answers in the three modes."""

import os
import re

import psycopg
import pytest

from helpers import create_vectorizer, database_for, queue_empty, scalar, wait_for, worker_pid


@pytest.fixture
def db(preloaded, embedder, request):
    embedder.reset()
    with database_for(preloaded, request) as conn:
        conn.execute("CREATE EXTENSION vector")
        yield conn


def requests(embedder):
    return len(embedder.requests)


def fill(conn, rows, start=1):
    """`rows` source rows with their chunk in the store, as if embedded (8 dimensions), in
    one transaction: the worker, which embeds the rows queued, never meets a chunk
    written after it claimed its row."""
    with conn.transaction():
        conn.execute("""
            INSERT INTO doc (id, title, body)
            SELECT i, 'Doc ' || i, 'body ' || i FROM generate_series(%s::int, %s::int - 1) i""",
                     (start, start + rows))
        conn.execute("""
            INSERT INTO doc_embedding_store (id, chunk_seq, chunk, embedding)
            SELECT i, 0, 'body ' || i,
                   (SELECT array_agg(sin(i * 7 + d))::vector FROM generate_series(1, 8) d)
              FROM generate_series(%s::int, %s::int - 1) i""", (start, start + rows))


def idle(conn):
    """Waits until the database's worker has finished a round (and checked its rules)."""
    wait_for(lambda: scalar(conn, "SELECT query FROM pg_stat_activity WHERE pid = %s",
                            (worker_pid(conn),)) == "idle", what="the worker idle")


def embedded(conn, id_):
    return scalar(conn, "SELECT count(*) FROM doc_embedding_store WHERE id = %s", (id_,)) > 0


def index_built(conn, vid):
    return conn.execute("SELECT vector_index, vector_index_built_at IS NOT NULL FROM ai.vectorizer_status "
                        "WHERE id = %s", (vid,)).fetchone()


# The documented query shapes, on the store and on the view, with each overload.
SHAPES = {
    "store": "SELECT id, chunk FROM doc_embedding_store ORDER BY embedding <=> {embed} LIMIT 3",
    "view": "SELECT id, title, chunk FROM doc_embedding ORDER BY embedding <=> {embed} LIMIT 3",
}
OVERLOADS = {
    "name": "ai.vectorizer_embed('public_doc_embedding_store', %(q)s)",
    "id": "ai.vectorizer_embed(%(vid)s, %(q)s)",
    "config": "ai.vectorizer_embed(ai.embedding_openai('test-embedding', 8, base_url => %(url)s), %(q)s)",
}


def each_query(conn, embedder, vid, tag):
    """Runs every shape with every overload (a new query text each time); returns
    {(shape, overload): (requests made, ids found)}."""
    out = {}
    for shape, sql in SHAPES.items():
        for overload, embed in OVERLOADS.items():
            before = requests(embedder)
            rows = conn.execute(sql.format(embed=embed), {"q": f"{tag} {shape} {overload}", "vid": vid,
                                                          "url": embedder.openai_url}).fetchall()
            out[(shape, overload)] = (requests(embedder) - before, [r[0] for r in rows])
    return out


def test_a_query_embeds_its_text_once_with_a_scan_or_the_index(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()", extra=""",
        indexing => ai.indexing_hnsw(min_rows => 10000, m => 8, ef_construction => 32),
        enqueue_existing => false""")
    fill(db, 9_998)
    db.execute("INSERT INTO doc VALUES (9999, 'Doc 9999', 'body 9999')")
    wait_for(lambda: embedded(db, 9999), what="row 9999 embedded")
    # The embedder's requests are counted below: the worker has none left to make.
    wait_for(lambda: queue_empty(db, vid), timeout=120, what="the queue empty")
    idle(db)
    assert index_built(db, vid) == (None, False), "9,999 rows: below min_rows"

    # A sequential scan evaluates the ORDER BY expression for every one of the rows.
    with db.transaction():
        db.execute("SET LOCAL enable_indexscan = off")
        plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + SHAPES["store"].format(embed=OVERLOADS["id"]),
                                                  {"q": "x", "vid": vid}))
        assert "Seq Scan on doc_embedding_store" in plan, plan
        counts = each_query(db, embedder, vid, "scan")
    assert {k: n for k, (n, _) in counts.items()} == {k: 1 for k in counts}, counts
    assert all(len(ids) == 3 for _, ids in counts.values())

    db.execute("INSERT INTO doc VALUES (10000, 'Doc 10000', 'body 10000')")
    built = wait_for(lambda: index_built(db, vid)[1] and index_built(db, vid), timeout=120, what="the index")
    assert built == ("doc_embedding_store_embedding_idx", True)
    indexdef = scalar(db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'doc_embedding_store_embedding_idx'")
    assert "USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')" in indexdef, indexdef
    assert scalar(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'doc_embedding_store_embedding_idx'::regclass")

    plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + SHAPES["store"].format(embed=OVERLOADS["name"]),
                                              {"q": "x"}))
    assert "Index Scan using doc_embedding_store_embedding_idx" in plan, plan
    counts = each_query(db, embedder, vid, "index")
    assert {k: n for k, (n, _) in counts.items()} == {k: 1 for k in counts}, counts
    assert all(len(ids) == 3 for _, ids in counts.values())

    # Built once: it is not built again, even once dropped.
    db.execute("DROP INDEX doc_embedding_store_embedding_idx")
    db.execute("INSERT INTO doc VALUES (10001, 'Doc 10001', 'body 10001')")
    wait_for(lambda: embedded(db, 10001), what="row 10001 embedded")
    idle(db)
    assert index_built(db, vid) == (None, True)


def test_a_changed_configuration_is_not_answered_from_the_memo(db, embedder):
    """Within one transaction, after the vectorizer's model changed, a query embeds
    again with the new model (the dimensions show which one answered)."""
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()")
    with db.transaction():
        first = scalar(db, "SELECT vector_dims(ai.vectorizer_embed(%s, 'q'))", (vid,))
        db.execute("UPDATE ai.vectorizer SET config = jsonb_set(config, '{embedding,dimensions}', '4') "
                   "WHERE id = %s", (vid,))
        second = scalar(db, "SELECT vector_dims(ai.vectorizer_embed(%s, 'q'))", (vid,))
        db.execute("ROLLBACK")
    assert (first, second) == (8, 4)
    # The vector the overloads by vectorizer return is the real[] of the C function, exactly.
    assert scalar(db, "SELECT ai.vectorizer_embed(%s, 'q') = ai._vectorizer_embed_for(%s, 'q')::vector "
                      "AND ai.vectorizer_embed('public_doc_embedding_store', 'q') = ai.vectorizer_embed(%s, 'q')",
                  (vid, vid, vid))


def test_indexing_none_builds_nothing(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()",
                            extra=", indexing => ai.indexing_none(), enqueue_existing => false")
    fill(db, 20)
    db.execute("INSERT INTO doc VALUES (100, 'Doc', 'body')")
    wait_for(lambda: embedded(db, 100), what="row 100 embedded")
    idle(db)
    assert index_built(db, vid) == (None, False)
    assert scalar(db, "SELECT count(*) FROM pg_index i JOIN pg_am am ON am.oid = "
                      "(SELECT relam FROM pg_class WHERE oid = i.indexrelid) "
                      "WHERE i.indrelid = 'doc_embedding_store'::regclass AND am.amname = 'hnsw'") == 0


def test_a_cancelled_build_leaves_an_error_row_no_invalid_index_and_is_retried(db, embedder, preloaded):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()",
                            extra=", indexing => ai.indexing_hnsw(min_rows => 10), enqueue_existing => false")
    fill(db, 5)
    # A transaction with a snapshot: CREATE INDEX CONCURRENTLY waits for it to end.
    with preloaded.connect(db.info.dbname) as holder:
        holder.autocommit = False
        holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM doc")
        fill(db, 10, start=6)
        db.execute("INSERT INTO doc VALUES (100, 'Doc', 'body')")
        pid = worker_pid(db)
        wait_for(lambda: scalar(db, "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,))
                 == "virtualxid", what="the build waiting for the old snapshot")
        assert scalar(db, "SELECT count(*) FROM pg_index WHERE indrelid = 'doc_embedding_store'::regclass "
                          "AND NOT indisvalid") == 1
        # The build does not keep the store from being written.
        with preloaded.connect(db.info.dbname) as writer:
            writer.execute("SET lock_timeout = '1s'")
            writer.execute("INSERT INTO doc_embedding_store (id, chunk_seq, chunk, embedding) "
                           "VALUES (1000, 0, 'written during the build', array_fill(0.5, ARRAY[8])::vector)")
            writer.execute("DELETE FROM doc_embedding_store WHERE id = 1000")
        db.execute("SELECT pg_cancel_backend(%s)", (pid,))
        message = wait_for(lambda: scalar(db, "SELECT max(message) FROM ai.vectorizer_errors "
                                              "WHERE message LIKE 'building the vector index%%'"),
                           what="the error row")
        assert "doc_embedding_store_embedding_idx" in message and "canceling statement" in message, message
        wait_for(lambda: scalar(db, "SELECT count(*) FROM pg_index WHERE indrelid = "
                                    "'doc_embedding_store'::regclass AND NOT indisvalid") == 0,
                 what="the invalid index dropped")
        assert index_built(db, vid) == (None, False)
        holder.rollback()
    assert worker_pid(db) == pid, "the worker went on"
    built = wait_for(lambda: index_built(db, vid)[1] and index_built(db, vid), timeout=60, what="the retry")
    assert built == ("doc_embedding_store_embedding_idx", True)
    assert scalar(db, "SELECT count(*) FROM pg_index WHERE indrelid = 'doc_embedding_store'::regclass") == 3


def test_a_dbas_event_trigger_that_writes_does_not_stop_the_index_build(db, embedder):
    """The worker runs its index statements as a client's are run, in a portal: an event
    trigger a DBA made for auditing, which writes, works inside them."""
    db.execute("CREATE TABLE ddl_audit (tag text, at timestamptz DEFAULT now())")
    db.execute("""CREATE FUNCTION audit_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
                  BEGIN INSERT INTO public.ddl_audit (tag) VALUES (tg_tag); END $$""")
    db.execute("CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION audit_ddl()")
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()",
                            extra=", indexing => ai.indexing_hnsw(min_rows => 10), enqueue_existing => false")
    fill(db, 10)
    db.execute("INSERT INTO doc VALUES (100, 'Doc', 'body')")
    built = wait_for(lambda: index_built(db, vid)[1] and index_built(db, vid), what="the index")
    assert built == ("doc_embedding_store_embedding_idx", True)
    assert scalar(db, "SELECT count(*) FROM ddl_audit WHERE tag = 'CREATE INDEX'") >= 1
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0


# A corpus where an exact identifier is found only by its words and a paraphrase only by
# meaning (all-MiniLM-L6-v2, the real model).
CORPUS = {
    1: "Code E-7731 means the left paper tray is jammed.",
    2: "To reset the router, unplug it, wait thirty seconds and plug it back in.",
    3: "The intake valve assembly of the pump needs cleaning every six months.",
    4: "Error messages and error codes are explained in the troubleshooting chapter.",
    5: "Fresh basil and ripe tomatoes make a simple summer salad.",
    6: "The pump housing is made of cast iron and weighs twelve kilograms.",
    7: "Code E-7713 means the toner cartridge is empty.",
    8: "Our support line is open on weekdays from nine to five.",
    9: "The pump motor runs on a standard household power outlet.",
    10: "Clean the valve seat with a soft brush and warm water.",
    11: "Code E-3177 means the printer's rear door is open.",
}


def search(conn, query, mode, k=3, vectorizer="public_doc_embedding_store"):
    return conn.execute("SELECT key, chunk_seq, chunk, score FROM ai.search(%s, %s, %s, %s)",
                        (vectorizer, query, k, mode)).fetchall()


def ids(rows):
    return [r[0]["id"] for r in rows]


@pytest.fixture
def corpus(db):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = scalar(db, """SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_local(), chunking => ai.chunking_none(),
        text_indexing => ai.text_indexing_fts('english'))""")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s)", list(CORPUS.items()))
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == len(CORPUS), timeout=120,
             what="the corpus embedded")
    return vid


def test_search_finds_identifiers_by_words_paraphrases_by_meaning_and_both_in_hybrid(db, corpus):
    identifier, paraphrase = "E-7731", "how do I restart my wifi modem"
    # Among codes numbered alike, the model cannot tell the one asked for.
    assert ids(search(db, identifier, "text"))[0] == 1
    assert ids(search(db, identifier, "vector"))[0] != 1
    assert ids(search(db, paraphrase, "vector"))[0] == 2
    assert 2 not in ids(search(db, paraphrase, "text", k=10))
    assert 1 in ids(search(db, identifier, "hybrid"))
    assert 2 in ids(search(db, paraphrase, "hybrid"))

    # Scores: higher is better, rows best first; vector scores are 1 − cosine distance.
    rows = search(db, paraphrase, "vector", k=10)
    assert [r[3] for r in rows] == sorted((r[3] for r in rows), reverse=True)
    exact = scalar(db, "SELECT 1 - (embedding <=> ai.vectorizer_embed('public_doc_embedding_store', %s)) "
                       "FROM doc_embedding_store WHERE id = 2", (paraphrase,))
    assert rows[0][3] == pytest.approx(exact)
    assert rows[0][1:3] == (0, CORPUS[2])
    # Hybrid: reciprocal rank fusion, 1/(60 + rank) from each ranking holding the row.
    hybrid = search(db, identifier, "hybrid", k=10)
    assert hybrid[0][3] <= 2 / 61 and all(r[3] >= 1 / (60 + 40) for r in hybrid)


def test_text_search_matches_any_word_and_ranks_more_and_rarer_words_higher(db, corpus):
    # "pump" is in four chunks, "basil" in one, "valve" and "cleaning" in a few.
    rows = search(db, "pump valve cleaning", "text", k=10)
    assert ids(rows)[0] == 3, rows          # holds all three words
    assert set(ids(rows)) == {3, 6, 9, 10}, "any of the words"
    assert ids(search(db, "basil pump", "text", k=10))[0] == 5, "the rarer word first"
    assert search(db, "the and of", "text") == [], "stop words only: nothing"
    assert search(db, "it's O'Brien's C:\\path 'quoted' \"pump\"", "text", k=10), "quotes and backslashes"


def test_search_applies_the_callers_rights_and_row_level_security(db, corpus, preloaded):
    db.execute("DROP ROLE IF EXISTS reader")
    db.execute("DROP ROLE IF EXISTS stranger")
    db.execute("CREATE ROLE reader LOGIN")
    db.execute("CREATE ROLE stranger LOGIN")
    try:
        db.execute("GRANT SELECT ON doc_embedding_store TO reader")
        db.execute("ALTER TABLE doc_embedding_store ENABLE ROW LEVEL SECURITY")
        db.execute("CREATE POLICY few ON doc_embedding_store FOR SELECT TO reader USING (id <= 5)")
        with preloaded.connect(db.info.dbname, user="reader") as reader:
            for mode in ("vector", "text", "hybrid"):
                found = ids(search(reader, "pump valve router basil", mode, k=10))
                assert found and set(found) <= {1, 2, 3, 4, 5}, (mode, found)
            assert ids(search(reader, "pump", "text", k=10)) == [3]
        with preloaded.connect(db.info.dbname, user="stranger") as stranger:
            # As for a vectorizer that does not exist: the stranger does not see it.
            with pytest.raises(psycopg.errors.UndefinedObject) as e:
                search(stranger, "pump", "vector")
            assert e.value.diag.message_primary == 'vectorizer "public_doc_embedding_store" does not exist'
    finally:
        db.execute("DROP POLICY few ON doc_embedding_store")
        db.execute("REVOKE ALL ON doc_embedding_store FROM reader")
        db.execute("DROP ROLE reader")
        db.execute("DROP ROLE stranger")


def test_search_embeds_once_uses_the_indexes_and_refuses_bad_arguments(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    plain = create_vectorizer(db, embedder, chunking="ai.chunking_none()",
                              extra=", indexing => ai.indexing_hnsw(min_rows => 1), "
                                    "text_indexing => ai.text_indexing_fts()")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO doc VALUES (%s, %s, %s)",
                        [(i, f"Doc {i}", f"pump valve number {i}") for i in range(1, 51)])
    wait_for(lambda: index_built(db, plain)[1], timeout=60, what="the HNSW index")
    gin = scalar(db, "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                     "JOIN pg_am am ON am.oid = c.relam WHERE indrelid = 'doc_embedding_store'::regclass "
                     "AND am.amname = 'gin'")
    assert gin == "doc_embedding_store_chunk_tsvector_idx"

    def scans():
        db.execute("SELECT pg_stat_clear_snapshot()")
        return dict(db.execute("SELECT indexrelname, idx_scan FROM pg_stat_user_indexes "
                               "WHERE relname = 'doc_embedding_store'").fetchall())

    # 50 rows: the planner would rather scan them; the search's statements can use the indexes.
    db.execute("SET enable_seqscan = off")
    before = scans()
    for mode, expected in (("vector", 1), ("text", 0), ("hybrid", 1)):
        sent = requests(embedder)
        assert len(search(db, f"{mode} pump", mode, k=5)) == 5
        assert requests(embedder) - sent == expected, mode
    rows = db.execute("SELECT * FROM ai.search(%s, 'pump', 50, 'vector')", (plain,)).fetchall()
    assert len(rows) == 50, "k past ef_search's default"
    wait_for(lambda: scans()["doc_embedding_store_embedding_idx"] >= before["doc_embedding_store_embedding_idx"] + 3
             and scans()[gin] >= before[gin] + 2, what="index scans counted")

    def refused(call, state):
        with pytest.raises(psycopg.Error) as e:
            db.execute(call)
        assert e.value.sqlstate == state, e.value
        return e.value.diag

    refused("SELECT * FROM ai.search('nope', 'q')", "42704")
    refused("SELECT * FROM ai.search(12345, 'q')", "42704")
    assert "between 1 and 1000" in refused("SELECT * FROM ai.search('public_doc_embedding_store', 'q', 0)",
                                           "22023").message_primary
    refused("SELECT * FROM ai.search('public_doc_embedding_store', 'q', 1001)", "22023")
    diag = refused("SELECT * FROM ai.search('public_doc_embedding_store', 'q', 5, 'fuzzy')", "22023")
    assert diag.message_primary == 'unknown search mode "fuzzy"'
    db.execute("CREATE TABLE other (id int PRIMARY KEY, title text, body text)")
    create_vectorizer(db, embedder, table="other", chunking="ai.chunking_none()")
    for mode in ("text", "hybrid"):
        diag = refused(f"SELECT * FROM ai.search('public_other_embedding_store', 'q', 5, '{mode}')", "55000")
        assert "ai.text_indexing_fts()" in diag.message_hint
    db.execute("CREATE TABLE third (id int PRIMARY KEY, title text, body text)")
    diag = refused(f"""SELECT ai.create_vectorizer('third'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_openai('test-embedding', 8, base_url => '{embedder.openai_url}'),
        chunking => ai.chunking_none(), destination => ai.destination_column('emb'),
        text_indexing => ai.text_indexing_fts())""", "0A000")
    assert "destination_table" in diag.message_hint


def test_a_build_refused_leaves_what_the_user_made_alone(db, embedder):
    """An index of the name the build would take, made by the owner for another column:
    the build fails with an error row and is tried later; the owner's index stays."""
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    create_vectorizer(db, embedder, chunking="ai.chunking_none()",
                      extra=", indexing => ai.indexing_hnsw(min_rows => 1)")
    db.execute("CREATE INDEX doc_embedding_store_embedding_idx ON doc_embedding_store (chunk_seq)")
    db.execute("INSERT INTO doc VALUES (1, 'Doc', 'body')")
    message = wait_for(lambda: scalar(db, "SELECT max(message) FROM ai.vectorizer_errors "
                                          "WHERE message LIKE 'building the vector index%%'"), what="the error row")
    assert "already exists" in message, message
    idle(db)
    assert scalar(db, "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indisvalid "
                      "AND indexrelid = 'doc_embedding_store_embedding_idx'::regclass").endswith("(chunk_seq)")


def readme_search_blocks():
    """The SQL blocks of the README's Search section."""
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("### Search\n"):readme.index("### The local model")]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def test_the_readme_search_examples_run_and_match_ai_search(db):
    db.execute("CREATE TABLE document (id bigserial PRIMARY KEY, title text, uri text NOT NULL, body text)")
    scalar(db, """SELECT ai.create_vectorizer('document'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_local(), chunking => ai.chunking_none(), formatting => ai.formatting_python_template('$title: $chunk'),
        text_indexing => ai.text_indexing_fts())""")
    docs = [("Keys", "To rotate API keys, create a new key, deploy it, then revoke the old one."),
            ("Passwords", "Passwords expire after ninety days; change yours in the account settings."),
            ("Backups", "Backups run nightly and are kept for thirty days."),
            ("Tokens", "Access tokens are short-lived credentials that the key service signs."),
            ("Locks", "The door keys for the server room are kept at the front desk."),
            ("Rotation", "Log files rotate daily and old ones are compressed.")]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO document (title, uri, body) VALUES (%s, 'file:///none', %s)", docs)
    wait_for(lambda: scalar(db, "SELECT count(*) FROM document_embedding_store") == len(docs), timeout=120,
             what="the documents embedded")
    blocks = readme_search_blocks()
    assert len(blocks) >= 6, blocks
    compared = set()
    for block in blocks:
        rows = db.execute(block).fetchall()
        assert rows, block
        mode = block.split("\n", 1)[0].removeprefix("-- ").strip()
        if mode in ("vector", "text", "hybrid"):
            expected = db.execute("SELECT key, chunk_seq, chunk, score FROM ai.search("
                                  "'public_document_embedding_store', 'how do I rotate keys?', 5, %s)",
                                  (mode,)).fetchall()
            assert [r[:3] for r in rows] == [r[:3] for r in expected], mode
            assert [float(r[3]) for r in rows] == pytest.approx([r[3] for r in expected]), mode
            compared.add(mode)
    assert compared == {"vector", "text", "hybrid"}


def test_an_embedding_column_gets_its_index_on_the_source(db, embedder):
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    vid = create_vectorizer(db, embedder, chunking="ai.chunking_none()",
                            extra=", destination => ai.destination_column('emb'), "
                                  "indexing => ai.indexing_hnsw(min_rows => 2, opclass => 'vector_ip_ops')")
    db.execute("INSERT INTO doc VALUES (1, 'a', 'one'), (2, 'b', 'two')")
    built = wait_for(lambda: index_built(db, vid)[1] and index_built(db, vid), what="the index on doc")
    assert built == ("doc_emb_idx", True)
    assert scalar(db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'doc_emb_idx'").endswith(
        "USING hnsw (emb vector_ip_ops)")


def queued(conn, vid):
    return scalar(conn, "SELECT ai.vectorizer_queue_pending(%s, exact_count => true)", (vid,))


def test_the_index_waits_for_an_empty_queue_unless_told_not_to(db, embedder):
    """A row that keeps failing stays queued: with create_when_queue_empty the index
    waits until it is gone (here, to the failed queue); without, it is built at once."""
    embedder.overflow = "poison"  # embeds to infinities: the row fails and is retried
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
    db.execute("CREATE TABLE other (id int PRIMARY KEY, title text, body text)")
    waits = create_vectorizer(db, embedder, chunking="ai.chunking_none()", loading="ai.loading_column('body', 3)",
                              extra=", indexing => ai.indexing_hnsw(min_rows => 1)")
    eager = create_vectorizer(db, embedder, table="other", chunking="ai.chunking_none()",
                              extra=", indexing => ai.indexing_hnsw(min_rows => 1, create_when_queue_empty => false)")
    for table in ("doc", "other"):
        db.execute(f"INSERT INTO {table} VALUES (1, 'a', 'fine'), (2, 'b', 'poison')")
    built = wait_for(lambda: index_built(db, eager)[1] and index_built(db, eager), what="the eager index")
    assert built == ("other_embedding_store_embedding_idx", True)
    assert queued(db, eager) == 1, "built with the poison row still queued"

    wait_for(lambda: embedded(db, 1), what="row 1 of doc embedded")
    idle(db)
    assert queued(db, waits) == 1 and index_built(db, waits) == (None, False)
    wait_for(lambda: scalar(db, f"SELECT count(*) FROM ai._vectorizer_q_failed_{waits}") == 1, timeout=60,
             what="the poison row failed for good")
    built = wait_for(lambda: index_built(db, waits)[1] and index_built(db, waits), what="the index, queue empty")
    assert built == ("doc_embedding_store_embedding_idx", True)
