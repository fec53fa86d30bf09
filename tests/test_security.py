"""Attacks on what the server reads with its own credentials and network, each failing
closed with its SQLSTATE, and the same operations succeeding for a user allowed them:
the ai_loader_s3_reader role, the worker's check of the owner's membership, the S3
allow-list, private network addresses (the metadata service among them), redirects,
and file:// outside its root."""

import contextlib
import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import psycopg.sql
import pytest

from embedder import vector
from helpers import database_for, queue_empty, s3_cluster, scalar, wait_for, worker_pid
from s3server import BUCKET, ROLE_ARN, S3Server


SECRET = "sk-settings-key-not-for-users"


class Site:
    """An HTTP server on 127.0.0.1: /doc.txt, and /to?url=… redirecting there (GET or
    POST); it notes each request's path and Authorization header."""

    def __init__(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                site.requests.append(self.path)
                site.authorizations.append(self.headers.get("Authorization"))
                if self.path.startswith("/to?url="):
                    self.send_response(302)
                    self.send_header("Location", self.path[len("/to?url="):])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"A page served over plain HTTP."
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        self.requests = []
        self.authorizations = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    server.put("public/allowed.md", b"An object under the allowed prefix.")
    server.put("private/secret.md", b"An object outside it.")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site():
    server = Site()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def files():
    """A file root holding ok.txt, and a link in it pointing out of it."""
    root = tempfile.mkdtemp(prefix="ai_loader_files.")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "ok.txt"), "w") as f:
        f.write("A file under the root.")
    os.chmod(os.path.join(root, "ok.txt"), 0o644)
    os.symlink("/etc/passwd", os.path.join(root, "passwd-link"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(s3, embedder, files):
    c = s3_cluster(s3, embedder, f"ai_loader.s3_allowed_buckets = '{BUCKET}/public/'",
                   f"ai_loader.file_root = '{files}'",
                   f"ai_loader.openai_api_key = '{SECRET}'")
    yield c
    c.stop()


@pytest.fixture
def db(cluster, embedder, request):
    """A test database, and alice: a user with ai.grant_ai_usage and CREATE on public."""
    embedder.reset()
    with cluster.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS alice")
        admin.execute("CREATE ROLE alice LOGIN")
    try:
        with database_for(cluster, request) as conn:
            conn.execute("GRANT CREATE ON SCHEMA public TO alice")
            conn.execute("SELECT ai.grant_ai_usage('alice')")
            yield conn
    finally:
        with cluster.connect() as admin:
            admin.execute("DROP ROLE alice")


def connect_as(cluster, dbname, user):
    return psycopg.connect(host=cluster.dir, port=cluster.port, user=user, dbname=dbname, autocommit=True)


def uri_vectorizer(conn, embedder, table="document", role=None, retries=0):
    arn = f", aws_role_arn => '{role}'" if role else ""
    return scalar(conn, f"""
        SELECT ai.create_vectorizer('{table}'::regclass,
            loading => ai.loading_uri('uri', retries => {retries}{arn}),
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s),
            chunking => ai.chunking_none())""", (embedder.openai_url,))


def column_vectorizer(conn, table, base_url, name=None):
    """A vectorizer of `table`'s body column, chunks as they are, embedded through
    `base_url`; a `name` also names its store `<table>_<name>_store`."""
    named = "name => %(name)s, destination => ai.destination_table(%(store)s)," if name else ""
    return scalar(conn, f"""SELECT ai.create_vectorizer(%(table)s::regclass, {named}
        loading => ai.loading_column('body'), embedding => ai.embedding_openai('test-embedding', 8, base_url => %(url)s),
        chunking => ai.chunking_none())""", {"table": table, "name": name, "store": f"{table}_{name}", "url": base_url})


def refused(call):
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
        call()
    assert err.value.diag.sqlstate == "42501"
    return err.value.diag


def test_loading_uris_takes_the_s3_reader_role(cluster, db, embedder):
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE document (id int PRIMARY KEY, uri text NOT NULL)")

    diag = refused(lambda: uri_vectorizer(alice, embedder, role=ROLE_ARN))
    assert "ai.loading_uri" in diag.message_primary
    assert diag.message_hint == "A superuser can allow it: GRANT ai_loader_s3_reader TO alice;"
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0
    assert scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'document_embedding%'") == 0
    diag = refused(lambda: alice.execute("SELECT * FROM ai.check_s3_access(%s)", (f"s3://{BUCKET}/public/allowed.md",)))
    assert diag.message_hint == "A superuser can allow it: GRANT ai_loader_s3_reader TO alice;"

    # A column vectorizer needs no such right; turning it into a URI one does.
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "note", embedder.openai_url)
    refused(lambda: alice.execute("""UPDATE ai.vectorizer SET config = jsonb_set(config, '{loading}',
        ai.loading_uri('body')) WHERE id = %s""", (vid,)))
    assert scalar(db, "SELECT config -> 'loading' ->> 'implementation' FROM ai.vectorizer WHERE id = %s", (vid,)) == "column"

    db.execute("GRANT ai_loader_s3_reader TO alice")
    vid = uri_vectorizer(alice, embedder, role=ROLE_ARN)
    assert scalar(db, "SELECT owner FROM ai.vectorizer WHERE id = %s", (vid,)) == "alice"
    steps = alice.execute("SELECT step, ok FROM ai.check_s3_access(%s, %s)",
                          (f"s3://{BUCKET}/public/allowed.md", ROLE_ARN)).fetchall()
    assert all(ok for _, ok in steps), steps
    alice.execute("INSERT INTO document VALUES (1, %s)", (f"s3://{BUCKET}/public/allowed.md",))
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM document_embedding_store") == 1,
             what="alice's document embedded")

    # Revoked: the flow stops with an error row, and nothing queued is consumed.
    db.execute("REVOKE ai_loader_s3_reader FROM alice")
    alice.execute("INSERT INTO document VALUES (2, %s)", (f"s3://{BUCKET}/public/allowed.md",))
    stopped_with(db, vid, 'owner "alice" may no longer load URIs (it is neither a superuser nor a member of '
                          'ai_loader_s3_reader); to resume: GRANT ai_loader_s3_reader TO "alice"')
    assert scalar(db, "SELECT count(*) FROM document_embedding_store") == 1
    db.execute("GRANT ai_loader_s3_reader TO alice")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM document_embedding_store") == 2, timeout=20,
             what="embedded once the role is granted again")
    alice.close()


def stopped_with(db, vid, text):
    """Waits for vectorizer `vid`'s error row, which must say `text`; its row stays queued."""
    message = wait_for(lambda: scalar(db, "SELECT max(message) FROM ai.vectorizer_errors WHERE id = %s", (vid,)),
                       what="an error row")
    assert text in message, message
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1


def failures(db):
    """{key: error message} of the rows that failed."""
    return {row[0]: row[1] for row in db.execute(
        "SELECT details -> 'key' ->> 'id', message FROM ai.vectorizer_errors WHERE details ? 'key'").fetchall()}


def test_uris_reach_only_what_the_settings_allow(cluster, db, embedder, site, files):
    db.execute("CREATE TABLE document (id int PRIMARY KEY, uri text NOT NULL)")
    vid = uri_vectorizer(db, embedder, role=ROLE_ARN)
    port = site.port
    attacks = {
        1: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        2: "http://[::ffff:169.254.169.254]/latest/meta-data/",
        3: f"http://localhost:{port}/doc.txt",                       # a name for a loopback address
        4: f"http://127.0.0.2:{port}/doc.txt",                       # loopback, not the allowed host
        5: "http://10.0.0.1/internal",
        6: f"http://127.0.0.1:{port}/to?url=http://169.254.169.254/latest/meta-data/",
        7: f"http://127.0.0.1:{port}/to?url=http://localhost:{port}/doc.txt",
        8: f"http://127.0.0.1:{port}/to?url=file:///etc/passwd",
        9: "file:///etc/passwd",
        10: f"file://{files}/../../etc/passwd",
        11: f"file://{files}/passwd-link",
        12: f"s3://{BUCKET}/private/secret.md",
        13: f"https://{BUCKET}.s3.us-east-1.amazonaws.com/private/secret.md",
        14: "gopher://127.0.0.1/x",
        15: f"file://{files}/../../etc/no-such-file",               # the same answer as for one that exists
    }
    allowed = {
        21: f"http://127.0.0.1:{port}/doc.txt",
        22: f"http://127.0.0.1:{port}/to?url=http://127.0.0.1:{port}/doc.txt",
        23: f"file://{files}/ok.txt",
        24: f"s3://{BUCKET}/public/allowed.md",
    }
    with db.cursor() as cur:
        cur.executemany("INSERT INTO document VALUES (%s, %s)", list((attacks | allowed).items()))
    wait_for(lambda: queue_empty(db, vid) and len(failures(db)) == len(attacks), timeout=30,
             what="every attack refused")
    assert sorted(r[0] for r in db.execute("SELECT DISTINCT id FROM document_embedding_store")) == sorted(allowed)
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == len(attacks)
    got = failures(db)
    for key in (1, 2, 3, 4, 5):
        assert "ai_loader.http_allowed_hosts" in got[str(key)], (key, got[str(key)])
    assert "redirected to http://169.254.169.254/" in got["6"]
    assert "a redirect to file:///etc/passwd that is not followed" in got["8"]
    assert "localhost is 127.0.0.1" in got["7"]  # the name is checked when the redirect connects
    assert "file:// URIs" not in got["9"] and "outside ai_loader.file_root" in got["9"]
    assert "outside ai_loader.file_root" in got["10"] and "outside ai_loader.file_root" in got["11"]
    assert got["15"].replace(attacks[15], "URI") == got["10"].replace(attacks[10], "URI"), (got["10"], got["15"])
    assert "not in ai_loader.s3_allowed_buckets" in got["12"] and "not in ai_loader.s3_allowed_buckets" in got["13"]
    assert "unsupported URI scheme" in got["14"]
    # The server was never asked for anything but its own allowed pages.
    assert all(p == "/doc.txt" or p.startswith("/to?url=") for p in site.requests), site.requests
    chunks = dict(db.execute("SELECT id, chunk FROM document_embedding_store").fetchall())
    assert "root:" not in " ".join(chunks.values())
    steps = dict(db.execute("SELECT step, ok FROM ai.check_s3_access(%s, %s)",
                            (f"s3://{BUCKET}/private/secret.md", ROLE_ARN)).fetchall())
    assert steps["uri"] is False


def test_embedding_endpoints_reach_only_what_the_settings_allow(cluster, db, embedder, site):
    """A base_url is the vectorizer creator's choice: it may not reach the metadata
    service or the server's own network, whether through the worker or
    ai.vectorizer_embed, and a redirect is not followed. 127.0.0.1 is in
    ai_loader.http_allowed_hosts; localhost, a name for it, is not."""
    alice = connect_as(cluster, db.info.dbname, "alice")

    def embed(config, *args):
        return alice.execute(f"SELECT ai.vectorizer_embed({config}, 'a query')", args).fetchone()[0]

    refused_urls = ["http://169.254.169.254/latest", "http://10.1.2.3:8000/v1", f"http://[::1]:{embedder.port}/v1"]
    for url in refused_urls:
        diag = refused(lambda: embed("ai.embedding_openai('test-embedding', 8, base_url => %s)", url))
        assert f"base_url {url}: " in diag.message_primary and "ai_loader.http_allowed_hosts" in diag.message_primary
    for config in ("ai.embedding_openai('test-embedding', 8, base_url => %s)", "ai.embedding_ollama('m', 8, base_url => %s)"):
        with pytest.raises(psycopg.errors.ConnectionFailure) as err:  # a name: refused when resolved
            embed(config, f"http://localhost:{embedder.port}/v1")
        assert "localhost is 127.0.0.1" in err.value.diag.message_primary
    assert embedder.requests == []
    assert len(embed("ai.embedding_ollama('m', 8, base_url => %s)", embedder.ollama_url)) == 8
    embedder.reset()

    # The worker: the vectorizer's rows stay queued, its errors say why, nothing is sent.
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    urls = {"metadata": "http://169.254.169.254/latest", "name": f"http://localhost:{embedder.port}/v1",
            "redirect": f"http://127.0.0.1:{site.port}/to?url=http://169.254.169.254/latest"}
    ids = {what: column_vectorizer(alice, "note", url, name=what) for what, url in urls.items()}
    alice.execute("INSERT INTO note VALUES (1, 'a note')")

    def messages():
        return dict(db.execute("SELECT name, max(message) FROM ai.vectorizer_errors GROUP BY name").fetchall())
    got = wait_for(lambda: len(messages()) == len(urls) and messages(), what="every vectorizer's error row")
    assert "169.254.169.254 is a loopback, private or link-local address" in got["metadata"], got
    assert "localhost is 127.0.0.1" in got["name"], got
    assert "HTTP 302: a redirect, which is not followed" in got["redirect"], got
    for vid in ids.values():
        assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
    assert embedder.requests == []
    assert not any("169.254" in p and "/to?" not in p for p in site.requests)
    alice.close()


def test_other_users_vectorizers_and_stores_are_out_of_reach(cluster, db, embedder):
    """bob, with ai.grant_ai_usage too, can neither vectorize alice's table, read her
    store or queue, nor change, pause or drop her vectorizer (which the worker runs as
    alice: another base_url would receive her documents)."""
    with cluster.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS bob")
        admin.execute("CREATE ROLE bob LOGIN")
    db.execute("SELECT ai.grant_ai_usage('bob')")
    alice = connect_as(cluster, db.info.dbname, "alice")
    bob = connect_as(cluster, db.info.dbname, "bob")
    try:
        alice.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        alice.execute("GRANT SELECT ON doc TO bob")
        vid = column_vectorizer(alice, "doc", embedder.openai_url)
        alice.execute("INSERT INTO doc VALUES (1, 'alice''s note')")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1, what="alice's row embedded")
        config = scalar(db, "SELECT config FROM ai.vectorizer WHERE id = %s", (vid,))

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            column_vectorizer(bob, "doc", embedder.openai_url, name="bobs")
        for relation in ("doc_embedding_store", "doc_embedding", f"ai._vectorizer_q_{vid}", f"ai._vectorizer_q_failed_{vid}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bob.execute(f"SELECT * FROM {relation}")
        for attempt in (
            "UPDATE ai.vectorizer SET config = jsonb_set(config, '{embedding,base_url}', '\"http://bob.example/v1\"') WHERE id = %s",
            "DELETE FROM ai.vectorizer WHERE id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bob.execute(attempt, (vid,))
        # By id, as for one that does not exist: bob does not see it.
        for attempt in ("SELECT ai.disable_vectorizer_schedule(%s)", "SELECT ai.drop_vectorizer(%s, drop_all => true)"):
            with pytest.raises(psycopg.errors.UndefinedObject) as err:
                bob.execute(attempt, (vid,))
            assert err.value.diag.message_primary == f"vectorizer {vid} does not exist"
        # By name, the same.
        with pytest.raises(psycopg.errors.UndefinedObject):
            bob.execute("SELECT ai.drop_vectorizer('public_doc_embedding_store')")
        assert scalar(db, "SELECT config FROM ai.vectorizer WHERE id = %s", (vid,)) == config
        assert scalar(db, "SELECT NOT disabled FROM ai.vectorizer WHERE id = %s", (vid,))

        # The owner, and a superuser, may.
        alice.execute("SELECT ai.disable_vectorizer_schedule(%s)", (vid,))
        db.execute("SELECT ai.enable_vectorizer_schedule(%s)", (vid,))
        alice.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))
        assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0
    finally:
        alice.close()
        bob.close()
        db.execute("DROP OWNED BY bob")
        with cluster.connect() as admin:
            admin.execute("DROP ROLE bob")


def test_names_cannot_inject_sql(cluster, db, embedder):
    """Schema, table, key, column, vectorizer, destination and template names made of
    SQL are taken as names: the vectorizer works and nothing else runs."""
    db.execute("CREATE TABLE victim (x int)")
    attack = "'); DROP TABLE victim; --"
    schema, table = f'sch"{attack}', f'doc"{attack}'
    key, body, title = f'id"{attack}', f"body{attack}", "Title"  # a placeholder is an identifier
    db.execute(psycopg.sql.SQL("CREATE SCHEMA {} AUTHORIZATION alice").format(psycopg.sql.Identifier(schema)))
    alice = connect_as(cluster, db.info.dbname, "alice")
    ident = psycopg.sql.Identifier
    alice.execute(psycopg.sql.SQL("CREATE TABLE {} ({} int PRIMARY KEY, {} text NOT NULL, {} text NOT NULL)").format(
        ident(schema, table), ident(key), ident(body), ident(title)))
    source = ident(schema, table).as_string(alice)
    vid = scalar(alice, """SELECT ai.create_vectorizer(%s::regclass, name => %s,
        destination => ai.destination_table(%s), loading => ai.loading_column(%s),
        embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), chunking => ai.chunking_none(),
        formatting => ai.formatting_python_template(%s))""",
                 (source, f"v{attack}", f"store{attack}", body, embedder.openai_url, "${Title}: $chunk" + attack))
    alice.execute(psycopg.sql.SQL("INSERT INTO {} VALUES (1, 'first body', 't1'), (2, 'second body', 't2')").format(
        ident(schema, table)))
    store = ident(schema, f"store{attack}_store")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, psycopg.sql.SQL("SELECT count(*) FROM {}").format(store)) == 2,
             what="both rows embedded")
    # Chunks are stored as they are; what is embedded is the template filled in.
    rows = db.execute(psycopg.sql.SQL("SELECT chunk, embedding FROM {} ORDER BY 1").format(store)).fetchall()
    assert [r[0] for r in rows] == ["first body", "second body"]
    for (chunk, got), t in zip(rows, ("t1", "t2")):
        assert got == pytest.approx(vector(f"{t}: {chunk}{attack}", 8), abs=1e-6)
    assert scalar(db, "SELECT name FROM ai.vectorizer WHERE id = %s", (vid,)) == f"v{attack}"
    assert scalar(db, "SELECT to_regclass('victim') IS NOT NULL")
    alice.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))
    assert scalar(db, psycopg.sql.SQL("SELECT to_regclass({}) IS NULL").format(psycopg.sql.Literal(store.as_string(db))))
    assert scalar(db, "SELECT to_regclass('victim') IS NOT NULL")
    alice.close()


def test_secrets_stay_hidden(cluster, db, embedder, s3):
    alice = connect_as(cluster, db.info.dbname, "alice")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SHOW ai_loader.openai_api_key")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT current_setting('ai_loader.openai_api_key')")
    assert scalar(alice, "SELECT count(*) FROM pg_settings WHERE name = 'ai_loader.openai_api_key'") == 0
    assert all(SECRET not in str(v) for (v,) in alice.execute("SELECT setting FROM pg_settings").fetchall())
    assert scalar(db, "SHOW ai_loader.openai_api_key") == SECRET  # a superuser sees it
    for setting in ("ai_loader.s3_allowed_buckets", "ai_loader.http_allowed_hosts", "ai_loader.file_root"):
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            alice.execute(f"SET {setting} = ''")

    # A vectorizer whose provider rejects the key: the key is nowhere in what users read.
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "note", embedder.openai_url)
    embedder.api_key = "a-different-key"
    try:
        alice.execute("INSERT INTO note VALUES (1, 'text')")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM ai.vectorizer_errors WHERE id = %s", (vid,)),
                 what="the provider's refusal recorded")
    finally:
        embedder.api_key = "test-key"
    readable = " ".join(str(r) for r in alice.execute(
        "SELECT config::text FROM ai.vectorizer UNION ALL SELECT message || details::text FROM ai.vectorizer_errors"))
    assert "401" in readable and "test-key" not in readable and SECRET not in readable
    assert "test-key" not in cluster.log() and SECRET not in cluster.log()
    # Nor the server's AWS keys (the module's other tests made S3 and STS calls with them).
    for secret in s3.server_key:
        assert secret not in cluster.log() and secret not in readable
    alice.close()


def test_the_worker_acts_with_the_owners_rights(cluster, db, embedder):
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "doc", embedder.openai_url)
    # A trigger on alice's store sees who writes it: alice, not a superuser.
    alice.execute("CREATE TABLE seen (who text, superuser bool)")
    alice.execute("""CREATE FUNCTION note_writer() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.seen SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
              RETURN NULL; END $$""")
    alice.execute("CREATE TRIGGER note_writer AFTER INSERT ON doc_embedding_store FOR EACH STATEMENT "
                  "EXECUTE FUNCTION note_writer()")
    alice.execute("INSERT INTO doc VALUES (1, 'first')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1, what="row 1 embedded")
    assert db.execute("SELECT who, superuser FROM seen").fetchall() == [("alice", False)]

    # Row-level security on the source applies: a row alice's policy hides is not read.
    alice.execute("ALTER TABLE doc ENABLE ROW LEVEL SECURITY")
    alice.execute("ALTER TABLE doc FORCE ROW LEVEL SECURITY")
    alice.execute("CREATE POLICY readable ON doc FOR SELECT USING (id < 100)")
    alice.execute("CREATE POLICY writable ON doc FOR INSERT WITH CHECK (true)")
    alice.execute("INSERT INTO doc VALUES (101, 'hidden by the policy'), (2, 'visible')")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 2,
             what="the visible row embedded")
    assert [r[0] for r in db.execute("SELECT id FROM doc_embedding_store ORDER BY id")] == [1, 2]

    # Without SELECT on its source the flow stops, saying why, and nothing is consumed.
    db.execute("REVOKE SELECT ON doc FROM alice")
    alice.execute("INSERT INTO doc VALUES (3, 'third')")
    stopped_with(db, vid, "permission denied for table doc")
    db.execute("GRANT SELECT ON doc TO alice")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == 3, timeout=20,
             what="embedded once the right is back")
    assert db.execute("SELECT DISTINCT who, superuser FROM seen").fetchall() == [("alice", False)]
    alice.close()


@contextlib.contextmanager
def login_role(cluster, db, name, *grants):
    """A role that may log in, with `grants` (SQL run in the test database), connected
    to the test database; dropped with what it owns at the end."""
    with cluster.connect() as admin:
        admin.execute(f"DROP ROLE IF EXISTS {name}")
        admin.execute(f"CREATE ROLE {name} LOGIN")
    for grant in grants:
        db.execute(grant)
    conn = connect_as(cluster, db.info.dbname, name)
    try:
        yield conn
    finally:
        conn.close()
        db.execute(f"DROP OWNED BY {name}")
        with cluster.connect() as admin:
            admin.execute(f"DROP ROLE {name}")


@pytest.fixture
def bob(cluster, db):
    """A second user with ai.grant_ai_usage and CREATE on public."""
    with login_role(cluster, db, "bob", "SELECT ai.grant_ai_usage('bob')", "GRANT CREATE ON SCHEMA public TO bob") as conn:
        yield conn


@pytest.fixture
def nobody(cluster, db):
    """A user with no grants at all."""
    with login_role(cluster, db, "nobody") as conn:
        yield conn


def test_the_catalog_cannot_be_rewritten_to_drop_other_objects(cluster, db, embedder):
    """An ai user once rewrote the names in its own catalog row (or inserted a row) to
    name a superuser's table, then dropped its source: the event trigger dropped the
    named table as superuser. The catalog is not the user's to write, and the drop runs
    with the vectorizer owner's rights whatever the catalog says."""
    db.execute("CREATE TABLE precious (x int)")
    db.execute("CREATE FUNCTION precious_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "note", embedder.openai_url)
    row = db.execute("SELECT * FROM ai.vectorizer WHERE id = %s", (vid,)).fetchone()
    for attempt in (
        "UPDATE ai.vectorizer SET queue_schema = 'public', queue_table = 'precious' WHERE id = %s",
        "UPDATE ai.vectorizer SET trigger_name = 'precious_fn' WHERE id = %s",
        "UPDATE ai.vectorizer SET owner = 'postgres' WHERE id = %s",
        "DELETE FROM ai.vectorizer WHERE id = %s",
        "INSERT INTO ai.vectorizer SELECT id + 100, name || 'x', source_schema, source_table, source_pk, "
        "'precious_fn', 'public', 'precious', queue_failed_table, config, disabled, owner "
        "FROM ai.vectorizer WHERE id = %s",
        "UPDATE ai.vectorizer_worker_progress SET success_count = 7 WHERE vectorizer_id = %s",
        "INSERT INTO ai._vectorizer_errors (id, message) VALUES (%s, 'forged')",
        "SELECT nextval('ai.vectorizer_id_seq') + %s",
    ):
        refused(lambda: alice.execute(attempt, (vid,)))
    assert db.execute("SELECT * FROM ai.vectorizer WHERE id = %s", (vid,)).fetchone() == row
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 1

    # Even a catalog row naming another's table (as a superuser could write it) drops
    # nothing of another's: the drop runs as alice, and fails.
    db.execute("UPDATE ai.vectorizer SET queue_schema = 'public', queue_table = 'precious' WHERE id = %s", (vid,))
    refused(lambda: alice.execute("DROP TABLE note CASCADE"))
    assert scalar(db, "SELECT to_regclass('public.precious') IS NOT NULL")
    assert scalar(db, "SELECT to_regclass('public.note') IS NOT NULL")
    db.execute("UPDATE ai.vectorizer SET queue_schema = 'ai', queue_table = %s WHERE id = %s",
               (row[7], vid))
    alice.execute("DROP TABLE note CASCADE")
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0
    assert scalar(db, "SELECT to_regclass('public.precious') IS NOT NULL")
    assert scalar(db, "SELECT to_regprocedure('public.precious_fn()') IS NOT NULL")
    alice.close()


def test_a_renamed_source_keeps_its_vectorizer(cluster, db, embedder, bob):
    """Dropping a table that has the name a vectorizer's source once had (the source was
    renamed) leaves the vectorizer: the drop is matched by its trigger, not its name."""
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "note", embedder.openai_url)
    alice.execute("ALTER TABLE note RENAME TO note_renamed")
    bob.execute("CREATE TABLE note (id int PRIMARY KEY)")
    bob.execute("DROP TABLE note")
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer WHERE id = %s", (vid,)) == 1
    assert scalar(db, "SELECT to_regclass(%s) IS NOT NULL", (f"ai._vectorizer_q_{vid}",))
    alice.close()


def test_schema_ai_is_the_extensions_alone(cluster, db, embedder):
    """With CREATE on schema ai, an ai user planted ai.grant_ai_usage(text): the
    superuser's documented call resolved to it and ran the user's code as superuser.
    Nobody but the catalog owner creates, renames or replaces anything in ai."""
    alice = connect_as(cluster, db.info.dbname, "alice")
    for attempt in (
        "CREATE FUNCTION ai.grant_ai_usage(to_user text) RETURNS void LANGUAGE sql "
        "AS $$ ALTER ROLE alice SUPERUSER $$",
        "CREATE FUNCTION ai.grant_to(VARIADIC text[]) RETURNS name[] LANGUAGE sql AS 'SELECT NULL::name[]'",
        "CREATE FUNCTION ai._wake_worker_at_commit(int DEFAULT 0) RETURNS void LANGUAGE sql AS ''",
        "CREATE TABLE ai._vectorizer_q_999 (id int)",
        "CREATE VIEW ai.vectorizer_status_v2 AS SELECT 1",
    ):
        refused(lambda: alice.execute(attempt))
    assert not scalar(db, "SELECT has_schema_privilege('alice', 'ai', 'CREATE')")

    # Her own vectorizer's objects in ai are hers, yet she cannot move or rename them.
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "note", embedder.openai_url)
    assert scalar(db, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass",
                  (f"ai._vectorizer_q_{vid}",)) == "alice"
    for attempt in (
        f"ALTER TABLE ai._vectorizer_q_{vid} RENAME TO _vectorizer_q_1000",
        f"ALTER FUNCTION ai._vectorizer_src_trg_{vid}() RENAME TO grant_to",
        f"CREATE OR REPLACE FUNCTION ai._vectorizer_src_trg_{vid}() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END $$",
    ):
        refused(lambda: alice.execute(attempt))
    # Nor take a name in ai for a queue.
    alice.execute("CREATE TABLE other (id int PRIMARY KEY, body text NOT NULL)")
    diag = refused(lambda: alice.execute("""SELECT ai.create_vectorizer('other'::regclass,
        loading => ai.loading_column('body'), embedding => ai.embedding_ollama('m', 8),
        queue_table => '_vectorizer_q_1000')"""))
    assert "queue_schema" in diag.message_hint

    # The superuser's documented calls do what they say.
    with cluster.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS newuser")
        admin.execute("CREATE ROLE newuser")
    try:
        db.execute("SELECT ai.grant_ai_usage('newuser')")
        assert not scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'")
        assert scalar(db, "SELECT has_function_privilege('newuser', 'ai.create_vectorizer(regclass, text, jsonb, "
                          "jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, name, name, name[], bool, bool, jsonb)', "
                          "'EXECUTE')")
        assert not scalar(db, "SELECT has_schema_privilege('newuser', 'ai', 'CREATE')")
    finally:
        db.execute("DROP OWNED BY newuser")
        with cluster.connect() as admin:
            admin.execute("DROP ROLE newuser")
    # Writes into vectorized tables still work (no overload can shadow the wake-up).
    alice.execute("INSERT INTO note VALUES (1, 'still writable')")
    alice.close()


def test_errors_and_progress_are_their_owners_alone(cluster, db, embedder, bob):
    """Any ai user once read, forged and deleted the error and progress rows of every
    vectorizer (an error row telling the admin to GRANT a role to mallory), and read
    every configuration. Each user now sees and writes none but its own."""
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "note", "http://user:secret-in-url@127.0.0.1:9/v1")
    alice.execute("INSERT INTO note VALUES (1, 'a note')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai.vectorizer_errors WHERE id = %s", (vid,)),
             what="alice's error row")
    assert scalar(alice, "SELECT count(*) FROM ai.vectorizer_errors") >= 1
    assert scalar(alice, "SELECT count(*) FROM ai.vectorizer") == 1
    assert scalar(alice, "SELECT count(*) FROM ai.vectorizer_status") == 1
    assert scalar(alice, "SELECT count(*) FROM ai.vectorizer_worker_progress") == 1
    for relation in ("ai.vectorizer", "ai.vectorizer_status", "ai.vectorizer_errors", "ai.vectorizer_worker_progress"):
        assert scalar(bob, f"SELECT count(*) FROM {relation}") == 0, relation
    refused(lambda: bob.execute("SELECT * FROM ai._vectorizer_errors"))
    for attempt in (
        "INSERT INTO ai._vectorizer_errors (id, message) VALUES (%s, 'GRANT ai_loader_s3_reader TO mallory')",
        "DELETE FROM ai._vectorizer_errors WHERE id = %s",
        "UPDATE ai.vectorizer_worker_progress SET last_error_message = 'forged' WHERE vectorizer_id = %s",
        "DELETE FROM ai.vectorizer_worker_progress WHERE vectorizer_id = %s",
    ):
        refused(lambda: bob.execute(attempt, (vid,)))
        refused(lambda: alice.execute(attempt, (vid,)))
    everything = " ".join(str(r) for r in bob.execute(
        "SELECT to_jsonb(v)::text FROM ai.vectorizer v UNION ALL SELECT to_jsonb(s)::text FROM ai.vectorizer_status s"))
    assert "secret-in-url" not in everything
    assert "forged" not in str(db.execute("SELECT * FROM ai.vectorizer_status").fetchall())
    alice.close()


def test_server_keys_go_only_where_a_superuser_said(cluster, db, embedder, site, bob, nobody):
    """127.0.0.1 is in ai_loader.http_allowed_hosts, and the embedder's URL in
    ai_loader.api_key_endpoints. Once, any role with a plain SELECT sent the server's key
    to any port of an allowed host, and a lower-case api_key_name read the superuser-only
    setting instead of the environment."""
    collector = f"http://127.0.0.1:{site.port}/v1"
    config = "ai.embedding_openai('test-embedding', 8, base_url => %s)"
    # A role without grants may not embed with a configuration at all.
    refused(lambda: nobody.execute(f"SELECT ai.vectorizer_embed({config}, 'q')", (collector,)))
    refused(lambda: nobody.execute(f"SELECT ai._vectorizer_embed({config}, 'q')", (collector,)))
    # An ai user reaches the allowed host, without the key; a configuration that would
    # carry the key (the listed endpoint) is a superuser's to pass.
    alice = connect_as(cluster, db.info.dbname, "alice")
    with pytest.raises(psycopg.errors.Error):
        alice.execute(f"SELECT ai.vectorizer_embed({config}, 'q')", (collector,))
    diag = refused(lambda: alice.execute(f"SELECT ai.vectorizer_embed({config}, 'q')", (embedder.openai_url,)))
    assert "ai.vectorizer_embed('<vectorizer name>'" in diag.message_hint
    assert embedder.requests == []
    # Nor does the worker send it there, for her vectorizer.
    alice.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    column_vectorizer(alice, "note", collector, name="collected")
    alice.execute("INSERT INTO note VALUES (1, 'a note')")
    wait_for(lambda: any(p.startswith("/v1/embeddings") for p in site.requests), what="the worker's request")
    assert site.authorizations and all(a is None for a in site.authorizations), site.authorizations

    # A superuser may; the environment's key wins whatever the case of api_key_name
    # (the setting ai_loader.openai_api_key holds another key, which the embedder refuses).
    for name in ("OPENAI_API_KEY", "openai_api_key", "OpenAI_Api_Key"):
        got = scalar(db, f"SELECT ai.vectorizer_embed(ai.embedding_openai('test-embedding', 8, "
                         f"api_key_name => %s, base_url => %s), 'q')", (name, embedder.openai_url))
        assert len(got) == 8
    assert embedder.statuses() == [200, 200, 200]  # the embedder answers 401 to any other key

    # Through a vectorizer: its owner, and those it granted its store to.
    vid = column_vectorizer(alice, "note", embedder.openai_url, name="keyed")
    alice.execute("GRANT SELECT ON note_keyed_store TO bob")
    assert len(scalar(alice, "SELECT ai.vectorizer_embed(%s, 'q')", (vid,))) == 8
    assert len(scalar(bob, "SELECT ai.vectorizer_embed('keyed', 'q')")) == 8
    for which in (vid, "keyed"):
        with pytest.raises(psycopg.errors.UndefinedObject):
            nobody.execute("SELECT ai.vectorizer_embed(%s, 'q')", (which,))
    alice.close()


def test_drop_database_by_others_leaves_its_worker(cluster, db, embedder, nobody):
    """A role without rights once paused and SIGTERMed a database's worker by failing a
    DROP DATABASE every 30 s. Only a drop that will happen stops it."""
    db.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    column_vectorizer(db, "note", embedder.openai_url)

    pid = wait_for(lambda: worker_pid(db), what="the database's worker")
    name = db.info.dbname
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        nobody.execute(f'DROP DATABASE "{name}"')
    with cluster.connect() as admin:
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            with admin.transaction():
                admin.execute(f'DROP DATABASE "{name}"')
    db.execute("INSERT INTO note VALUES (1, 'served at once')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM note_embedding_store") == 1, timeout=5,
             what="the row embedded by the same worker")
    assert worker_pid(db) == pid


# What each role may do with each function of schema ai: "public" (anyone), "ai" (roles
# given ai.grant_ai_usage), "owner" (the catalog owner and superusers only). A function
# missing here fails the test: every new function needs a decision.
FUNCTIONS = {
    **{f: "public" for f in (
        "loading_column(text,integer)", "loading_uri(text,integer,text)", "parsing_auto()", "parsing_none()",
        "parsing_pymupdf()", "parsing_docling()",
        "chunking_recursive_character_text_splitter(integer,integer,text[],boolean)",
        "chunking_character_text_splitter(integer,integer,text,boolean)", "chunking_none()",
        "formatting_python_template(text)", "embedding_openai(text,integer,text,text,text)",
        "embedding_ollama(text,integer,text,jsonb,text)", "embedding_local(text,integer)",
        "embedding_voyageai(text,integer,text,text)", "embedding_litellm(text,integer,text,jsonb)",
        "embedding_bedrock(text,integer,text,text)", "check_embedding(text)",
        "destination_table(text,text,text,text,text)", "destination_column(text)", "indexing_none()",
        "indexing_default()", "indexing_hnsw(integer,text,integer,integer,boolean)", "scheduling_default()",
        "scheduling_none()", "scheduling_timescaledb(interval,timestamp with time zone,boolean,text)",
        "indexing_diskann(integer,text,integer,integer,double precision,integer,integer,boolean)",
        "embedding_sentence_transformers(text,integer)",
        "processing_default(integer,integer)", "grant_to(name[])", "grant_to()",
        "cosine_distance(real[],real[])", "check_s3_access(text,text,text)",
        "vectorizer_embed(integer,text,text)", "vectorizer_embed(text,text,text)",
        "_vectorizer_embed_for(integer,text)", "_vectorizer_embed_for(text,text)",
        "text_indexing_none()", "text_indexing_fts(regconfig)",
        "search(text,text,integer,text)", "search(integer,text,integer,text)",
        "_search(text,text,integer,text)", "_search(integer,text,integer,text)",
        "_may_manage(regrole)", "_wake_worker_at_commit()", "_wake_worker_at_commit(integer)", "_worker_state()", "_embeddings(name,name,jsonb)")},
    **{f: "ai" for f in (
        "create_vectorizer(regclass,text,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,name,name,name[],boolean,boolean,"
        "jsonb)",
        "_create_vectorizer(oid,text,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,jsonb,text,text,text[],boolean,boolean,"
        "jsonb)",
        "drop_vectorizer(integer,boolean)", "drop_vectorizer(text,boolean)",
        "disable_vectorizer_schedule(integer)", "disable_vectorizer_schedule(text)",
        "enable_vectorizer_schedule(integer)", "enable_vectorizer_schedule(text)",
        "_vectorizer_set_disabled(integer,boolean)", "_vectorizer_id(text)",
        "set_scheduling(integer,jsonb,jsonb)", "_set_scheduling(integer,jsonb,jsonb)",
        "execute_vectorizer(integer)", "execute_vectorizer(text)",
        "vectorizer_queue_pending(integer,boolean)", "vectorizer_queue_pending(text,boolean)",
        "vectorizer_embed(jsonb,text,text)", "_vectorizer_embed(jsonb,text)", "check_embedding(jsonb)",
        "openai_embed(text,text,text,text,integer,text,jsonb,jsonb,jsonb,boolean,jsonb)",
        "ollama_embed(text,text,text,text,jsonb,boolean)", "voyageai_embed(text,text,text,text,text,boolean)",
        "_openai_embed_config(text,text,text,integer,text,jsonb,jsonb,jsonb,jsonb)",
        "_ollama_embed_config(text,text,text,jsonb)", "_voyageai_embed_config(text,text,text,text)",
        "create_s3_sync(regclass,text,name,text,text,text[],text[],jsonb,interval,text,boolean)",
        "_create_s3_sync(oid,text,text,text,text,text[],text[],jsonb,double precision,text,boolean)",
        "drop_s3_sync(integer)", "drop_s3_sync(text)", "s3_sync_now(integer)", "s3_sync_now(text)",
        "pause_s3_sync(integer)", "pause_s3_sync(text)", "resume_s3_sync(integer)", "resume_s3_sync(text)",
        "_s3_sync_set_paused(integer,boolean)", "_s3_sync_id(text)")},
    **{f: "owner" for f in (
        "grant_ai_usage(name,boolean)", "grant_vectorizer_usage(name,boolean)", "_may_load_uris(regrole)", "_wake_launcher()", "_vectorizer_handle_drops()",
        "_define_vectorizer_embed()", "_vectorizer_handle_new_extensions()", "_refresh_vectorizers()")},
}

# Table privileges in schema ai: what an ai user and a role without grants hold.
RELATIONS = {
    "vectorizer": ("SELECT", ""),
    "vectorizer_status": ("SELECT", ""),
    "vectorizer_errors": ("SELECT", ""),
    "vectorizer_worker_progress": ("SELECT", ""),
    "_vectorizer_errors": ("", ""),
    "vectorizer_id_seq": ("", ""),
    "s3_sync": ("SELECT", ""),
    "s3_sync_status": ("SELECT", ""),
    "s3_sync_errors": ("SELECT", ""),
    "_s3_sync_object": ("", ""),
    "_s3_sync_progress": ("", ""),
    "_s3_sync_errors": ("", ""),
    "s3_sync_id_seq": ("", ""),
}


def test_every_object_of_schema_ai_has_a_privilege_decision(cluster, db, embedder, nobody):
    """For every function, table, view and sequence of schema ai, what an ai user and a
    role without grants may do is what the tables above say (pgvector adds the functions
    that return its type)."""
    db.execute("CREATE EXTENSION vector")
    db.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(db, "note", embedder.openai_url)  # a vectorizer's objects are not the extension's
    got = dict(db.execute("""
        SELECT p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
               CASE WHEN has_function_privilege('nobody', p.oid, 'EXECUTE') THEN 'public'
                    WHEN has_function_privilege('alice', p.oid, 'EXECUTE') THEN 'ai' ELSE 'owner' END
          FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
         WHERE p.pronamespace = 'ai'::regnamespace""").fetchall())
    got = {f.replace(", ", ","): who for f, who in got.items()}
    assert got == FUNCTIONS | {f"_vectorizer_embed_for_vector({first},text)": "public" for first in ("integer", "text")}
    privileges = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    for relation, (ai_user, public) in RELATIONS.items():
        for role, allowed in (("alice", ai_user), ("nobody", public)):
            held = [p for p in privileges
                    if scalar(db, "SELECT has_table_privilege(%s, %s, %s)", (role, f"ai.{relation}", p))]
            assert held == ([allowed] if allowed else []), (relation, role, held)
    extension_relations = {r for (r,) in db.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
         WHERE d.deptype = 'e' AND c.relnamespace = 'ai'::regnamespace""")}
    assert extension_relations == set(RELATIONS)
    for role in ("alice", "nobody"):
        assert not scalar(db, "SELECT has_schema_privilege(%s, 'ai', 'CREATE')", (role,))
        assert not scalar(db, "SELECT has_sequence_privilege(%s, 'ai.vectorizer_id_seq', 'USAGE')", (role,))
    # A vectorizer's trigger function and queues are its owner's alone.
    for role in ("alice", "nobody"):
        assert not scalar(db, "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, f"ai._vectorizer_src_trg_{vid}()"))
        assert not scalar(db, "SELECT has_table_privilege(%s, %s, 'SELECT')", (role, f"ai._vectorizer_q_{vid}"))


# Where a user's code, settings and objects meet what runs with more rights than hers.

HOSTILE_OPERATORS = """
    CREATE TABLE public.pwned (who text, superuser bool, what text);
    GRANT INSERT ON public.pwned TO PUBLIC;
    CREATE FUNCTION public.note_caller(what text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.pwned SELECT current_user, r.rolsuper, what
              FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
        END $$;
    CREATE FUNCTION public.evil_int4_eq(a int4, b int4) RETURNS bool LANGUAGE plpgsql AS $$
        BEGIN PERFORM public.note_caller('int4 ='); RETURN a OPERATOR(pg_catalog.=) b; END $$;
    CREATE FUNCTION public.evil_int8_plus(a int8, b int8) RETURNS int8 LANGUAGE plpgsql AS $$
        BEGIN PERFORM public.note_caller('int8 +'); RETURN a OPERATOR(pg_catalog.+) b; END $$;
    CREATE FUNCTION public.evil_text_eq(a text, b text) RETURNS bool LANGUAGE plpgsql AS $$
        BEGIN PERFORM public.note_caller('text ='); RETURN a OPERATOR(pg_catalog.=) b; END $$;
    CREATE OPERATOR public.= (LEFTARG = int4, RIGHTARG = int4, FUNCTION = public.evil_int4_eq);
    CREATE OPERATOR public.+ (LEFTARG = int8, RIGHTARG = int8, FUNCTION = public.evil_int8_plus);
    CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_text_eq);
"""


def pwned(db):
    """Who ran the hostile operators' code, with which rights: [(who, superuser, what)]."""
    return db.execute("SELECT DISTINCT who, superuser, what FROM public.pwned ORDER BY 1, 3").fetchall()


def take_session(conn, table, events):
    """A statement trigger on `table` (for `events`) that changes the session it runs in
    at session level — the search path to public, where the hostile operators are,
    read-only transactions, a 1 ms statement timeout — and notes who ran it."""
    conn.execute("""CREATE FUNCTION public.take_session() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog, pg_temp', false);
            PERFORM pg_catalog.set_config('default_transaction_read_only', 'on', false);
            PERFORM pg_catalog.set_config('statement_timeout', '1ms', false);
            PERFORM public.note_caller('trigger');
            RETURN NULL;
        END $$""")
    conn.execute(f"CREATE TRIGGER take_session AFTER {events} ON {table} "
                 "FOR EACH STATEMENT EXECUTE FUNCTION public.take_session()")


def test_an_owners_code_cannot_change_the_workers_session(cluster, db, embedder):
    """A trigger on alice's store set the worker's search_path at session level to her
    schema, where her operators wait: the worker's next bookkeeping statements, run as
    superuser, called them (ALTER ROLE alice SUPERUSER was one line away). Another
    setting, default_transaction_read_only, stopped every vectorizer of the database.
    Whatever her code sets is rolled back when her section ends; the worker goes on."""
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute(HOSTILE_OPERATORS)
    alice.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "doc", embedder.openai_url)
    take_session(alice, "doc_embedding_store", "INSERT")
    # A second vectorizer of the database, a superuser's: it goes on too.
    db.execute("CREATE TABLE other (id int PRIMARY KEY, body text NOT NULL)")
    other = column_vectorizer(db, "other", embedder.openai_url)
    for i in range(1, 4):
        alice.execute("INSERT INTO doc VALUES (%s, %s)", (i, f"note {i}"))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM doc_embedding_store") == i, what=f"alice's row {i}")
        db.execute("INSERT INTO other VALUES (%s, %s)", (i, f"other {i}"))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM other_embedding_store") == i, what=f"other row {i}")
    assert queue_empty(db, vid) and queue_empty(db, other)
    # Her own code ran, with her rights alone (in her sessions, and in her trigger).
    assert ("alice", False, "trigger") in pwned(db)
    assert all(who == "alice" and not superuser for who, superuser, _ in pwned(db)), pwned(db)
    assert not scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'")
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer_errors") == 0
    alice.close()


@contextlib.contextmanager
def app_table(cluster, db):
    """Role app (LOGIN) and its table app_docs, whose BEFORE UPDATE and INSERT trigger
    notes who runs it, and tries to make app a superuser when that is a superuser."""
    with login_role(cluster, db, "app", "GRANT CREATE ON SCHEMA public TO app") as app:
        app.execute("CREATE TABLE app_docs (id int PRIMARY KEY, body text, uri text UNIQUE)")
        app.execute("CREATE TABLE seen (who text, superuser bool)")
        app.execute("GRANT INSERT ON seen TO PUBLIC")
        app.execute("""CREATE FUNCTION app_hook() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO public.seen SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
                IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                    EXECUTE 'ALTER ROLE app SUPERUSER';
                END IF;
                RETURN NEW;
            END $$""")
        app.execute("CREATE TRIGGER app_hook BEFORE INSERT OR UPDATE ON app_docs FOR EACH ROW EXECUTE FUNCTION app_hook()")
        yield app


def test_a_table_owners_trigger_runs_with_the_table_owners_rights(cluster, db, embedder):
    """A superuser made a vectorizer on a table an application role owns, with an
    embedding column: the worker's UPDATE of the table ran app's trigger as superuser,
    and app became one. The vectorizer belongs to the table's owner, as an index does;
    the worker writes as app."""
    with app_table(cluster, db) as app:
        vid = scalar(db, """SELECT ai.create_vectorizer('app_docs'::regclass, loading => ai.loading_column('body'),
            embedding => ai.embedding_openai('test-embedding', 8, base_url => %s), chunking => ai.chunking_none(),
            destination => ai.destination_column('emb'))""", (embedder.openai_url,))
        assert scalar(db, "SELECT owner::text FROM ai.vectorizer WHERE id = %s", (vid,)) == "app"
        assert scalar(db, f"SELECT relowner::regrole::text FROM pg_class WHERE oid = 'ai._vectorizer_q_{vid}'::regclass") == "app"
        app.execute("INSERT INTO app_docs (id, body) VALUES (1, 'first'), (2, 'second')")
        wait_for(lambda: scalar(db, "SELECT count(*) FROM app_docs WHERE emb IS NOT NULL") == 2, what="embedded")
        assert db.execute("SELECT DISTINCT who, superuser FROM seen").fetchall() == [("app", False)]
        assert not scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'")

        # A table given to another role afterwards: the worker stops, saying why, and
        # never writes it with the vectorizer owner's rights.
        db.execute("CREATE ROLE app2")
        try:
            app.execute("GRANT INSERT ON app_docs TO PUBLIC")
            db.execute("ALTER TABLE app_docs OWNER TO app2")
            app.execute("INSERT INTO app_docs (id, body) VALUES (3, 'third')")
            stopped_with(db, vid, 'owner "app" no longer owns its source table')
            db.execute("ALTER TABLE app_docs OWNER TO app")
            wait_for(lambda: scalar(db, "SELECT count(*) FROM app_docs WHERE emb IS NOT NULL") == 3, timeout=20,
                     what="embedded once the table is back")
        finally:
            db.execute("DROP ROLE app2")
        assert db.execute("SELECT DISTINCT who, superuser FROM seen").fetchall() == [("app", False)]
        assert not scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'")
        db.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))


def test_a_sync_writes_its_table_as_the_tables_owner(cluster, db, embedder, s3):
    """A sync a superuser made for app's table wrote it as superuser, app's trigger
    included. It belongs to app now: app must be allowed to read S3, and the worker
    writes the table as app."""
    with app_table(cluster, db) as app:
        app.execute("ALTER TABLE app_docs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY")
        make = ("SELECT ai.create_s3_sync('app_docs'::regclass, uri_prefix => %s, column_name => 'uri', "
                "aws_role_arn => %s)", (f"s3://{BUCKET}/public/", ROLE_ARN))
        diag = refused(lambda: db.execute(*make))
        assert 'belongs to the owner of table "public"."app_docs"' in diag.message_detail, diag.message_detail
        assert diag.message_hint == "A superuser can allow it: GRANT ai_loader_s3_reader TO app;"
        db.execute("GRANT ai_loader_s3_reader TO app")
        try:
            sync = scalar(db, *make)
            assert scalar(db, "SELECT owner::text FROM ai.s3_sync WHERE id = %s", (sync,)) == "app"
            wait_for(lambda: scalar(db, "SELECT count(*) FROM app_docs"), what="the listing's row")
            assert db.execute("SELECT DISTINCT who, superuser FROM seen").fetchall() == [("app", False)]
            assert not scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'")
            db.execute("SELECT ai.drop_s3_sync(%s)", (sync,))
        finally:
            db.execute("REVOKE ai_loader_s3_reader FROM app")


def test_a_destinations_trigger_cannot_change_the_workers_session(cluster, db, s3):
    """The sync's side of the first attack: a trigger on alice's destination table set
    the worker's search_path to her schema, and the sync's bookkeeping that followed
    (`o.sync_id = $1` on ai._s3_sync_object), run as superuser, called her operator.
    Her setting ends with her section; the sync goes on."""
    db.execute("GRANT ai_loader_s3_reader TO alice")
    s3.put("public/session.md", b"An object for the destination's trigger.")
    alice = connect_as(cluster, db.info.dbname, "alice")
    try:
        alice.execute(HOSTILE_OPERATORS)
        alice.execute("CREATE TABLE synced (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, uri text UNIQUE NOT NULL)")
        take_session(alice, "synced", "INSERT OR UPDATE OR DELETE")
        sync = scalar(alice, "SELECT ai.create_s3_sync('synced'::regclass, uri_prefix => %s, column_name => 'uri', "
                             "aws_role_arn => %s)", (f"s3://{BUCKET}/public/", ROLE_ARN))
        session = f"s3://{BUCKET}/public/session.md"
        wait_for(lambda: scalar(db, "SELECT count(*) FROM synced WHERE uri = %s", (session,)) == 1,
                 what="the listing's rows")
        s3.s3.delete_object(Bucket=BUCKET, Key="public/session.md")
        alice.execute("SELECT ai.s3_sync_now(%s)", (sync,))
        wait_for(lambda: scalar(db, "SELECT count(*) FROM synced WHERE uri = %s", (session,)) == 0,
                 what="a second listing, after the trigger ran")
        assert ("alice", False, "trigger") in pwned(db)
        assert all(who == "alice" and not superuser for who, superuser, _ in pwned(db)), pwned(db)
        assert not scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'")
        assert scalar(db, "SELECT count(*) FROM ai.s3_sync_errors WHERE id = %s", (sync,)) == 0
        alice.execute("SELECT ai.drop_s3_sync(%s)", (sync,))
    finally:
        alice.close()
        s3.s3.delete_object(Bucket=BUCKET, Key="public/session.md")
        db.execute("REVOKE ai_loader_s3_reader FROM alice")


def test_search_runs_only_pgvectors_operators(cluster, db, embedder):
    """ai.search took the distance operator from the schema of the store's column
    type: alice retyped her embeddings to her domain `mallory.vector` with an operator
    `mallory.<=>`, and her function ran as whoever searched, a superuser included. The
    search now uses pgvector's type and operators by their extension, and refuses a
    store of any other type."""
    db.execute("CREATE EXTENSION vector")
    db.execute(f"GRANT CREATE ON DATABASE \"{db.info.dbname}\" TO alice")
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "doc", embedder.openai_url)
    alice.execute("GRANT SELECT ON doc_embedding_store TO PUBLIC")
    alice.execute("INSERT INTO doc VALUES (1, 'a note')")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM doc_embedding_store") == 1,
             what="embedded")
    name = scalar(db, "SELECT name FROM ai.vectorizer WHERE id = %s", (vid,))
    assert [r[2] for r in db.execute("SELECT * FROM ai.search(%s, 'a note', 5, 'vector')", (name,))] == ["a note"]

    alice.execute(HOSTILE_OPERATORS)
    alice.execute("""
        CREATE SCHEMA mallory;
        CREATE DOMAIN mallory.vector AS public.vector;
        CREATE FUNCTION mallory.distance(a mallory.vector, b mallory.vector) RETURNS float8 LANGUAGE plpgsql AS $$
            BEGIN PERFORM public.note_caller('<=>'); RETURN 0; END $$;
        CREATE OPERATOR mallory.<=> (LEFTARG = mallory.vector, RIGHTARG = mallory.vector, FUNCTION = mallory.distance);
        DROP VIEW doc_embedding;
        ALTER TABLE doc_embedding_store ALTER COLUMN embedding TYPE mallory.vector;
        GRANT USAGE ON SCHEMA mallory TO PUBLIC;""")
    with pytest.raises(psycopg.errors.DatatypeMismatch) as err:
        db.execute("SELECT * FROM ai.search(%s, 'a note', 5, 'vector')", (name,))
    assert "neither pgvector's vector nor real[]" in err.value.diag.message_primary
    assert pwned(db) == []
    alice.close()


def test_owners_are_roles_not_names(cluster, db, embedder, bob):
    """The catalog named owners by role name: after a rename the owner lost its
    vectorizer and a new role of the old name got it (its configuration, and the
    worker's rights); after REASSIGN OWNED and DROP ROLE nobody could manage it."""
    with login_role(cluster, db, "dave", "SELECT ai.grant_ai_usage('dave')", "GRANT CREATE ON SCHEMA public TO dave") as dave:
        dave.execute("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
        vid = column_vectorizer(dave, "note", embedder.openai_url)
        with cluster.connect() as admin:
            admin.execute("ALTER ROLE dave RENAME TO dave_old")
            admin.execute("CREATE ROLE dave LOGIN")
        try:
            assert scalar(db, "SELECT owner::text FROM ai.vectorizer WHERE id = %s", (vid,)) == "dave_old"
            assert scalar(dave, "SELECT count(*) FROM ai.vectorizer") == 1  # the session is dave_old's
            db.execute("SELECT ai.grant_ai_usage('dave')")
            with connect_as(cluster, db.info.dbname, "dave") as newcomer:
                assert scalar(newcomer, "SELECT count(*) FROM ai.vectorizer") == 0
                with pytest.raises(psycopg.errors.UndefinedObject):
                    newcomer.execute("SELECT ai.drop_vectorizer(%s)", (vid,))
            dave.execute("INSERT INTO note VALUES (1, 'renamed')")
            wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM note_embedding_store") == 1,
                     what="embedded as the renamed owner")

            # REASSIGN OWNED moves the vectorizer with its tables; the worker acts as bob.
            db.execute("REASSIGN OWNED BY dave_old TO bob")
            db.execute("DROP OWNED BY dave_old")
        finally:
            db.execute("DROP OWNED BY dave")
            with cluster.connect() as admin:
                admin.execute("DROP ROLE dave")
                admin.execute("ALTER ROLE dave_old RENAME TO dave")
    assert scalar(db, "SELECT owner::text FROM ai.vectorizer WHERE id = %s", (vid,)) == "bob"
    assert scalar(bob, "SELECT count(*) FROM ai.vectorizer") == 1
    bob.execute("INSERT INTO note VALUES (2, 'reassigned')")
    wait_for(lambda: queue_empty(db, vid) and scalar(db, "SELECT count(*) FROM note_embedding_store") == 2,
             what="embedded as the new owner")

    # DROP OWNED drops the owner's tables, and with them its vectorizer.
    db.execute("DROP OWNED BY bob")
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0


def test_refusals_say_no_more_than_does_not_exist(cluster, db, embedder, bob):
    """A refusal by id named another user's vectorizer or sync ("permission denied to
    drop vectorizer …"), where one that did not exist said "does not exist"."""
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "doc", embedder.openai_url)
    name = scalar(db, "SELECT name FROM ai.vectorizer WHERE id = %s", (vid,))
    missing = vid + 1000

    def said(sql, arg):
        with pytest.raises(psycopg.errors.UndefinedObject) as err:
            bob.execute(sql, (arg,))
        return err.value.diag.message_primary.replace(str(arg), "X").replace(f'"{arg}"', "X")

    for call in ("SELECT ai.drop_vectorizer(%s)", "SELECT ai.disable_vectorizer_schedule(%s)",
                 "SELECT ai.enable_vectorizer_schedule(%s)", "SELECT * FROM ai.search(%s, 'q', 5, 'vector')",
                 "SELECT ai.vectorizer_embed(%s, 'q')"):
        assert said(call, vid) == said(call, missing), call
        assert said(call, name) == said(call, "no_such_vectorizer"), call
    alice.close()


def dump_as(cluster, db, user, *selection):
    from cluster import PG_BIN
    import subprocess
    return subprocess.run([f"{PG_BIN}/pg_dump", "-h", cluster.dir, "-p", str(cluster.port), "-U", user,
                           "-d", db.info.dbname, *selection], capture_output=True, text=True)


def test_an_owner_dumps_her_own_as_readme_says(cluster, db, embedder, bob):
    """`pg_dump -n ai` needs every owner's queues (README, "Dumping one's own"); an
    owner's own tables by name, and her catalog rows as data, are hers to save."""
    alice = connect_as(cluster, db.info.dbname, "alice")
    alice.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
    vid = column_vectorizer(alice, "doc", embedder.openai_url)
    db.execute("CREATE TABLE other (id int PRIMARY KEY, body text NOT NULL)")
    column_vectorizer(db, "other", embedder.openai_url)
    whole = dump_as(cluster, db, "alice", "-n", "ai")
    assert whole.returncode != 0 and "permission denied" in whole.stderr, whole.stderr
    own = dump_as(cluster, db, "alice", "-t", f"ai._vectorizer_q_{vid}", "-t", f"ai._vectorizer_q_failed_{vid}",
                  "-t", "public.doc", "-t", "public.doc_embedding_store")
    assert own.returncode == 0, own.stderr
    for table in (f"ai._vectorizer_q_{vid}", f"ai._vectorizer_q_failed_{vid}", "public.doc_embedding_store"):
        assert f"CREATE TABLE {table} (" in own.stdout, table
    rows = alice.execute("SELECT id, owner::text FROM ai.vectorizer").fetchall()
    assert rows == [(vid, "alice")]
    alice.close()
