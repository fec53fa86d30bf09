"""pgai's SQL, run unchanged: the calls and results of pgai's own vectorizer tests
(projects/pgai/db/tests/vectorizer/ of timescale/pgai at commit 3e054856) and of the
SQL blocks of its documentation (docs/vectorizer/), written here as ai_loader's cases.

A case is pgai's SQL as pgai's test or page writes it; what it needs around it (a
table, a role) is made first. pgai's tests of its internal `ai._validate_*` functions
become the configuration passed to `ai.create_vectorizer`, which is where ai_loader
checks it. Cases that need TimescaleDB (its jobs) or pgai's external worker, and SQL
that pgai itself refuses (a trailing comma, a placeholder), do not apply and are not
here. Where ai_loader differs on purpose, the case says so (`DIFFERENT`), asserts what
ai_loader does instead, and README "Compared with pgai" says why."""

import psycopg
import pytest

from cluster import Cluster
from helpers import new_database, scalar

OPENAI = "ai.embedding_openai('text-embedding-3-small', 768)"
REST = f"loading => ai.loading_column('contents'), embedding => {OPENAI}"


@pytest.fixture(scope="module")
def sql_cluster():
    """A cluster where the vectorizers are made and nothing embeds (no worker), as in
    pgai's SQL tests."""
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.max_workers = 0"])
    with cluster.connect() as admin:
        for role in ("bob", "alice", "adelaide", "marketing_team", "jill", "jack", "jimmy", "greg"):
            admin.execute(f"CREATE ROLE {role} LOGIN")
    yield cluster
    cluster.stop()


def fresh(cluster, name):
    conn = new_database(cluster, name[:60])
    conn.execute("CREATE EXTENSION vector")
    conn.execute("SET TimeZone = 'UTC'")
    return conn


@pytest.fixture
def db(sql_cluster, request):
    conn = fresh(sql_cluster, request.node.name)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def shared(sql_cluster):
    """One database for the cases that each run in a transaction rolled back after."""
    conn = fresh(sql_cluster, "pgai_cases")
    for statement in TABLES:
        conn.execute(statement)
    yield conn
    conn.close()


def as_role(cluster, db, role):
    return cluster.connect(db.info.dbname, user=role)


def state_of(call):
    with pytest.raises(psycopg.Error) as raised:
        call()
    return raised.value.sqlstate


def rolled_back(conn, work):
    """`work(conn)` in a transaction that is rolled back."""
    conn.autocommit = False
    try:
        return work(conn)
    finally:
        conn.rollback()
        conn.autocommit = True


# The tables pgai's tests and pages name (a primary key added where pgai's test table
# has none: a vectorizer needs one, in pgai as here).
TABLES = [
    "CREATE TABLE thing (id int PRIMARY KEY, color text, weight float, body text, document bytea)",
    "CREATE TABLE thing2 (id int PRIMARY KEY, color text, weight float, chunk text)",
    "CREATE TABLE blog (id serial PRIMARY KEY, title text, authors text, contents text, metadata jsonb)",
    "CREATE TABLE my_table (id serial PRIMARY KEY, contents text, file_uri_column_name text, document bytea)",
    "CREATE TABLE blog_posts (id serial PRIMARY KEY, title text, published timestamptz, author text, "
    "category text, contents text)",
    "CREATE SCHEMA website",
    "CREATE TABLE website.blog (id serial PRIMARY KEY, title text, published timestamptz, contents text)",
    "CREATE TABLE website.product_descriptions (id serial PRIMARY KEY, description text)",
    "CREATE SCHEMA my_table",
    "CREATE TABLE articles (id serial PRIMARY KEY, contents text)",
    "CREATE TABLE document (id serial PRIMARY KEY, uri text NOT NULL, updated_at timestamptz DEFAULT now())",
]

# pgai's builder tests: each call, and the JSON pgai returns for it.
BUILDERS = [
    ('test_chunking_character_text_splitter', 'select ai.chunking_none()',
     {'implementation': 'none', 'config_type': 'chunking'}),
    ('test_chunking_character_text_splitter', 'select ai.chunking_character_text_splitter(128, 10)',
     {'separator': '\n\n', 'is_separator_regex': False, 'chunk_size': 128, 'chunk_overlap': 10, 'implementation': 'character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_character_text_splitter', "select ai.chunking_character_text_splitter(256, 20, separator=>E'\n;')",
     {'separator': '\n;', 'is_separator_regex': False, 'chunk_size': 256, 'chunk_overlap': 20, 'implementation': 'character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_character_text_splitter', "select ai.chunking_character_text_splitter ( 256 , 20 , separator=>'(\\s+)' , is_separator_regex=>true )",
     {'separator': '(\\s+)', 'is_separator_regex': True, 'chunk_size': 256, 'chunk_overlap': 20, 'implementation': 'character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_character_text_splitter', 'select ai.chunking_character_text_splitter()',
     {'separator': '\n\n', 'is_separator_regex': False, 'chunk_size': 800, 'chunk_overlap': 400, 'implementation': 'character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_recursive_character_text_splitter', 'select ai.chunking_recursive_character_text_splitter(128, 10)',
     {'separators': ['\n\n', '\n', '.', '?', '!', ' ', ''], 'is_separator_regex': False, 'chunk_size': 128, 'chunk_overlap': 10, 'implementation': 'recursive_character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_recursive_character_text_splitter', "select ai.chunking_recursive_character_text_splitter(256, 20, separators=>array[E'\n;', ' '])",
     {'separators': ['\n;', ' '], 'is_separator_regex': False, 'chunk_size': 256, 'chunk_overlap': 20, 'implementation': 'recursive_character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_recursive_character_text_splitter', "select ai.chunking_recursive_character_text_splitter ( 256 , 20 , separators=>array['(\\s+)'] , is_separator_regex=>true )",
     {'separators': ['(\\s+)'], 'is_separator_regex': True, 'chunk_size': 256, 'chunk_overlap': 20, 'implementation': 'recursive_character_text_splitter', 'config_type': 'chunking'}),
    ('test_chunking_recursive_character_text_splitter', 'select ai.chunking_recursive_character_text_splitter()',
     {'separators': ['\n\n', '\n', '.', '?', '!', ' ', ''], 'is_separator_regex': False, 'chunk_size': 800, 'chunk_overlap': 400, 'implementation': 'recursive_character_text_splitter', 'config_type': 'chunking'}),
    ('test_embedding_openai', "select ai.embedding_openai('text-embedding-3-small', 128)",
     {'implementation': 'openai', 'config_type': 'embedding', 'model': 'text-embedding-3-small', 'dimensions': 128, 'api_key_name': 'OPENAI_API_KEY'}),
    ('test_embedding_openai', "select ai.embedding_openai('text-embedding-3-small', 128, chat_user=>'bob')",
     {'implementation': 'openai', 'config_type': 'embedding', 'model': 'text-embedding-3-small', 'dimensions': 128, 'user': 'bob', 'api_key_name': 'OPENAI_API_KEY'}),
    ('test_embedding_openai', "select ai.embedding_openai('text-embedding-3-small', 128, api_key_name=>'DEV_API_KEY')",
     {'implementation': 'openai', 'config_type': 'embedding', 'model': 'text-embedding-3-small', 'dimensions': 128, 'api_key_name': 'DEV_API_KEY'}),
    ('test_embedding_voyageai', "select ai.embedding_voyageai('voyage-3-lite', 512)",
     {'implementation': 'voyageai', 'config_type': 'embedding', 'model': 'voyage-3-lite', 'dimensions': 512, 'input_type': 'document', 'api_key_name': 'VOYAGE_API_KEY'}),
    ('test_embedding_voyageai', "select ai.embedding_voyageai('voyage-3-lite', 512, api_key_name => 'TEST_API_KEY', input_type => null)",
     {'implementation': 'voyageai', 'config_type': 'embedding', 'model': 'voyage-3-lite', 'dimensions': 512, 'api_key_name': 'TEST_API_KEY'}),
    ('test_embedding_voyageai', "select ai.embedding_voyageai('voyage-3-lite', 512, api_key_name => 'TEST_API_KEY', input_type => 'query')",
     {'implementation': 'voyageai', 'config_type': 'embedding', 'model': 'voyage-3-lite', 'dimensions': 512, 'input_type': 'query', 'api_key_name': 'TEST_API_KEY'}),
    ('test_formatting_python_template', 'select ai.formatting_python_template()',
     {'implementation': 'python_template', 'config_type': 'formatting', 'template': '$chunk'}),
    ('test_formatting_python_template', "select ai.formatting_python_template ( 'size: $size shape: $shape $chunk' )",
     {'implementation': 'python_template', 'config_type': 'formatting', 'template': 'size: $size shape: $shape $chunk'}),
    ('test_indexing_none', 'select ai.indexing_none()',
     {'implementation': 'none', 'config_type': 'indexing'}),
    ('test_indexing_diskann', 'select ai.indexing_diskann()',
     {'implementation': 'diskann', 'config_type': 'indexing', 'min_rows': 100000, 'create_when_queue_empty': True}),
    ('test_indexing_diskann', 'select ai.indexing_diskann(min_rows=>500)',
     {'implementation': 'diskann', 'config_type': 'indexing', 'min_rows': 500, 'create_when_queue_empty': True}),
    ('test_indexing_diskann', "select ai.indexing_diskann(storage_layout=>'plain')",
     {'implementation': 'diskann', 'config_type': 'indexing', 'min_rows': 100000, 'storage_layout': 'plain', 'create_when_queue_empty': True}),
    ('test_indexing_diskann', "select ai.indexing_diskann(storage_layout=>'plain', create_when_queue_empty=>false)",
     {'implementation': 'diskann', 'config_type': 'indexing', 'min_rows': 100000, 'storage_layout': 'plain', 'create_when_queue_empty': False}),
    ('test_indexing_diskann', "select ai.indexing_diskann ( storage_layout=>'memory_optimized' , num_neighbors=>50 , search_list_size=>150 , max_alpha=>1.2 , num_dimensions=>768 , num_bits_per_dimension=>2 )",
     {'implementation': 'diskann', 'config_type': 'indexing', 'min_rows': 100000, 'storage_layout': 'memory_optimized', 'num_neighbors': 50, 'search_list_size': 150, 'max_alpha': 1.2, 'num_dimensions': 768, 'num_bits_per_dimension': 2, 'create_when_queue_empty': True}),
    ('test_indexing_diskann', "select ai.indexing_diskann ( storage_layout=>'memory_optimized' , num_neighbors=>50 , search_list_size=>150 , max_alpha=>1.2 , num_dimensions=>768 , num_bits_per_dimension=>2 , create_when_queue_empty=>false )",
     {'implementation': 'diskann', 'config_type': 'indexing', 'min_rows': 100000, 'storage_layout': 'memory_optimized', 'num_neighbors': 50, 'search_list_size': 150, 'max_alpha': 1.2, 'num_dimensions': 768, 'num_bits_per_dimension': 2, 'create_when_queue_empty': False}),
    ('test_indexing_hnsw', 'select ai.indexing_hnsw()',
     {'implementation': 'hnsw', 'config_type': 'indexing', 'min_rows': 100000, 'opclass': 'vector_cosine_ops', 'create_when_queue_empty': True}),
    ('test_indexing_hnsw', 'select ai.indexing_hnsw(min_rows=>500)',
     {'implementation': 'hnsw', 'config_type': 'indexing', 'min_rows': 500, 'opclass': 'vector_cosine_ops', 'create_when_queue_empty': True}),
    ('test_indexing_hnsw', "select ai.indexing_hnsw(opclass=>'vector_l1_ops')",
     {'implementation': 'hnsw', 'config_type': 'indexing', 'min_rows': 100000, 'opclass': 'vector_l1_ops', 'create_when_queue_empty': True}),
    ('test_indexing_hnsw', 'select ai.indexing_hnsw(m=>10, ef_construction=>100)',
     {'implementation': 'hnsw', 'config_type': 'indexing', 'min_rows': 100000, 'm': 10, 'ef_construction': 100, 'opclass': 'vector_cosine_ops', 'create_when_queue_empty': True}),
    ('test_indexing_hnsw', 'select ai.indexing_hnsw(m=>10, ef_construction=>100, create_when_queue_empty=>false)',
     {'implementation': 'hnsw', 'config_type': 'indexing', 'min_rows': 100000, 'm': 10, 'ef_construction': 100, 'opclass': 'vector_cosine_ops', 'create_when_queue_empty': False}),
    ('test_loading_column', "select ai.loading_column('content')",
     {'config_type': 'loading', 'implementation': 'column', 'column_name': 'content', 'retries': 6}),
    ('test_loading_column', "select ai.loading_column('content', 10)",
     {'config_type': 'loading', 'implementation': 'column', 'column_name': 'content', 'retries': 10}),
    ('test_loading_uri', "select ai.loading_uri('s3_uri')",
     {'config_type': 'loading', 'implementation': 'uri', 'column_name': 's3_uri', 'retries': 6}),
    ('test_loading_uri', "select ai.loading_uri('s3_uri', 3)",
     {'config_type': 'loading', 'implementation': 'uri', 'column_name': 's3_uri', 'retries': 3}),
    ('test_loading_uri', "select ai.loading_uri('s3_uri', aws_role_arn => 'arn:aws:iam::account:role/role-name-with-path')",
     {'config_type': 'loading', 'implementation': 'uri', 'column_name': 's3_uri', 'retries': 6, 'aws_role_arn': 'arn:aws:iam::account:role/role-name-with-path'}),
    ('test_parsing', 'select ai.parsing_docling()',
     {'config_type': 'parsing', 'implementation': 'docling'}),
    ('test_parsing', 'select ai.parsing_pymupdf()',
     {'config_type': 'parsing', 'implementation': 'pymupdf'}),
    ('test_parsing', 'select ai.parsing_auto()',
     {'config_type': 'parsing', 'implementation': 'auto'}),
    ('test_parsing', 'select ai.parsing_none()',
     {'config_type': 'parsing', 'implementation': 'none'}),
    ('test_processing_default', 'select ai.processing_default()',
     {'implementation': 'default', 'config_type': 'processing'}),
    ('test_processing_default', 'select ai.processing_default(batch_size=>500)',
     {'implementation': 'default', 'config_type': 'processing', 'batch_size': 500}),
    ('test_processing_default', 'select ai.processing_default(concurrency=>3)',
     {'implementation': 'default', 'config_type': 'processing', 'concurrency': 3}),
    ('test_processing_default', 'select ai.processing_default(batch_size=>500, concurrency=>3)',
     {'implementation': 'default', 'config_type': 'processing', 'batch_size': 500, 'concurrency': 3}),
    ('test_scheduling_none', 'select ai.scheduling_none()',
     {'implementation': 'none', 'config_type': 'scheduling'}),
    ('test_scheduling_timescaledb', 'select ai.scheduling_timescaledb()',
     {'implementation': 'timescaledb', 'config_type': 'scheduling', 'schedule_interval': '00:05:00'}),
    ('test_scheduling_timescaledb', "select ai.scheduling_timescaledb(interval '10m')",
     {'implementation': 'timescaledb', 'config_type': 'scheduling', 'schedule_interval': '00:10:00'}),
    ('test_scheduling_timescaledb', "select ai.scheduling_timescaledb(interval '1h', timezone=>'America/Chicago')",
     {'implementation': 'timescaledb', 'config_type': 'scheduling', 'schedule_interval': '01:00:00', 'timezone': 'America/Chicago'}),
    ('test_scheduling_timescaledb', "select ai.scheduling_timescaledb(interval '10m', fixed_schedule=>true, timezone=>'America/Chicago')",
     {'implementation': 'timescaledb', 'config_type': 'scheduling', 'schedule_interval': '00:10:00', 'timezone': 'America/Chicago', 'fixed_schedule': True}),
    ('test_scheduling_timescaledb', "select ai.scheduling_timescaledb ( interval '15m' , initial_start=>'2025-01-06 America/Chicago'::timestamptz , fixed_schedule=>false , timezone=>'America/Chicago' )",
     {'implementation': 'timescaledb', 'config_type': 'scheduling', 'schedule_interval': '00:15:00', 'timezone': 'America/Chicago', 'fixed_schedule': False, 'initial_start': '2025-01-06T06:00:00+00:00'}),
]

# pgai's destination tests (test_destination.py).
BUILDERS += [
    ("test_destination_table", "select ai.destination_table(target_schema => 'my_schema', target_table => 'my_table')",
     {"config_type": "destination", "implementation": "table", "target_schema": "my_schema", "target_table": "my_table"}),
    ("test_destination_table", "select ai.destination_table(target_schema => 'my_schema', target_table => 'my_table', "
     "view_schema => 'my_schema', view_name => 'my_view')",
     {"config_type": "destination", "implementation": "table", "target_schema": "my_schema", "target_table": "my_table",
      "view_schema": "my_schema", "view_name": "my_view"}),
    ("test_destination_column", "select ai.destination_column('embedding')",
     {"implementation": "column", "embedding_column": "embedding", "config_type": "destination"}),
    ("test_destination_column", "select ai.destination_column('vector_embedding')",
     {"implementation": "column", "embedding_column": "vector_embedding", "config_type": "destination"}),
]

# Where ai_loader answers otherwise on purpose: the case, and what README "Compared with
# pgai" says of it.
DIFFERENT = {
    "arn:aws:iam::account:role": "a role ARN's account is 12 digits (STS refuses any other)",
    "scheduling_none() , indexing=>ai.indexing_hnsw": "the worker builds the index without a schedule",
    "huggingface/": "embedding_litellm serves its providers natively; other prefixes are refused",
    "vertex_ai/": "embedding_litellm serves its providers natively; other prefixes are refused",
    "AWS_SECRET_ACCESS_KEY": "secrets are not configuration: api_key_name ends in API_KEY, extra_options hold no keys",
    "MY_OPENAI_API_KEY_NAME": "api_key_name ends in API_KEY",
}


def difference(sql):
    return next((why for key, why in DIFFERENT.items() if key in " ".join(sql.split())), None)


@pytest.mark.parametrize("test, sql, expected", BUILDERS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BUILDERS)])
def test_builders_return_pgais_json(shared, test, sql, expected):
    if difference(sql):
        assert state_of(lambda: shared.execute(sql)) == "22023", difference(sql)
        return
    assert scalar(shared, sql) == expected


def vectorizer(part_sql, table="thing", loading="ai.loading_column('body')"):
    """create_vectorizer with the configuration of one of pgai's `_validate_*` cases."""
    return (f"select ai.create_vectorizer('{table}'::regclass, loading => {loading}, "
            f"embedding => {OPENAI}, {part_sql})")


# pgai's `_validate_*` tests: configurations it accepts ...
ACCEPTED = [
    ("test_validate_chunking", vectorizer("chunking => ai.chunking_character_text_splitter( 128, 10)")),
    ("test_validate_chunking", vectorizer("chunking => ai.chunking_recursive_character_text_splitter(128, 10)")),
    ("test_validate_chunking", vectorizer("chunking => ai.chunking_none()")),
    ("test_validate_embedding", vectorizer("chunking => ai.chunking_none()").replace("768", "756")),
    ("test_validate_formatting", vectorizer("formatting => ai.formatting_python_template()")),
    ("test_validate_formatting",
     vectorizer("formatting => ai.formatting_python_template('color: $color weight: $weight $chunk')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_none()")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw()")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw(opclass=>'vector_ip_ops')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw(opclass=>'vector_cosine_ops')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw(opclass=>'vector_l1_ops')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw(opclass=>null)")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw(create_when_queue_empty=>false)")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_diskann()")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_diskann(storage_layout=>'plain')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_diskann(storage_layout=>'memory_optimized')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_diskann(storage_layout=>null)")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_diskann(create_when_queue_empty=>false)")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_auto()")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_auto()", loading="ai.loading_column('document')")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_docling()", loading="ai.loading_column('document')")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_pymupdf()", loading="ai.loading_column('document')")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default()")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(batch_size=>500)")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(batch_size=>2048)")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(batch_size=>2048, concurrency=>1)")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(concurrency=>10)")),
    ("test_validate_scheduling", vectorizer("scheduling => ai.scheduling_none(), indexing => ai.indexing_none()")),
    ("test_validate_scheduling", vectorizer("scheduling => ai.scheduling_timescaledb()")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_column('body')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_column('document')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_uri('body')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading=(
        "ai.loading_uri('body', aws_role_arn => 'arn:aws:iam::account:role/role-name-with-path')"))),
    ("test_validate_destination_valid",
     vectorizer("destination => ai.destination_table('my_schema', 'my_table'), chunking => ai.chunking_none()")),
    ("test_validate_destination_valid", vectorizer("destination => ai.destination_table('my_schema', 'my_table'), "
                                                   "chunking => ai.chunking_character_text_splitter()")),
    ("test_validate_destination_valid", vectorizer("destination => ai.destination_table('my_schema', 'my_table'), "
                                                   "chunking => ai.chunking_recursive_character_text_splitter()")),
    ("test_validate_destination_valid",
     vectorizer("destination => ai.destination_column('embedding'), chunking => ai.chunking_none()")),
]

# ... and configurations it refuses.
REFUSED = [
    ("test_validate_chunking", vectorizer("chunking => ai.scheduling_none()")),
    ("test_embedding_voyageai", "select ai.embedding_voyageai('voyage-3-lite', 512, input_type => 'foo')"),
    ("test_validate_embedding", "select ai.create_vectorizer('thing'::regclass, loading => ai.loading_column('body'), "
                                "embedding => ai.chunking_character_text_splitter(128, 10))"),
    ("test_validate_embedding", "select ai.create_vectorizer('thing'::regclass, loading => ai.loading_column('body'), "
                                "embedding => '{\"config_type\": \"embedding\"}')"),
    ("test_validate_embedding", "select ai.create_vectorizer('thing'::regclass, loading => ai.loading_column('body'), "
                                "embedding => '{\"config_type\": \"embedding\", \"implementation\": \"bob\"}')"),
    ("test_validate_formatting", vectorizer("formatting => ai.scheduling_none()")),
    ("test_validate_formatting",
     vectorizer("formatting => '{\"implementation\": \"jinja2\", \"config_type\": \"formatting\"}'::jsonb")),
    ("test_validate_formatting",
     vectorizer("formatting => ai.formatting_python_template('color: $color weight: $weight height: $height')")),
    ("test_validate_formatting", vectorizer(
        "formatting => ai.formatting_python_template('color: $color weight: $weight height: $height $chunk')",
        table="thing2", loading="ai.loading_column('color')")),
    ("test_validate_formatting", vectorizer("formatting => ai.scheduling_none()", table="thing2",
                                            loading="ai.loading_column('color')")),
    ("test_validate_indexing", vectorizer("indexing => ai.indexing_hnsw(opclass=>'peter')")),
    ("test_validate_indexing", "select ai.indexing_diskann(storage_layout=>'super_advanced')"),
    ("test_validate_indexing", vectorizer("indexing => ai.scheduling_none()")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_docling()")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_pymupdf()")),
    ("test_validate_parsing", vectorizer("parsing => ai.parsing_none()", loading="ai.loading_column('document')")),
    ("test_validate_processing", vectorizer("processing => ai.indexing_hnsw()")),
    ("test_validate_processing", vectorizer("processing => '{\"config_type\": \"processing\"}'::jsonb")),
    ("test_validate_processing", vectorizer(
        "processing => '{\"config_type\": \"processing\", \"implementation\": \"grandfather clock\"}'::jsonb")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(batch_size=>2049)")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(batch_size=>0)")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(concurrency=>0)")),
    ("test_validate_processing", vectorizer("processing => ai.processing_default(concurrency=>51)")),
    ("test_validate_scheduling", vectorizer("scheduling => ai.indexing_hnsw(opclass=>'peter')")),
    ("test_validate_scheduling", vectorizer("scheduling => '{\"config_type\": \"scheduling\"}'::jsonb")),
    ("test_validate_scheduling", vectorizer(
        "scheduling => '{\"config_type\": \"scheduling\", \"implementation\": \"grandfather clock\"}'::jsonb")),
    ("test_validate_loading", "select ai.loading_column()"),
    ("test_validate_loading", "select ai.loading_uri()"),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()",
                                         loading="ai.loading_column('column_does_not_exist')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_column('weight')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_uri('weight')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()",
                                         loading="ai.loading_uri('non_existing_column')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_uri('document')")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.scheduling_none()")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()", loading="ai.loading_column('body', -1)")),
    ("test_validate_loading", vectorizer("chunking => ai.chunking_none()",
                                         loading="ai.loading_uri('body', aws_role_arn => 'foo_bar')")),
    ("test_validate_destination_invalid",
     vectorizer("destination => ai.chunking_none(), chunking => ai.chunking_none()")),
    ("test_validate_destination_invalid", vectorizer(
        "destination => ai.destination_column('embedding'), chunking => ai.chunking_character_text_splitter()")),
    ("test_validate_destination_invalid", vectorizer(
        "destination => ai.destination_column('embedding'), chunking => ai.chunking_recursive_character_text_splitter()")),
    ("test_none_index_scheduling", vectorizer("scheduling => ai.scheduling_none() , indexing=>ai.indexing_hnsw(min_rows=>10, m=>20)")),
]


def run_case(conn, sql):
    conn.execute("CREATE SCHEMA IF NOT EXISTS my_table")
    return conn.execute(sql).fetchone()


@pytest.mark.parametrize("test, sql", ACCEPTED, ids=[f"{t}-{i}" for i, (t, _) in enumerate(ACCEPTED)])
def test_configurations_pgai_accepts(shared, test, sql):
    why = difference(sql)
    if why:
        assert state_of(lambda: rolled_back(shared, lambda c: run_case(c, sql))) in ("22023", "0A000"), why
        return
    assert rolled_back(shared, lambda c: run_case(c, sql))[0] > 0


@pytest.mark.parametrize("test, sql", REFUSED, ids=[f"{t}-{i}" for i, (t, _) in enumerate(REFUSED)])
def test_configurations_pgai_refuses(shared, test, sql):
    why = difference(sql)
    if why:
        assert rolled_back(shared, lambda c: run_case(c, sql))[0] > 0, why
        return
    state = state_of(lambda: rolled_back(shared, lambda c: run_case(c, sql)))
    assert state[:2] in ("22", "42", "0A"), state


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


def test_grant_vectorizer_usage_lets_a_role_make_vectorizers(sql_cluster, db):
    """pgai 0.12's ai.grant_vectorizer_usage(to_user, admin): the role may then make a
    vectorizer of its own table and read the catalog's views; with admin it may pass
    it on."""
    db.execute("SELECT ai.grant_vectorizer_usage('jill', admin => true)")
    db.execute("CREATE SCHEMA wiki AUTHORIZATION jill")
    with as_role(sql_cluster, db, "jill") as jill:
        jill.execute("CREATE TABLE wiki.post (id int PRIMARY KEY, body text NOT NULL)")
        vid = scalar(jill, f"""SELECT ai.create_vectorizer('wiki.post'::regclass,
            loading => ai.loading_column('body'), embedding => {OPENAI})""")
        assert scalar(jill, "SELECT count(*) FROM ai.vectorizer_status WHERE id = %s", (vid,)) == 1
        jill.execute("SELECT ai.grant_vectorizer_usage('jack')")
    with as_role(sql_cluster, db, "jack") as jack:
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


def test_grant_to_lets_the_roles_read_through_the_view(sql_cluster, db):
    """The roles of grant_to read the view (which joins the source) and the store, in
    schemas not theirs: USAGE on the schemas, SELECT on the source, as pgai grants."""
    db.execute("CREATE SCHEMA src AUTHORIZATION jimmy")
    db.execute("CREATE SCHEMA dst AUTHORIZATION jimmy")
    db.execute("SELECT ai.grant_ai_usage('jimmy')")
    with as_role(sql_cluster, db, "jimmy") as owner:
        owner.execute("CREATE TABLE src.note (id int PRIMARY KEY, body text NOT NULL)")
        owner.execute("INSERT INTO src.note VALUES (1, 'a note')")
        owner.execute(f"""SELECT ai.create_vectorizer('src.note'::regclass, loading => ai.loading_column('body'),
            embedding => {OPENAI}, destination => ai.destination_table(target_schema => 'dst', view_schema => 'dst'),
            grant_to => ai.grant_to('greg'))""")
    with as_role(sql_cluster, db, "greg") as reader:
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


def note_table(db, name):
    db.execute("CREATE SCHEMA IF NOT EXISTS vec")
    db.execute(f"CREATE TABLE vec.{name} (id bigint NOT NULL PRIMARY KEY GENERATED ALWAYS AS IDENTITY, "
               "note text NOT NULL)")


def note_vectorizer(name, extra=""):
    return f"""select ai.create_vectorizer
        ( 'vec.{name}'::regclass
        , loading => ai.loading_column('note')
        , embedding=>ai.embedding_openai('text-embedding-3-small', 3)
        , chunking=>ai.chunking_character_text_splitter()
        , scheduling=>ai.scheduling_none()
        , indexing=>ai.indexing_none()
        , grant_to=>null
        , enqueue_existing=>false {extra})"""


def test_naming_collisions(db):
    """pgai's test_naming_collisions: each name a second vectorizer would take is
    refused with DuplicateObject; named apart, it is made."""
    note_table(db, "note4")
    db.execute(note_vectorizer("note4"))
    collide = note_vectorizer("note4", ", name => 'dont_collide_on_name'")
    assert state_of(lambda: db.execute(collide)) == "42710"
    assert state_of(lambda: db.execute(note_vectorizer("note4", """, name => 'dont_collide_on_name'
        , destination=>ai.destination_table(view_schema=>'vec', view_name=>'note4_embedding2')"""))) == "42710"
    assert state_of(lambda: db.execute(note_vectorizer("note4", """, name => 'dont_collide_on_name'
        , destination=>ai.destination_table(view_schema=>'vec', view_name=>'note4_embedding2',
                                            target_schema=>'vec', target_table=>'note4_embedding_store2')
        , queue_schema=>'ai', queue_table=>'_vectorizer_q_1'"""))) == "42710"
    vid = scalar(db, note_vectorizer("note4", """, destination=>ai.destination_table(target_schema=>'vec',
            target_table=>'note4_embedding_store2', view_schema=>'vec', view_name=>'note4_embedding2')
        , queue_schema=>'ai', queue_table=>'this_is_a_queue_table'"""))
    row = db.execute("SELECT config, queue_schema, queue_table FROM ai.vectorizer WHERE id = %s", (vid,)).fetchone()
    assert (row[0]["destination"]["target_table"], row[1], row[2]) == \
        ("note4_embedding_store2", "ai", "this_is_a_queue_table")
    assert scalar(db, """select to_regclass('vec.note4_embedding_store2') is not null
        and to_regclass('ai.this_is_a_queue_table') is not null and to_regclass('vec.note4_embedding2') is not null""")
    vid = scalar(db, note_vectorizer("note4", ", destination=>ai.destination_table(destination=>'fernando')"))
    config = scalar(db, "SELECT config FROM ai.vectorizer WHERE id = %s", (vid,))
    assert (config["destination"]["target_table"], config["destination"]["view_name"]) == ("fernando_store", "fernando")


def test_queue_pending(db):
    """pgai's test_queue_pending: an exact count, and pgai's saturated estimate."""
    note_table(db, "note5")
    vid = scalar(db, note_vectorizer("note5"))
    queue = db.execute("SELECT queue_schema, queue_table FROM ai.vectorizer WHERE id = %s", (vid,)).fetchone()
    db.execute(f"insert into {queue[0]}.{queue[1]} (id) select x from generate_series(1, 10001) x")
    assert scalar(db, "select ai.vectorizer_queue_pending(%s, true)", (vid,)) == 10001
    assert scalar(db, "select ai.vectorizer_queue_pending(%s)", (vid,)) == 9223372036854775807


def test_grant_to_public(db):
    """pgai's test_grant_to_public: PUBLIC may read the queue and the store."""
    note_table(db, "note6")
    vid = scalar(db, note_vectorizer("note6").replace("grant_to=>null", "grant_to=>ai.grant_to('public')"))
    v = db.execute("SELECT queue_schema, queue_table, config FROM ai.vectorizer WHERE id = %s", (vid,)).fetchone()
    assert scalar(db, f"select has_table_privilege('public', '{v[0]}.{v[1]}', 'select')")
    target = v[2]["destination"]
    assert scalar(db, f"select has_table_privilege('public', '{target['target_schema']}.{target['target_table']}', "
                      "'select')")


def test_create_vectorizer_privs(sql_cluster, db):
    """pgai's test_create_vectorizer_privs: only the table's owner (or a superuser) makes
    a vectorizer on it."""
    db.execute("grant create on schema public to jimmy")
    db.execute("select ai.grant_vectorizer_usage('jimmy', admin=>false)")
    db.execute("select ai.grant_vectorizer_usage('greg', admin=>false)")
    create = """select ai.create_vectorizer('priv_test'::regclass, loading => ai.loading_column('foo'),
        embedding=>ai.embedding_openai('text-embedding-3-small', 3), chunking=>ai.chunking_character_text_splitter(),
        scheduling=>ai.scheduling_none(), indexing=>ai.indexing_none(), grant_to=>null)"""
    with as_role(sql_cluster, db, "jimmy") as jimmy:
        jimmy.execute("create table priv_test (id int not null primary key generated always as identity, "
                      "foo text, bar text)")
        with as_role(sql_cluster, db, "greg") as greg:
            assert state_of(lambda: greg.execute(create)) == "42501"
        assert scalar(jimmy, create) > 0
    assert scalar(db, create.replace("loading =>", "destination=>ai.destination_table(destination=>'red_balloon'), "
                                                   "loading =>")) > 0


def test_bytea_and_uri_loading(db):
    """pgai's test_vectorizer_bytea, test_vectorizer_document_loading_pymupdf,
    test_vectorizer_bytea_parsing_none_fails, test_vectorizer_uri_loading_parsing_none_is_allowed."""
    db.execute("create schema vec")
    db.execute("create table vec.doc_bytea (id bigint not null primary key generated always as identity, "
               "content bytea not null)")
    db.execute("insert into vec.doc_bytea(content) values (decode('255044462D312E340A25', 'hex'))")
    create = """select ai.create_vectorizer('vec.{table}'::regclass, loading => ai.{loading}, {parsing}
        embedding => ai.embedding_openai('text-embedding-3-small', 3), chunking => ai.chunking_character_text_splitter(),
        scheduling => ai.scheduling_none(), indexing => ai.indexing_none(), grant_to => null, enqueue_existing => false)"""
    vid = scalar(db, create.format(table="doc_bytea", loading="loading_column('content')", parsing=""))
    config = scalar(db, "select config from ai.vectorizer where id = %s", (vid,))
    assert (config["loading"]["column_name"], config["parsing"]["implementation"]) == ("content", "auto")
    assert state_of(lambda: db.execute(create.format(table="doc_bytea", loading="loading_column('content')",
                                                     parsing="parsing => ai.parsing_none(),")))[:2] == "22"
    for table, parsing in (("doc_url_pymupdf", "pymupdf"), ("doc_url_parsing_none", "none")):
        db.execute(f"create table vec.{table} (id bigint not null primary key generated always as identity, "
                   "url text not null)")
        vid = scalar(db, create.format(table=table, loading="loading_uri('url')",
                                       parsing=f"parsing => ai.parsing_{parsing}(),"))
        config = scalar(db, "select config from ai.vectorizer where id = %s", (vid,))
        assert (config["loading"]["implementation"], config["parsing"]["implementation"]) == ("uri", parsing)


@pytest.mark.parametrize("text_type", ["text", "varchar", "char(10)", "character varying"])
def test_vectorizer_text_pymupdf_fails(db, text_type):
    """pgai's test_vectorizer_text_pymupdf_fails: pymupdf needs a bytea column."""
    db.execute(f"create table t (id bigint not null primary key generated always as identity, "
               f"content {text_type} not null)")
    assert state_of(lambda: db.execute("""select ai.create_vectorizer('t'::regclass,
        loading => ai.loading_column('content'), parsing => ai.parsing_pymupdf(),
        embedding => ai.embedding_openai('text-embedding-3-small', 3))""")) == "22023"


def test_weird_primary_key(db):
    """pgai's test_weird_primary_key: a key of an array, a domain, a timestamp and a range."""
    db.execute("create schema vec")
    db.execute("create domain vec.code as varchar(3)")
    db.execute("""create table vec.weird (a text[] not null, b vec.code not null, c timestamp with time zone not null,
        d tstzrange not null, note text not null, primary key (a, b, c, d))""")
    vid = scalar(db, note_vectorizer("weird").replace("grant_to=>null", "grant_to=>ai.grant_to('public')"))
    db.execute("""insert into vec.weird(a, b, c, d, note)
        select array['larry', 'moe', 'curly'], 'xyz', t, tstzrange(t, t + interval '1d', '[)'),
               'if two witches watch two watches, which witch watches which watch'
        from generate_series('2025-01-06'::timestamptz, '2025-01-12'::timestamptz, interval '1d') t""")
    assert scalar(db, "select ai.vectorizer_queue_pending(%s)", (vid,)) == 7


def test_vectorizer_row_and_triggers(sql_cluster, db):
    """pgai's test_vectorizer (its TimescaleDB job left out): the catalog row pgai writes,
    and the triggers — rows queued by other roles, a delete, an update, a key change, a
    truncate — and the pending count, disable and enable."""
    db.execute("create schema website")
    db.execute("""create table website.blog (id int not null generated always as identity, title text not null,
        published timestamptz, body text not null, drop_me text, primary key (title, published))""")
    db.execute("grant select, insert, update, delete on website.blog to bob, adelaide")
    db.execute("grant usage on schema website to adelaide")
    db.execute("""insert into website.blog(title, published, body) values
        ('how to cook a hot dog', '2024-01-06'::timestamptz, 'put it on a hot grill'),
        ('how to make a sandwich', '2023-01-06'::timestamptz, 'put a slice of meat between two pieces of bread'),
        ('how to make stir fry', '2022-01-06'::timestamptz, 'pick up the phone and order takeout')""")
    db.execute("alter table website.blog drop column drop_me")
    vid = scalar(db, """select ai.create_vectorizer('website.blog'::regclass, loading => ai.loading_column('body'),
        embedding=>ai.embedding_openai('text-embedding-3-small', 768), chunking=>ai.chunking_character_text_splitter(128, 10),
        formatting=>ai.formatting_python_template('title: $title published: $published $chunk'),
        scheduling=>ai.scheduling_timescaledb(interval '5m', initial_start=>'2050-01-06'::timestamptz,
                                              timezone=>'America/Chicago'),
        grant_to=>ai.grant_to('bob', 'fernando'))""")
    row = db.execute("select to_jsonb(x) #- array['config', 'version'] from ai.vectorizer x where x.id = %s",
                     (vid,)).fetchone()[0]
    assert row["config"]["scheduling"] == {"timezone": "America/Chicago", "config_type": "scheduling",
                                           "initial_start": "2050-01-06T00:00:00+00:00",
                                           "implementation": "timescaledb", "schedule_interval": "00:05:00"}
    assert row["config"]["formatting"]["template"] == "title: $title published: $published $chunk"
    assert row["config"]["destination"] == {"config_type": "destination", "implementation": "table",
                                            "target_schema": "website", "target_table": "blog_embedding_store",
                                            "view_name": "blog_embedding", "view_schema": "website"}
    assert row["source_pk"] == [{"pknum": 1, "attnum": 2, "attname": "title", "typname": "text"},
                                {"pknum": 2, "attnum": 3, "attname": "published", "typname": "timestamp with time zone"}]
    assert {k: row[k] for k in ("queue_table", "queue_schema", "name", "queue_failed_table", "source_table",
                                "trigger_name", "source_schema", "disabled")} == {
        "queue_table": f"_vectorizer_q_{vid}", "queue_schema": "ai", "name": "website_blog_embedding_store",
        "queue_failed_table": f"_vectorizer_q_failed_{vid}", "source_table": "blog",
        "trigger_name": f"_vectorizer_src_trg_{vid}", "source_schema": "website", "disabled": False}
    assert scalar(db, "select ai.vectorizer_queue_pending(%s)", (vid,)) == 3
    queue = f"ai._vectorizer_q_{vid}"
    db.execute(f"delete from {queue}")
    with as_role(sql_cluster, db, "bob") as bob:
        bob.execute("insert into website.blog(title, published, body) values "
                    "('how to make ramen', '2021-01-06'::timestamptz, 'boil water. cook ramen in the water')")
    with as_role(sql_cluster, db, "adelaide") as adelaide:
        adelaide.execute("update website.blog set published = now() where title = 'how to cook a hot dog'")
    assert scalar(db, "select pending_items from ai.vectorizer_status where id = %s", (vid,)) == 2
    db.execute(f"delete from {queue}")
    db.execute("insert into website.blog_embedding_store (title, published, chunk_seq, chunk, embedding) values "
               "('how to make a sandwich', '2023-01-06', 0, 'c', array_fill(0.1::float8, ARRAY[768]))")
    db.execute("delete from website.blog where title = 'how to make a sandwich'")
    assert scalar(db, "select count(*) from website.blog_embedding_store where title = 'how to make a sandwich'") == 0
    db.execute("update website.blog set body = 'updated body' where title = 'how to make stir fry'")
    assert scalar(db, f"select count(*) from {queue} where title = 'how to make stir fry'") == 1
    db.execute(f"delete from {queue}")
    db.execute("insert into website.blog_embedding_store (title, published, chunk_seq, chunk, embedding) values "
               "('how to make stir fry', '2022-01-06'::timestamptz, 1, 'Chunk of content', "
               "array_fill(0.1::float8, ARRAY[768]))")
    db.execute("update website.blog set title = 'how to make better stir fry' where title = 'how to make stir fry'")
    assert scalar(db, "select count(*) from website.blog_embedding_store where title = 'how to make stir fry'") == 0
    assert scalar(db, f"select count(*) from {queue} where title = 'how to make better stir fry'") == 1
    db.execute("select ai.execute_vectorizer(%s)", (vid,))
    with sql_cluster.connect(db.info.dbname) as other:
        other.autocommit = False
        other.execute(f"select * from {queue} where title = 'how to make better stir fry' for update").fetchone()
        assert scalar(db, "select ai.vectorizer_queue_pending(%s)", (vid,)) == 1
        other.rollback()
    db.execute("select ai.disable_vectorizer_schedule(%s)", (vid,))
    assert scalar(db, "select disabled from ai.vectorizer where id = %s", (vid,)) is True
    db.execute("select ai.enable_vectorizer_schedule(%s)", (vid,))
    assert scalar(db, "select disabled from ai.vectorizer where id = %s", (vid,)) is False
    db.execute("insert into website.blog_embedding_store (title, published, chunk_seq, chunk, embedding) values "
               "('how to make ramen', now(), 1, 'Simple ramen instructions', array_fill(0.3::float8, ARRAY[768]))")
    db.execute("truncate table website.blog")
    assert scalar(db, "select count(*) from website.blog_embedding_store") == 0
    assert scalar(db, "select ai.vectorizer_queue_pending(%s)", (vid,)) == 0


def test_drop_vectorizer_and_drop_all(db):
    """pgai's test_drop_vectorizer and test_drop_all_vectorizer (their job left out):
    drop_vectorizer drops the queues and triggers and keeps the store and view;
    drop_all drops them too."""
    for drop_all in (False, True):
        db.execute("drop table if exists blog_drop cascade")
        db.execute("create table blog_drop (id serial not null primary key, title text not null, "
                   "published timestamptz, category text, tags text[], content text not null)")
        vid = scalar(db, """select ai.create_vectorizer('public.blog_drop'::regclass,
            loading => ai.loading_column('content'), embedding=>ai.embedding_openai('text-embedding-3-small', 768),
            chunking=>ai.chunking_character_text_splitter(128, 10), scheduling=>ai.scheduling_timescaledb(),
            grant_to=>null)""")
        trigger = scalar(db, "select trigger_name from ai.vectorizer where id = %s", (vid,))
        db.execute("select ai.drop_vectorizer(%s, drop_all=>%s)", (vid, drop_all))
        assert scalar(db, "select count(*) from ai.vectorizer where id = %s", (vid,)) == 0
        assert scalar(db, "select count(*) from pg_trigger where tgname = %s", (trigger,)) == 0
        assert scalar(db, f"select to_regclass('ai._vectorizer_q_{vid}')") is None
        kept = scalar(db, "select to_regclass('public.blog_drop_embedding_store') is not null "
                          "and to_regclass('public.blog_drop_embedding') is not null")
        assert kept is not drop_all
        db.execute("drop view if exists blog_drop_embedding")
        db.execute("drop table if exists blog_drop_embedding_store")


def test_set_scheduling(db):
    """pgai's test_set_scheduling (its job left out): the scheduling and indexing are
    recorded and the configuration returned."""
    note_table(db, "note7")
    vid = scalar(db, note_vectorizer("note7"))
    config = scalar(db, "select ai.set_scheduling(%s, scheduling => ai.scheduling_timescaledb(interval '10m'), "
                        "indexing => ai.indexing_hnsw(min_rows => 10))", (vid,))
    assert config["scheduling"] == {"implementation": "timescaledb", "config_type": "scheduling",
                                    "schedule_interval": "00:10:00"}
    assert config["indexing"]["min_rows"] == 10
    assert scalar(db, "select config from ai.vectorizer where id = %s", (vid,)) == config
    assert scalar(db, "select ai.set_scheduling(%s)", (vid,))["scheduling"] == {"implementation": "default",
                                                                                 "config_type": "scheduling"}


def blog_vectorizer(extra):
    return f"""select ai.create_vectorizer('website.blog'::regclass {extra}, loading=>ai.loading_column('body'),
        embedding=>ai.embedding_openai('text-embedding-3-small', 768),
        formatting=>ai.formatting_python_template('title: $title published: $published $chunk'),
        scheduling=>ai.scheduling_none(), chunking=>ai.chunking_none()"""


def test_named_vectorizer(db):
    """pgai's test_named_vectorizer: a name given or made, found by the management
    functions and views, if_not_exists by name."""
    db.execute("create schema website")
    db.execute("""create table website.blog (id int not null generated always as identity, title text not null,
        published timestamptz, body text not null, primary key (title, published))""")
    db.execute("""insert into website.blog(title, published, body) values
        ('how to cook a hot dog', '2024-01-06'::timestamptz, 'put it on a hot grill'),
        ('how to make a sandwich', '2023-01-06'::timestamptz, 'put a slice of meat between two pieces of bread'),
        ('how to make stir fry', '2022-01-06'::timestamptz, 'pick up the phone and order takeout')""")
    named = blog_vectorizer(", name => 'blog_vectorizer'") + ", destination=>ai.destination_column('embedding1')"
    db.execute(named + ")")
    assert scalar(db, "select ai.vectorizer_queue_pending(name => %s)", ("blog_vectorizer",)) == 3
    assert scalar(db, "select pending_items from ai.vectorizer_status where name = %s", ("blog_vectorizer",)) == 3
    db.execute(named + ", if_not_exists => true)")
    assert scalar(db, "select ai.vectorizer_queue_pending(name => %s)", ("blog_vectorizer",)) == 3
    assert state_of(lambda: db.execute(named + ", if_not_exists => false)")) == "42710"
    # pgai uses the column embedding1 it finds; ai_loader makes a new column only
    # (README "Compared with pgai").
    unnamed_column = blog_vectorizer("") + ", destination=>ai.destination_column('embedding1'), if_not_exists => false)"
    assert state_of(lambda: db.execute(unnamed_column)) == "42701"
    vid = scalar(db, unnamed_column.replace("'embedding1'", "'embedding2'"))
    name = scalar(db, "select name from ai.vectorizer where id = %s", (vid,))
    assert name == "website_blog_embedding2"
    db.execute("insert into ai._vectorizer_errors (id, message) values (%s, %s)", (vid, "test error message"))
    assert scalar(db, "select message from ai.vectorizer_errors where name = %s", (name,)) == "test error message"
    unnamed = blog_vectorizer("") + ", destination=>ai.destination_table()"
    vid = scalar(db, unnamed + ", if_not_exists => false)")
    assert scalar(db, "select name from ai.vectorizer where id = %s", (vid,)) == "website_blog_embedding_store"
    assert scalar(db, unnamed + ", if_not_exists => true)") == vid
    assert state_of(lambda: db.execute(unnamed + ", if_not_exists => false)")) == "42710"
    # pgai's test calls these with a name no vectorizer has, and pgai does nothing;
    # ai_loader says it does not exist (README "Compared with pgai").
    for call in ("select ai.disable_vectorizer_schedule(%s)", "select ai.enable_vectorizer_schedule(%s)",
                 "select ai.vectorizer_queue_pending(%s)", "select ai.drop_vectorizer(%s, drop_all => true)"):
        assert state_of(lambda: db.execute(call, ("website.blog_embedding_store",))) == "42704"
        db.execute(call, ("website_blog_embedding_store",))
    assert state_of(lambda: db.execute("select ai.execute_vectorizer('non_existent_vectorizer')")) == "42704"


def create(table, *parts):
    """create_vectorizer of `table` with the parts a documentation block shows, and
    what it leaves to "other parameters" (pgai's own examples need them too)."""
    shown = ", ".join(parts)
    rest = [p for p in (("loading => ai.loading_column('contents')", "loading =>"),
                        (f"embedding => {OPENAI}", "embedding =>")) if p[1] not in shown]
    return f"SELECT ai.create_vectorizer('{table}'::regclass, {', '.join([shown, *[r for r, _ in rest]])})"


# The SQL blocks of pgai's vectorizer documentation that pgai runs: each as the page
# writes it, or — for a block that shows one part and leaves "other parameters…" — that
# part in a vectorizer. (Blocks with a placeholder, a syntax error, a function pgai's
# SQL does not have, or that need TimescaleDB are not here.)
DOCS = [
    ("api-reference#0", """SELECT ai.create_vectorizer(
        'website.blog'::regclass,
        name => 'website_blog_vectorizer',
        loading => ai.loading_column('contents'),
        embedding => ai.embedding_ollama('nomic-embed-text', 768),
        chunking => ai.chunking_character_text_splitter(128, 10),
        formatting => ai.formatting_python_template('title: $title published: $published $chunk'),
        grant_to => ai.grant_to('bob', 'alice'),
        destination => ai.destination_table(
            target_schema => 'website',
            target_table => 'blog_embeddings_store',
            view_name => 'blog_embeddings'
        )
    )"""),
    ("api-reference#1", """SELECT ai.create_vectorizer(
        'website.product_descriptions'::regclass,
        name => 'product_descriptions_vectorizer',
        loading => ai.loading_column('description'),
        embedding => ai.embedding_openai('text-embedding-3-small', 768),
        chunking => ai.chunking_none(),  -- Required for column destination
        grant_to => ai.grant_to('marketing_team'),
        destination => ai.destination_column('description_embedding')
    )"""),
    ("api-reference#2", create("my_table", """destination => ai.destination_table(
        target_schema => 'public', target_table => 'my_table_embeddings_store',
        view_schema => 'public', view_name => 'my_table_embeddings')""")),
    ("api-reference#3", create("my_table", "destination => ai.destination_table('my_table_embeddings')")),
    ("api-reference#4", create("my_table", "destination => ai.destination_column('content_embedding')",
                               "chunking => ai.chunking_none()")),
    ("api-reference#5", create("my_table", "loading => ai.loading_column('contents')")),
    ("api-reference#6", create("my_table", "loading => ai.loading_uri('file_uri_column_name')")),
    ("api-reference#7", create("my_table", "parsing => ai.parsing_auto()")),
    ("api-reference#8", create("my_table", "parsing => ai.parsing_none()")),
    ("api-reference#9", create("my_table", "parsing => ai.parsing_docling()",
                               "loading => ai.loading_uri('file_uri_column_name')")),
    ("api-reference#10", create("my_table", "parsing => ai.parsing_pymupdf()",
                                "loading => ai.loading_uri('file_uri_column_name')")),
    ("api-reference#11", create("my_table", "chunking => ai.chunking_character_text_splitter(128, 10, E'\\n')")),
    ("api-reference#12", create("my_table", """chunking => ai.chunking_recursive_character_text_splitter(
        256, 20, separators => array[E'\\n;', ' '])""")),
    ("api-reference#13", create("my_table", """embedding => ai.embedding_litellm(
        'huggingface/microsoft/codebert-base', 768, api_key_name => 'HUGGINGFACE_API_KEY',
        extra_options => '{"wait_for_model": true}'::jsonb)""")),
    ("api-reference#14", create("my_table", """embedding => ai.embedding_litellm(
        'cohere/embed-english-v3.0', 1024, api_key_name => 'COHERE_API_KEY')""")),
    ("api-reference#15", create("my_table", """embedding => ai.embedding_litellm(
        'mistral/mistral-embed', 1024, api_key_name => 'MISTRAL_API_KEY')""")),
    ("api-reference#16", create("my_table", """embedding => ai.embedding_litellm(
        'azure/my-deployment', 1024, api_key_name => 'AZURE_API_KEY',
        extra_options => '{"api_base": "https://example.openai.azure.com", "api_version": "2024-02-01"}'::jsonb)""")),
    ("api-reference#18", create("my_table", """embedding => ai.embedding_litellm(
        'bedrock/amazon.titan-embed-text-v2:0', 1024, api_key_name => 'AWS_SECRET_ACCESS_KEY',
        extra_options => '{"aws_access_key_id": "AKIAEXAMPLE", "aws_region_name": "us-east-1"}'::jsonb)""")),
    ("api-reference#20", create("my_table", "embedding => ai.embedding_litellm('vertex_ai/text-embedding-005', 768)")),
    ("api-reference#21", create("my_table", """embedding => ai.embedding_litellm(
        'vertex_ai/text-embedding-005', 768, api_key_name => 'VERTEX_CREDENTIALS',
        extra_options => '{"vertex_project": "p", "vertex_location": "us-central1"}'::jsonb)""")),
    ("api-reference#22", create("my_table", """embedding => ai.embedding_openai(
        'text-embedding-3-small', 768, chat_user => 'bob', api_key_name => 'MY_OPENAI_API_KEY_NAME')""")),
    ("api-reference#26", create("blog_posts", "formatting => ai.formatting_python_template('$chunk')")),
    ("api-reference#27", create("blog_posts", """formatting => ai.formatting_python_template(
        'Title: $title\\nDate: $published\\nContent: $chunk')""")),
    ("api-reference#28", create("blog_posts", """formatting => ai.formatting_python_template(
        'Author: $author\\nCategory: $category\\n$chunk')""")),
    ("api-reference#29", create("blog_posts", """formatting => ai.formatting_python_template(
        'BEGIN DOCUMENT\\n$chunk\\nEND DOCUMENT')""")),
    ("api-reference#30", create("blog_posts", "indexing => ai.indexing_default()")),
    ("api-reference#31", create("blog_posts", "indexing => ai.indexing_none()")),
    ("api-reference#32", create("blog_posts",
                                "indexing => ai.indexing_diskann(min_rows => 500000, storage_layout => 'memory_optimized')")),
    ("api-reference#33", create("blog_posts", "indexing => ai.indexing_hnsw(min_rows => 50000, opclass => 'vector_l1_ops')")),
    ("api-reference#34", create("my_table", "scheduling => ai.scheduling_default()")),
    ("api-reference#35", create("my_table", "scheduling => ai.scheduling_none()")),
    ("api-reference#36", create("my_table", "scheduling => ai.scheduling_timescaledb()")),
    ("api-reference#37", create("my_table", "scheduling => ai.scheduling_timescaledb(interval '1 hour')")),
    ("api-reference#38", create("my_table", """scheduling => ai.scheduling_timescaledb(interval '30 minutes',
        initial_start => '2024-01-01 00:00:00'::timestamptz, timezone => 'America/New_York')""")),
    ("api-reference#39", create("my_table", """scheduling => ai.scheduling_timescaledb(interval '1 day',
        fixed_schedule => true, timezone => 'UTC')""")),
    ("api-reference#40", create("my_table", "processing => ai.processing_default(batch_size => 200, concurrency => 5)")),
    ("api-reference#41", create("my_table", "grant_to => ai.grant_to('bob', 'alice')")),
    ("overview#1", """SELECT ai.create_vectorizer(
       'blog'::regclass,
       name => 'blog_embeddings',  -- Optional custom name for easier reference
       loading => ai.loading_column('contents'),
       embedding => ai.embedding_ollama('nomic-embed-text', 768),
       destination => ai.destination_table('blog_contents_embeddings')
    )"""),
    ("overview#2", """SELECT ai.create_vectorizer(
        'blog'::regclass,
        loading => ai.loading_column('contents'),
        embedding => ai.embedding_ollama('nomic-embed-text', 768),
        formatting => ai.formatting_python_template('$title: $chunk'),
        destination => ai.destination_table('blog_contents_embeddings')
    )"""),
    ("overview#7", """SELECT ai.create_vectorizer(
        'blog'::regclass,
        loading => ai.loading_column('contents'),
        embedding => ai.embedding_ollama('nomic-embed-text', 768),
        formatting => ai.formatting_python_template('$title - by $authors - $chunk'),
        indexing => ai.indexing_hnsw(min_rows => 100000, opclass => 'vector_l2_ops'),
        destination => ai.destination_table('blog_contents_embeddings')
    )"""),
    ("document-embeddings#3", """SELECT ai.create_vectorizer(
        'document'::regclass,
        loading => ai.loading_uri(column_name => 'uri'),
        parsing => ai.parsing_auto(), -- Optional: auto-detects parser, this is the default and can also be omitted
        chunking => ai.chunking_recursive_character_text_splitter(
            chunk_size => 700,
            separators => array[E'\\n## ', E'\\n### ', E'\\n#### ', E'\\n- ', E'\\n1. ', E'\\n\\n', E'\\n', '.', '?', '!', ' ', '', '|']
        ),
        embedding => ai.embedding_openai('text-embedding-3-small', 768),
        destination => ai.destination_table('document_embeddings')
    )"""),
    ("document-embeddings#4", create("document", """loading => ai.loading_uri(column_name => 'uri', retries => 6,
        aws_role_arn => 'arn:aws:iam::123456789012:role/S3AccessRole')""")),
    ("document-embeddings#6", create("document", """loading => ai.loading_uri('uri'),
        chunking => ai.chunking_recursive_character_text_splitter(chunk_size => 700, chunk_overlap => 150,
            separators => array[E'\\n## ', E'\\n### ', E'\\n#### ', E'\\n- ', E'\\n1. ', E'\\n\\n', E'\\n', '.', '?', '!'])""")),
    ("document-embeddings#7", create("document", "loading => ai.loading_uri('uri')",
                                     "embedding => ai.embedding_openai('text-embedding-3-small', 768)")),
    ("s3-documents#0", """SELECT ai.create_vectorizer(
        'document'::regclass,
        loading => ai.loading_uri(column_name => 'uri'),
        embedding => ai.embedding_openai('text-embedding-3-small', 768),
        destination => ai.destination_table('document_embeddings')
    )"""),
    ("s3-documents#1", create("document", """loading => ai.loading_uri(column_name => 'uri',
        aws_role_arn => 'arn:aws:iam::123456789012:role/S3AccessRole')""")),
    ("sqlalchemy-integration#0", """SELECT ai.create_vectorizer(
        'blog_posts'::regclass,
        loading => ai.loading_column('contents'),
        embedding => ai.embedding_openai('text-embedding-3-small', 768),
        chunking => ai.chunking_recursive_character_text_splitter(
            50,  -- chunk_size
            10   -- chunk_overlap
        )
    )"""),
    ("quick-start-voyage#3", """SELECT ai.create_vectorizer(
          'blog'::regclass,
          loading => ai.loading_column('contents'),
          embedding => ai.embedding_voyageai(
            'voyage-3.5-lite',  -- or 'voyage-3.5', 'voyage-3-large', 'voyage-code-3', etc.
            1024  -- default dimensions for voyage-3.5-lite
          ),
          destination => ai.destination_table('blog_contents_embeddings')
        )"""),
    ("quick-start-openai#3", """SELECT ai.create_vectorizer(
           'blog'::regclass,
           loading => ai.loading_column('contents'),
           embedding => ai.embedding_openai('text-embedding-3-small', 768),
           destination => ai.destination_table('blog_contents_embeddings')
        )"""),
    ("quick-start#3", """SELECT ai.create_vectorizer(
             'blog'::regclass,
             loading => ai.loading_column('contents'),
             embedding => ai.embedding_ollama('nomic-embed-text', 768),
             destination => ai.destination_table('blog_contents_embeddings')
        )"""),
]

# The documentation's management calls, on the vectorizer the quick start makes.
MANAGEMENT = [
    ("api-reference#42", "SELECT ai.disable_vectorizer_schedule('public_blog_contents_embeddings_store')"),
    ("api-reference#43", "SELECT ai.enable_vectorizer_schedule('public_blog_contents_embeddings_store')"),
    ("api-reference#43", "SELECT ai.enable_vectorizer_schedule(1)"),
    ("api-reference#44", "SELECT ai.disable_vectorizer_schedule(1)"),
    ("api-reference#48", "SELECT * FROM ai.vectorizer_status"),
    ("api-reference#49", "SELECT * FROM ai.vectorizer_status WHERE pending_items > 0"),
    ("api-reference#50", "SELECT id, source_table, pending_items FROM ai.vectorizer_status WHERE pending_items > 1000"),
    ("api-reference#51", "SELECT ai.vectorizer_queue_pending('public_blog_contents_embeddings_store')"),
    ("api-reference#51", "SELECT ai.vectorizer_queue_pending(1)"),
    ("api-reference#52", "SELECT ai.vectorizer_queue_pending('public_blog_contents_embeddings_store', exact_count=>true)"),
    ("api-reference#52", "SELECT ai.vectorizer_queue_pending(1, exact_count=>true)"),
    ("overview#11", "SELECT * FROM ai.vectorizer_status"),
    ("overview#12", "select ai.vectorizer_queue_pending(1, exact_count=>true)"),
    ("document-embeddings#12", "SELECT * FROM ai.vectorizer_errors"),
    ("document-embeddings#12", "SELECT * FROM ai.vectorizer_errors WHERE id = 1"),
    ("document-embeddings#13", "SELECT * FROM ai._vectorizer_q_1"),
    ("api-reference#45", "SELECT ai.drop_vectorizer('public_blog_contents_embeddings_store')"),
]


@pytest.mark.parametrize("page, sql", DOCS, ids=[p for p, _ in DOCS])
def test_documentation_vectorizers(shared, page, sql):
    why = difference(sql)
    if why:
        assert state_of(lambda: rolled_back(shared, lambda c: run_case(c, sql))) in ("22023", "0A000"), why
        return
    assert rolled_back(shared, lambda c: run_case(c, sql))[0] > 0


def test_documentation_management(db):
    """The management blocks of pgai's pages, in order, on the quick start's vectorizer
    (the first: id 1), then dropping it by id and by name with drop_all."""
    db.execute("CREATE TABLE blog (id SERIAL PRIMARY KEY, title TEXT, authors TEXT, contents TEXT, metadata JSONB)")
    assert scalar(db, """SELECT ai.create_vectorizer('blog'::regclass, loading => ai.loading_column('contents'),
        embedding => ai.embedding_ollama('nomic-embed-text', 768),
        destination => ai.destination_table('blog_contents_embeddings'))""") == 1
    db.execute("INSERT INTO blog (title, contents) VALUES ('Getting Started with PostgreSQL', 'PostgreSQL is…')")
    for page, sql in MANAGEMENT:
        db.execute(sql)
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0
    db.execute("DROP VIEW blog_contents_embeddings; DROP TABLE blog_contents_embeddings_store")
    for page, sql in (("api-reference#46", "SELECT ai.drop_vectorizer(2)"),
                      ("api-reference#47",
                       "SELECT ai.drop_vectorizer('public_blog_contents_embeddings_store', drop_all=>true)")):
        db.execute("""SELECT ai.create_vectorizer('blog'::regclass, loading => ai.loading_column('contents'),
            embedding => ai.embedding_ollama('nomic-embed-text', 768),
            destination => ai.destination_table('blog_contents_embeddings'))""")
        db.execute(sql)
        db.execute("DROP VIEW IF EXISTS blog_contents_embeddings; DROP TABLE IF EXISTS blog_contents_embeddings_store")
    assert scalar(db, "SELECT count(*) FROM ai.vectorizer") == 0


@pytest.fixture(scope="module")
def quick_start_cluster():
    """A cluster with the worker, its providers' default endpoints (pgai's OLLAMA_HOST
    and OpenAI's base) at a test server answering 768 dimensions."""
    from embedder import Embedder
    server = Embedder(dimensions=768)
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.http_allowed_hosts = '127.0.0.1'",
                       server.key_setting],
                      env={"OPENAI_API_KEY": server.api_key, "OPENAI_API_BASE": server.openai_url,
                           "OLLAMA_API_BASE": server.ollama_url})
    yield cluster, server
    cluster.stop()
    server.stop()


QUICK_START_ROWS = """INSERT INTO blog (title, authors, contents, metadata)
    VALUES
    ('Getting Started with PostgreSQL', 'John Doe', 'PostgreSQL is a powerful, open source object-relational database system...', '{"tags": ["database", "postgresql", "beginner"], "read_time": 5, "published_date": "2024-03-15"}'),
    ('10 Tips for Effective Blogging', 'Jane Smith, Mike Johnson', 'Blogging can be a great way to share your thoughts and expertise...', '{"tags": ["blogging", "writing", "tips"], "read_time": 8, "published_date": "2024-03-20"}'),
    ('The Future of Artificial Intelligence', 'Dr. Alan Turing', 'As we look towards the future, artificial intelligence continues to evolve...', '{"tags": ["AI", "technology", "future"], "read_time": 12, "published_date": "2024-04-01"}'),
    ('Healthy Eating Habits for Busy Professionals', 'Samantha Lee', 'Maintaining a healthy diet can be challenging for busy professionals...', '{"tags": ["health", "nutrition", "lifestyle"], "read_time": 6, "published_date": "2024-04-05"}'),
    ('Introduction to Cloud Computing', 'Chris Anderson', 'Cloud computing has revolutionized the way businesses operate...', '{"tags": ["cloud", "technology", "business"], "read_time": 10, "published_date": "2024-04-10"}')"""


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_quick_starts(quick_start_cluster, provider):
    """pgai's quick starts (quick-start.md, quick-start-openai.md), block by block: the
    table, its rows, the vectorizer, and the search with pgai's model-calling function
    (Ollama's host is where the test server listens)."""
    from helpers import wait_for
    cluster, server = quick_start_cluster
    db = new_database(cluster, f"quick_start_{provider}")
    db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    db.execute("""CREATE TABLE blog (
        id SERIAL PRIMARY KEY,
        title TEXT,
        authors TEXT,
        contents TEXT,
        metadata JSONB
    )""")
    db.execute(QUICK_START_ROWS)
    embedding = {"ollama": "ai.embedding_ollama('nomic-embed-text', 768)",
                 "openai": "ai.embedding_openai('text-embedding-3-small', 768)"}[provider]
    db.execute(f"""SELECT ai.create_vectorizer(
         'blog'::regclass,
         loading => ai.loading_column('contents'),
         embedding => {embedding},
         destination => ai.destination_table('blog_contents_embeddings')
    )""")
    wait_for(lambda: scalar(db, "SELECT count(DISTINCT id) FROM blog_contents_embeddings") == 5, timeout=60,
             what="the quick start's rows embedded")
    query = {"ollama": f"ai.ollama_embed('nomic-embed-text', 'good food', host => '{server.ollama_url}')",
             "openai": "ai.openai_embed('text-embedding-3-small', 'good food', dimensions=>768)"}[provider]
    rows = db.execute(f"""SELECT
        chunk,
        embedding <=>  {query} as distance
    FROM blog_contents_embeddings
    ORDER BY distance
    LIMIT 10""").fetchall()
    assert len(rows) == 5
    assert [d for _, d in rows] == sorted(d for _, d in rows)
    db.close()


def test_diskann_without_pgvectorscale_warns(db):
    """pgai accepts indexing_diskann before pgvectorscale is installed; so does
    ai_loader, saying the index waits for it."""
    db.execute("CREATE TABLE blog_posts (id serial PRIMARY KEY, contents text)")
    warnings = []
    db.add_notice_handler(lambda d: warnings.append((d.severity_nonlocalized, d.message_primary)))
    vid = scalar(db, create("blog_posts", "indexing => ai.indexing_diskann(min_rows => 500000, "
                                          "storage_layout => 'memory_optimized')"))
    assert scalar(db, "SELECT config -> 'indexing' FROM ai.vectorizer WHERE id = %s", (vid,)) == {
        "implementation": "diskann", "config_type": "indexing", "min_rows": 500000,
        "storage_layout": "memory_optimized", "create_when_queue_empty": True}
    assert [w for w in warnings if w[0] == "WARNING" and "pgvectorscale" in w[1]], warnings


# pgai's public functions (its SQL at the commit above, the semantic catalog and the
# external worker's bookkeeping aside): each resolves when called with every argument
# named, of pgai's types.
SIGNATURES = [
    ("chunking_character_text_splitter", "chunk_size int4, chunk_overlap int4, separator text, is_separator_regex bool"),
    ("chunking_recursive_character_text_splitter",
     "chunk_size int4, chunk_overlap int4, separators text[], is_separator_regex bool"),
    ("chunking_none", ""),
    ("formatting_python_template", "template text"),
    ("scheduling_none", ""),
    ("scheduling_default", ""),
    ("scheduling_timescaledb", "schedule_interval interval, initial_start timestamptz, fixed_schedule bool, timezone text"),
    ("embedding_openai", "model text, dimensions int4, chat_user text, api_key_name text, base_url text"),
    ("embedding_ollama", "model text, dimensions int4, base_url text, options jsonb, keep_alive text"),
    ("embedding_voyageai", "model text, dimensions int4, input_type text, api_key_name text"),
    ("embedding_litellm", "model text, dimensions int4, api_key_name text, extra_options jsonb"),
    ("embedding_sentence_transformers", "model text, dimensions int4"),
    ("indexing_none", ""),
    ("indexing_default", ""),
    ("indexing_diskann", "min_rows int4, storage_layout text, num_neighbors int4, search_list_size int4, "
                         "max_alpha float8, num_dimensions int4, num_bits_per_dimension int4, create_when_queue_empty bool"),
    ("indexing_hnsw", "min_rows int4, opclass text, m int4, ef_construction int4, create_when_queue_empty bool"),
    ("processing_default", "batch_size int4, concurrency int4"),
    ("grant_to", "VARIADIC grantees name[]"),
    ("grant_to", ""),
    ("loading_column", "column_name name, retries int4"),
    ("loading_uri", "column_name name, retries int4, aws_role_arn text"),
    ("parsing_auto", ""),
    ("parsing_none", ""),
    ("parsing_pymupdf", ""),
    ("parsing_docling", ""),
    ("destination_table", "destination name, target_schema name, target_table name, view_schema name, view_name name"),
    ("destination_column", "embedding_column name"),
    ("execute_vectorizer", "vectorizer_name text"),
    ("create_vectorizer", "source regclass, name text, destination jsonb, loading jsonb, parsing jsonb, "
                          "embedding jsonb, chunking jsonb, indexing jsonb, formatting jsonb, scheduling jsonb, "
                          "processing jsonb, queue_schema name, queue_table name, grant_to name[], "
                          "enqueue_existing bool, if_not_exists bool"),
    ("disable_vectorizer_schedule", "vectorizer_id int4"),
    ("disable_vectorizer_schedule", "name text"),
    ("enable_vectorizer_schedule", "vectorizer_id int4"),
    ("enable_vectorizer_schedule", "name text"),
    ("drop_vectorizer", "vectorizer_id int4, drop_all bool"),
    ("drop_vectorizer", "name text, drop_all bool"),
    ("vectorizer_queue_pending", "vectorizer_id int4, exact_count bool"),
    ("vectorizer_queue_pending", "name text, exact_count bool"),
    ("vectorizer_embed", "embedding_config jsonb, input_text text, input_type text"),
    ("vectorizer_embed", "vectorizer_id int4, input_text text, input_type text"),
    ("vectorizer_embed", "name text, input_text text, input_type text"),
    ("set_scheduling", "vectorizer_id int4, scheduling jsonb, indexing jsonb"),
    ("grant_vectorizer_usage", "to_user name, admin bool"),
    # pgai's extension's model-calling functions, which its quick starts call.
    ("openai_embed", "model text, input_text text, api_key text, api_key_name text, dimensions int4, "
                     "openai_user text, extra_headers jsonb, extra_query jsonb, extra_body jsonb, verbose bool, "
                     "client_config jsonb"),
    ("ollama_embed", "model text, input_text text, host text, keep_alive text, embedding_options jsonb, verbose bool"),
    ("voyageai_embed", "model text, input_text text, input_type text, api_key text, api_key_name text, verbose bool"),
]


@pytest.mark.parametrize("function, arguments", SIGNATURES,
                         ids=[f"{f}({a.count(',') + 1 if a else 0})" for f, a in SIGNATURES])
def test_pgai_signatures_resolve(shared, function, arguments):
    """Planned, not run: the call resolves to a function of ai_loader's, every argument
    by pgai's name and of pgai's type."""
    args = [a.split() for a in arguments.split(", ") if a]
    if args and args[0][0] == "VARIADIC":
        call = f"ai.{function}(VARIADIC $1::{args[0][2]})"
    else:
        call = f"ai.{function}({', '.join(f'{name} => ${i + 1}::{kind}' for i, (name, kind) in enumerate(args))})"
    shared.execute(f"PREPARE signature AS SELECT {call}")
    shared.execute("DEALLOCATE signature")
