-- Every configuration builder: pgai's shape and defaults, and each invalid argument
-- with its SQLSTATE, message and hint.
CREATE EXTENSION ai_loader;

-- err(sql): runs sql and shows the error it raises, as "SQLSTATE: message" and hint.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    _hint text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS _hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(E'\nHINT:  ' || nullif(_hint, ''), '');
END
$$;

-- Defaults.
SELECT jsonb_pretty(ai.loading_column('body'));
SELECT jsonb_pretty(ai.loading_uri('uri'));
SELECT jsonb_pretty(ai.loading_uri(column_name => 'uri', retries => 2,
                                   aws_role_arn => 'arn:aws:iam::123456789012:role/S3AccessRole'));
SELECT ai.parsing_auto(), ai.parsing_none();
-- pgai's parser names, kept as written.
SELECT ai.parsing_pymupdf(), ai.parsing_docling();
SELECT jsonb_pretty(ai.chunking_recursive_character_text_splitter());
SELECT jsonb_pretty(ai.chunking_character_text_splitter());
SELECT ai.chunking_none();
SELECT ai.formatting_python_template(), ai.formatting_python_template('$title: $chunk');
SELECT jsonb_pretty(ai.embedding_openai('text-embedding-3-small', 768));
SELECT jsonb_pretty(ai.embedding_openai('m', 8, chat_user => 'bob', api_key_name => 'MY_API_KEY',
                                        base_url => 'http://127.0.0.1:8000/v1'));
SELECT jsonb_pretty(ai.embedding_ollama('nomic-embed-text', 768));
SELECT jsonb_pretty(ai.embedding_voyageai('voyage-3-lite', 512));
SELECT jsonb_pretty(ai.embedding_voyageai('voyage-3', 1024, input_type => NULL, api_key_name => NULL));
SELECT jsonb_pretty(ai.embedding_litellm('cohere/embed-english-v3.0', 1024, api_key_name => 'COHERE_API_KEY',
                                         extra_options => '{"input_type": "clustering"}'));
SELECT jsonb_pretty(ai.embedding_litellm('azure/text-embedding-3-small', 1536,
                                         extra_options => '{"api_base": "https://res.openai.azure.com", "api_version": "2024-10-21"}'));
SELECT jsonb_pretty(ai.embedding_bedrock('amazon.titan-embed-text-v2:0', 512));
SELECT jsonb_pretty(ai.embedding_bedrock('cohere.embed-v4:0', 1536, 'arn:aws:iam::123456789012:role/Bedrock', 'eu-west-1'));
SELECT jsonb_pretty(ai.embedding_ollama('nomic-embed-text', 768, base_url => 'http://ollama:11434',
                                        options => '{"num_ctx": 1024}', keep_alive => '5m'));
SELECT ai.embedding_local();
SELECT ai.destination_table();
SELECT ai.destination_table('docs_emb');
SELECT ai.destination_table(target_schema => 's', target_table => 't', view_schema => 'vs', view_name => 'v');
SELECT ai.destination_column('embedding');
SELECT ai.indexing_none(), ai.indexing_default();
SELECT jsonb_pretty(ai.indexing_hnsw());
SELECT ai.indexing_hnsw(min_rows => 10, opclass => 'vector_l2_ops', m => 16, ef_construction => 64);
SELECT ai.scheduling_default(), ai.scheduling_none();
SELECT ai.processing_default(), ai.processing_default(batch_size => 100, concurrency => 8);
SELECT ai.grant_to(), ai.grant_to('alice', 'bob', 'alice');

-- Invalid arguments.
SELECT pg_temp.err($$ SELECT ai.loading_uri('uri', aws_role_arn => 'arn:aws:iam::account:role/r') $$);
SELECT pg_temp.err($$ SELECT ai.loading_uri('uri', aws_role_arn => 'arn:aws:iam::123456789012:user/bob') $$);
SELECT pg_temp.err($$ SELECT ai.loading_uri('uri', aws_role_arn => 'S3AccessRole') $$);
SELECT pg_temp.err($$ SELECT ai.loading_column('body', retries => -1) $$);
SELECT pg_temp.err($$ SELECT ai.loading_uri('') $$);
SELECT pg_temp.err($$ SELECT ai.chunking_recursive_character_text_splitter(chunk_size => 0) $$);
SELECT pg_temp.err($$ SELECT ai.chunking_recursive_character_text_splitter(100, 200) $$);
SELECT pg_temp.err($$ SELECT ai.chunking_character_text_splitter(100, -1) $$);
SELECT pg_temp.err($$ SELECT ai.chunking_recursive_character_text_splitter(separators => '{}') $$);
SELECT pg_temp.err($$ SELECT ai.chunking_character_text_splitter(separator => '[', is_separator_regex => true) $$);
SELECT pg_temp.err($$ SELECT ai.formatting_python_template('$title') $$);
SELECT pg_temp.err($$ SELECT ai.formatting_python_template('$chunk costs $5') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_openai('text-embedding-3-small', 0) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_openai('m', 16001) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_openai('', 8) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_openai('m', 8, api_key_name => 'my-key') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_openai('m', 8, api_key_name => 'AWS_SECRET_ACCESS_KEY') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_openai('m', 8, base_url => 'api.openai.com') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_ollama('m', 8, options => '[1, 2]') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_voyageai('voyage-3', 1024, input_type => 'passage') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_voyageai('voyage-3', 1024, api_key_name => 'PGPASSWORD') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('huggingface/BAAI/bge-small-en', 384) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('my-model', 384) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('openai/m', 8, extra_options => '{"timeout": 5}') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('openai/m', 8, extra_options => '{"api_key": "sk-1"}') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('openai/m', 8, extra_options => '[1]') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('openai/m', 8, extra_options => '{"api_base": "ftp://x"}') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('cohere/embed-v4.0', 8, extra_options => '{"input_type": "query"}') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('ollama/m', 8, api_key_name => 'OLLAMA_API_KEY') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('bedrock/amazon.titan-embed-text-v1', 1536, api_key_name => 'MY_API_KEY') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('bedrock/amazon.titan-embed-text-v1', 1536,
                                                  extra_options => '{"aws_secret_access_key": "x"}') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_litellm('bedrock/amazon.titan-embed-text-v1', 1536,
                                                  extra_options => '{"aws_session_name": "x"}') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_bedrock('amazon.titan-embed-text-v2:0', 768) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_bedrock('meta.llama3-8b-instruct-v1:0', 1024) $$);
SELECT pg_temp.err($$ SELECT ai.embedding_bedrock('amazon.titan-embed-text-v2:0', 1024, 'role/Bedrock') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_bedrock('amazon.titan-embed-text-v2:0', 1024, region => 'EU West') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_local('bert-large') $$);
SELECT pg_temp.err($$ SELECT ai.embedding_local(dimensions => 768) $$);
SELECT pg_temp.err($$ SELECT ai.destination_table('d', target_table => 't') $$);
SELECT pg_temp.err($$ SELECT ai.destination_column('') $$);
SELECT pg_temp.err($$ SELECT ai.indexing_hnsw(opclass => 'vector_hamming_ops') $$);
SELECT pg_temp.err($$ SELECT ai.indexing_hnsw(m => 1) $$);
SELECT pg_temp.err($$ SELECT ai.indexing_hnsw(m => 40, ef_construction => 64) $$);
SELECT pg_temp.err($$ SELECT ai.processing_default(batch_size => 0) $$);
SELECT pg_temp.err($$ SELECT ai.processing_default(concurrency => 51) $$);

DROP EXTENSION ai_loader;
