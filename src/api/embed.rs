//! Embedding a query in SQL, with a vectorizer's own provider and model:
//! `ai.vectorizer_embed(…)` and, without pgvector, `ai.cosine_distance(real[], real[])`.

use std::sync::Arc;

use ai_loader_config::embedding::Embedding;
use ai_loader_config::ConfigPart;
use ai_loader_pipeline::embedding::{embed_all, provider, ProviderError};
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::errors::{fail, OrRaise};
use crate::gucs;

/// The embedding of `input_text` under an embedding configuration, as `real[]`; the
/// public `ai.vectorizer_embed` overloads cast it to the store's type.
#[pg_extern(name = "_vectorizer_embed", volatile, parallel_unsafe)]
fn vectorizer_embed(embedding_config: JsonB, input_text: &str) -> Vec<f32> {
    let config = Embedding::from_json(&embedding_config.0).or_raise();
    let provider: Arc<dyn ai_loader_pipeline::embedding::Provider> =
        provider(&config, &gucs::provider_settings(&config))
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
    let result = crate::interrupts::block_on(embed_all(provider.as_ref(), dimensions, &inputs));
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

/// Cosine distance (1 − cosine similarity) of two `real[]` embeddings, for stores
/// without pgvector: `ORDER BY ai.cosine_distance(embedding, ai.vectorizer_embed(…))`.
#[pg_extern(immutable, parallel_safe, strict)]
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
