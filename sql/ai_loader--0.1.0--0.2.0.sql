\echo Use "ALTER EXTENSION ai_loader UPDATE TO '0.2.0'" to load this file. \quit

-- ai_loader 0.1.0 to 0.2.0, made by scripts/upgrade_script.py (make upgrade-script) from
-- src/sql/ and the library's functions: edit those, not this file.

/* <begin connected objects> */
-- requires:
--   incremental_0_1_0

-- incremental 0.2.0: the privilege model, owners by OID, S3 syncs, full text search.

-- The privilege model (README, Security). Only the catalog owner creates objects
-- in schema ai and writes the catalog; users act through functions that check them; a
-- user reads only its own vectorizers' rows; nothing internal is executable by PUBLIC;
-- the server's API keys go only to endpoints a superuser listed.

-- Anything a user made in schema ai while it could (0.1.0 granted CREATE on it to every
-- ai user) is looked at first. A function there that is not ai_loader's could be what a
-- call resolves to — a superuser's ai.grant_ai_usage('x') reaching a user's
-- ai.grant_ai_usage(text), or this very script's calls — and run its maker's code with
-- the caller's rights: the upgrade stops until it is gone. Other objects are reported.
DO $do$
DECLARE
    _functions text;
    _relations text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('ai.%I(%s) owned by %I', p.proname,
                                                   pg_catalog.pg_get_function_identity_arguments(p.oid),
                                                   pg_catalog.pg_get_userbyid(p.proowner)), ', ')
      INTO _functions
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'ai'::pg_catalog.regnamespace
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
       AND NOT (p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype AND p.pronargs = 0
                AND EXISTS (SELECT FROM ai.vectorizer v WHERE v.queue_schema = 'ai' AND v.trigger_name = p.proname));
    IF _functions IS NOT NULL THEN
        RAISE EXCEPTION 'schema ai holds functions that are not ai_loader''s: %', _functions
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Before 0.2.0 every ai user could create functions in schema ai; a call could resolve to one of these and run its owner''s code with the caller''s rights.',
                  HINT = 'Drop them, or move those you need (ALTER FUNCTION … SET SCHEMA public), then run ALTER EXTENSION ai_loader UPDATE again.';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('ai.%I owned by %I', c.relname,
                                                   pg_catalog.pg_get_userbyid(c.relowner)), ', ')
      INTO _relations
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ai'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
       AND NOT EXISTS (SELECT FROM ai.vectorizer v WHERE v.queue_schema = 'ai'
                          AND c.relname IN (v.queue_table, v.queue_failed_table));
    IF _relations IS NOT NULL THEN
        RAISE WARNING 'schema ai holds relations that are not ai_loader''s: %', _relations
            USING HINT = 'Before 0.2.0 every ai user could create objects in schema ai. Review them, and drop or move those nobody should have made there.';
    END IF;
END
$do$;

-- The catalog: no more user writes, so no trigger guarding them.
DROP TRIGGER keep_owner ON ai.vectorizer;
DROP FUNCTION ai._vectorizer_keep_owner();
DROP FUNCTION ai._require_s3_reader(text);
ALTER TABLE ai.vectorizer ALTER COLUMN owner DROP DEFAULT;

-- Owners by OID: a rename follows the owner, and a new role that takes an old name gets
-- nothing. Existing rows are converted by name, once; a row whose owner no longer exists
-- gets OID 0, which no role has: only a superuser may manage it.
CREATE FUNCTION ai._role_by_name(who name) RETURNS regrole
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $func$
    SELECT coalesce((SELECT r.oid FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) who), 0)::regrole
$func$;
ALTER TABLE ai.vectorizer ALTER COLUMN owner TYPE regrole USING ai._role_by_name(owner);
DROP FUNCTION ai._role_by_name(name);
DROP FUNCTION ai._may_load_uris(name);
CREATE FUNCTION ai._may_load_uris(who regrole) RETURNS bool
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $func$
    SELECT coalesce((SELECT r.rolsuper OR pg_has_role(r.oid, 'ai_loader_s3_reader', 'MEMBER')
                       FROM pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) who), false)
$func$;

-- A vectorizer belongs to its source table's owner, who owns its queues, trigger
-- function, store and view; the worker writes a table only as its owner. One a
-- superuser made on another role's table is handed to that role.
DO $do$
DECLARE
    _v record;
BEGIN
    FOR _v IN
        SELECT v.id, v.queue_schema, v.queue_table, v.queue_failed_table, v.trigger_name, v.config,
               c.relowner::pg_catalog.regrole AS table_owner
          FROM ai.vectorizer v
          JOIN pg_catalog.pg_class c
            ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.format('%I.%I', v.source_schema, v.source_table))
         WHERE c.relowner OPERATOR(pg_catalog.<>) v.owner
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I OWNER TO %s', _v.queue_schema, _v.queue_table, _v.table_owner);
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I OWNER TO %s', _v.queue_schema, _v.queue_failed_table, _v.table_owner);
        EXECUTE pg_catalog.format('ALTER FUNCTION %I.%I() OWNER TO %s', _v.queue_schema, _v.trigger_name, _v.table_owner);
        IF _v.config -> 'destination' ->> 'implementation' OPERATOR(pg_catalog.=) 'table' THEN
            EXECUTE pg_catalog.format('ALTER TABLE IF EXISTS %I.%I OWNER TO %s', _v.config -> 'destination' ->> 'target_schema',
                                      _v.config -> 'destination' ->> 'target_table', _v.table_owner);
            EXECUTE pg_catalog.format('ALTER VIEW IF EXISTS %I.%I OWNER TO %s', _v.config -> 'destination' ->> 'view_schema',
                                      _v.config -> 'destination' ->> 'view_name', _v.table_owner);
        END IF;
        UPDATE ai.vectorizer SET owner = _v.table_owner WHERE id OPERATOR(pg_catalog.=) _v.id;
        RAISE NOTICE 'vectorizer % now belongs to %, the owner of its source table', _v.id, _v.table_owner;
    END LOOP;
END
$do$;

CREATE FUNCTION ai._may_manage(owner regrole) RETURNS bool
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $func$
    SELECT coalesce((SELECT pg_has_role(r.oid, 'USAGE') FROM pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner),
                    (SELECT rolsuper FROM pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user))
$func$;

ALTER TABLE ai.vectorizer ENABLE ROW LEVEL SECURITY;
CREATE POLICY managed ON ai.vectorizer FOR SELECT USING (ai._may_manage(owner));
ALTER TABLE ai.vectorizer_worker_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY managed ON ai.vectorizer_worker_progress FOR SELECT
    USING (EXISTS (SELECT FROM ai.vectorizer v WHERE v.id = vectorizer_id AND ai._may_manage(v.owner)));

-- Functions whose arguments changed: ai.create_vectorizer and the library function
-- behind it take text_indexing (last, so that calls naming their arguments by position
-- keep working), ai.check_s3_access checks what an S3 sync needs (a prefix to list, a
-- queue to receive from). The old ones go; the new ones are made with the others, and
-- the ai users get them again (ai.grant_ai_usage).
DO $do$
DECLARE
    _old regprocedure;
BEGIN
    FOR _old IN
        SELECT pg_catalog.to_regprocedure(s) FROM pg_catalog.unnest(ARRAY[
            'ai.create_vectorizer(regclass, text, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, '
                'name, name, name[], bool, bool)',
            'ai._create_vectorizer(oid, text, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, '
                'text, text, text[], bool, bool)',
            'ai.check_s3_access(text, text)']) AS s
         WHERE pg_catalog.to_regprocedure(s) IS NOT NULL
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', _old);
    END LOOP;
END
$do$;

-- The vector index the worker builds, once built, is recorded.
ALTER TABLE ai.vectorizer_worker_progress ADD COLUMN vector_index_built_at timestamptz;

-- S3 syncs (ai.create_s3_sync): a bucket prefix kept in step with a table whose rows
-- name its objects. The destination is kept by OID: a rename follows it, and a table
-- that takes its name after a drop is not written.
CREATE TABLE ai.s3_sync (
    id int4 NOT NULL PRIMARY KEY,
    name text NOT NULL UNIQUE,
    destination regclass NOT NULL,
    column_name name NOT NULL,
    uri_prefix text NOT NULL,
    aws_role_arn text,
    sqs_queue_url text,
    include text[],
    exclude text[],
    columns jsonb,
    reconcile_interval interval NOT NULL,
    paused bool NOT NULL DEFAULT false,
    -- A complete listing asked for by ai.s3_sync_now, to run as soon as possible.
    reconcile_requested_at timestamptz,
    -- The role that owns the sync, by OID: the owner of its destination table when it
    -- was made. The worker writes the destination with its rights.
    owner regrole NOT NULL,
    -- Where the sync was made or last resumed: the server's system identifier and the
    -- database's OID. A copy of the database (a restore, a clone) is elsewhere, and
    -- starts its syncs paused, so that it never takes the original's events.
    home text NOT NULL
);
CREATE SEQUENCE ai.s3_sync_id_seq AS int4 OWNED BY ai.s3_sync.id;
ALTER TABLE ai.s3_sync ENABLE ROW LEVEL SECURITY;
CREATE POLICY managed ON ai.s3_sync FOR SELECT USING (ai._may_manage(owner));

-- What a sync knows of each object: so that a listing of an unchanged bucket writes
-- nothing, and a late event never undoes a newer one (a deleted object's row stays,
-- present = false, for a day).
CREATE TABLE ai._s3_sync_object (
    sync_id int4 NOT NULL REFERENCES ai.s3_sync (id) ON DELETE CASCADE,
    key text NOT NULL,
    etag text,
    size int8,
    last_modified timestamptz,
    present bool NOT NULL DEFAULT true,
    -- The last event applied: S3's sequencer, its time, and when it was applied.
    sequencer text,
    event_time timestamptz,
    event_applied_at timestamptz,
    PRIMARY KEY (sync_id, key)
);

-- What the worker has done for each sync.
CREATE TABLE ai._s3_sync_progress (
    sync_id int4 NOT NULL PRIMARY KEY REFERENCES ai.s3_sync (id) ON DELETE CASCADE,
    last_listing_at timestamptz,
    last_listing_seconds float8,
    last_event_at timestamptz,
    events_pending int8,
    events_processed int8 NOT NULL DEFAULT 0,
    rows_inserted int8 NOT NULL DEFAULT 0,
    rows_updated int8 NOT NULL DEFAULT 0,
    rows_deleted int8 NOT NULL DEFAULT 0,
    error_count int8 NOT NULL DEFAULT 0,
    last_error_at timestamptz,
    last_error text
);

CREATE TABLE ai._s3_sync_errors (
    sync_id int4 NOT NULL REFERENCES ai.s3_sync (id) ON DELETE CASCADE,
    message text NOT NULL,
    details jsonb,
    recorded timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON ai._s3_sync_errors (sync_id, recorded);

SELECT pg_catalog.pg_extension_config_dump('ai.s3_sync', '');
SELECT pg_catalog.pg_extension_config_dump('ai.s3_sync_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ai._s3_sync_object', '');
SELECT pg_catalog.pg_extension_config_dump('ai._s3_sync_progress', '');
SELECT pg_catalog.pg_extension_config_dump('ai._s3_sync_errors', '');

-- Existing ai users lose what 0.1.0 granted beyond the new model: CREATE on ai, writes
-- to the catalog, its errors and its sequence, reading every vectorizer's row. What the
-- new model grants them comes with the functions (ai.grant_ai_usage, run again for each
-- ai user by every upgrade).
DO $do$
DECLARE
    _role regrole;
BEGIN
    FOR _role IN
        SELECT a.grantee::pg_catalog.regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname OPERATOR(pg_catalog.=) 'ai' AND a.grantee OPERATOR(pg_catalog.<>) 0
           AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
         GROUP BY a.grantee
    LOOP
        EXECUTE pg_catalog.format('REVOKE CREATE ON SCHEMA ai FROM %s', _role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ai.vectorizer, ai._vectorizer_errors, '
                                  'ai.vectorizer_worker_progress, ai.vectorizer_status, ai.vectorizer_errors '
                                  'FROM %s', _role);
        EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE ai.vectorizer_id_seq FROM %s', _role);
    END LOOP;
    REVOKE SELECT ON ai.vectorizer FROM PUBLIC;
    IF pg_catalog.to_regclass('ai.vectorizer_status') IS NOT NULL THEN
        REVOKE SELECT ON ai.vectorizer_status FROM PUBLIC;
    END IF;
END
$do$;
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::chunking_character_text_splitter
CREATE OR REPLACE FUNCTION "chunking_character_text_splitter"(
	"chunk_size" INT DEFAULT 800, /* Option < i32 > */
	"chunk_overlap" INT DEFAULT 400, /* Option < i32 > */
	"separator" TEXT DEFAULT E'\n\n', /* Option < & str > */
	"is_separator_regex" bool DEFAULT false /* Option < bool > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'chunking_character_text_splitter_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::chunking_none
CREATE OR REPLACE FUNCTION "chunking_none"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'chunking_none_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::chunking_recursive_character_text_splitter
CREATE OR REPLACE FUNCTION "chunking_recursive_character_text_splitter"(
	"chunk_size" INT DEFAULT 800, /* Option < i32 > */
	"chunk_overlap" INT DEFAULT 400, /* Option < i32 > */
	"separators" TEXT[] DEFAULT ARRAY[E'\n\n', E'\n', '.', '?', '!', ' ', ''], /* :: std :: option :: Option < Vec < String > > */
	"is_separator_regex" bool DEFAULT false /* Option < bool > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'chunking_recursive_character_text_splitter_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::destination_column
CREATE OR REPLACE FUNCTION "destination_column"(
	"embedding_column" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'destination_column_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::destination_table
CREATE OR REPLACE FUNCTION "destination_table"(
	"destination" TEXT DEFAULT NULL, /* Option < & str > */
	"target_schema" TEXT DEFAULT NULL, /* Option < & str > */
	"target_table" TEXT DEFAULT NULL, /* Option < & str > */
	"view_schema" TEXT DEFAULT NULL, /* Option < & str > */
	"view_name" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'destination_table_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_bedrock
CREATE OR REPLACE FUNCTION "embedding_bedrock"(
	"model" TEXT, /* Option < & str > */
	"dimensions" INT, /* Option < i32 > */
	"aws_role_arn" TEXT DEFAULT NULL, /* Option < & str > */
	"region" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_bedrock_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_litellm
CREATE OR REPLACE FUNCTION "embedding_litellm"(
	"model" TEXT, /* Option < & str > */
	"dimensions" INT, /* Option < i32 > */
	"api_key_name" TEXT DEFAULT NULL, /* Option < & str > */
	"extra_options" jsonb DEFAULT NULL /* Option < JsonB > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_litellm_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_local
CREATE OR REPLACE FUNCTION "embedding_local"(
	"model" TEXT DEFAULT 'all-MiniLM-L6-v2', /* Option < & str > */
	"dimensions" INT DEFAULT 384 /* Option < i32 > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_local_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_ollama
CREATE OR REPLACE FUNCTION "embedding_ollama"(
	"model" TEXT, /* Option < & str > */
	"dimensions" INT, /* Option < i32 > */
	"base_url" TEXT DEFAULT NULL, /* Option < & str > */
	"options" jsonb DEFAULT NULL, /* Option < JsonB > */
	"keep_alive" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_ollama_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_openai
CREATE OR REPLACE FUNCTION "embedding_openai"(
	"model" TEXT, /* Option < & str > */
	"dimensions" INT, /* Option < i32 > */
	"chat_user" TEXT DEFAULT NULL, /* Option < & str > */
	"api_key_name" TEXT DEFAULT 'OPENAI_API_KEY', /* Option < & str > */
	"base_url" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_openai_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_sentence_transformers
CREATE OR REPLACE FUNCTION "embedding_sentence_transformers"(
	"model" TEXT DEFAULT 'nomic-ai/nomic-embed-text-v1.5', /* Option < & str > */
	"dimensions" INT DEFAULT 768 /* Option < i32 > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_sentence_transformers_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::embedding_voyageai
CREATE OR REPLACE FUNCTION "embedding_voyageai"(
	"model" TEXT, /* Option < & str > */
	"dimensions" INT, /* Option < i32 > */
	"input_type" TEXT DEFAULT 'document', /* Option < & str > */
	"api_key_name" TEXT DEFAULT 'VOYAGE_API_KEY' /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'embedding_voyageai_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::formatting_python_template
CREATE OR REPLACE FUNCTION "formatting_python_template"(
	"template" TEXT DEFAULT '$chunk' /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'formatting_python_template_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::indexing_default
CREATE OR REPLACE FUNCTION "indexing_default"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'indexing_default_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::indexing_diskann
CREATE OR REPLACE FUNCTION "indexing_diskann"(
	"min_rows" INT DEFAULT 100000, /* Option < i32 > */
	"storage_layout" TEXT DEFAULT NULL, /* Option < & str > */
	"num_neighbors" INT DEFAULT NULL, /* Option < i32 > */
	"search_list_size" INT DEFAULT NULL, /* Option < i32 > */
	"max_alpha" double precision DEFAULT NULL, /* Option < f64 > */
	"num_dimensions" INT DEFAULT NULL, /* Option < i32 > */
	"num_bits_per_dimension" INT DEFAULT NULL, /* Option < i32 > */
	"create_when_queue_empty" bool DEFAULT true /* Option < bool > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'indexing_diskann_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::indexing_hnsw
CREATE OR REPLACE FUNCTION "indexing_hnsw"(
	"min_rows" INT DEFAULT 100000, /* Option < i32 > */
	"opclass" TEXT DEFAULT 'vector_cosine_ops', /* Option < & str > */
	"m" INT DEFAULT NULL, /* Option < i32 > */
	"ef_construction" INT DEFAULT NULL, /* Option < i32 > */
	"create_when_queue_empty" bool DEFAULT true /* Option < bool > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'indexing_hnsw_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::indexing_none
CREATE OR REPLACE FUNCTION "indexing_none"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'indexing_none_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::loading_column
CREATE OR REPLACE FUNCTION "loading_column"(
	"column_name" TEXT, /* Option < & str > */
	"retries" INT DEFAULT 6 /* Option < i32 > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'loading_column_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::loading_uri
CREATE OR REPLACE FUNCTION "loading_uri"(
	"column_name" TEXT, /* Option < & str > */
	"retries" INT DEFAULT 6, /* Option < i32 > */
	"aws_role_arn" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'loading_uri_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::parsing_auto
CREATE OR REPLACE FUNCTION "parsing_auto"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'parsing_auto_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::parsing_docling
CREATE OR REPLACE FUNCTION "parsing_docling"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'parsing_docling_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::parsing_none
CREATE OR REPLACE FUNCTION "parsing_none"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'parsing_none_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::parsing_pymupdf
CREATE OR REPLACE FUNCTION "parsing_pymupdf"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'parsing_pymupdf_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::processing_default
CREATE OR REPLACE FUNCTION "processing_default"(
	"batch_size" INT DEFAULT NULL, /* Option < i32 > */
	"concurrency" INT DEFAULT NULL /* Option < i32 > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'processing_default_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::scheduling_default
CREATE OR REPLACE FUNCTION "scheduling_default"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scheduling_default_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::builders::scheduling_none
CREATE OR REPLACE FUNCTION "scheduling_none"() RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scheduling_none_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::diagnostics::check_embedding
CREATE OR REPLACE FUNCTION "check_embedding"(
	"config" jsonb /* JsonB */
) RETURNS TABLE (
	"step" TEXT,  /* String */
	"ok" bool,  /* Option < bool > */
	"detail" TEXT,  /* String */
	"hint" TEXT  /* Option < String > */
)
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_embedding_config_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::diagnostics::check_embedding
CREATE OR REPLACE FUNCTION "check_embedding"(
	"vectorizer_name" TEXT /* & str */
) RETURNS TABLE (
	"step" TEXT,  /* String */
	"ok" bool,  /* Option < bool > */
	"detail" TEXT,  /* String */
	"hint" TEXT  /* Option < String > */
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_embedding_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::diagnostics::check_s3_access
CREATE OR REPLACE FUNCTION "check_s3_access"(
	"uri" TEXT, /* & str */
	"aws_role_arn" TEXT DEFAULT NULL, /* Option < & str > */
	"sqs_queue_url" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"step" TEXT,  /* String */
	"ok" bool,  /* Option < bool > */
	"detail" TEXT,  /* String */
	"hint" TEXT  /* Option < String > */
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_s3_access_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::embed::_vectorizer_embed
CREATE OR REPLACE FUNCTION "_vectorizer_embed"(
	"embedding_config" jsonb, /* JsonB */
	"input_text" TEXT /* & str */
) RETURNS real[] /* Flat */
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'vectorizer_embed_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::embed::_vectorizer_embed_for
CREATE OR REPLACE FUNCTION "_vectorizer_embed_for"(
	"name" TEXT, /* & str */
	"input_text" TEXT /* & str */
) RETURNS real[] /* Flat */
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'vectorizer_embed_for_name_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::embed::_vectorizer_embed_for
CREATE OR REPLACE FUNCTION "_vectorizer_embed_for"(
	"vectorizer_id" INT, /* i32 */
	"input_text" TEXT /* & str */
) RETURNS real[] /* Flat */
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'vectorizer_embed_for_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::embed::cosine_distance
CREATE OR REPLACE FUNCTION "cosine_distance"(
	"a" real[], /* Vec < f32 > */
	"b" real[] /* Vec < f32 > */
) RETURNS double precision /* f64 */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cosine_distance_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::embed::vectorizer_embed_for_name_vector
-- Skipped due to `#[pgrx(sql = false)]`
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::embed::vectorizer_embed_for_vector
-- Skipped due to `#[pgrx(sql = false)]`
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::model_calls::_ollama_embed_config
CREATE OR REPLACE FUNCTION "_ollama_embed_config"(
	"model" TEXT, /* Option < & str > */
	"host" TEXT, /* Option < & str > */
	"keep_alive" TEXT, /* Option < & str > */
	"embedding_options" jsonb /* Option < JsonB > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ollama_embed_config_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::model_calls::_openai_embed_config
CREATE OR REPLACE FUNCTION "_openai_embed_config"(
	"model" TEXT, /* Option < & str > */
	"api_key" TEXT, /* Option < & str > */
	"api_key_name" TEXT, /* Option < & str > */
	"dimensions" INT, /* Option < i32 > */
	"openai_user" TEXT, /* Option < & str > */
	"extra_headers" jsonb, /* Option < JsonB > */
	"extra_query" jsonb, /* Option < JsonB > */
	"extra_body" jsonb, /* Option < JsonB > */
	"client_config" jsonb /* Option < JsonB > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'openai_embed_config_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::model_calls::_voyageai_embed_config
CREATE OR REPLACE FUNCTION "_voyageai_embed_config"(
	"model" TEXT, /* Option < & str > */
	"input_type" TEXT, /* Option < & str > */
	"api_key" TEXT, /* Option < & str > */
	"api_key_name" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'voyageai_embed_config_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::s3_sync::_create_s3_sync
CREATE OR REPLACE FUNCTION "_create_s3_sync"(
	"destination" oid, /* Option < pg_sys :: Oid > */
	"uri_prefix" TEXT, /* Option < & str > */
	"column_name" TEXT, /* Option < & str > */
	"aws_role_arn" TEXT, /* Option < & str > */
	"sqs_queue_url" TEXT, /* Option < & str > */
	"include" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"exclude" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"columns" jsonb, /* Option < JsonB > */
	"reconcile_seconds" double precision, /* Option < f64 > */
	"name" TEXT, /* Option < & str > */
	"if_not_exists" bool /* Option < bool > */
) RETURNS INT /* i32 */

LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'create_s3_sync_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::s3_sync::_s3_sync_set_paused
CREATE OR REPLACE FUNCTION "_s3_sync_set_paused"(
	"id" INT, /* i32 */
	"paused" bool /* bool */
) RETURNS void
STRICT 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_paused_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::s3_sync::drop_s3_sync
CREATE OR REPLACE FUNCTION "drop_s3_sync"(
	"id" INT /* i32 */
) RETURNS void
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drop_s3_sync_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::s3_sync::s3_sync_now
CREATE OR REPLACE FUNCTION "s3_sync_now"(
	"id" INT /* i32 */
) RETURNS void
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 's3_sync_now_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::search::_search
CREATE OR REPLACE FUNCTION "_search"(
	"vectorizer" TEXT, /* & str */
	"query" TEXT, /* & str */
	"k" INT, /* i32 */
	"mode" TEXT /* & str */
) RETURNS TABLE (
	"key" jsonb,  /* JsonB */
	"chunk_seq" INT,  /* i32 */
	"chunk" TEXT,  /* String */
	"score" double precision  /* f64 */
)
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_by_name_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::search::_search
CREATE OR REPLACE FUNCTION "_search"(
	"vectorizer_id" INT, /* i32 */
	"query" TEXT, /* & str */
	"k" INT, /* i32 */
	"mode" TEXT /* & str */
) RETURNS TABLE (
	"key" jsonb,  /* JsonB */
	"chunk_seq" INT,  /* i32 */
	"chunk" TEXT,  /* String */
	"score" double precision  /* f64 */
)
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::upgrade::_refresh_vectorizers
CREATE OR REPLACE FUNCTION "_refresh_vectorizers"() RETURNS void
STRICT 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'refresh_vectorizers_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::vectorizer::_create_vectorizer
CREATE OR REPLACE FUNCTION "_create_vectorizer"(
	"source" oid, /* pg_sys :: Oid */
	"name" TEXT, /* Option < & str > */
	"destination" jsonb, /* Option < JsonB > */
	"loading" jsonb, /* Option < JsonB > */
	"parsing" jsonb, /* Option < JsonB > */
	"embedding" jsonb, /* Option < JsonB > */
	"chunking" jsonb, /* Option < JsonB > */
	"indexing" jsonb, /* Option < JsonB > */
	"formatting" jsonb, /* Option < JsonB > */
	"scheduling" jsonb, /* Option < JsonB > */
	"processing" jsonb, /* Option < JsonB > */
	"queue_schema" TEXT, /* Option < & str > */
	"queue_table" TEXT, /* Option < & str > */
	"grant_to" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"enqueue_existing" bool, /* Option < bool > */
	"if_not_exists" bool, /* Option < bool > */
	"text_indexing" jsonb /* Option < JsonB > */
) RETURNS INT /* i32 */

LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'new_vectorizer_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::vectorizer::_set_scheduling
CREATE OR REPLACE FUNCTION "_set_scheduling"(
	"vectorizer_id" INT, /* i32 */
	"scheduling" jsonb, /* JsonB */
	"indexing" jsonb /* JsonB */
) RETURNS jsonb /* JsonB */
STRICT 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_scheduling_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::vectorizer::_vectorizer_set_disabled
CREATE OR REPLACE FUNCTION "_vectorizer_set_disabled"(
	"vectorizer_id" INT, /* i32 */
	"disabled" bool /* bool */
) RETURNS void
STRICT 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_disabled_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::vectorizer::create_vectorizer
-- Skipped due to `#[pgrx(sql = false)]`
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::vectorizer::drop_vectorizer
CREATE OR REPLACE FUNCTION "drop_vectorizer"(
	"vectorizer_id" INT, /* i32 */
	"drop_all" bool DEFAULT false /* bool */
) RETURNS void
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drop_vectorizer_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::vectorizer::execute_vectorizer
CREATE OR REPLACE FUNCTION "execute_vectorizer"(
	"vectorizer_id" INT /* i32 */
) RETURNS void
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'execute_vectorizer_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::wake::_wake_launcher
CREATE OR REPLACE FUNCTION "_wake_launcher"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'wake_launcher_at_commit_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::wake::_wake_worker_at_commit
CREATE OR REPLACE FUNCTION "_wake_worker_at_commit"(
	"vectorizer_id" INT /* i32 */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'wake_vectorizer_at_commit_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::wake::_wake_worker_at_commit
CREATE OR REPLACE FUNCTION "_wake_worker_at_commit"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'wake_worker_at_commit_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- ai_loader::api::wake::_worker_state
CREATE OR REPLACE FUNCTION "_worker_state"() RETURNS TEXT /* & '_ str */
STRICT VOLATILE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_state_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- finalize
-- The public SQL surface that is plain SQL: create_vectorizer's pgai signature, the
-- management functions and views, and privileges. Everything here runs at install and
-- again at every upgrade (after src/sql/incremental/ and the library's functions): each
-- statement makes or replaces, grants or revokes, and leaves the same result however
-- often it runs. A change that CREATE OR REPLACE cannot make (a function's arguments or
-- result, a view's existing columns) drops the old object in an incremental file.

-- The roles a vectorizer's objects are granted to: those named, and, as in pgai, those
-- the setting ai.grant_to_default lists (comma-separated); an empty array for none.
CREATE OR REPLACE FUNCTION ai.grant_to(VARIADIC grantees name[]) RETURNS name[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(pg_catalog.array_agg(DISTINCT g.role), ARRAY[]::name[])
      FROM (SELECT pg_catalog.unnest(grantees) AS role
            UNION
            SELECT pg_catalog.btrim(d)::name
              FROM pg_catalog.string_to_table(pg_catalog.current_setting('ai.grant_to_default', true), ',') d) g
     WHERE g.role OPERATOR(pg_catalog.<>) ''
$$;

CREATE OR REPLACE FUNCTION ai.grant_to() RETURNS name[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.grant_to(VARIADIC ARRAY[]::name[]) $$;

-- Full text search on the store, for ai.search's text and hybrid modes: none, or a
-- tsvector of each chunk in a text search configuration (recorded by its qualified
-- name, which a dump and restore keeps).
CREATE OR REPLACE FUNCTION ai.text_indexing_none() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT '{"implementation": "none", "config_type": "text_indexing"}'::jsonb $$;

CREATE OR REPLACE FUNCTION ai.text_indexing_fts(language regconfig DEFAULT 'english') RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('implementation', 'fts', 'config_type', 'text_indexing',
                              'language', format('%I.%I', n.nspname, c.cfgname))
      FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
     WHERE c.oid = language
$$;

CREATE OR REPLACE FUNCTION ai.scheduling_timescaledb(schedule_interval interval DEFAULT interval '5m',
    initial_start timestamptz DEFAULT NULL, fixed_schedule bool DEFAULT NULL, timezone text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'implementation', 'timescaledb', 'config_type', 'scheduling', 'schedule_interval', schedule_interval,
        'initial_start', initial_start, 'fixed_schedule', fixed_schedule, 'timezone', timezone))
$$;

CREATE OR REPLACE FUNCTION ai.create_vectorizer(
    source regclass,
    name text DEFAULT NULL,
    destination jsonb DEFAULT ai.destination_table(),
    loading jsonb DEFAULT NULL,
    parsing jsonb DEFAULT ai.parsing_auto(),
    embedding jsonb DEFAULT NULL,
    chunking jsonb DEFAULT ai.chunking_recursive_character_text_splitter(),
    indexing jsonb DEFAULT ai.indexing_default(),
    formatting jsonb DEFAULT ai.formatting_python_template(),
    scheduling jsonb DEFAULT ai.scheduling_default(),
    processing jsonb DEFAULT ai.processing_default(),
    queue_schema name DEFAULT NULL,
    queue_table name DEFAULT NULL,
    grant_to name[] DEFAULT ai.grant_to(),
    enqueue_existing bool DEFAULT true,
    if_not_exists bool DEFAULT false,
    text_indexing jsonb DEFAULT ai.text_indexing_none()
) RETURNS int4
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ai._create_vectorizer(source::oid, name, destination, loading, parsing, embedding,
        chunking, indexing, formatting, scheduling, processing, queue_schema::text,
        queue_table::text, grant_to::text[], enqueue_existing, if_not_exists, text_indexing)
$$;

CREATE OR REPLACE FUNCTION ai._vectorizer_id(name text) RETURNS int4
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    _id int4;
BEGIN
    SELECT v.id INTO _id FROM ai.vectorizer v WHERE v.name = _vectorizer_id.name;
    IF _id IS NULL THEN
        RAISE EXCEPTION 'vectorizer "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT id, name FROM ai.vectorizer lists the vectorizers';
    END IF;
    RETURN _id;
END
$$;

CREATE OR REPLACE FUNCTION ai.drop_vectorizer(name text, drop_all bool DEFAULT false) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.drop_vectorizer(ai._vectorizer_id(name), drop_all) $$;

CREATE OR REPLACE FUNCTION ai.vectorizer_queue_pending(vectorizer_id int4, exact_count bool DEFAULT false)
RETURNS int8
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    _v ai.vectorizer;
    _count int8;
BEGIN
    SELECT * INTO _v FROM ai.vectorizer v WHERE v.id = vectorizer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'vectorizer % does not exist', vectorizer_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT id, name FROM ai.vectorizer lists the vectorizers';
    END IF;
    IF exact_count THEN
        EXECUTE format('SELECT count(*) FROM %I.%I', _v.queue_schema, _v.queue_table) INTO _count;
    ELSE
        -- Like pgai: past 10,000 rows, "a lot" (the largest int8) without counting them all.
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I.%I LIMIT 10001) q',
                       _v.queue_schema, _v.queue_table) INTO _count;
        IF _count > 10000 THEN
            _count := 9223372036854775807;
        END IF;
    END IF;
    RETURN _count;
END
$$;

CREATE OR REPLACE FUNCTION ai.vectorizer_queue_pending(name text, exact_count bool DEFAULT false)
RETURNS int8
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.vectorizer_queue_pending(ai._vectorizer_id(name), exact_count) $$;

-- The worker skips a disabled vectorizer; its queue keeps filling.
CREATE OR REPLACE FUNCTION ai.disable_vectorizer_schedule(vectorizer_id int4) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._vectorizer_set_disabled(vectorizer_id, true) $$;

CREATE OR REPLACE FUNCTION ai.disable_vectorizer_schedule(name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.disable_vectorizer_schedule(ai._vectorizer_id(name)) $$;

-- pgai's scheduling: recorded; the worker is woken by commits and needs no job.
CREATE OR REPLACE FUNCTION ai.set_scheduling(vectorizer_id int4, scheduling jsonb DEFAULT ai.scheduling_default(),
                                             indexing jsonb DEFAULT ai.indexing_default()) RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._set_scheduling(vectorizer_id, scheduling, indexing) $$;

CREATE OR REPLACE FUNCTION ai.execute_vectorizer(vectorizer_name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.execute_vectorizer(ai._vectorizer_id(vectorizer_name)) $$;

CREATE OR REPLACE FUNCTION ai.enable_vectorizer_schedule(vectorizer_id int4) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._vectorizer_set_disabled(vectorizer_id, false) $$;

CREATE OR REPLACE FUNCTION ai.enable_vectorizer_schedule(name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.enable_vectorizer_schedule(ai._vectorizer_id(name)) $$;

-- Where a vectorizer's embeddings are: the table (its store, or its source for an
-- embedding column) by qualified name, and the column. The one definition the views
-- and the library's queries use; inlined into them (SQL, STABLE, no SET clause, every
-- name qualified).
CREATE OR REPLACE FUNCTION ai._embeddings(source_schema name, source_table name, destination jsonb)
RETURNS TABLE (embedding_table text, embedding_column name)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN destination OPERATOR(pg_catalog.->>) 'implementation' OPERATOR(pg_catalog.=) 'column'
                THEN pg_catalog.format('%I.%I', source_schema, source_table)
                ELSE pg_catalog.format('%I.%I', destination OPERATOR(pg_catalog.->>) 'target_schema',
                                       destination OPERATOR(pg_catalog.->>) 'target_table') END,
           (CASE WHEN destination OPERATOR(pg_catalog.->>) 'implementation' OPERATOR(pg_catalog.=) 'column'
                 THEN destination OPERATOR(pg_catalog.->>) 'embedding_column'
                 ELSE 'embedding' END)::pg_catalog.name
$$;

CREATE OR REPLACE VIEW ai.vectorizer_status AS
SELECT v.id,
       v.name,
       format('%I.%I', v.source_schema, v.source_table) AS source_table,
       CASE WHEN v.config -> 'destination' ->> 'implementation' = 'table' THEN e.embedding_table END AS target_table,
       CASE WHEN v.config -> 'destination' ->> 'implementation' = 'table'
            THEN format('%I.%I', v.config -> 'destination' ->> 'view_schema',
                                 v.config -> 'destination' ->> 'view_name') END AS "view",
       e.embedding_column::text COLLATE pg_catalog."default" AS embedding_column,
       CASE WHEN has_table_privilege(format('%I.%I', v.queue_schema, v.queue_table), 'SELECT')
            THEN ai.vectorizer_queue_pending(v.id) END AS pending_items,
       v.disabled,
       p.success_count,
       p.error_count,
       p.last_success_at,
       p.last_error_at,
       p.last_error_message,
       (SELECT i.indexrelid::regclass::text
          FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
         WHERE i.indisvalid AND a.attname = e.embedding_column
           AND i.indrelid = to_regclass(e.embedding_table)
         ORDER BY i.indexrelid LIMIT 1) AS vector_index,
       p.vector_index_built_at,
       ai._worker_state() AS worker
  FROM ai.vectorizer v
  LEFT JOIN ai.vectorizer_worker_progress p ON p.vectorizer_id = v.id
  CROSS JOIN LATERAL ai._embeddings(v.source_schema, v.source_table, v.config -> 'destination') e
 WHERE ai._may_manage(v.owner);

CREATE OR REPLACE VIEW ai.vectorizer_errors AS
SELECT e.id, v.name, e.message, e.details, e.recorded
  FROM ai._vectorizer_errors e
  JOIN ai.vectorizer v ON v.id = e.id
 WHERE ai._may_manage(v.owner);

-- S3 syncs: a bucket prefix kept in step with a table, by listing and by the bucket's
-- event notifications on SQS (see ai._create_s3_sync).
CREATE OR REPLACE FUNCTION ai.create_s3_sync(
    destination regclass,
    uri_prefix text,
    column_name name DEFAULT 'uri',
    aws_role_arn text DEFAULT NULL,
    sqs_queue_url text DEFAULT NULL,
    include text[] DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    columns jsonb DEFAULT NULL,
    reconcile_interval interval DEFAULT '5 minutes',
    name text DEFAULT NULL,
    if_not_exists bool DEFAULT false
) RETURNS int4
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ai._create_s3_sync(destination::oid, uri_prefix, column_name::text, aws_role_arn,
        sqs_queue_url, include, exclude, columns, extract(epoch FROM reconcile_interval)::float8,
        name, if_not_exists)
$$;

CREATE OR REPLACE FUNCTION ai._s3_sync_id(name text) RETURNS int4
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    _id int4;
BEGIN
    SELECT s.id INTO _id FROM ai.s3_sync s WHERE s.name = _s3_sync_id.name;
    IF _id IS NULL THEN
        RAISE EXCEPTION 'S3 sync "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT id, name FROM ai.s3_sync lists the S3 syncs';
    END IF;
    RETURN _id;
END
$$;

CREATE OR REPLACE FUNCTION ai.drop_s3_sync(name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.drop_s3_sync(ai._s3_sync_id(name)) $$;

CREATE OR REPLACE FUNCTION ai.s3_sync_now(name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.s3_sync_now(ai._s3_sync_id(name)) $$;

-- A paused sync neither lists nor receives events; its queue keeps them (until SQS's
-- retention period ends; the listing on resume catches up).
CREATE OR REPLACE FUNCTION ai.pause_s3_sync(id int4) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._s3_sync_set_paused(id, true) $$;

CREATE OR REPLACE FUNCTION ai.pause_s3_sync(name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._s3_sync_set_paused(ai._s3_sync_id(name), true) $$;

CREATE OR REPLACE FUNCTION ai.resume_s3_sync(id int4) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._s3_sync_set_paused(id, false) $$;

CREATE OR REPLACE FUNCTION ai.resume_s3_sync(name text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai._s3_sync_set_paused(ai._s3_sync_id(name), false) $$;

CREATE OR REPLACE VIEW ai.s3_sync_status AS
SELECT s.id,
       s.name,
       s.destination::text AS destination,
       s.column_name,
       s.uri_prefix,
       s.sqs_queue_url,
       s.paused,
       (SELECT pg_catalog.count(*) FROM ai._s3_sync_object o WHERE o.sync_id = s.id AND o.present)
           AS objects_known,
       p.last_listing_at,
       pg_catalog.make_interval(secs => p.last_listing_seconds) AS last_listing_duration,
       p.last_event_at,
       p.events_pending,
       p.events_processed,
       p.rows_inserted,
       p.rows_updated,
       p.rows_deleted,
       p.error_count,
       p.last_error_at,
       p.last_error
  FROM ai.s3_sync s
  LEFT JOIN ai._s3_sync_progress p ON p.sync_id = s.id
 WHERE ai._may_manage(s.owner);

CREATE OR REPLACE VIEW ai.s3_sync_errors AS
SELECT e.sync_id AS id, s.name, e.message, e.details, e.recorded
  FROM ai._s3_sync_errors e
  JOIN ai.s3_sync s ON s.id = e.sync_id
 WHERE ai._may_manage(s.owner);

-- Lets a role create and manage vectorizers (and S3 syncs, if it may also read S3) on
-- the tables it owns, and read what the catalog says of its own. Not CREATE on schema ai (pgai grants it): nobody
-- but the catalog owner makes objects there, so nobody can plant a function for a
-- superuser's call to resolve to. With admin, the role may pass all of it on.
CREATE OR REPLACE FUNCTION ai.grant_ai_usage(to_user name, admin bool DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    _with text := CASE WHEN admin THEN ' WITH GRANT OPTION' ELSE '' END;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA ai TO %I%s', to_user, _with);
    EXECUTE format('GRANT SELECT ON ai.vectorizer, ai.vectorizer_worker_progress, ai.vectorizer_status, '
                   'ai.vectorizer_errors, ai.s3_sync, ai.s3_sync_status, ai.s3_sync_errors TO %I%s',
                   to_user, _with);
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
                   'ai.create_vectorizer(regclass, text, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, '
                   'jsonb, jsonb, name, name, name[], bool, bool, jsonb), '
                   'ai._create_vectorizer(oid, text, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, '
                   'jsonb, text, text, text[], bool, bool, jsonb), '
                   'ai.drop_vectorizer(int4, bool), ai.drop_vectorizer(text, bool), '
                   'ai.disable_vectorizer_schedule(int4), ai.disable_vectorizer_schedule(text), '
                   'ai.enable_vectorizer_schedule(int4), ai.enable_vectorizer_schedule(text), '
                   'ai._vectorizer_set_disabled(int4, bool), ai._vectorizer_id(text), '
                   'ai.set_scheduling(int4, jsonb, jsonb), ai._set_scheduling(int4, jsonb, jsonb), '
                   'ai.execute_vectorizer(int4), ai.execute_vectorizer(text), '
                   'ai.vectorizer_queue_pending(int4, bool), ai.vectorizer_queue_pending(text, bool), '
                   'ai.vectorizer_embed(jsonb, text, text), ai._vectorizer_embed(jsonb, text), '
                   'ai.openai_embed(text, text, text, text, int4, text, jsonb, jsonb, jsonb, bool, jsonb), '
                   'ai.ollama_embed(text, text, text, text, jsonb, bool), '
                   'ai.voyageai_embed(text, text, text, text, text, bool), '
                   'ai._openai_embed_config(text, text, text, int4, text, jsonb, jsonb, jsonb, jsonb), '
                   'ai._ollama_embed_config(text, text, text, jsonb), '
                   'ai._voyageai_embed_config(text, text, text, text), '
                   'ai.check_embedding(jsonb), '
                   'ai.create_s3_sync(regclass, text, name, text, text, text[], text[], jsonb, interval, text, bool), '
                   'ai._create_s3_sync(oid, text, text, text, text, text[], text[], jsonb, float8, text, bool), '
                   'ai.drop_s3_sync(int4), ai.drop_s3_sync(text), ai.s3_sync_now(int4), ai.s3_sync_now(text), '
                   'ai.pause_s3_sync(int4), ai.pause_s3_sync(text), ai.resume_s3_sync(int4), '
                   'ai.resume_s3_sync(text), ai._s3_sync_set_paused(int4, bool), ai._s3_sync_id(text) TO %I%s',
                   to_user, _with);
    IF admin THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION ai.grant_ai_usage(name, bool), '
                       'ai.grant_vectorizer_usage(name, bool) TO %I WITH GRANT OPTION', to_user);
    END IF;
END
$$;

-- pgai's name for it (pgai 0.12): the same grants.
CREATE OR REPLACE FUNCTION ai.grant_vectorizer_usage(to_user name, admin bool DEFAULT false) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT ai.grant_ai_usage(to_user, admin) $$;

GRANT USAGE ON SCHEMA ai TO PUBLIC;

-- Dropping a source table drops its vectorizers with everything they made (triggers,
-- queues, store and view, catalog rows), as pgai does. Dropping a sync's destination drops the sync. It runs
-- with the catalog owner's rights, and ai.drop_vectorizer drops each vectorizer's
-- objects with its owner's rights. A vectorizer is dropped only when its own trigger
-- function no longer has a trigger (found by OID): a table that merely bears the name
-- its source once had (after a rename) does not drop it.
CREATE OR REPLACE FUNCTION ai._vectorizer_handle_drops() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    _id int4;
BEGIN
    FOR _id IN
        SELECT v.id
          FROM pg_catalog.pg_event_trigger_dropped_objects() d
          JOIN ai.vectorizer v ON v.source_schema = d.schema_name AND v.source_table = d.object_name
         WHERE d.object_type = 'table'
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                            WHERE t.tgfoid = pg_catalog.to_regprocedure(
                                      pg_catalog.format('%I.%I()', v.queue_schema, v.trigger_name)))
    LOOP
        PERFORM ai.drop_vectorizer(_id, drop_all => true);
    END LOOP;
    -- A sync whose destination is dropped (its OID, not a name) goes with it.
    DELETE FROM ai.s3_sync s
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
       AND d.objid = s.destination::oid;
END
$$;
REVOKE ALL ON FUNCTION ai._vectorizer_handle_drops() FROM PUBLIC;
DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = '_vectorizer_handle_drops') THEN
        CREATE EVENT TRIGGER _vectorizer_handle_drops ON sql_drop
            EXECUTE FUNCTION ai._vectorizer_handle_drops();
    END IF;
END
$do$;

-- A new installation is served at once: the launcher starts this database's worker.
SELECT ai._wake_launcher();


-- ai.vectorizer_embed returns the stores' type: vector where pgvector is installed,
-- real[] otherwise, and so do pgai's ai.openai_embed, ai.ollama_embed and
-- ai.voyageai_embed. ai._define_vectorizer_embed (re)defines them to match: at install, and when pgvector is created after ai_loader (as pg_restore does:
-- it creates extensions in name order) — unless a view or another object depends on
-- them. A redefined function keeps its grants. They are STABLE, with no SET clause and
-- every name in their body qualified, so that Postgres inlines them into a query: the
-- query embeds its text once (see the C functions) and an index scan can use it. With
-- pgvector, the overloads by vectorizer call C functions that return vector themselves
-- (ai._vectorizer_embed_for_vector, made here: the type is pgvector's), sparing a cast
-- for each row a scan evaluates them for.
CREATE OR REPLACE FUNCTION ai._define_vectorizer_embed() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    _type text := coalesce(
        (SELECT pg_catalog.format('%I.vector', n.nspname) FROM pg_catalog.pg_extension e
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'),
        'real[]');
    _vector name := (SELECT n.nspname FROM pg_catalog.pg_extension e
                       JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector');
    _f record;
    _c record;
    _old regprocedure;
    _new regprocedure;
    _body text;
    _acl aclitem[];
    _grantee regrole;
BEGIN
    FOR _c IN SELECT * FROM (VALUES ('vectorizer_id int4', 'int4', 'vectorizer_embed_for_vector_wrapper'),
                                    ('name text', 'text', 'vectorizer_embed_for_name_vector_wrapper')) AS c(args, first, symbol)
    LOOP
        EXIT WHEN _vector IS NULL;
        _new := pg_catalog.to_regprocedure(pg_catalog.format('ai._vectorizer_embed_for_vector(%s, text)', _c.first));
        IF _new IS NULL THEN
            EXECUTE pg_catalog.format(
                'CREATE FUNCTION ai._vectorizer_embed_for_vector(%s, input_text text) RETURNS %s '
                'LANGUAGE c STABLE STRICT PARALLEL UNSAFE AS %L, %L',
                _c.args, _type, '$libdir/ai_loader', _c.symbol);
            _new := pg_catalog.to_regprocedure(pg_catalog.format('ai._vectorizer_embed_for_vector(%s, text)', _c.first));
        END IF;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                          AND d.objid = _new AND d.deptype = 'e') THEN
            EXECUTE pg_catalog.format('ALTER EXTENSION ai_loader ADD FUNCTION %s', _new);
        END IF;
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', _new);
    END LOOP;
    FOR _f IN SELECT * FROM (VALUES
        ('vectorizer_embed', 'embedding_config jsonb, input_text text, input_type text DEFAULT NULL',
         'jsonb, text, text', 'ai._vectorizer_embed(embedding_config, input_text)', false),
        ('vectorizer_embed', 'vectorizer_id int4, input_text text, input_type text DEFAULT NULL',
         'int4, text, text', 'ai._vectorizer_embed_for(vectorizer_id, input_text)', true),
        ('vectorizer_embed', 'name text, input_text text, input_type text DEFAULT NULL',
         'text, text, text', 'ai._vectorizer_embed_for(name, input_text)', true),
        -- pgai's model-calling functions: a configuration, embedded as ai.vectorizer_embed does.
        ('openai_embed', 'model text, input_text text, api_key text DEFAULT NULL, api_key_name text DEFAULT NULL, '
                         'dimensions int4 DEFAULT NULL, openai_user text DEFAULT NULL, extra_headers jsonb DEFAULT NULL, '
                         'extra_query jsonb DEFAULT NULL, extra_body jsonb DEFAULT NULL, verbose bool DEFAULT false, '
                         'client_config jsonb DEFAULT NULL',
         'text, text, text, text, int4, text, jsonb, jsonb, jsonb, bool, jsonb',
         'ai._vectorizer_embed(ai._openai_embed_config(model, api_key, api_key_name, dimensions, openai_user, '
         'extra_headers, extra_query, extra_body, client_config), input_text)', false),
        ('ollama_embed', 'model text, input_text text, host text DEFAULT NULL, keep_alive text DEFAULT NULL, '
                         'embedding_options jsonb DEFAULT NULL, verbose bool DEFAULT false',
         'text, text, text, text, jsonb, bool',
         'ai._vectorizer_embed(ai._ollama_embed_config(model, host, keep_alive, embedding_options), input_text)', false),
        ('voyageai_embed', 'model text, input_text text, input_type text DEFAULT NULL, api_key text DEFAULT NULL, '
                           'api_key_name text DEFAULT NULL, verbose bool DEFAULT false',
         'text, text, text, text, text, bool',
         'ai._vectorizer_embed(ai._voyageai_embed_config(model, input_type, api_key, api_key_name), input_text)', false)
        ) AS f(name, args, types, call, public)
    LOOP
        _body := CASE WHEN _vector IS NOT NULL AND _f.public
                      THEN pg_catalog.format('SELECT %s', pg_catalog.replace(_f.call, '_for(', '_for_vector('))
                      ELSE pg_catalog.format('SELECT %s::%s', _f.call, _type) END;
        _acl := NULL;
        _old := pg_catalog.to_regprocedure(pg_catalog.format('ai.%s(%s)', _f.name, _f.types));
        IF _old IS NOT NULL THEN
            CONTINUE WHEN (SELECT p.prosrc = _body AND p.provolatile = 's' AND p.proconfig IS NULL
                             FROM pg_catalog.pg_proc p WHERE p.oid = _old);
            IF EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
                          AND d.refobjid = _old AND d.deptype = 'n') THEN
                RAISE WARNING '% still returns %: other objects depend on it', _old,
                    pg_catalog.pg_get_function_result(_old)
                    USING HINT = pg_catalog.format('Cast its result with ::%s.', _type);
                CONTINUE;
            END IF;
            _acl := (SELECT p.proacl FROM pg_catalog.pg_proc p WHERE p.oid = _old);
            EXECUTE pg_catalog.format('ALTER EXTENSION ai_loader DROP FUNCTION %s', _old);
            EXECUTE pg_catalog.format('DROP FUNCTION %s', _old);
        END IF;
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION ai.%I(%s) RETURNS %s LANGUAGE sql STABLE PARALLEL UNSAFE AS %L',
            _f.name, _f.args, _type, _body);
        _new := pg_catalog.to_regprocedure(pg_catalog.format('ai.%s(%s)', _f.name, _f.types));
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', _new);
        IF _f.public THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', _new);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                          AND d.objid = _new AND d.deptype = 'e') THEN
            EXECUTE pg_catalog.format('ALTER EXTENSION ai_loader ADD FUNCTION %s', _new);
        END IF;
        FOR _grantee IN
            SELECT DISTINCT a.grantee::regrole FROM pg_catalog.aclexplode(_acl) a
             WHERE a.grantee <> 0 AND a.grantee <> a.grantor
        LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', _new, _grantee);
        END LOOP;
    END LOOP;
END
$$;
SELECT ai._define_vectorizer_embed();

-- pgvector created after ai_loader: ai.vectorizer_embed returns vector from then on.
CREATE OR REPLACE FUNCTION ai._vectorizer_handle_new_extensions() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
                WHERE c.classid = 'pg_catalog.pg_extension'::regclass
                  AND c.objid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')) THEN
        PERFORM ai._define_vectorizer_embed();
    END IF;
END
$$;
REVOKE ALL ON FUNCTION ai._vectorizer_handle_new_extensions() FROM PUBLIC;
DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = '_vectorizer_handle_new_extensions') THEN
        CREATE EVENT TRIGGER _vectorizer_handle_new_extensions ON ddl_command_end
            WHEN TAG IN ('CREATE EXTENSION')
            EXECUTE FUNCTION ai._vectorizer_handle_new_extensions();
    END IF;
END
$do$;

-- The best k chunks of a vectorizer's store for a query: by meaning ('vector'), by words
-- ('text', with text indexing) or both ('hybrid'). With the caller's rights; the query
-- is embedded once.
CREATE OR REPLACE FUNCTION ai.search(vectorizer text, query text, k int4 DEFAULT 10, mode text DEFAULT 'hybrid')
RETURNS TABLE (key jsonb, chunk_seq int4, chunk text, score float8)
LANGUAGE sql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM ai._search(vectorizer, query, k, mode) $$;

CREATE OR REPLACE FUNCTION ai.search(vectorizer_id int4, query text, k int4 DEFAULT 10, mode text DEFAULT 'hybrid')
RETURNS TABLE (key jsonb, chunk_seq int4, chunk text, score float8)
LANGUAGE sql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM ai._search(vectorizer_id, query, k, mode) $$;

-- Who may execute what. Nothing in schema ai is executable by PUBLIC unless listed here:
-- the configuration builders and cosine_distance (pure functions), and the functions
-- that check their caller themselves — check_s3_access (ai_loader_s3_reader),
-- check_embedding by vectorizer (those who may embed with it),
-- vectorizer_embed by vectorizer and search (those who may read its embeddings), _may_manage (a
-- question about the caller), _wake_worker_at_commit (wakes this database's worker at
-- commit; the queue triggers call it with their owners' rights). ai.grant_ai_usage
-- grants the management functions; the rest is the catalog owner's. (The extension's
-- functions only: the vectorizers' trigger functions in schema ai are their owners'.)
DO $do$
DECLARE
    _f regprocedure;
BEGIN
    FOR _f IN
        SELECT d.objid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension x ON x.oid OPERATOR(pg_catalog.=) d.refobjid
         WHERE x.extname OPERATOR(pg_catalog.=) 'ai_loader' AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', _f);
    END LOOP;
END
$do$;
GRANT EXECUTE ON FUNCTION
    ai.loading_column(text, int4), ai.loading_uri(text, int4, text),
    ai.parsing_auto(), ai.parsing_none(), ai.parsing_pymupdf(), ai.parsing_docling(),
    ai.chunking_recursive_character_text_splitter(int4, int4, text[], bool),
    ai.chunking_character_text_splitter(int4, int4, text, bool), ai.chunking_none(),
    ai.formatting_python_template(text),
    ai.embedding_openai(text, int4, text, text, text), ai.embedding_ollama(text, int4, text, jsonb, text),
    ai.embedding_local(text, int4),
    ai.embedding_voyageai(text, int4, text, text), ai.embedding_litellm(text, int4, text, jsonb),
    ai.embedding_bedrock(text, int4, text, text),
    ai.destination_table(text, text, text, text, text), ai.destination_column(text),
    ai.indexing_none(), ai.indexing_default(), ai.indexing_hnsw(int4, text, int4, int4, bool),
    ai.text_indexing_none(), ai.text_indexing_fts(regconfig),
    ai.scheduling_default(), ai.scheduling_none(),
    ai.scheduling_timescaledb(interval, timestamptz, bool, text), ai.processing_default(int4, int4),
    ai.indexing_diskann(int4, text, int4, int4, float8, int4, int4, bool),
    ai.embedding_sentence_transformers(text, int4),
    ai.grant_to(VARIADIC name[]), ai.grant_to(),
    ai.cosine_distance(real[], real[]),
    ai.check_s3_access(text, text, text), ai.check_embedding(text),
    ai.vectorizer_embed(int4, text, text), ai.vectorizer_embed(text, text, text),
    ai._vectorizer_embed_for(int4, text), ai._vectorizer_embed_for(text, text),
    ai.search(text, text, int4, text), ai.search(int4, text, int4, text),
    ai._search(text, text, int4, text), ai._search(int4, text, int4, text),
    ai._may_manage(regrole), ai._wake_worker_at_commit(), ai._wake_worker_at_commit(int4), ai._worker_state(),
    ai._embeddings(name, name, jsonb)
TO PUBLIC;
-- With pgvector, the vector-returning functions behind ai.vectorizer_embed: granted by
-- ai._define_vectorizer_embed, which runs again for it.
SELECT ai._define_vectorizer_embed();

-- Each vectorizer an earlier version made gets this version's trigger function and
-- store options (see src/api/upgrade.rs).
SELECT ai._refresh_vectorizers();

-- The ai users (the roles ai.grant_ai_usage gave USAGE on schema ai) get what it gives
-- now, the functions of a new version among them.
DO $do$
DECLARE
    _role record;
BEGIN
    FOR _role IN
        SELECT a.grantee::pg_catalog.regrole::pg_catalog.text AS name, pg_catalog.bool_or(a.is_grantable) AS admin
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname OPERATOR(pg_catalog.=) 'ai' AND a.grantee OPERATOR(pg_catalog.<>) 0
           AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
         GROUP BY a.grantee
    LOOP
        PERFORM ai.grant_ai_usage(_role.name::pg_catalog.name, _role.admin);
    END LOOP;
END
$do$;

-- Privileges changed by an extension script are recorded as the extension's initial
-- privileges, which pg_dump leaves out of a dump. The ai users' grants belong to the
-- database, not to the extension: keep only PUBLIC's and the owners' entries there, so
-- that pg_dump carries the users' grants; and forget a relation's record that says no
-- more than its default (its owner alone).
DO $do$
DECLARE
    _m record;
BEGIN
    FOR _m IN
        SELECT d.classid, d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid
         WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND x.extname = 'ai_loader'
           AND d.deptype = 'e'
        UNION ALL
        SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, 'ai'::pg_catalog.regnamespace
    LOOP
        UPDATE pg_catalog.pg_init_privs ip
           SET initprivs = ARRAY(SELECT a FROM unnest(ip.initprivs) a, pg_catalog.aclexplode(ARRAY[a]) e
                                  WHERE e.grantee = 0 OR e.grantee = e.grantor)
         WHERE ip.privtype = 'e' AND ip.classoid = _m.classid AND ip.objoid = _m.objid;
        DELETE FROM pg_catalog.pg_init_privs ip
         WHERE ip.privtype = 'e' AND ip.classoid = _m.classid AND ip.objoid = _m.objid
           AND _m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND NOT EXISTS (SELECT FROM unnest(ip.initprivs) a, pg_catalog.aclexplode(ARRAY[a]) e
                            WHERE e.grantee = 0 OR e.grantee <> e.grantor);
    END LOOP;
END
$do$;
/* </end connected objects> */
