//! Embedding a query in SQL, with a vectorizer's own provider and model:
//! `ai.vectorizer_embed(…)` and, without pgvector, `ai.cosine_distance(real[], real[])`.
//!
//! A query embeds its text once, whatever its plan: the functions are STABLE (so an
//! index scan may use their result, computed once when the scan starts), the public
//! SQL overloads inline into the query, and within one statement a call with the same
//! arguments returns the embedding computed by the first (see `memo`) — a sequential
//! scan that evaluates the expression for every row asks the provider once.

use std::rc::Rc;
use std::sync::Arc;

use ai_loader_core::catalog::Recorded;
use ai_loader_core::embedding::{Embedding, Purpose};
use ai_loader_core::ConfigPart;
use ai_loader_core::{ConfigError, SqlState};
use ai_loader_pipeline::embedding::{embed_all, provider, sends_server_key, ProviderError};
use ai_loader_pipeline::loading::{Settings, UriLoader};
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::api::memo::{memoized, By, Embedded, Flat};
use crate::api::vectorizer::{id_of_name, no_such_vectorizer, require_s3_reader};
use crate::catalog::{self, COLUMNS};
use crate::errors::{fail, raise, OrRaise};
use crate::gucs;
use crate::roles;

/// The embedding of `input_text` under an embedding configuration, as `real[]`; the
/// public `ai.vectorizer_embed` overloads cast it to the store's type. A configuration
/// that would send the server's API key is a superuser's to pass: anyone else embeds
/// through a vectorizer (`_vectorizer_embed_for`), whose configuration its owner set up.
#[pg_extern(create_or_replace, name = "_vectorizer_embed", stable, parallel_unsafe)]
fn vectorizer_embed(embedding_config: JsonB, input_text: &str) -> Flat {
    let config = embedding_config.0.to_string();
    memoized(By::Config(&config), input_text, || {
        embed_with_config(embedding_config, input_text)
    })
    .as_array()
}

fn embed_with_config(embedding_config: JsonB, input_text: &str) -> Vec<f32> {
    let config = Embedding::from_json(&embedding_config.0).or_raise();
    may_embed_with_config(&config);
    embed(&config, input_text)
}

/// Raises 42501 unless the caller may embed with `config` itself (not through a
/// vectorizer): a configuration that sends the server's API key is a superuser's;
/// Bedrock acts as the server's AWS identity, for members of ai_loader_s3_reader.
pub fn may_embed_with_config(config: &Embedding) {
    if config.uses_aws() {
        require_s3_reader("embed with Amazon Bedrock, as the database server's AWS identity");
    }
    if !roles::is_superuser() && sends_server_key(config, &gucs::provider_settings(config, None)) {
        raise(
            ConfigError::new(
                SqlState::InsufficientPrivilege,
                "permission denied to embed with the server's API key through an embedding configuration",
            )
            .with_hint("embed through a vectorizer instead: ai.vectorizer_embed('<vectorizer name>', 'query')"),
        );
    }
}

/// The embedding of `input_text` with vectorizer `vectorizer_id`'s model, for a caller
/// who may read its embeddings (SELECT on its store, or on its source for an embedding
/// column) or manage it.
#[pg_extern(
    create_or_replace,
    name = "_vectorizer_embed_for",
    stable,
    parallel_unsafe
)]
fn vectorizer_embed_for(vectorizer_id: i32, input_text: &str) -> Flat {
    embedded_for(vectorizer_id, input_text).as_array()
}

/// The same as a `vector`, with no cast for each row of a scan: declared by
/// `ai._define_vectorizer_embed` where pgvector is installed.
#[pg_extern(sql = false)]
fn vectorizer_embed_for_vector(vectorizer_id: i32, input_text: &str) -> Flat {
    embedded_for(vectorizer_id, input_text).as_vector()
}

/// The embedding of a query with vectorizer `vectorizer_id`'s model, as `ai.search`
/// passes it on: made once per statement, like the functions'.
pub fn query_embedding(vectorizer_id: i32, input_text: &str) -> Vec<f32> {
    embedded_for(vectorizer_id, input_text).floats.clone()
}

fn embedded_for(vectorizer_id: i32, input_text: &str) -> Rc<Embedded> {
    memoized(By::Id(vectorizer_id), input_text, || {
        embed_for(vectorizer_id, input_text)
    })
}

fn embed_for(vectorizer_id: i32, input_text: &str) -> Vec<f32> {
    let vectorizer = readable(vectorizer_id);
    let config = Embedding::from_json(&vectorizer.config["embedding"]).or_raise();
    embed(&config, input_text)
}

/// Vectorizer `vectorizer_id`'s catalog row, read by the catalog owner for a caller who
/// may read its embeddings (SELECT on its store, or on its source for an embedding
/// column) or manage it; 42704 otherwise, the same as for a vectorizer that does not
/// exist (nobody learns of a vectorizer it may not use).
pub fn readable(vectorizer_id: i32) -> Recorded {
    visible(vectorizer_id).unwrap_or_else(|| no_such_vectorizer(vectorizer_id))
}

/// The id of the vectorizer named `name`, if the caller may read or manage it; 42704
/// otherwise, the same as for a name no vectorizer has.
pub fn readable_id(name: &str) -> i32 {
    Spi::connect(|client| id_of_name(client, name))
        .filter(|&id| visible(id).is_some())
        .unwrap_or_else(|| no_such_vectorizer(format!("\"{name}\"")))
}

/// The catalog row, if the vectorizer exists and the caller may read or manage it.
fn visible(vectorizer_id: i32) -> Option<Recorded> {
    Spi::connect(|client| {
        let row = roles::as_catalog_owner(|| {
            client
                .select(
                    &format!(
                        "SELECT {COLUMNS}, pg_catalog.to_regclass(e.embedding_table)::pg_catalog.oid AS embeddings,
                                r.oid AS owner_oid
                           FROM ai.vectorizer v
                          CROSS JOIN LATERAL ai._embeddings(v.source_schema, v.source_table,
                                                            v.config OPERATOR(pg_catalog.->) 'destination') e
                           LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) v.owner
                          WHERE v.id OPERATOR(pg_catalog.=) $1"
                    ),
                    None,
                    &[vectorizer_id.into()],
                )
                .or_raise()
                .next()
                .map(|r| {
                    (
                        catalog::decoded(&r, vectorizer_id),
                        r.get_by_name::<pg_sys::Oid, _>("embeddings").or_raise(),
                        r.get_by_name::<pg_sys::Oid, _>("owner_oid").or_raise(),
                    )
                })
        });
        let (vectorizer, embeddings, owner) = row?;
        let readable = embeddings.is_some_and(|table| {
            Spi::get_one_with_args::<bool>(
                "SELECT pg_catalog.has_table_privilege($1, 'SELECT')",
                &[table.into()],
            )
            .or_raise()
            .unwrap_or(false)
        });
        (readable || roles::may_manage(owner)).then_some(vectorizer)
    })
}

/// The same, by the vectorizer's name.
#[pg_extern(
    create_or_replace,
    name = "_vectorizer_embed_for",
    stable,
    parallel_unsafe
)]
fn vectorizer_embed_for_name(name: &str, input_text: &str) -> Flat {
    embedded_for_name(name, input_text).as_array()
}

/// The same as a `vector` (see `vectorizer_embed_for_vector`).
#[pg_extern(sql = false)]
fn vectorizer_embed_for_name_vector(name: &str, input_text: &str) -> Flat {
    embedded_for_name(name, input_text).as_vector()
}

fn embedded_for_name(name: &str, input_text: &str) -> Rc<Embedded> {
    memoized(By::Name(name), input_text, || {
        embedded_for(readable_id(name), input_text).floats.clone()
    })
}

/// Embeds `input_text` in this backend with `config`'s provider, waiting in slices so
/// that a cancel or `statement_timeout` ends it.
fn embed(config: &Embedding, input_text: &str) -> Vec<f32> {
    let aws = config.uses_aws().then(backend_aws);
    let provider: Arc<dyn ai_loader_pipeline::embedding::Provider> = provider(
        config,
        Purpose::Query,
        &gucs::provider_settings(config, aws),
    )
    .unwrap_or_else(|e| match e {
        ProviderError::Refused(m) => fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("the vectorizer's embedding endpoint is refused: {m}"),
        ),
        ProviderError::Unusable(m) => fail(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("cannot embed with this vectorizer's model: {m}"),
        ),
    })
    .into();
    let dimensions = config.dimensions() as usize;
    let inputs = vec![input_text.to_string()];
    let slots = tokio::sync::Semaphore::new(1);
    let result =
        crate::interrupts::block_on(embed_all(provider.as_ref(), dimensions, &inputs, &slots));
    match result {
        Ok(mut vectors) => match vectors.pop() {
            Some(Ok(v)) => v,
            Some(Err(message)) => fail(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("the embedding provider refused the input: {message}"),
            ),
            None => error!("the embedding provider returned nothing"),
        },
        Err(e) => fail(
            PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            format!("the embedding provider failed: {}", e.message),
        ),
    }
}

thread_local! {
    /// This backend's AWS identities, for Bedrock, with the settings they were made with.
    static AWS: std::cell::RefCell<Option<(Settings, Arc<UriLoader>)>> = const { std::cell::RefCell::new(None) };
}

/// This backend's AWS identities (the server's own, and roles assumed once and kept
/// until shortly before their credentials expire), made again when the settings change.
pub fn backend_aws() -> Arc<UriLoader> {
    let settings = gucs::loading_settings();
    AWS.with_borrow_mut(|cached| {
        if let Some((made_with, aws)) = cached.as_ref() {
            if *made_with == settings {
                return Arc::clone(aws);
            }
        }
        let aws = Arc::new(UriLoader::new(settings.clone()).unwrap_or_else(|e| {
            fail(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("cannot reach AWS: {e}"),
            )
        }));
        *cached = Some((settings, Arc::clone(&aws)));
        aws
    })
}

/// Cosine distance (1 − cosine similarity) of two `real[]` embeddings, for stores
/// without pgvector: `ORDER BY ai.cosine_distance(embedding, ai.vectorizer_embed(…))`.
#[pg_extern(create_or_replace, immutable, parallel_safe, strict)]
fn cosine_distance(a: Vec<f32>, b: Vec<f32>) -> f64 {
    if a.len() != b.len() {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!(
                "embeddings of different dimensions: {} and {}",
                a.len(),
                b.len()
            )
        );
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (*x as f64, *y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return f64::NAN;
    }
    1.0 - dot / (na.sqrt() * nb.sqrt())
}
