-- ai.create_vectorizer: what it records and creates, each invalid input with its
-- SQLSTATE, no half-created objects after a failure, and ai.drop_vectorizer.
CREATE EXTENSION ai_loader;
\pset null '(null)'

CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    _hint text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS _hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(E'\nHINT:  ' || nullif(_hint, ''), '');
END
$$;

-- What exists besides the catalog: relations, triggers and functions a vectorizer makes.
CREATE FUNCTION pg_temp.footprint() RETURNS TABLE (kind text, name text) LANGUAGE sql AS $$
    SELECT 'relation', c.oid::regclass::text FROM pg_class c
     WHERE c.relnamespace IN ('ai'::regnamespace, 'public'::regnamespace)
       AND c.relkind IN ('r', 'v') AND c.relname ~ '(_vectorizer_q|_embedding|emb)'
    UNION ALL
    SELECT 'trigger', tgname || ' on ' || tgrelid::regclass FROM pg_trigger WHERE tgname ~ '^_vectorizer'
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text FROM pg_proc p WHERE p.proname ~ '^_vectorizer_src_trg'
    UNION ALL
    SELECT 'catalog', 'ai.vectorizer: ' || count(*) FROM ai.vectorizer
    ORDER BY 1, 2
$$;

CREATE TABLE document (
    id bigserial PRIMARY KEY,
    title text,
    uri text NOT NULL UNIQUE,
    body bytea,
    views int NOT NULL DEFAULT 0,
    updated_at timestamptz DEFAULT now()
);
INSERT INTO document (title, uri) VALUES ('Guide', 's3://docs/guide.pdf'), ('FAQ', 's3://docs/faq.md');

SELECT ai.create_vectorizer(
    'document'::regclass,
    loading => ai.loading_uri(column_name => 'uri',
                              aws_role_arn => 'arn:aws:iam::123456789012:role/S3AccessRole'),
    embedding => ai.embedding_local('all-MiniLM-L6-v2', 384),
    chunking => ai.chunking_recursive_character_text_splitter(800, 400),
    formatting => ai.formatting_python_template('$title: $chunk'));

SELECT id, name, source_schema, source_table, source_pk, trigger_name, queue_schema,
       queue_table, queue_failed_table, disabled, owner
  FROM ai.vectorizer;
SELECT jsonb_pretty(config - 'version') FROM ai.vectorizer;
SELECT config ? 'version' AS has_version FROM ai.vectorizer;
SELECT * FROM pg_temp.footprint();
\d public.document_embedding_store
\d ai._vectorizer_q_1
\d ai._vectorizer_q_failed_1
\d+ public.document_embedding

-- Existing rows were queued; so is each new row.
SELECT id FROM ai._vectorizer_q_1 ORDER BY id;
INSERT INTO document (title, uri) VALUES ('Notes', 's3://docs/notes.txt');
SELECT id, loading_retries, loading_retry_after FROM ai._vectorizer_q_1 ORDER BY id;
SELECT ai.vectorizer_queue_pending(1), ai.vectorizer_queue_pending('public_document_embedding_store', exact_count => true);
SELECT id, name, source_table, target_table, "view", embedding_column, pending_items, disabled,
       success_count, error_count, last_success_at, last_error_at, last_error_message
  FROM ai.vectorizer_status;
SELECT * FROM ai.vectorizer_errors;

-- enqueue_existing => false queues nothing; if_not_exists returns the existing id.
SELECT ai.create_vectorizer('document'::regclass, name => 'quiet',
    destination => ai.destination_table('document_quiet'),
    loading => ai.loading_column('title'), embedding => ai.embedding_local(),
    enqueue_existing => false);
SELECT ai.vectorizer_queue_pending('quiet');
SELECT ai.create_vectorizer('document'::regclass, name => 'quiet',
    destination => ai.destination_table('document_other'),
    loading => ai.loading_column('title'), embedding => ai.embedding_local(),
    if_not_exists => true);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass, name => 'quiet',
    destination => ai.destination_table('document_other'),
    loading => ai.loading_column('title'), embedding => ai.embedding_local()) $$);
SELECT ai.disable_vectorizer_schedule('quiet');
SELECT name, disabled FROM ai.vectorizer_status ORDER BY id;
SELECT ai.enable_vectorizer_schedule(2);
SELECT name, disabled FROM ai.vectorizer_status ORDER BY id;
SELECT ai.drop_vectorizer('quiet', drop_all => true);

-- Each invalid input: its SQLSTATE and message, and nothing left behind.
CREATE TABLE no_pk (uri text);
CREATE VIEW document_view AS SELECT * FROM document;
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('no_pk'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document_view'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri')) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('url'), embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_column('views'), embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('body'), embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_column('body'), parsing => ai.parsing_none(),
    embedding => ai.embedding_local()) $$);
-- pgai's binary parsers read a bytea column, not a text one.
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_column('title'), parsing => ai.parsing_pymupdf(),
    embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    formatting => ai.formatting_python_template('$author: $chunk')) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    destination => ai.destination_column('embedding')) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    chunking => ai.chunking_none(), destination => ai.destination_column('title')) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    indexing => ai.indexing_hnsw()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.chunking_none()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => '{"implementation": "ftp", "config_type": "loading", "column_name": "uri"}',
    embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => '{"implementation": "uri", "config_type": "loading", "column_name": "uri",
                 "aws_role_arn": "arn:aws:iam::1:role/x"}',
    embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    chunking => '{"implementation": "recursive_character_text_splitter", "config_type": "chunking",
                  "chunk_size": 10, "chunk_overlap": 20}') $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    destination => ai.destination_table(target_table => 'document')) $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass, name => 'q',
    destination => ai.destination_table('document_q'),
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    queue_schema => 'public', queue_table => 'document') $$);
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local()) $$);
SELECT pg_temp.err($$ SELECT ai.drop_vectorizer(99) $$);
SELECT pg_temp.err($$ SELECT ai.drop_vectorizer('nope') $$);
SELECT pg_temp.err($$ SELECT ai.vectorizer_queue_pending(99) $$);
SELECT pg_temp.err($$ SELECT ai.disable_vectorizer_schedule(99) $$);
-- A failure after some objects were made undoes them all: the store and the view share
-- a name, so the store is created and then the view fails; the store goes too.
SELECT pg_temp.err($$ SELECT ai.create_vectorizer('document'::regclass, name => 'late',
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    destination => ai.destination_table(target_table => 'late_store', view_name => 'late_store')) $$);
SELECT * FROM pg_temp.footprint();

-- grant_to: existing roles get USAGE on the schemas and SELECT on the source, store,
-- view and queues; missing roles warn. Dropping the vectorizer leaves the source's grant.
CREATE ROLE regress_reader;
SELECT ai.create_vectorizer('document'::regclass, name => 'shared',
    destination => ai.destination_table('document_shared'),
    loading => ai.loading_column('title'), embedding => ai.embedding_local(),
    grant_to => ai.grant_to('regress_reader', 'regress_missing'));
SELECT r.relation, has_table_privilege('regress_reader', r.relation, 'SELECT') AS can_select
  FROM ai.vectorizer v,
       LATERAL (VALUES ('document'), ('document_shared_store'), ('document_shared'),
                       (format('%I.%I', v.queue_schema, v.queue_table)),
                       (format('%I.%I', v.queue_schema, v.queue_failed_table))) r(relation)
 WHERE v.name = 'shared'
 ORDER BY 1;
SELECT ai.drop_vectorizer('shared', drop_all => true);
DROP OWNED BY regress_reader;
DROP ROLE regress_reader;

-- drop_vectorizer without drop_all keeps the store and view, and their rows.
INSERT INTO document_embedding_store (id, chunk_seq, chunk, embedding)
VALUES (1, 0, 'kept', array_fill(0::real, ARRAY[384]));
SELECT ai.drop_vectorizer(1);
SELECT * FROM pg_temp.footprint();
SELECT id, chunk, title FROM document_embedding;
DROP VIEW document_embedding;
DROP TABLE document_embedding_store;

-- destination_column: the embedding column is added to the source.
SELECT ai.create_vectorizer('document'::regclass, loading => ai.loading_column('title'),
    embedding => ai.embedding_openai('text-embedding-3-small', 4), chunking => ai.chunking_none(),
    destination => ai.destination_column('title_emb'));
SELECT name FROM ai.vectorizer;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'document'::regclass AND attname = 'title_emb';
DELETE FROM document WHERE id = 1;
SELECT ai.drop_vectorizer('public_document_title_emb', drop_all => true);
SELECT count(*) AS title_emb_left FROM pg_attribute WHERE attrelid = 'document'::regclass AND attname = 'title_emb' AND NOT attisdropped;
SELECT * FROM pg_temp.footprint();

-- Dropping the source drops its vectorizer with its store and view, as pgai does.
CREATE TABLE gone (id int PRIMARY KEY, uri text);
SELECT ai.create_vectorizer('gone'::regclass, loading => ai.loading_uri('uri'), embedding => ai.embedding_local());
INSERT INTO gone_embedding_store (id, chunk_seq, chunk, embedding) VALUES (1, 0, 'gone too', array_fill(0::real, ARRAY[384]));
DROP TABLE gone CASCADE;
SELECT * FROM pg_temp.footprint();

-- A session with standard_conforming_strings off (a backslash in a name and a template).
SET standard_conforming_strings = off;
CREATE TABLE "back\slash" (id int PRIMARY KEY, "b\ody" text);
SELECT ai.create_vectorizer(E'"back\\slash"'::regclass, loading => ai.loading_column(E'b\\ody'),
    embedding => ai.embedding_local(), formatting => ai.formatting_python_template(E'\\ $chunk'));
INSERT INTO "back\slash" VALUES (1, 'x');
UPDATE "back\slash" SET "b\ody" = 'y';
SELECT config -> 'formatting' ->> 'template' AS template FROM ai.vectorizer WHERE source_table = E'back\\slash';
SELECT ai.vectorizer_queue_pending(id, true) AS queued FROM ai.vectorizer WHERE source_table = E'back\\slash';
SELECT ai.drop_vectorizer(id, drop_all => true) FROM ai.vectorizer WHERE source_table = E'back\\slash';
DROP TABLE "back\slash";
RESET standard_conforming_strings;

DROP TABLE document, no_pk CASCADE;
DROP EXTENSION ai_loader;
