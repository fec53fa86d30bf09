-- Who may create a vectorizer: the table's owner (with ai.grant_ai_usage) or a
-- superuser; anyone else is refused before anything is made. Loading URIs also takes
-- membership in ai_loader_s3_reader.
CREATE EXTENSION ai_loader;

CREATE ROLE regress_owner;
CREATE ROLE regress_other;
SELECT ai.grant_ai_usage('regress_owner');
SELECT ai.grant_ai_usage('regress_other');
GRANT CREATE ON SCHEMA public TO regress_owner;

SET ROLE regress_owner;
CREATE TABLE owned_doc (id int PRIMARY KEY, uri text);
INSERT INTO owned_doc VALUES (1, 's3://b/1.md');
GRANT SELECT ON owned_doc TO regress_other;
RESET ROLE;

-- Not the owner: refused, nothing made.
SET ROLE regress_other;
SELECT ai.create_vectorizer('owned_doc'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local());
RESET ROLE;
SELECT count(*) AS vectorizers FROM ai.vectorizer;

-- The owner may, once a member of ai_loader_s3_reader; the vectorizer records who owns
-- it, and the catalog is not the owner's to write.
SET ROLE regress_owner;
SELECT ai.create_vectorizer('owned_doc'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local());
RESET ROLE;
SELECT count(*) AS vectorizers FROM ai.vectorizer;
GRANT ai_loader_s3_reader TO regress_owner;
SET ROLE regress_owner;
SELECT ai.create_vectorizer('owned_doc'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local());
SELECT name, owner FROM ai.vectorizer;
UPDATE ai.vectorizer SET owner = 'postgres';
UPDATE ai.vectorizer SET queue_table = 'owned_doc';
DELETE FROM ai.vectorizer;
INSERT INTO ai._vectorizer_errors (id, message) VALUES (2, 'forged');
CREATE FUNCTION ai.grant_ai_usage(to_user text) RETURNS void LANGUAGE sql AS '';
ALTER TABLE ai._vectorizer_q_2 RENAME TO _vectorizer_q_3;
SELECT name, owner FROM ai.vectorizer;
SELECT c.relname, pg_get_userbyid(c.relowner) AS relowner
  FROM pg_class c WHERE c.relname IN ('owned_doc_embedding_store', 'owned_doc_embedding', '_vectorizer_q_2', '_vectorizer_q_failed_2')
 ORDER BY 1;
SELECT ai.vectorizer_queue_pending(2);
RESET ROLE;

-- Another ai user sees none of it, and may not drop or pause it.
SET ROLE regress_other;
SELECT count(*) AS visible FROM ai.vectorizer;
SELECT count(*) AS visible FROM ai.vectorizer_status;
SELECT ai.drop_vectorizer(2);
SELECT ai.disable_vectorizer_schedule(2);
SELECT ai.drop_vectorizer('public_owned_doc_embedding_store');
RESET ROLE;

-- A superuser may create one on any table; it belongs to the table's owner.
SELECT ai.create_vectorizer('owned_doc'::regclass, name => 'by_superuser',
    destination => ai.destination_table('owned_doc_su'),
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local());
SELECT name, owner FROM ai.vectorizer ORDER BY id;

SELECT ai.drop_vectorizer(id, drop_all => true) FROM ai.vectorizer ORDER BY id;
DROP TABLE owned_doc;
DROP EXTENSION ai_loader;
DROP SCHEMA ai;
REVOKE ALL ON SCHEMA public FROM regress_owner;
DROP ROLE regress_owner;
DROP ROLE regress_other;
