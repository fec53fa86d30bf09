//! What an embedding configuration asks of which service. The builders, and each model
//! prefix of `ai.embedding_litellm`, come down to a [`Service`]: the API spoken, the
//! model, where (none: the provider's default endpoint) and with which server key.

use serde_json::Value;

use super::{litellm, Embedding};
use crate::error::{ConfigError, Result, SqlState};
use crate::loading::validate_role_arn;

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub api: Api,
    pub model: String,
    pub dimensions: i32,
    /// The name of the server key sent with each request, for APIs that take one.
    pub api_key_name: Option<String>,
    /// Where requests go; none: the API's default endpoint.
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Api {
    /// OpenAI's `/embeddings`, or any server speaking it.
    OpenAi {
        user: Option<String>,
    },
    /// Azure OpenAI: the model is the deployment's name.
    Azure {
        api_version: Option<String>,
        user: Option<String>,
    },
    /// Mistral's `/v1/embeddings` (OpenAI's shape, its own dimensions parameter).
    Mistral,
    Ollama {
        options: Option<Value>,
        keep_alive: Option<String>,
    },
    Voyage {
        input_type: Option<String>,
    },
    /// Cohere's `/v2/embed`.
    Cohere {
        input_type: String,
    },
    Bedrock(Bedrock),
    Local,
}

/// Amazon Bedrock's InvokeModel for one of the embedding model families it hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct Bedrock {
    pub family: BedrockFamily,
    pub aws_role_arn: Option<String>,
    /// None: the region of the server's AWS configuration.
    pub region: Option<String>,
    /// The RoleSessionName; none: the one S3 reads use.
    pub session_name: Option<String>,
    /// Cohere's `input_type`.
    pub input_type: Option<String>,
    /// An access key id to sign with, with the server's `AWS_SECRET_ACCESS_KEY`
    /// (LiteLLM's form); none: the server's AWS credentials or the role.
    pub access_key_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedrockFamily {
    /// Amazon Titan Text Embeddings v2: one text per request, 256, 512 or 1024 dimensions.
    TitanV2,
    /// Amazon Titan Embeddings G1 – Text: one text per request, 1536 dimensions.
    TitanV1,
    /// Cohere Embed: up to 96 texts per request.
    Cohere,
}

/// What the vectors are for: stored chunks, or a query compared with them (VoyageAI's
/// and Cohere's models embed each differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Store,
    Query,
}

impl Api {
    /// Where requests go when the configuration names no endpoint.
    pub fn default_base_url(&self) -> Option<&'static str> {
        match self {
            Api::OpenAi { .. } => Some("https://api.openai.com/v1"),
            Api::Mistral => Some("https://api.mistral.ai/v1"),
            Api::Ollama { .. } => Some("http://localhost:11434"),
            Api::Voyage { .. } => Some("https://api.voyageai.com/v1"),
            Api::Cohere { .. } => Some("https://api.cohere.com"),
            Api::Azure { .. } | Api::Bedrock(_) | Api::Local => None,
        }
    }

    /// The server's environment variable that replaces the default endpoint (LiteLLM's
    /// names): a proxy or a test server the server's operator chose.
    pub fn base_url_variable(&self) -> Option<&'static str> {
        match self {
            Api::OpenAi { .. } => Some("OPENAI_API_BASE"),
            Api::Azure { .. } => Some("AZURE_API_BASE"),
            Api::Mistral => Some("MISTRAL_API_BASE"),
            Api::Ollama { .. } => Some("OLLAMA_API_BASE"),
            Api::Voyage { .. } => Some("VOYAGE_API_BASE"),
            Api::Cohere { .. } => Some("COHERE_API_BASE"),
            Api::Bedrock(_) | Api::Local => None,
        }
    }

    /// The key's name when the configuration names none.
    pub fn default_api_key_name(&self) -> Option<&'static str> {
        match self {
            Api::OpenAi { .. } => Some("OPENAI_API_KEY"),
            Api::Azure { .. } => Some("AZURE_API_KEY"),
            Api::Mistral => Some("MISTRAL_API_KEY"),
            Api::Voyage { .. } => Some("VOYAGE_API_KEY"),
            Api::Cohere { .. } => Some("COHERE_API_KEY"),
            Api::Ollama { .. } | Api::Bedrock(_) | Api::Local => None,
        }
    }

    /// The provider's name in messages.
    pub fn provider_name(&self) -> &'static str {
        match self {
            Api::OpenAi { .. } => "OpenAI",
            Api::Azure { .. } => "Azure OpenAI",
            Api::Mistral => "Mistral",
            Api::Ollama { .. } => "Ollama",
            Api::Voyage { .. } => "VoyageAI",
            Api::Cohere { .. } => "Cohere",
            Api::Bedrock(_) => "Amazon Bedrock",
            Api::Local => "the local model",
        }
    }
}

impl Service {
    /// The same service for `purpose`: a query is embedded as one where the model
    /// tells documents from queries.
    pub fn for_purpose(mut self, purpose: Purpose) -> Self {
        if purpose == Purpose::Store {
            return self;
        }
        match &mut self.api {
            Api::Voyage {
                input_type: Some(t),
            } => *t = "query".into(),
            Api::Cohere { input_type }
            | Api::Bedrock(Bedrock {
                input_type: Some(input_type),
                ..
            }) if input_type == "search_document" => *input_type = "search_query".into(),
            _ => {}
        }
        self
    }
}

/// Cohere's input types; a stored chunk is a `search_document` unless said otherwise.
pub(crate) const COHERE_INPUT_TYPES: &[&str] = &[
    "search_document",
    "search_query",
    "classification",
    "clustering",
];

pub(crate) fn cohere_input_type(value: Option<&str>) -> Result<String> {
    match value {
        None => Ok("search_document".into()),
        Some(v) if COHERE_INPUT_TYPES.contains(&v) => Ok(v.into()),
        Some(v) => Err(
            ConfigError::invalid(format!("invalid input_type for Cohere \"{v}\"")).with_hint(
                format!("Cohere's input types: {}", COHERE_INPUT_TYPES.join(", ")),
            ),
        ),
    }
}

pub(crate) fn voyage_input_type(value: Option<&str>) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v @ ("document" | "query")) => Ok(Some(v.into())),
        Some(v) => Err(
            ConfigError::invalid(format!("invalid input_type for VoyageAI \"{v}\""))
                .with_hint("input_type is 'document', 'query' or NULL"),
        ),
    }
}

/// A Bedrock model id (or ARN, or inference profile) of a family this server speaks,
/// with dimensions the model makes.
pub(crate) fn bedrock_family(model: &str, dimensions: i32) -> Result<BedrockFamily> {
    let (family, allowed): (BedrockFamily, &[i32]) = if model.contains("amazon.titan-embed-text-v2")
    {
        (BedrockFamily::TitanV2, &[256, 512, 1024])
    } else if model.contains("amazon.titan-embed-text-v1")
        || model.contains("amazon.titan-embed-g1-text")
    {
        (BedrockFamily::TitanV1, &[1536])
    } else if model.contains("cohere.embed-v4") {
        (BedrockFamily::Cohere, &[256, 512, 1024, 1536])
    } else if model.contains("cohere.embed-english-light-v3")
        || model.contains("cohere.embed-multilingual-light-v3")
    {
        (BedrockFamily::Cohere, &[384])
    } else if model.contains("cohere.embed-") {
        (BedrockFamily::Cohere, &[1024])
    } else {
        return Err(ConfigError::new(
                SqlState::FeatureNotSupported,
                format!("Bedrock model \"{model}\" is not supported"),
            )
            .with_hint("Bedrock embedding models supported: Amazon Titan Text Embeddings (amazon.titan-embed-text-v2:0, amazon.titan-embed-text-v1) and Cohere Embed (cohere.embed-english-v3, cohere.embed-multilingual-v3, cohere.embed-v4:0)"));
    };
    if allowed.contains(&dimensions) {
        return Ok(family);
    }
    let list: Vec<String> = allowed.iter().map(i32::to_string).collect();
    let sizes = match list.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(ConfigError::invalid(format!(
        "Bedrock model \"{model}\" makes embeddings of {sizes} dimensions, not {dimensions}"
    ))
    .with_hint(format!("use dimensions => {}", list[list.len() - 1])))
}

/// An AWS region name such as `eu-west-1`.
pub(crate) fn validate_region(region: &str) -> Result<()> {
    let ok = (4..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-');
    if ok {
        Ok(())
    } else {
        Err(
            ConfigError::invalid(format!("invalid AWS region \"{region}\""))
                .with_hint("a region name such as us-east-1 or eu-west-1"),
        )
    }
}

pub(crate) fn bedrock(
    model: &str,
    dimensions: i32,
    aws_role_arn: Option<String>,
    region: Option<String>,
) -> Result<Bedrock> {
    if let Some(arn) = &aws_role_arn {
        validate_role_arn(arn)?;
    }
    if let Some(r) = &region {
        validate_region(r)?;
    }
    let family = bedrock_family(model, dimensions)?;
    Ok(Bedrock {
        family,
        aws_role_arn,
        region,
        session_name: None,
        access_key_id: None,
        input_type: (family == BedrockFamily::Cohere).then(|| "search_document".into()),
    })
}

impl Embedding {
    /// The service this configuration reaches, for stored chunks; every parameter checked.
    pub fn service(&self) -> Result<Service> {
        let service = |api: Api, api_key_name: Option<String>, base_url: Option<String>| Service {
            api,
            model: self.model().to_string(),
            dimensions: self.dimensions(),
            api_key_name,
            base_url,
        };
        Ok(match self {
            Embedding::Openai {
                chat_user,
                api_key_name,
                base_url,
                ..
            } => service(
                Api::OpenAi {
                    user: chat_user.clone(),
                },
                Some(api_key_name.clone()),
                base_url.clone(),
            ),
            Embedding::Ollama {
                base_url,
                options,
                keep_alive,
                ..
            } => {
                if let Some(o) = options.as_ref().filter(|o| !o.is_object()) {
                    return Err(ConfigError::invalid(format!(
                        "ollama options must be a JSON object, got {o}"
                    ))
                    .with_hint("e.g. options => '{\"num_ctx\": 1024}'"));
                }
                service(
                    Api::Ollama {
                        options: options.clone(),
                        keep_alive: keep_alive.clone(),
                    },
                    None,
                    base_url.clone(),
                )
            }
            Embedding::Voyageai {
                input_type,
                api_key_name,
                ..
            } => service(
                Api::Voyage {
                    input_type: voyage_input_type(input_type.as_deref())?,
                },
                Some(api_key_name.clone()),
                None,
            ),
            Embedding::Litellm {
                model,
                dimensions,
                api_key_name,
                extra_options,
            } => litellm::service(model, *dimensions, api_key_name.as_deref(), extra_options)?,
            Embedding::Bedrock {
                model,
                dimensions,
                aws_role_arn,
                region,
            } => service(
                Api::Bedrock(bedrock(
                    model,
                    *dimensions,
                    aws_role_arn.clone(),
                    region.clone(),
                )?),
                None,
                None,
            ),
            Embedding::Local { .. } => service(Api::Local, None, None),
        })
    }

    /// Whether embedding acts with the server's AWS identity (Bedrock).
    pub fn uses_aws(&self) -> bool {
        self.service()
            .is_ok_and(|s| matches!(s.api, Api::Bedrock(_)))
    }
}
