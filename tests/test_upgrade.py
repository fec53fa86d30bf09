"""ALTER EXTENSION ai_loader UPDATE from each earlier release: the upgraded schema
equals a fresh install's, and the vectorizers made before go on working after."""

import glob
import os
import re
import shutil
import subprocess
import sys

import psycopg
import pytest

from cluster import PG_BIN, Cluster, as_postgres
from helpers import dump_and_restore, queue_empty, scalar, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTENSION_DIR = os.path.join(subprocess.run(
    [f"{PG_BIN}/pg_config", "--sharedir"], check=True, capture_output=True, text=True).stdout.strip(), "extension")
# The install scripts of earlier releases, kept in sql/ (cargo pgrx install copies only
# the upgrade scripts).
RELEASES = sorted(re.fullmatch(r"ai_loader--([0-9.]+)\.sql", os.path.basename(p)).group(1)
                  for p in glob.glob(os.path.join(ROOT, "sql", "ai_loader--*.sql"))
                  if re.fullmatch(r"ai_loader--[0-9.]+\.sql", os.path.basename(p)))


@pytest.fixture(scope="module")
def releases():
    """The earlier releases' install scripts, installed for the module's tests."""
    copied = []
    for version in RELEASES:
        target = os.path.join(EXTENSION_DIR, f"ai_loader--{version}.sql")
        if not os.path.exists(target):
            shutil.copy(os.path.join(ROOT, "sql", f"ai_loader--{version}.sql"), target)
            copied.append(target)
    yield RELEASES
    for path in copied:
        os.remove(path)


@pytest.fixture(scope="module")
def cluster(embedder):
    c = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.request_timeout = '3s'", embedder.key_setting],
                env={"OPENAI_API_KEY": embedder.api_key})
    yield c
    c.stop()


def schema(cluster, dbname):
    """The database's schema as pg_dump writes it for pg_upgrade (extension members
    included, one by one), without the OIDs that differ between any two databases."""
    out = subprocess.run(
        [f"{PG_BIN}/pg_dump", "--schema-only", "--binary-upgrade", "--no-comments", "-h", cluster.dir,
         "-p", str(cluster.port), "-U", "postgres", dbname],
        check=True, capture_output=True, text=True).stdout
    kept = [re.sub(r"'\{[0-9,]*\}'", "'{OIDS}'", line) for line in out.splitlines()
            if "binary_upgrade_set_next" not in line and line.strip()
            and not line.startswith(("--", "\\restrict", "\\unrestrict", "UPDATE pg_catalog.pg_class",
                                     "SET relfrozenxid", "WHERE oid = "))]
    return "\n".join(kept)


def database(cluster, name, version=None, first=()):
    """A new database with ai_loader (of `version`), after the extensions `first`."""
    with cluster.connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    conn = cluster.connect(name)
    for extension in first:
        conn.execute(f"CREATE EXTENSION {extension}")
    conn.execute("CREATE EXTENSION ai_loader" + (f" VERSION '{version}'" if version else ""))
    return conn


def drop_databases(cluster, *names):
    with cluster.connect() as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def note_vectorizer(db, embedder, extra=""):
    """A table note(id, body) and a vectorizer of it; returns the vectorizer's id."""
    db.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    return scalar(db, f"""SELECT ai.create_vectorizer('note'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), chunking => ai.chunking_none()
        {extra})""", (embedder.openai_url,))


def default_version():
    with open(os.path.join(EXTENSION_DIR, "ai_loader.control")) as f:
        return re.search(r"default_version = '([^']+)'", f.read()).group(1)


def test_the_upgrade_scripts_are_made_from_the_sources():
    """Each sql/ai_loader--<release>--<current>.sql is what `make upgrade-script` makes
    from the install script the build under test installed."""
    check = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "upgrade_script.py"), "--check",
                            os.path.join(EXTENSION_DIR, f"ai_loader--{default_version()}.sql")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + "run make upgrade-script"


def make_objects(cluster, db, dbname, embedder):
    """What a database holds: a vectorizer of each destination kind, one of them owned by
    carol, and an S3 sync (from 0.2.0 on)."""
    db.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    db.execute("""SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_openai('test-embedding', 8, base_url => %s))""", (embedder.openai_url,))
    db.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    db.execute("""SELECT ai.create_vectorizer('note'::regclass, loading => ai.loading_column('body'),
        embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
        destination => ai.destination_column('embedding'), chunking => ai.chunking_none())""",
               (embedder.openai_url,))
    with psycopg.connect(host=cluster.dir, port=cluster.port, user="carol", dbname=dbname, autocommit=True) as carol:
        carol.execute("CREATE TABLE carols (id int PRIMARY KEY, uri text NOT NULL)")
        carol.execute("""SELECT ai.create_vectorizer('carols'::regclass, loading => ai.loading_column('uri'),
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), grant_to => ai.grant_to())""",
                      (embedder.openai_url,))


def make_sync(db):
    db.execute("CREATE TABLE listed (id serial PRIMARY KEY, uri text UNIQUE)")
    db.execute("SELECT ai.pause_s3_sync(ai.create_s3_sync('listed', 's3://docs/', reconcile_interval => '1 hour'))")


def as_made_by(db, version):
    """Gives the vectorizers what `version`'s library made of them: this library makes
    them even under an old catalog. 0.1.0 compared keys with a bare =, left the trigger
    function executable by PUBLIC and the store's toast_tuple_target at its default."""
    assert version == "0.1.0", f"say what {version}'s library made"
    for vid, function, store in db.execute("""
            SELECT v.id, format('%I.%I()', v.queue_schema, v.trigger_name)::regprocedure,
                   CASE WHEN v.config->'destination'->>'implementation' = 'table'
                        THEN format('%I.%I', v.config->'destination'->>'target_schema',
                                    v.config->'destination'->>'target_table')::regclass END
              FROM ai.vectorizer v""").fetchall():
        body = scalar(db, "SELECT pg_get_functiondef(%s::regprocedure)", (function,))
        db.execute(body.replace("OPERATOR(pg_catalog.=)", "="))
        db.execute(f"GRANT EXECUTE ON FUNCTION {function} TO PUBLIC")
        if store:
            db.execute(f"ALTER TABLE {store} RESET (toast_tuple_target)")
        db.execute("UPDATE ai.vectorizer SET config = jsonb_set(config, '{version}', to_jsonb(%s::text)) "
                   "WHERE id = %s", (version, vid))


@pytest.mark.parametrize("version", RELEASES)
def test_an_upgraded_database_equals_a_fresh_install(cluster, embedder, releases, version):
    """The same objects made in a fresh install, and made under `version` then upgraded
    (the sync after): pg_dump sees the same schema, the vectorizers' own objects
    included."""
    with cluster.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS carol")
        admin.execute("CREATE ROLE carol LOGIN")
    try:
        fresh = database(cluster, "fresh")
        fresh.execute("SELECT ai.grant_ai_usage('carol')")
        fresh.execute("GRANT CREATE ON SCHEMA public TO carol")
        make_objects(cluster, fresh, "fresh", embedder)
        make_sync(fresh)
        old = database(cluster, "upgraded", version)
        old.execute("SELECT ai.grant_ai_usage('carol')")
        old.execute("GRANT CREATE ON SCHEMA public TO carol")
        make_objects(cluster, old, "upgraded", embedder)
        as_made_by(old, version)
        old.execute("ALTER EXTENSION ai_loader UPDATE")
        make_sync(old)
        assert scalar(old, "SELECT extversion FROM pg_extension WHERE extname = 'ai_loader'") == default_version()
        assert old.execute("SELECT DISTINCT config->>'version' FROM ai.vectorizer").fetchall() == \
            [(default_version(),)]
        got, want = schema(cluster, "upgraded"), schema(cluster, "fresh")
        if got != want:
            import difflib
            diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), "fresh", "upgraded", lineterm=""))
            pytest.fail(f"the upgraded schema differs from a fresh install:\n{diff}")
        fresh.close()
        old.close()
    finally:
        drop_databases(cluster, "fresh", "upgraded")
        with cluster.connect() as admin:
            admin.execute("DROP ROLE carol")


@pytest.mark.parametrize("version", RELEASES)
def test_vectorizers_go_on_after_an_upgrade(cluster, embedder, releases, version):
    embedder.reset()
    with cluster.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS dave")
        admin.execute("CREATE ROLE dave LOGIN")
    try:
        db = database(cluster, "carried", version)
        db.execute("SELECT ai.grant_ai_usage('dave')")
        vid = note_vectorizer(db, embedder)
        db.execute("INSERT INTO note VALUES (1, 'before the upgrade')")
        # The library is the new version's: its worker leaves the old catalog alone.
        wait_for(lambda: f'ai_loader {version} is installed in database "carried", the library is {default_version()}: '
                         "waiting for ALTER EXTENSION ai_loader UPDATE" in cluster.log(), what="the worker waiting")
        assert scalar(db, "SELECT count(*) FROM note_embedding_store") == 0
        assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
        # Under the old release an ai user could plant a function in schema ai for a
        # superuser's call to resolve to: the upgrade refuses to go on while it is there.
        with psycopg.connect(host=cluster.dir, port=cluster.port, user="dave", dbname="carried",
                             autocommit=True) as dave:
            dave.execute("CREATE FUNCTION ai.grant_ai_usage(to_user text) RETURNS void LANGUAGE sql "
                         "AS 'ALTER ROLE dave SUPERUSER'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
            db.execute("ALTER EXTENSION ai_loader UPDATE")
        assert "ai.grant_ai_usage(to_user text) owned by dave" in err.value.diag.message_primary
        db.execute("DROP FUNCTION ai.grant_ai_usage(text)")
        as_made_by(db, version)
        assert generated(db, vid) == {
            "version": version, "store options": None, "function qualifies its operators": False,
            "function executable by PUBLIC": True, "function owner": "postgres"}
        db.execute("ALTER EXTENSION ai_loader UPDATE")
        # The vectorizer's trigger function and store options are this version's.
        assert generated(db, vid) == {
            "version": default_version(), "store options": ["toast_tuple_target=8160"],
            "function qualifies its operators": True, "function executable by PUBLIC": False,
            "function owner": "postgres"}
        wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM note_embedding_store") == 1,
                 what="the row queued before the upgrade embedded after it")
        db.execute("INSERT INTO note VALUES (2, 'after the upgrade')")
        wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM note_embedding_store") == 2,
                 what="embedded after the upgrade")
        # What the old grant_ai_usage gave beyond the new model is gone.
        assert not scalar(db, "SELECT has_schema_privilege('dave', 'ai', 'CREATE')")
        assert not scalar(db, "SELECT has_table_privilege('dave', 'ai.vectorizer', 'UPDATE')")
        assert not scalar(db, "SELECT has_table_privilege('dave', 'ai._vectorizer_errors', 'INSERT')")
        assert scalar(db, "SELECT has_function_privilege('dave', 'ai.drop_vectorizer(int4, bool)', 'EXECUTE')")
        assert not scalar(db, f"SELECT has_function_privilege('dave', 'ai._vectorizer_src_trg_{vid}()', 'EXECUTE')")
        db.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))
        db.close()
    finally:
        with cluster.connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "carried" WITH (FORCE)')
            admin.execute("DROP ROLE dave")


def generated(db, vid):
    """What a vectorizer's trigger function and store options are, and its version."""
    row = db.execute(f"""SELECT v.config->>'version', c.reloptions,
                               pg_get_functiondef(f) LIKE '%%OPERATOR(pg_catalog.=)%%',
                               has_function_privilege('public', f, 'EXECUTE'), pg_get_userbyid(p.proowner)
                          FROM ai.vectorizer v, pg_class c, pg_proc p,
                               LATERAL (SELECT format('%%I.%%I()', v.queue_schema, v.trigger_name)::regprocedure) t(f)
                         WHERE v.id = %s AND c.oid = 'note_embedding_store'::regclass AND p.oid = f""",
                     (vid,)).fetchone()
    return dict(zip(("version", "store options", "function qualifies its operators", "function executable by PUBLIC",
                     "function owner"), row))


def test_pg_upgrade_carries_vectorizers_to_a_new_cluster(embedder):
    """pg_upgrade of a cluster with ai_loader (preloaded in both): nothing of ai_loader
    runs while it works (no launcher holding the database postgres, which its restore
    drops and creates), and the new cluster serves the same vectorizers."""
    embedder.reset()
    settings = ["shared_preload_libraries = 'ai_loader'", "ai_loader.request_timeout = '3s'", embedder.key_setting]
    env = {"OPENAI_API_KEY": embedder.api_key}
    old = Cluster(settings, env=env)
    new = Cluster(settings, env=env, start=False)
    try:
        db = old.connect()
        db.execute("CREATE EXTENSION ai_loader")
        vid = note_vectorizer(db, embedder)
        db.execute("INSERT INTO note VALUES (1, 'before pg_upgrade')")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM note_embedding_store") == 1, what="embedded")
        db.execute("CREATE TABLE listed (id serial PRIMARY KEY, uri text UNIQUE)")
        sync = scalar(db, "SELECT ai.create_s3_sync('listed', 's3://docs/', reconcile_interval => '1 hour')")
        db.close()
        old.shutdown()
        upgrade = subprocess.run(
            as_postgres(f"{PG_BIN}/pg_upgrade", "-b", PG_BIN, "-B", PG_BIN, "-d", old.data, "-D", new.data,
                        "-p", str(old.port), "-P", str(new.port), "-U", "postgres"),
            cwd=new.dir, capture_output=True, text=True, env=new.env)
        assert upgrade.returncode == 0, upgrade.stdout[-1500:] + upgrade.stderr[-1500:]
        new.start()
        db = new.connect()
        assert scalar(db, "SELECT count(*) FROM note_embedding_store") == 1
        assert scalar(db, "SELECT owner FROM ai.vectorizer WHERE id = %s", (vid,)) == "postgres"
        db.execute("INSERT INTO note VALUES (2, 'after pg_upgrade')")
        wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM note_embedding_store") == 2,
                 what="embedded in the new cluster")
        # A new server: its syncs start paused, until resumed there.
        # (The pause commits, then the error row saying why: wait for both.)
        wait_for(lambda: scalar(db, "SELECT paused FROM ai.s3_sync WHERE id = %s", (sync,))
                 and scalar(db, "SELECT last_error FROM ai.s3_sync_status"), what="the sync paused, and why")
        assert "this database is a copy" in scalar(db, "SELECT last_error FROM ai.s3_sync_status")
        db.execute("SELECT ai.resume_s3_sync(%s)", (sync,))
        assert not scalar(db, "SELECT paused FROM ai.s3_sync WHERE id = %s", (sync,))
        assert scalar(db, "SELECT home FROM ai.s3_sync") == \
            f"{scalar(db, 'SELECT system_identifier FROM pg_control_system()')}/" \
            f"{scalar(db, 'SELECT oid FROM pg_database WHERE datname = current_database()')}"
        db.close()
    finally:
        old.stop()
        new.stop()


def described(conn):
    """What a restore must carry: the catalog rows, the stores' and vectorizer_embed's
    types, the embeddings, the queued rows."""
    return {
        "catalog": conn.execute("SELECT id, name, owner, source_table, config, disabled FROM ai.vectorizer "
                                "ORDER BY id").fetchall(),
        "types": conn.execute("""SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                                  WHERE attrelid = 'note_embedding_store'::regclass AND attname = 'embedding'
                                 UNION ALL SELECT pg_get_function_result(p::regprocedure) FROM unnest(ARRAY[
                                  'ai.vectorizer_embed(int4, text, text)', 'ai.vectorizer_embed(text, text, text)',
                                  'ai.vectorizer_embed(jsonb, text, text)']) p""").fetchall(),
        "store": conn.execute("SELECT id, chunk, embedding::text FROM note_embedding_store ORDER BY id").fetchall(),
        "queued": conn.execute("SELECT id FROM ai._vectorizer_q_1 ORDER BY id").fetchall(),
        "indexes": conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'note_embedding_store' "
                                "ORDER BY indexname").fetchall(),
        "vector index": conn.execute("SELECT vector_index, vector_index_built_at FROM ai.vectorizer_status").fetchall(),
        "text search": conn.execute("SELECT * FROM ai.search(1, 'embedded', 10, 'text')").fetchall(),
        "syncs": conn.execute("SELECT s.id, s.name, s.destination::text, s.uri_prefix, s.columns, s.paused, o.key, o.etag "
                              "FROM ai.s3_sync s JOIN ai._s3_sync_object o ON o.sync_id = s.id").fetchall(),
    }


@pytest.mark.parametrize("pgvector", ["none", "before", "after"])
def test_dump_and_restore_carry_vectorizers(cluster, embedder, pgvector):
    """pg_dump and pg_restore of a database with a vectorizer, pgvector created before
    ai_loader, after it or not at all (pg_restore creates extensions in name order:
    ai_loader first): the same types, catalog rows, embeddings and queue; the worker
    serves the restored database."""
    embedder.reset()
    try:
        db = database(cluster, "dumped", first=["vector"] if pgvector == "before" else [])
        if pgvector == "after":
            db.execute("CREATE EXTENSION vector")
        hnsw = ", indexing => ai.indexing_hnsw(min_rows => 1)" if pgvector != "none" else ""
        vid = note_vectorizer(db, embedder, f", text_indexing => ai.text_indexing_fts() {hnsw}")
        db.execute("INSERT INTO note VALUES (1, 'embedded before the dump'), (2, 'also embedded')")
        wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM note_embedding_store") == 2,
                 what="embedded")
        if hnsw:
            wait_for(lambda: scalar(db, "SELECT vector_index_built_at FROM ai.vectorizer_status"), what="the index")
        db.execute("SELECT ai.disable_vectorizer_schedule(%s)", (vid,))
        db.execute("INSERT INTO note VALUES (3, 'queued at the dump')")
        db.execute("CREATE TABLE listed (id serial PRIMARY KEY, uri text UNIQUE, title text)")
        sync = scalar(db, """SELECT ai.create_s3_sync('listed', 's3://docs/', columns => '{"title": "basename"}')""")
        db.execute("SELECT ai.pause_s3_sync(%s)", (sync,))
        db.execute("INSERT INTO ai._s3_sync_object (sync_id, key, etag) VALUES (%s, 'a.md', 'e1')", (sync,))
        before = described(db)
        assert before["syncs"] == [(sync, "public_listed_s3_sync", "listed", "s3://docs/", {"title": "basename"},
                                    True, "a.md", "e1")]
        types = [t for (t,) in before["types"]]
        if pgvector == "none":
            assert types == ["real[]"] * 4
        else:  # created after ai_loader, pgvector changes what vectorizer_embed returns
            assert types[0] == "vector(8)" and all(t.endswith("vector") for t in types[1:]), types

        dump_and_restore(cluster, "dumped", "restored")
        restored = cluster.connect("restored")
        assert described(restored) == before
        assert len(before["text search"]) == 2 and len(before["indexes"]) == (4 if hnsw else 3)
        restored.execute("SELECT ai.enable_vectorizer_schedule(%s)", (vid,))
        restored.execute("INSERT INTO note VALUES (4, 'after the restore')")
        wait_for(lambda: queue_empty(restored, vid)
                 and scalar(restored, "SELECT count(*) FROM note_embedding_store") == 4, what="served after the restore")
        if pgvector != "none":  # the query pgai users write
            assert scalar(restored, "SELECT id FROM note_embedding_store ORDER BY embedding <=> "
                                    "ai.vectorizer_embed(%s, 'after the restore') LIMIT 1", (vid,)) == 4
        assert scalar(restored, "SELECT key FROM ai.search(%s, 'after the restore', 1, 'text')", (vid,)) == {"id": 4}
        assert described(restored)["vector index"] == before["vector index"], "not built again"
        restored.close()
        db.close()
    finally:
        drop_databases(cluster, "dumped", "restored")
