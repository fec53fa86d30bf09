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
