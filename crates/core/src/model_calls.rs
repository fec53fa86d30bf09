//! pgai's model-calling functions — `ai.openai_embed`, `ai.ollama_embed` and
//! `ai.voyageai_embed` — as the embedding configurations their arguments describe,
//! which `ai.vectorizer_embed` embeds with under its rules (whose key, which endpoint).
//! Those functions do not ask for the dimensions a vectorizer needs: they come from the
//! argument where there is one, else from the models each service documents. An
//! argument ai_loader would not act on is refused, not ignored.

use serde_json::{json, Value};

use crate::embedding::Embedding;
use crate::error::{ConfigError, Result, SqlState};
use crate::part::ConfigPart;

/// The output dimensions of models whose every tag has the same (Ollama's tags pick a
/// size; a model with tags of different sizes is left out).
const OPENAI_MODELS: &[(&str, i32)] = &[
    ("text-embedding-3-small", 1536),
    ("text-embedding-3-large", 3072),
    ("text-embedding-ada-002", 1536),
];
const OLLAMA_MODELS: &[(&str, i32)] = &[
    ("nomic-embed-text", 768),
    ("mxbai-embed-large", 1024),
    ("all-minilm", 384),
    ("bge-m3", 1024),
    ("bge-large", 1024),
    ("paraphrase-multilingual", 768),
    ("embeddinggemma", 768),
];
const VOYAGEAI_MODELS: &[(&str, i32)] = &[
    ("voyage-3.5", 1024),
    ("voyage-3.5-lite", 1024),
    ("voyage-3-large", 1024),
    ("voyage-3", 1024),
    ("voyage-3-lite", 512),
    ("voyage-code-3", 1024),
    ("voyage-finance-2", 1024),
    ("voyage-law-2", 1024),
    ("voyage-multilingual-2", 1024),
    ("voyage-code-2", 1536),
    ("voyage-large-2", 1536),
    ("voyage-2", 1024),
];

/// `ai.openai_embed`'s configuration; `refused` names the arguments given that
/// ai_loader does not take.
pub fn openai(
    model: Option<&str>,
    dimensions: Option<i32>,
    api_key_name: Option<&str>,
    user: Option<&str>,
    refused: &[(&str, bool)],
) -> Result<Value> {
    refuse("ai.openai_embed", refused)?;
    let dimensions =
        dimensions.map_or_else(|| known("ai.openai_embed", model, OPENAI_MODELS), Ok)?;
    Embedding::from_arguments(
        "openai",
        json!({"model": model, "dimensions": dimensions, "api_key_name": api_key_name, "user": user}),
    )
}

/// `ai.ollama_embed`'s configuration: `host` is the server's base URL.
pub fn ollama(
    model: Option<&str>,
    host: Option<&str>,
    keep_alive: Option<&str>,
    options: Option<Value>,
) -> Result<Value> {
    let untagged = model.map(|m| m.split(':').next().unwrap_or(m));
    let dimensions = known("ai.ollama_embed", untagged, OLLAMA_MODELS)?;
    Embedding::from_arguments(
        "ollama",
        json!({"model": model, "dimensions": dimensions, "base_url": host, "keep_alive": keep_alive,
               "options": options}),
    )
}

/// `ai.voyageai_embed`'s configuration.
pub fn voyageai(
    model: Option<&str>,
    input_type: Option<&str>,
    api_key_name: Option<&str>,
    refused: &[(&str, bool)],
) -> Result<Value> {
    refuse("ai.voyageai_embed", refused)?;
    let dimensions = known("ai.voyageai_embed", model, VOYAGEAI_MODELS)?;
    Embedding::from_arguments(
        "voyageai",
        json!({"model": model, "dimensions": dimensions, "input_type": input_type,
               "api_key_name": api_key_name}),
    )
}

/// Refuses the first argument given that ai_loader does not take (0A000).
fn refuse(function: &str, refused: &[(&str, bool)]) -> Result<()> {
    let Some((name, _)) = refused.iter().find(|(_, given)| *given) else {
        return Ok(());
    };
    let hint = if *name == "api_key" {
        "keys are the server's, from its environment or ai_loader's settings: name one with api_key_name"
    } else {
        "leave it out"
    };
    Err(ConfigError::new(
        SqlState::FeatureNotSupported,
        format!("{function}: ai_loader does not take the argument {name}"),
    )
    .with_hint(hint))
}

/// The dimensions of `model` in `models`; a model not there is refused, naming them.
fn known(function: &str, model: Option<&str>, models: &[(&str, i32)]) -> Result<i32> {
    let Some(model) = model else {
        return Err(ConfigError::new(
            SqlState::NullValueNotAllowed,
            format!("{function}: model must not be NULL"),
        ));
    };
    match models.iter().find(|(name, _)| *name == model) {
        Some((_, dimensions)) => Ok(*dimensions),
        None => Err(ConfigError::invalid(format!(
            "{function}: the dimensions of model \"{model}\" are not known to ai_loader"
        ))
        .with_hint(format!(
            "models it knows: {}; for another, embed with a configuration that names its dimensions: \
             ai.vectorizer_embed(ai.embedding_…('{model}', <dimensions>), 'text')",
            models.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_of_the_model_calls() {
        assert_eq!(
            openai(Some("text-embedding-3-small"), Some(768), None, None, &[]).unwrap(),
            json!({"implementation": "openai", "config_type": "embedding", "model": "text-embedding-3-small",
                   "dimensions": 768, "api_key_name": "OPENAI_API_KEY"})
        );
        assert_eq!(
            openai(Some("text-embedding-3-large"), None, None, None, &[]).unwrap()["dimensions"],
            3072
        );
        let ollama = ollama(
            Some("nomic-embed-text:latest"),
            Some("http://ollama:11434"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            (ollama["dimensions"].clone(), ollama["base_url"].clone()),
            (json!(768), json!("http://ollama:11434"))
        );
        assert_eq!(
            voyageai(Some("voyage-3-lite"), None, None, &[]).unwrap()["dimensions"],
            512
        );
    }

    #[test]
    fn what_ai_loader_does_not_take_is_refused() {
        let e = openai(
            Some("text-embedding-3-small"),
            None,
            None,
            None,
            &[("api_key", true)],
        )
        .unwrap_err();
        assert_eq!(
            (e.state, e.message.as_str()),
            (
                SqlState::FeatureNotSupported,
                "ai.openai_embed: ai_loader does not take the argument api_key"
            )
        );
        let e = ollama(Some("llama-embed-unknown"), None, None, None).unwrap_err();
        assert!(
            e.message.contains("\"llama-embed-unknown\" are not known"),
            "{}",
            e.message
        );
        let e = voyageai(None, None, None, &[]).unwrap_err();
        assert_eq!(e.state, SqlState::NullValueNotAllowed);
    }
}
