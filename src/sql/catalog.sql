-- ai_loader's catalog, in schema ai. pgai's layout, so pgai's queries work unchanged.

DO $guard$
BEGIN
    IF pg_catalog.to_regclass('ai.vectorizer') IS NOT NULL THEN
        RAISE EXCEPTION 'schema "ai" already holds a vectorizer catalog (ai.vectorizer), most likely pgai''s'
            USING ERRCODE = 'duplicate_schema',
                  HINT = 'ai_loader and pgai both own schema ai and cannot share a database: '
                         'drop pgai (DROP EXTENSION ai CASCADE, or DROP SCHEMA ai CASCADE) or use another database';
    END IF;
END
$guard$;

-- Loading URIs makes the server read with its own credentials (its AWS keys or instance
-- role) and from its own network: only superusers and members of this role may set it
-- up. Roles belong to the cluster, so the role outlives the extension.
DO $role$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_loader_s3_reader') THEN
        CREATE ROLE ai_loader_s3_reader NOLOGIN;
    END IF;
END
$role$;

-- Whether a role may make the server load URIs: a superuser, or a member of
-- ai_loader_s3_reader (false for a role that no longer exists). The worker asks it of
-- each vectorizer's owner.
CREATE FUNCTION ai._may_load_uris(who regrole) RETURNS bool
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $func$
    SELECT coalesce((SELECT r.rolsuper OR pg_has_role(r.oid, 'ai_loader_s3_reader', 'MEMBER')
                       FROM pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) who), false)
$func$;

-- Whether the current user may manage a vectorizer owned by `owner`: it has that
-- role's privileges (a superuser has every role's; once the owner is gone, only a
-- superuser may). Used by the row-level security of the catalog and by its views; a
-- question about the caller alone, like pg_has_role, so anyone may ask it.
CREATE FUNCTION ai._may_manage(owner regrole) RETURNS bool
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $func$
    SELECT coalesce((SELECT pg_has_role(r.oid, 'USAGE') FROM pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner),
                    (SELECT rolsuper FROM pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user))
$func$;

CREATE TABLE ai.vectorizer (
    id int4 NOT NULL PRIMARY KEY,
    name text NOT NULL UNIQUE,
    source_schema name NOT NULL,
    source_table name NOT NULL,
    source_pk jsonb NOT NULL,
    trigger_name name NOT NULL,
    queue_schema name,
    queue_table name,
    queue_failed_table name,
    config jsonb NOT NULL,
    disabled bool NOT NULL DEFAULT false,
    -- The role that owns the vectorizer, by OID (a rename follows it; a new role that
    -- takes an old name gets nothing): the owner of its source table when it was made,
    -- who owns its queues and store. The worker acts with its rights.
    owner regrole NOT NULL
);
CREATE SEQUENCE ai.vectorizer_id_seq AS int4 OWNED BY ai.vectorizer.id;

-- Only the catalog owner writes the catalog: users go through ai.create_vectorizer,
-- ai.drop_vectorizer and the schedule functions, which check who may do what. A user
-- reads the rows of the vectorizers it may manage, nothing else (their configurations
-- may hold what only their owners should see).
ALTER TABLE ai.vectorizer ENABLE ROW LEVEL SECURITY;
CREATE POLICY managed ON ai.vectorizer FOR SELECT USING (ai._may_manage(owner));

CREATE TABLE ai._vectorizer_errors (
    id int4 NOT NULL REFERENCES ai.vectorizer (id) ON DELETE CASCADE,
    message text NOT NULL,
    details jsonb,
    recorded timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON ai._vectorizer_errors (id, recorded);

-- What the worker has done for each vectorizer.
CREATE TABLE ai.vectorizer_worker_progress (
    vectorizer_id int4 NOT NULL PRIMARY KEY REFERENCES ai.vectorizer (id) ON DELETE CASCADE,
    success_count int8 NOT NULL DEFAULT 0,
    error_count int8 NOT NULL DEFAULT 0,
    last_success_at timestamptz,
    last_error_at timestamptz,
    last_error_message text,
    -- When the worker built the vector index its indexing configuration asks for.
    vector_index_built_at timestamptz
);
ALTER TABLE ai.vectorizer_worker_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY managed ON ai.vectorizer_worker_progress FOR SELECT
    USING (EXISTS (SELECT FROM ai.vectorizer v WHERE v.id = vectorizer_id AND ai._may_manage(v.owner)));

-- pg_dump keeps the rows of these tables.
SELECT pg_catalog.pg_extension_config_dump('ai.vectorizer', '');
SELECT pg_catalog.pg_extension_config_dump('ai.vectorizer_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ai._vectorizer_errors', '');
SELECT pg_catalog.pg_extension_config_dump('ai.vectorizer_worker_progress', '');

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
