-- ai.create_s3_sync checks everything before it records anything: the prefix, the
-- destination and its columns, the patterns, the rights of its caller.
CREATE EXTENSION ai_loader;
\set VERBOSITY default
CREATE TABLE document (id bigserial PRIMARY KEY, title text, uri text NOT NULL UNIQUE,
                       size int8, updated_at timestamptz DEFAULT now());

SELECT ai.create_s3_sync('document', 's3://docs/reports/',
    include => '{*.pdf,*.md}', exclude => '{drafts/**}',
    columns => '{"title": "basename", "updated_at": "last_modified", "size": "size"}');
SELECT id, name, destination, column_name, uri_prefix, include, exclude, columns, reconcile_interval, paused, owner
  FROM ai.s3_sync;
SELECT name, destination, uri_prefix, objects_known, rows_inserted, last_error FROM ai.s3_sync_status;

-- Each bad parameter: a SQLSTATE, a message naming it, a hint.
\set ON_ERROR_STOP 0
SELECT ai.create_s3_sync('document', 'docs/reports/');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://Docs/');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', include => '{[a}');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', columns => '{"title": "name"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', columns => '{"uri": "key"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', columns => '{"nothing": "key"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', columns => '{"id": "basename"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', column_name => 'title');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', column_name => 'missing');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', aws_role_arn => 'S3AccessRole');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', sqs_queue_url => 'docs-events');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/', reconcile_interval => '0.1 s');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ai.create_s3_sync('document', 's3://docs/reports/');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE needs_title (id serial PRIMARY KEY, uri text UNIQUE, title text NOT NULL);
SELECT ai.create_s3_sync('needs_title', 's3://docs/');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW document_view AS SELECT * FROM document;
SELECT ai.create_s3_sync('document_view', 's3://docs/');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.drop_s3_sync('no_such_sync');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.drop_s3_sync(12345);
\echo :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
SELECT ai.create_s3_sync('document', 's3://docs/reports/', if_not_exists => true);
SELECT ai.create_s3_sync('needs_title', 's3://docs/', columns => '{"title": "key"}',
    sqs_queue_url => 'https://sqs.eu-west-1.amazonaws.com/123456789012/docs-events', name => 'titles');

-- Pause, resume, a listing asked for; the destination followed by OID.
SELECT ai.pause_s3_sync('titles');
SELECT name, paused FROM ai.s3_sync_status ORDER BY id;
SELECT ai.resume_s3_sync('titles');
SELECT ai.s3_sync_now('titles');
SELECT name, paused, reconcile_requested_at IS NOT NULL AS requested FROM ai.s3_sync ORDER BY id;
ALTER TABLE needs_title RENAME TO titled;
SELECT name, destination FROM ai.s3_sync_status ORDER BY id;
-- Dropping the destination drops its sync; a table later made under the old name is
-- not synced.
DROP TABLE titled;
CREATE TABLE titled (id serial PRIMARY KEY, uri text UNIQUE, title text);
SELECT name, destination FROM ai.s3_sync_status ORDER BY id;
SELECT ai.drop_s3_sync('public_document_s3_sync');
SELECT count(*) AS syncs FROM ai.s3_sync;

-- Who may: the table's owner, a member of ai_loader_s3_reader with ai usage.
CREATE ROLE regress_sync_owner;
CREATE ROLE regress_sync_other;
SELECT ai.grant_ai_usage('regress_sync_owner');
SELECT ai.grant_ai_usage('regress_sync_other');
GRANT CREATE ON SCHEMA public TO regress_sync_owner;
SET ROLE regress_sync_owner;
CREATE TABLE owned (id serial PRIMARY KEY, uri text UNIQUE);
\set ON_ERROR_STOP 0
SELECT ai.create_s3_sync('owned', 's3://docs/');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT ai_loader_s3_reader TO regress_sync_owner, regress_sync_other;
SET ROLE regress_sync_other;
SELECT ai.create_s3_sync('owned', 's3://docs/');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_sync_owner;
SELECT ai.create_s3_sync('owned', 's3://docs/', name => 'owned_sync');
UPDATE ai.s3_sync SET owner = 'postgres';
INSERT INTO ai._s3_sync_object (sync_id, key) VALUES (3, 'forged');
SELECT name, owner FROM ai.s3_sync;
RESET ROLE;
SET ROLE regress_sync_other;
SELECT count(*) AS visible FROM ai.s3_sync_status;
SELECT ai.drop_s3_sync('owned_sync');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.pause_s3_sync('owned_sync');
\echo :LAST_ERROR_SQLSTATE
SELECT ai.s3_sync_now(3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
\set ON_ERROR_STOP 1
SELECT name, owner FROM ai.s3_sync;

DROP EXTENSION ai_loader;
DROP TABLE owned, document, titled CASCADE;
DROP OWNED BY regress_sync_owner, regress_sync_other;
DROP ROLE regress_sync_owner, regress_sync_other;
