//! `ai.embedding_openai`, `ai.embedding_ollama`, `ai.embedding_voyageai`,
//! `ai.embedding_litellm`, `ai.embedding_bedrock` and `ai.embedding_local`: the model
//! that turns chunks into vectors. Each comes down to a [`Service`]: the API it speaks,
//! where, with which key or AWS identity.

mod litellm;
mod service;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use service::{Api, Bedrock, BedrockFamily, Purpose, Service};

use crate::error::{ConfigError, Result};
use crate::part::{in_range, ConfigPart};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Embedding {
    /// Any server speaking OpenAI's `/v1/embeddings`.
    Openai {
        model: String,
        dimensions: i32,
        #[serde(rename = "user", default, skip_serializing_if = "Option::is_none")]
        chat_user: Option<String>,
        #[serde(default = "default_api_key_name")]
        api_key_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
    },
    /// An Ollama server's `/api/embed`.
    Ollama {
        model: String,
        dimensions: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep_alive: Option<String>,
    },
    /// VoyageAI's `/v1/embeddings`.
    Voyageai {
        model: String,
        dimensions: i32,
        /// `document` or `query`; none: VoyageAI embeds the text as it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_type: Option<String>,
        #[serde(default = "default_voyage_key_name")]
        api_key_name: String,
    },
    /// A model named as LiteLLM names it, `<provider>/<model>`, served natively.
    Litellm {
        model: String,
        dimensions: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key_name: Option<String>,
        /// LiteLLM's options by their LiteLLM names (`api_base`, `aws_region_name`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extra_options: Option<Value>,
    },
    /// Amazon Bedrock's InvokeModel, with the server's AWS credentials or a role.
    Bedrock {
        model: String,
        dimensions: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aws_role_arn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// A sentence-transformers model run inside the worker.
    Local {
        #[serde(default = "default_local_model")]
        model: String,
        #[serde(default = "default_local_dimensions")]
        dimensions: i32,
    },
}

pub const DEFAULT_API_KEY_NAME: &str = "OPENAI_API_KEY";

/// The models `embedding_local` runs, with their output dimensions.
pub const LOCAL_MODELS: &[(&str, i32)] = &[("all-MiniLM-L6-v2", 384)];

fn default_api_key_name() -> String {
    DEFAULT_API_KEY_NAME.into()
}
fn default_voyage_key_name() -> String {
    "VOYAGE_API_KEY".into()
}
fn default_local_model() -> String {
    LOCAL_MODELS[0].0.into()
}
fn default_local_dimensions() -> i32 {
    LOCAL_MODELS[0].1
}

/// pgvector's limit on a `vector`'s dimensions.
pub const MAX_DIMENSIONS: i32 = 16000;

impl Embedding {
    pub fn dimensions(&self) -> i32 {
        match self {
            Embedding::Openai { dimensions, .. }
            | Embedding::Ollama { dimensions, .. }
            | Embedding::Voyageai { dimensions, .. }
            | Embedding::Litellm { dimensions, .. }
            | Embedding::Bedrock { dimensions, .. }
            | Embedding::Local { dimensions, .. } => *dimensions,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            Embedding::Openai { model, .. }
            | Embedding::Ollama { model, .. }
            | Embedding::Voyageai { model, .. }
            | Embedding::Litellm { model, .. }
            | Embedding::Bedrock { model, .. }
            | Embedding::Local { model, .. } => model,
        }
    }
}

impl ConfigPart for Embedding {
    const CONFIG_TYPE: &'static str = "embedding";
    const BUILDERS: &'static str =
        "ai.embedding_openai(…), ai.embedding_ollama(…), ai.embedding_voyageai(…), ai.embedding_litellm(…), ai.embedding_bedrock(…) or ai.embedding_local(…)";

    fn validate(&self) -> Result<()> {
        if self.model().trim().is_empty() {
            return Err(ConfigError::invalid("embedding model must not be empty"));
        }
        in_range(
            "embedding dimensions",
            self.dimensions(),
            1..=MAX_DIMENSIONS,
        )?;
        if let Embedding::Local { model, dimensions } = self {
            return validate_local(model, *dimensions);
        }
        let service = self.service()?;
        // Bedrock's secret signs requests and is never sent (see litellm.rs).
        if let (Some(name), false) = (
            &service.api_key_name,
            matches!(service.api, Api::Bedrock(_)),
        ) {
            validate_api_key_name(name)?;
        }
        validate_base_url(service.base_url.as_deref())
    }
}

fn validate_local(model: &str, dimensions: i32) -> Result<()> {
    match LOCAL_MODELS.iter().find(|(name, _)| *name == model) {
        None => Err(
            ConfigError::invalid(format!("unknown local embedding model \"{model}\""))
                .with_hint(format!("local models: {}", local_model_list())),
        ),
        Some((_, d)) if *d != dimensions => Err(ConfigError::invalid(format!(
            "local model \"{model}\" has {d} dimensions, not {dimensions}"
        ))
        .with_hint(format!("use dimensions => {d}"))),
        Some(_) => Ok(()),
    }
}

fn local_model_list() -> String {
    LOCAL_MODELS
        .iter()
        .map(|(m, d)| format!("{m} ({d} dimensions)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key's name is an environment variable name and, lower-cased, a setting's name
/// (`ai_loader.openai_api_key`), so it is limited to letters, digits and underscores;
/// and it must say it names an API key, so that no other variable of the server's
/// environment (`AWS_SECRET_ACCESS_KEY`, `PGPASSWORD`) can be sent as one.
fn validate_api_key_name(name: &str) -> Result<()> {
    let word = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if word && name.to_ascii_uppercase().ends_with("API_KEY") {
        Ok(())
    } else {
        Err(
            ConfigError::invalid(format!("invalid api_key_name \"{name}\""))
                .with_hint("name the environment variable of an API key, such as OPENAI_API_KEY: letters, digits and underscores, ending in API_KEY (case does not matter)"),
        )
    }
}

pub(crate) fn validate_base_url(url: Option<&str>) -> Result<()> {
    match url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            Err(ConfigError::invalid(format!("invalid base_url \"{u}\""))
                .with_hint("base_url is an http:// or https:// URL, e.g. http://localhost:11434"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_shape() {
        let e = Embedding::from_json(
            &json!({"implementation": "openai", "config_type": "embedding",
                                            "model": "text-embedding-3-small", "dimensions": 768}),
        )
        .unwrap();
        assert_eq!(
            e.build().unwrap(),
            json!({"implementation": "openai", "config_type": "embedding",
                   "model": "text-embedding-3-small", "dimensions": 768,
                   "api_key_name": "OPENAI_API_KEY"})
        );
    }

    #[test]
    fn local_defaults_and_checks() {
        let e =
            Embedding::from_json(&json!({"implementation": "local", "config_type": "embedding"}))
                .unwrap();
        assert_eq!(e.dimensions(), 384);
        let bad = Embedding::Local {
            model: "all-MiniLM-L6-v2".into(),
            dimensions: 768,
        };
        assert_eq!(
            bad.validate().unwrap_err().message,
            "local model \"all-MiniLM-L6-v2\" has 384 dimensions, not 768"
        );
        let bad = Embedding::Local {
            model: "gpt".into(),
            dimensions: 384,
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .hint
            .unwrap()
            .contains("all-MiniLM-L6-v2"));
    }

    #[test]
    fn dimensions_and_names() {
        let mk = |d: i32, key: &str, url: Option<&str>| Embedding::Openai {
            model: "m".into(),
            dimensions: d,
            chat_user: None,
            api_key_name: key.into(),
            base_url: url.map(Into::into),
        };
        assert!(mk(0, "K", None).validate().is_err());
        assert!(mk(16001, "K", None).validate().is_err());
        assert!(mk(1536, "OPENAI_API_KEY", Some("http://127.0.0.1:9/v1"))
            .validate()
            .is_ok());
        assert!(mk(8, "BAD-NAME", None).validate().is_err());
        assert!(mk(8, "MY_API_KEY", Some("ftp://x")).validate().is_err());
        // Only a variable that says it holds an API key can be sent as one.
        assert!(mk(8, "voyage_api_key", None).validate().is_ok());
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "PGPASSWORD",
            "MY_KEY",
            "OPENAI_API_KEY_FILE",
        ] {
            assert!(mk(8, name, None).validate().is_err(), "{name}");
        }
    }
}
