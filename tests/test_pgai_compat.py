"""pgai's SQL, run unchanged: the calls and results of pgai's own vectorizer tests
(projects/pgai/db/tests/vectorizer/ of timescale/pgai at 3e054856) and of its
documentation (docs/vectorizer/), written here as cases of ai_loader's. Where ai_loader
differs on purpose, README "Compared with pgai" says so and why."""

import psycopg
import pytest

from helpers import new_database, scalar

OPENAI = "ai.embedding_openai('text-embedding-3-small', 768)"


@pytest.fixture
def db(preloaded, request):
    conn = new_database(preloaded, request.node.name[:60])
    yield conn
    conn.close()


def as_role(cluster, db, role):
    return cluster.connect(db.info.dbname, user=role)


def roles(db, *names):
    for name in names:
        db.execute(f"DROP ROLE IF EXISTS {name}")
        db.execute(f"CREATE ROLE {name} LOGIN")


def state_of(call):
    with pytest.raises(psycopg.Error) as raised:
        call()
    return raised.value.sqlstate


@pytest.mark.parametrize("setting, call, expected", [
    ("", "ai.grant_to()", []),
    ("bob, barry, sal", "ai.grant_to()", ["bob", "barry", "sal"]),
    ("", "ai.grant_to('ted')", ["ted"]),
    ("bob,barry,sal", "ai.grant_to('may')", ["barry", "may", "sal", "bob"]),
    ("bob , barry , sal ", "ai.grant_to(variadic array[]::name[])", ["barry", "sal", "bob"]),
    ("", "ai.grant_to(variadic array[]::name[])", []),
])
def test_grant_to_adds_the_default_roles(db, setting, call, expected):
    """pgai's test_grants: ai.grant_to() adds the roles of ai.grant_to_default, spaces
    trimmed, and is an empty array, not NULL, for none."""
    if setting:
        db.execute(f"SET ai.grant_to_default = '{setting}'")
    assert sorted(scalar(db, f"SELECT {call}")) == sorted(expected)


def test_grant_vectorizer_usage_lets_a_role_make_vectorizers(preloaded, db):
    """pgai 0.12's ai.grant_vectorizer_usage(to_user, admin): the role may then make a
    vectorizer of its own table and read the catalog's views; with admin it may pass
    it on."""
    roles(db, "jill", "jack")
    db.execute("SELECT ai.grant_vectorizer_usage('jill', admin => true)")
    db.execute("CREATE SCHEMA wiki AUTHORIZATION jill")
    with as_role(preloaded, db, "jill") as jill:
        jill.execute("CREATE TABLE wiki.post (id int PRIMARY KEY, body text NOT NULL)")
        vid = scalar(jill, f"""SELECT ai.create_vectorizer('wiki.post'::regclass,
            loading => ai.loading_column('body'), embedding => {OPENAI})""")
        assert scalar(jill, "SELECT count(*) FROM ai.vectorizer_status WHERE id = %s", (vid,)) == 1
        jill.execute("SELECT ai.grant_vectorizer_usage('jack')")
    with as_role(preloaded, db, "jack") as jack:
        assert scalar(jack, "SELECT count(*) FROM ai.vectorizer_errors") == 0


def test_if_not_exists_returns_the_existing_vectorizer(db):
    """Run twice, as a migration is: the second call notices and returns the first's id,
    whatever the destination (a column destination too)."""
    db.execute("CREATE TABLE blog (id int PRIMARY KEY, body text NOT NULL)")
    for destination in ("ai.destination_column('body_embedding')", "ai.destination_table()"):
        create = f"""SELECT ai.create_vectorizer('blog'::regclass, loading => ai.loading_column('body'),
            embedding => {OPENAI}, destination => {destination},
            chunking => ai.chunking_none(), if_not_exists => true)"""
        first = scalar(db, create)
        notices = []
        db.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert scalar(db, create) == first
        assert any("already exists, skipping" in n for n in notices), notices
        assert state_of(lambda: db.execute(create.replace("if_not_exists => true", "if_not_exists => false"))) \
            == "42710"


def test_grant_to_lets_the_roles_read_through_the_view(preloaded, db):
    """The roles of grant_to read the view (which joins the source) and the store, in
    schemas not theirs: USAGE on the schemas, SELECT on the source, as pgai grants."""
    roles(db, "owner_a", "reader_b")
    db.execute("CREATE SCHEMA src AUTHORIZATION owner_a")
    db.execute("CREATE SCHEMA dst AUTHORIZATION owner_a")
    db.execute("SELECT ai.grant_ai_usage('owner_a')")
    with as_role(preloaded, db, "owner_a") as owner:
        owner.execute("CREATE TABLE src.note (id int PRIMARY KEY, body text NOT NULL)")
        owner.execute("INSERT INTO src.note VALUES (1, 'a note')")
        owner.execute(f"""SELECT ai.create_vectorizer('src.note'::regclass, loading => ai.loading_column('body'),
            embedding => {OPENAI}, destination => ai.destination_table(target_schema => 'dst', view_schema => 'dst'),
            grant_to => ai.grant_to('reader_b'))""")
    with as_role(preloaded, db, "reader_b") as reader:
        assert scalar(reader, "SELECT count(*) FROM dst.note_embedding_store") == 0
        assert scalar(reader, "SELECT count(*) FROM dst.note_embedding") == 0
        assert scalar(reader, "SELECT body FROM src.note") == "a note"
        assert state_of(lambda: reader.execute("INSERT INTO dst.note_embedding_store (id, chunk_seq, chunk) "
                                               "VALUES (2, 0, 'forged')")) == "42501"


def test_dropping_the_source_drops_what_the_vectorizer_made(db):
    """DROP TABLE … CASCADE drops the vectorizer, its queues, store and view; the same
    table and vectorizer can then be made again."""
    for _ in range(2):
        db.execute("CREATE TABLE blog (id int PRIMARY KEY, body text NOT NULL)")
        vid = scalar(db, f"""SELECT ai.create_vectorizer('blog'::regclass, loading => ai.loading_column('body'),
            embedding => {OPENAI})""")
        db.execute("DROP TABLE blog CASCADE")
        assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0
        for relation in ("blog_embedding_store", "blog_embedding", f"ai._vectorizer_q_{vid}",
                         f"ai._vectorizer_q_failed_{vid}"):
            assert scalar(db, "SELECT to_regclass(%s)", (relation,)) is None, relation


def test_a_name_taken_is_a_duplicate_object(db):
    """pgai raises 42710 (duplicate_object) when the store, view or queue name is taken."""
    db.execute("CREATE TABLE blog (id int PRIMARY KEY, body text NOT NULL)")
    db.execute("CREATE TABLE blog_embedding_store (x int)")
    create = f"""SELECT ai.create_vectorizer('blog'::regclass, loading => ai.loading_column('body'),
        embedding => {OPENAI})"""
    assert state_of(lambda: db.execute(create)) == "42710"
    db.execute("DROP TABLE blog_embedding_store")
    db.execute("CREATE VIEW blog_embedding AS SELECT 1")
    assert state_of(lambda: db.execute(create)) == "42710"
