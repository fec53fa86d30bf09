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
CREATE FUNCTION ai._vectorizer_keep_owner() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $func$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.owner := current_user;
    ELSE
        NEW.owner := OLD.owner;
    END IF;
    RETURN NEW;
END
$func$;
CREATE TRIGGER keep_owner BEFORE INSERT OR UPDATE ON ai.vectorizer
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
