-- The source triggers keep the queue and store in step: insert queues, an update queues
-- only when a column feeding the embedding changed (for loading_uri: any column, see
-- the end), a key change moves the row, delete drops its embeddings, truncate empties
-- store and queues. On a table with a composite key and quoted, mixed-case names.
CREATE EXTENSION ai_loader;

CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Doc ""Items""" (
    "Tenant" text NOT NULL,
    "Doc Id" int NOT NULL,
    "Title" text,
    "URI" varchar(200) NOT NULL,
    hits int NOT NULL DEFAULT 0,
    PRIMARY KEY ("Tenant", "Doc Id")
);
INSERT INTO "My Schema"."Doc ""Items""" VALUES ('acme', 1, 'One', 's3://b/1.md'), ('acme', 2, 'Two', 's3://b/2.md');

SELECT ai.create_vectorizer('"My Schema"."Doc ""Items"""'::regclass,
    loading => ai.loading_column('URI'), embedding => ai.embedding_local(),
    formatting => ai.formatting_python_template('${Title}: $chunk'));
SELECT name, source_schema, source_table, source_pk, config -> 'destination' AS destination
  FROM ai.vectorizer;
\d "My Schema"."Doc ""Items""_embedding_store"

CREATE FUNCTION pg_temp.queue() RETURNS TABLE ("Tenant" text, "Doc Id" int, n bigint) LANGUAGE sql AS $$
    SELECT "Tenant", "Doc Id", count(*) FROM ai._vectorizer_q_1 GROUP BY 1, 2 ORDER BY 1, 2
$$;

-- Existing rows, then an insert.
SELECT * FROM pg_temp.queue();
INSERT INTO "My Schema"."Doc ""Items""" VALUES ('acme', 3, 'Three', 's3://b/3.md');
SELECT * FROM pg_temp.queue();

-- Pretend the worker embedded every row, and emptied the queue.
INSERT INTO "My Schema"."Doc ""Items""_embedding_store" ("Tenant", "Doc Id", chunk_seq, chunk, embedding)
SELECT "Tenant", "Doc Id", s, "Title" || ' ' || s, array_fill(0.5::real, ARRAY[384])
  FROM "My Schema"."Doc ""Items""", generate_series(0, 1) s;
TRUNCATE ai._vectorizer_q_1;

-- An update of a column that feeds nothing: not queued.
UPDATE "My Schema"."Doc ""Items""" SET hits = hits + 1;
SELECT * FROM pg_temp.queue();
-- An update that sets a relevant column to the same value: not queued.
UPDATE "My Schema"."Doc ""Items""" SET "Title" = "Title" WHERE "Doc Id" = 1;
SELECT * FROM pg_temp.queue();
-- The loading column, and a column the template names: queued.
UPDATE "My Schema"."Doc ""Items""" SET "URI" = 's3://b/1-v2.md' WHERE "Doc Id" = 1;
UPDATE "My Schema"."Doc ""Items""" SET "Title" = 'Deux' WHERE "Doc Id" = 2;
SELECT * FROM pg_temp.queue();
TRUNCATE ai._vectorizer_q_1;

-- A key change drops the old key's embeddings and queues the new key.
UPDATE "My Schema"."Doc ""Items""" SET "Doc Id" = 30 WHERE "Doc Id" = 3;
SELECT * FROM pg_temp.queue();
SELECT "Tenant", "Doc Id", count(*) FROM "My Schema"."Doc ""Items""_embedding_store" GROUP BY 1, 2 ORDER BY 1, 2;

-- The view joins store and source.
SELECT "Doc Id", chunk_seq, chunk, "Title", "URI", array_length(embedding, 1) AS dims
  FROM "My Schema"."Doc ""Items""_embedding" ORDER BY 1, 2;

-- Delete drops the row's embeddings.
DELETE FROM "My Schema"."Doc ""Items""" WHERE "Doc Id" = 1;
SELECT "Tenant", "Doc Id", count(*) FROM "My Schema"."Doc ""Items""_embedding_store" GROUP BY 1, 2 ORDER BY 1, 2;

-- Truncate empties store, queue and failed queue.
INSERT INTO ai._vectorizer_q_failed_1 ("Tenant", "Doc Id", failure_step) VALUES ('acme', 2, 'loading');
TRUNCATE "My Schema"."Doc ""Items""";
SELECT (SELECT count(*) FROM "My Schema"."Doc ""Items""_embedding_store") AS store,
       (SELECT count(*) FROM ai._vectorizer_q_1) AS queue,
       (SELECT count(*) FROM ai._vectorizer_q_failed_1) AS failed;

-- A user who may insert into the source, but not touch ai's tables, still queues rows:
-- the trigger runs with its owner's rights.
CREATE ROLE regress_writer;
GRANT USAGE ON SCHEMA "My Schema" TO regress_writer;
GRANT INSERT, UPDATE, DELETE, SELECT ON "My Schema"."Doc ""Items""" TO regress_writer;
SET ROLE regress_writer;
INSERT INTO "My Schema"."Doc ""Items""" VALUES ('globex', 1, 'G', 's3://b/g.md');
DELETE FROM "My Schema"."Doc ""Items""" WHERE "Tenant" = 'globex';
RESET ROLE;
SELECT * FROM pg_temp.queue();
REVOKE ALL ON SCHEMA "My Schema" FROM regress_writer;
REVOKE ALL ON "My Schema"."Doc ""Items""" FROM regress_writer;
DROP ROLE regress_writer;

SELECT ai.drop_vectorizer(1, drop_all => true);

-- loading_uri: the object behind a URI can change while the row does not, so touching
-- any column of the row queues it again.
SELECT ai.create_vectorizer('"My Schema"."Doc ""Items"""'::regclass,
    loading => ai.loading_uri('URI'), embedding => ai.embedding_local());
INSERT INTO "My Schema"."Doc ""Items""" VALUES ('acme', 7, 'Seven', 's3://b/7.md');
TRUNCATE ai._vectorizer_q_2;
UPDATE "My Schema"."Doc ""Items""" SET hits = hits + 1;
SELECT "Tenant", "Doc Id" FROM ai._vectorizer_q_2;
UPDATE "My Schema"."Doc ""Items""" SET hits = hits;
SELECT count(*) AS still_one FROM ai._vectorizer_q_2;
SELECT ai.drop_vectorizer(2, drop_all => true);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = '"My Schema"."Doc ""Items"""'::regclass;
DROP SCHEMA "My Schema" CASCADE;
DROP EXTENSION ai_loader;
