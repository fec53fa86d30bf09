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
