-- DROP EXTENSION, plain or CASCADE, drops every vectorizer's triggers, trigger function
-- and queues first: the source tables stay, writable, and the stores keep their rows.
CREATE EXTENSION ai_loader;
CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL);
CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO doc VALUES (1, 'one');
SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
    embedding => ai.embedding_local());
SELECT ai.create_vectorizer('note'::regclass, loading => ai.loading_column('body'),
    embedding => ai.embedding_local(), chunking => ai.chunking_none(),
    destination => ai.destination_column('body_embedding'));
INSERT INTO doc_embedding_store (id, chunk_seq, chunk, embedding)
VALUES (1, 0, 'one', array_fill(0::real, ARRAY[384]));

DROP EXTENSION ai_loader;
SELECT tgrelid::regclass AS source, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2;
SELECT count(*) AS left_in_ai FROM pg_class WHERE relnamespace = 'ai'::regnamespace;
SELECT count(*) AS functions_left FROM pg_proc WHERE pronamespace = 'ai'::regnamespace;
INSERT INTO doc VALUES (2, 'two');
UPDATE doc SET body = 'uno' WHERE id = 1;
DELETE FROM doc WHERE id = 2;
TRUNCATE note;
SELECT id, chunk FROM doc_embedding_store;
SELECT count(*) AS body_embedding_kept FROM pg_attribute WHERE attrelid = 'note'::regclass AND attname = 'body_embedding';

-- Installed again, and dropped with CASCADE: the same, and the sources stay.
CREATE EXTENSION ai_loader;
SELECT ai.create_vectorizer('doc'::regclass, name => 'again', destination => ai.destination_table('doc_again'),
    loading => ai.loading_column('body'), embedding => ai.embedding_local());
DROP EXTENSION ai_loader CASCADE;
SELECT tgrelid::regclass AS source, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2;
INSERT INTO doc VALUES (3, 'three');
SELECT id, body FROM doc ORDER BY id;

-- Only the extension's owner drops it: anyone else is refused, and nothing is dropped.
CREATE EXTENSION ai_loader;
SELECT ai.create_vectorizer('doc'::regclass, name => 'kept', destination => ai.destination_table('doc_kept'),
    loading => ai.loading_column('body'), embedding => ai.embedding_local());
CREATE ROLE regress_dropper;
SET ROLE regress_dropper;
DROP EXTENSION ai_loader;
RESET ROLE;
SELECT name FROM ai.vectorizer;
DROP ROLE regress_dropper;
SELECT ai.drop_vectorizer('kept', drop_all => true);

DROP TABLE doc, note, doc_embedding_store, doc_again_store CASCADE;
DROP EXTENSION ai_loader;
DROP SCHEMA ai;
