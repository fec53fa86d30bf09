-- incremental 0.1.0: the catalog as 0.1.0 made it.
--
-- The files of src/sql/incremental/ make what is made once and holds data (tables,
-- sequences, row-level security and the functions it calls) and convert what an
-- earlier version made. They run in version order: all of them at install, those newer
-- than the installed version at ALTER EXTENSION UPDATE. A released version's file
-- never changes. Everything else (src/sql/management.sql, the library's functions) is
-- made with CREATE OR REPLACE and runs again at every upgrade. See sql/README.md.

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
CREATE FUNCTION ai._may_load_uris(who name) RETURNS bool
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $func$
    SELECT coalesce((SELECT r.rolsuper OR pg_has_role(r.oid, 'ai_loader_s3_reader', 'MEMBER')
                       FROM pg_roles r WHERE r.rolname = who), false)
$func$;

-- Raises 42501 unless the current user may make the server load URIs.
CREATE FUNCTION ai._require_s3_reader(action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $func$
BEGIN
    IF NOT ai._may_load_uris(current_user) THEN
        RAISE EXCEPTION 'permission denied to %', action
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Loading from URIs reads with the database server''s own credentials and network.',
                  HINT = format('A superuser can allow it: GRANT ai_loader_s3_reader TO %I;', current_user);
    END IF;
END
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
    -- The role that created the vectorizer; the worker acts with its rights.
    owner name NOT NULL DEFAULT current_user
);
CREATE SEQUENCE ai.vectorizer_id_seq AS int4 OWNED BY ai.vectorizer.id;

-- The owner is whoever inserted the row, whatever the INSERT said, and never changes.
-- Only the owner (or a role with its privileges, a superuser among them) may change or
-- delete it: the worker acts as the owner, so a change by anyone else would act in the
-- owner's name (another base_url would receive the owner's documents). Whoever sets up
-- loading from URIs must be allowed to (ai._require_s3_reader).
CREATE FUNCTION ai._vectorizer_keep_owner() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $func$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE')
       AND NOT coalesce((SELECT pg_has_role(r.oid, 'USAGE') FROM pg_roles r WHERE r.rolname = OLD.owner),
                        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)) THEN
        RAISE EXCEPTION 'permission denied to % vectorizer "%"', lower(TG_OP), OLD.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('It belongs to %I; the worker acts with that role''s rights.', OLD.owner),
                  HINT = 'Only its owner, a role with the owner''s privileges, or a superuser may change or drop it.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.owner := current_user;
    ELSE
        NEW.owner := OLD.owner;
    END IF;
    IF NEW.config -> 'loading' ->> 'implementation' = 'uri'
       AND (TG_OP = 'INSERT' OR NEW.config -> 'loading' IS DISTINCT FROM OLD.config -> 'loading') THEN
        PERFORM ai._require_s3_reader('make a vectorizer load URIs (ai.loading_uri)');
    END IF;
    RETURN NEW;
END
$func$;
CREATE TRIGGER keep_owner BEFORE INSERT OR UPDATE OR DELETE ON ai.vectorizer
    FOR EACH ROW EXECUTE FUNCTION ai._vectorizer_keep_owner();

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
    last_error_message text
);

-- pg_dump keeps the rows of these tables.
SELECT pg_catalog.pg_extension_config_dump('ai.vectorizer', '');
SELECT pg_catalog.pg_extension_config_dump('ai.vectorizer_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ai._vectorizer_errors', '');
SELECT pg_catalog.pg_extension_config_dump('ai.vectorizer_worker_progress', '');
