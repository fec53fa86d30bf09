-- With pgvector in the database the store holds vector(N) and HNSW indexing is
-- accepted (and is the default); the other suites run without it and store real[].
CREATE EXTENSION vector;
CREATE EXTENSION ai_loader;

CREATE TABLE document (id int PRIMARY KEY, title text, uri text NOT NULL);
INSERT INTO document VALUES (1, 'Guide', 's3://docs/guide.pdf');

SELECT ai.create_vectorizer('document'::regclass,
    loading => ai.loading_uri('uri'), embedding => ai.embedding_local(),
    indexing => ai.indexing_hnsw(min_rows => 1000, opclass => 'vector_ip_ops', m => 16, ef_construction => 64));
SELECT config -> 'indexing' AS indexing FROM ai.vectorizer WHERE id = 1;
SELECT format_type(atttypid, atttypmod) AS embedding_type
  FROM pg_attribute WHERE attrelid = 'document_embedding_store'::regclass AND attname = 'embedding';

-- indexing_default resolves to HNSW with cosine distance here.
SELECT ai.create_vectorizer('document'::regclass, name => 'defaults',
    destination => ai.destination_table('document_defaults'),
    loading => ai.loading_uri('uri'), embedding => ai.embedding_openai('text-embedding-3-small', 1536));
SELECT config -> 'indexing' AS indexing FROM ai.vectorizer WHERE name = 'defaults';
SELECT format_type(atttypid, atttypmod) AS embedding_type
  FROM pg_attribute WHERE attrelid = 'document_defaults_store'::regclass AND attname = 'embedding';

-- The store takes vectors, and nearest-neighbour queries work through the view.
INSERT INTO document_embedding_store (id, chunk_seq, chunk, embedding)
VALUES (1, 0, 'hello', array_fill(0.1::real, ARRAY[384])::vector);
SELECT id, chunk, title, round((embedding <=> array_fill(0.1::real, ARRAY[384])::vector)::numeric, 6) AS distance
  FROM document_embedding ORDER BY embedding <=> array_fill(0.1::real, ARRAY[384])::vector LIMIT 1;

-- HNSW's dimension limit is checked up front.
SELECT ai.create_vectorizer('document'::regclass, name => 'too_wide',
    destination => ai.destination_table('document_wide'),
    loading => ai.loading_uri('uri'), embedding => ai.embedding_openai('text-embedding-3-large', 3072),
    indexing => ai.indexing_hnsw());

SELECT ai.drop_vectorizer(id, drop_all => true) FROM ai.vectorizer ORDER BY id;
DROP TABLE document;
DROP EXTENSION ai_loader;
DROP EXTENSION vector;
