//! The configuration builders: `ai.loading_uri(…)` and friends return pgai-shaped
//! `jsonb`, validated by the same code `ai.create_vectorizer` and the worker use.

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

use crate::errors::OrRaise;

fn build(part: impl ConfigPart) -> JsonB {
    JsonB(part.build().or_raise())
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn loading_column(column_name: &str, retries: default!(i32, 6)) -> JsonB {
    build(Loading::column(column_name, retries))
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn loading_uri(
    column_name: &str,
    retries: default!(i32, 6),
    aws_role_arn: default!(Option<&str>, "NULL"),
) -> JsonB {
    build(Loading::uri(column_name, retries, aws_role_arn))
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
    chunk_size: default!(i32, 800),
    chunk_overlap: default!(i32, 400),
    separators: default!(
        Vec<String>,
        "ARRAY[E'\\n\\n', E'\\n', '.', '?', '!', ' ', '']"
    ),
    is_separator_regex: default!(bool, false),
) -> JsonB {
    build(Chunking::RecursiveCharacterTextSplitter {
        chunk_size,
        chunk_overlap,
        separators,
        is_separator_regex,
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn chunking_character_text_splitter(
    chunk_size: default!(i32, 800),
    chunk_overlap: default!(i32, 400),
    separator: default!(&str, "E'\\n\\n'"),
    is_separator_regex: default!(bool, false),
) -> JsonB {
    build(Chunking::CharacterTextSplitter {
        chunk_size,
        chunk_overlap,
        separator: separator.to_string(),
        is_separator_regex,
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn chunking_none() -> JsonB {
    build(Chunking::None)
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn formatting_python_template(template: default!(&str, "'$chunk'")) -> JsonB {
    build(Formatting::PythonTemplate {
        template: template.to_string(),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_openai(
    model: &str,
    dimensions: i32,
    chat_user: default!(Option<&str>, "NULL"),
    api_key_name: default!(&str, "'OPENAI_API_KEY'"),
    base_url: default!(Option<&str>, "NULL"),
) -> JsonB {
    build(Embedding::Openai {
        model: model.to_string(),
        dimensions,
        chat_user: owned(chat_user),
        api_key_name: api_key_name.to_string(),
        base_url: owned(base_url),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_ollama(
    model: &str,
    dimensions: i32,
    base_url: default!(Option<&str>, "NULL"),
    options: default!(Option<JsonB>, "NULL"),
    keep_alive: default!(Option<&str>, "NULL"),
) -> JsonB {
    build(Embedding::Ollama {
        model: model.to_string(),
        dimensions,
        base_url: owned(base_url),
        options: options.map(|o| o.0),
        keep_alive: owned(keep_alive),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_voyageai(
    model: &str,
    dimensions: i32,
    input_type: default!(Option<&str>, "'document'"),
    api_key_name: default!(Option<&str>, "'VOYAGE_API_KEY'"),
) -> JsonB {
    build(Embedding::Voyageai {
        model: model.to_string(),
        dimensions,
        input_type: owned(input_type),
        api_key_name: api_key_name.unwrap_or("VOYAGE_API_KEY").to_string(),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_litellm(
    model: &str,
    dimensions: i32,
    api_key_name: default!(Option<&str>, "NULL"),
    extra_options: default!(Option<JsonB>, "NULL"),
) -> JsonB {
    build(Embedding::Litellm {
        model: model.to_string(),
        dimensions,
        api_key_name: owned(api_key_name),
        extra_options: extra_options.map(|o| o.0),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_bedrock(
    model: &str,
    dimensions: i32,
    aws_role_arn: default!(Option<&str>, "NULL"),
    region: default!(Option<&str>, "NULL"),
) -> JsonB {
    build(Embedding::Bedrock {
        model: model.to_string(),
        dimensions,
        aws_role_arn: owned(aws_role_arn),
        region: owned(region),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn embedding_local(
    model: default!(&str, "'all-MiniLM-L6-v2'"),
    dimensions: default!(i32, 384),
) -> JsonB {
    build(Embedding::Local {
        model: model.to_string(),
        dimensions,
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn destination_table(
    destination: default!(Option<&str>, "NULL"),
    target_schema: default!(Option<&str>, "NULL"),
    target_table: default!(Option<&str>, "NULL"),
    view_schema: default!(Option<&str>, "NULL"),
    view_name: default!(Option<&str>, "NULL"),
) -> JsonB {
    build(Destination::Table {
        destination: owned(destination),
        target_schema: owned(target_schema),
        target_table: owned(target_table),
        view_schema: owned(view_schema),
        view_name: owned(view_name),
    })
}

#[pg_extern(create_or_replace, immutable, parallel_safe)]
fn destination_column(embedding_column: &str) -> JsonB {
    build(Destination::Column {
        embedding_column: embedding_column.to_string(),
    })
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
    min_rows: default!(i32, 100000),
    opclass: default!(&str, "'vector_cosine_ops'"),
    m: default!(Option<i32>, "NULL"),
    ef_construction: default!(Option<i32>, "NULL"),
    create_when_queue_empty: default!(bool, true),
) -> JsonB {
    build(Indexing::Hnsw {
        min_rows,
        opclass: opclass.to_string(),
        m,
        ef_construction,
        create_when_queue_empty,
    })
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
