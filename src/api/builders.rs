//! The configuration builders: `ai.loading_uri(…)` and friends return pgai-shaped
//! `jsonb`, validated by the same code `ai.create_vectorizer` and the worker use. As in
//! pgai, an argument passed as NULL is left out, which means its default (and, for an
//! argument without one, an error naming it).

use ai_loader_core::chunking::Chunking;
use ai_loader_core::destination::Destination;
use ai_loader_core::embedding::Embedding;
use ai_loader_core::formatting::Formatting;
use ai_loader_core::indexing::Indexing;
use ai_loader_core::loading::Loading;
use ai_loader_core::parsing::Parsing;
use ai_loader_core::scheduling::{Processing, Scheduling};
use ai_loader_core::ConfigPart;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

use crate::errors::OrRaise;

fn build(part: impl ConfigPart) -> JsonB {
    JsonB(part.build().or_raise())
}

/// The part `implementation` of type `P` with these arguments, NULL ones left out.
fn built<P: ConfigPart>(implementation: &str, arguments: Value) -> JsonB {
    JsonB(P::from_arguments(implementation, arguments).or_raise())
}

fn json(value: Option<JsonB>) -> Option<Value> {
    value.map(|j| j.0)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn loading_column(column_name: Option<&str>, retries: default!(Option<i32>, 6)) -> JsonB {
    built::<Loading>(
        "column",
        json!({"column_name": column_name, "retries": retries}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn loading_uri(
    column_name: Option<&str>,
    retries: default!(Option<i32>, 6),
    aws_role_arn: default!(Option<&str>, "NULL"),
) -> JsonB {
    built::<Loading>(
        "uri",
        json!({"column_name": column_name, "retries": retries, "aws_role_arn": aws_role_arn}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn parsing_auto() -> JsonB {
    build(Parsing::Auto)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn parsing_none() -> JsonB {
    build(Parsing::None)
}

/// pgai's PyMuPDF parser, by its name: documents are read by the built-in engines.
#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn parsing_pymupdf() -> JsonB {
    build(Parsing::Pymupdf)
}

/// pgai's docling parser, by its name: documents are read by the built-in engines.
#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn parsing_docling() -> JsonB {
    build(Parsing::Docling)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn chunking_recursive_character_text_splitter(
    chunk_size: default!(Option<i32>, 800),
    chunk_overlap: default!(Option<i32>, 400),
    separators: default!(
        Option<Vec<String>>,
        "ARRAY[E'\\n\\n', E'\\n', '.', '?', '!', ' ', '']"
    ),
    is_separator_regex: default!(Option<bool>, false),
) -> JsonB {
    built::<Chunking>(
        "recursive_character_text_splitter",
        json!({"chunk_size": chunk_size, "chunk_overlap": chunk_overlap, "separators": separators,
               "is_separator_regex": is_separator_regex}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn chunking_character_text_splitter(
    chunk_size: default!(Option<i32>, 800),
    chunk_overlap: default!(Option<i32>, 400),
    separator: default!(Option<&str>, "E'\\n\\n'"),
    is_separator_regex: default!(Option<bool>, false),
) -> JsonB {
    built::<Chunking>(
        "character_text_splitter",
        json!({"chunk_size": chunk_size, "chunk_overlap": chunk_overlap, "separator": separator,
               "is_separator_regex": is_separator_regex}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn chunking_none() -> JsonB {
    build(Chunking::None)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn formatting_python_template(template: default!(Option<&str>, "'$chunk'")) -> JsonB {
    built::<Formatting>("python_template", json!({"template": template}))
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_openai(
    model: Option<&str>,
    dimensions: Option<i32>,
    chat_user: default!(Option<&str>, "NULL"),
    api_key_name: default!(Option<&str>, "'OPENAI_API_KEY'"),
    base_url: default!(Option<&str>, "NULL"),
) -> JsonB {
    built::<Embedding>(
        "openai",
        json!({"model": model, "dimensions": dimensions, "user": chat_user,
               "api_key_name": api_key_name, "base_url": base_url}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_ollama(
    model: Option<&str>,
    dimensions: Option<i32>,
    base_url: default!(Option<&str>, "NULL"),
    options: default!(Option<JsonB>, "NULL"),
    keep_alive: default!(Option<&str>, "NULL"),
) -> JsonB {
    built::<Embedding>(
        "ollama",
        json!({"model": model, "dimensions": dimensions, "base_url": base_url,
               "options": json(options), "keep_alive": keep_alive}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_voyageai(
    model: Option<&str>,
    dimensions: Option<i32>,
    input_type: default!(Option<&str>, "'document'"),
    api_key_name: default!(Option<&str>, "'VOYAGE_API_KEY'"),
) -> JsonB {
    built::<Embedding>(
        "voyageai",
        json!({"model": model, "dimensions": dimensions, "input_type": input_type,
               "api_key_name": api_key_name}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_litellm(
    model: Option<&str>,
    dimensions: Option<i32>,
    api_key_name: default!(Option<&str>, "NULL"),
    extra_options: default!(Option<JsonB>, "NULL"),
) -> JsonB {
    built::<Embedding>(
        "litellm",
        json!({"model": model, "dimensions": dimensions, "api_key_name": api_key_name,
               "extra_options": json(extra_options)}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_bedrock(
    model: Option<&str>,
    dimensions: Option<i32>,
    aws_role_arn: default!(Option<&str>, "NULL"),
    region: default!(Option<&str>, "NULL"),
) -> JsonB {
    built::<Embedding>(
        "bedrock",
        json!({"model": model, "dimensions": dimensions, "aws_role_arn": aws_role_arn,
               "region": region}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_local(
    model: default!(Option<&str>, "'all-MiniLM-L6-v2'"),
    dimensions: default!(Option<i32>, 384),
) -> JsonB {
    built::<Embedding>("local", json!({"model": model, "dimensions": dimensions}))
}

/// pgai's sentence-transformers embedding, by its name: the model runs in the worker,
/// as `embedding_local` runs it, when it is one the worker has (its Hugging Face name,
/// `sentence-transformers/…`, or the short one); pgai's default model is not.
#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_sentence_transformers(
    model: default!(Option<&str>, "'nomic-ai/nomic-embed-text-v1.5'"),
    dimensions: default!(Option<i32>, 768),
) -> JsonB {
    let model = model.map(|m| m.strip_prefix("sentence-transformers/").unwrap_or(m));
    built::<Embedding>("local", json!({"model": model, "dimensions": dimensions}))
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn destination_table(
    destination: default!(Option<&str>, "NULL"),
    target_schema: default!(Option<&str>, "NULL"),
    target_table: default!(Option<&str>, "NULL"),
    view_schema: default!(Option<&str>, "NULL"),
    view_name: default!(Option<&str>, "NULL"),
) -> JsonB {
    built::<Destination>(
        "table",
        json!({"destination": destination, "target_schema": target_schema,
               "target_table": target_table, "view_schema": view_schema, "view_name": view_name}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn destination_column(embedding_column: Option<&str>) -> JsonB {
    built::<Destination>("column", json!({"embedding_column": embedding_column}))
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn indexing_none() -> JsonB {
    build(Indexing::None)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn indexing_default() -> JsonB {
    build(Indexing::Default)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn indexing_hnsw(
    min_rows: default!(Option<i32>, 100000),
    opclass: default!(Option<&str>, "'vector_cosine_ops'"),
    m: default!(Option<i32>, "NULL"),
    ef_construction: default!(Option<i32>, "NULL"),
    create_when_queue_empty: default!(Option<bool>, true),
) -> JsonB {
    built::<Indexing>(
        "hnsw",
        json!({"min_rows": min_rows, "opclass": opclass, "m": m,
               "ef_construction": ef_construction, "create_when_queue_empty": create_when_queue_empty}),
    )
}

/// pgvectorscale's StreamingDiskANN index, with pgai's parameters.
#[allow(clippy::too_many_arguments)]
#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn indexing_diskann(
    min_rows: default!(Option<i32>, 100000),
    storage_layout: default!(Option<&str>, "NULL"),
    num_neighbors: default!(Option<i32>, "NULL"),
    search_list_size: default!(Option<i32>, "NULL"),
    max_alpha: default!(Option<f64>, "NULL"),
    num_dimensions: default!(Option<i32>, "NULL"),
    num_bits_per_dimension: default!(Option<i32>, "NULL"),
    create_when_queue_empty: default!(Option<bool>, true),
) -> JsonB {
    built::<Indexing>(
        "diskann",
        json!({"min_rows": min_rows, "storage_layout": storage_layout, "num_neighbors": num_neighbors,
               "search_list_size": search_list_size, "max_alpha": max_alpha,
               "num_dimensions": num_dimensions, "num_bits_per_dimension": num_bits_per_dimension,
               "create_when_queue_empty": create_when_queue_empty}),
    )
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn scheduling_default() -> JsonB {
    build(Scheduling::Default)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn scheduling_none() -> JsonB {
    build(Scheduling::None)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn processing_default(
    batch_size: default!(Option<i32>, "NULL"),
    concurrency: default!(Option<i32>, "NULL"),
) -> JsonB {
    build(Processing::Default {
        batch_size,
        concurrency,
    })
}
