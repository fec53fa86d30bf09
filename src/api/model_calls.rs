//! pgai's model-calling functions, `ai.openai_embed`, `ai.ollama_embed` and
//! `ai.voyageai_embed`: the configurations their arguments describe (see
//! `ai_loader_core::model_calls`), which the SQL functions that
//! `ai._define_vectorizer_embed` makes pass to `ai._vectorizer_embed`.

use ai_loader_core::model_calls;
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::errors::OrRaise;

#[allow(clippy::too_many_arguments)]
#[pg_extern(
    create_or_replace,
    name = "_openai_embed_config",
    immutable,
    parallel_safe
)]
fn openai_embed_config(
    model: Option<&str>,
    api_key: Option<&str>,
    api_key_name: Option<&str>,
    dimensions: Option<i32>,
    openai_user: Option<&str>,
    extra_headers: Option<JsonB>,
    extra_query: Option<JsonB>,
    extra_body: Option<JsonB>,
    client_config: Option<JsonB>,
) -> JsonB {
    let refused = [
        ("api_key", api_key.is_some()),
        ("extra_headers", extra_headers.is_some()),
        ("extra_query", extra_query.is_some()),
        ("extra_body", extra_body.is_some()),
        ("client_config", client_config.is_some()),
    ];
    JsonB(model_calls::openai(model, dimensions, api_key_name, openai_user, &refused).or_raise())
}

#[pg_extern(
    create_or_replace,
    name = "_ollama_embed_config",
    immutable,
    parallel_safe
)]
fn ollama_embed_config(
    model: Option<&str>,
    host: Option<&str>,
    keep_alive: Option<&str>,
    embedding_options: Option<JsonB>,
) -> JsonB {
    JsonB(model_calls::ollama(model, host, keep_alive, embedding_options.map(|o| o.0)).or_raise())
}

#[pg_extern(
    create_or_replace,
    name = "_voyageai_embed_config",
    immutable,
    parallel_safe
)]
fn voyageai_embed_config(
    model: Option<&str>,
    input_type: Option<&str>,
    api_key: Option<&str>,
    api_key_name: Option<&str>,
) -> JsonB {
    let refused = [("api_key", api_key.is_some())];
    JsonB(model_calls::voyageai(model, input_type, api_key_name, &refused).or_raise())
}
