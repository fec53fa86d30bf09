//! `ai.embedding_litellm`: a model named as LiteLLM names it, `<provider>/<model>`, with
//! LiteLLM's option names, served natively for the providers pgai users use most.

use serde_json::{Map, Value};

use super::service::{bedrock, cohere_input_type, voyage_input_type, Api, BedrockFamily, Service};
use crate::error::{ConfigError, Result, SqlState};

/// The prefixes served, and the `extra_options` each takes.
const PREFIXES: &[(&str, &[&str])] = &[
    ("openai", &["api_base", "user"]),
    ("azure", &["api_base", "api_version", "user"]),
    (
        "bedrock",
        &[
            "aws_region_name",
            "aws_role_name",
            "aws_session_name",
            "aws_access_key_id",
            "input_type",
        ],
    ),
    ("cohere", &["api_base", "input_type"]),
    ("mistral", &["api_base"]),
    ("voyage", &["api_base", "input_type"]),
    ("ollama", &["api_base"]),
];

fn prefix_list() -> String {
    PREFIXES
        .iter()
        .map(|(p, _)| format!("{p}/"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Options LiteLLM takes that a stored configuration must not hold, and what to do instead.
fn refused_option(key: &str) -> Option<&'static str> {
    Some(match key {
        "api_key" => "a key is not stored in a configuration: name the server's key with api_key_name (its environment variable, or the setting ai_loader.<name>)",
        "aws_secret_access_key" | "aws_session_token" | "aws_profile_name"
        | "aws_web_identity_token" => "AWS secrets are not stored in a configuration: Bedrock uses the database server's AWS credentials, the role named by aws_role_name, or aws_access_key_id with api_key_name => 'AWS_SECRET_ACCESS_KEY' (the server's secret)",
        "aws_external_id" => "the ExternalId is the server's: the setting ai_loader.aws_external_id",
        "aws_bedrock_runtime_endpoint" | "aws_sts_endpoint" => "AWS endpoints come from the server's AWS configuration (AWS_ENDPOINT_URL_BEDROCK_RUNTIME, AWS_ENDPOINT_URL)",
        _ => return None,
    })
}

/// LiteLLM's `extra_options`, checked against what the prefix takes.
struct Options<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Options<'a> {
    fn new(prefix: &str, allowed: &[&str], value: &'a Option<Value>) -> Result<Self> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let map = match value {
            None | Some(Value::Null) => EMPTY.get_or_init(Map::new),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "litellm extra_options must be a JSON object, got {other}"
                ))
                .with_hint("e.g. extra_options => '{\"api_base\": \"https://…\"}'"))
            }
        };
        for key in map.keys() {
            if let Some(instead) = refused_option(key) {
                return Err(ConfigError::invalid(format!(
                    "litellm extra_options \"{key}\" is not accepted"
                ))
                .with_hint(instead));
            }
            if !allowed.contains(&key.as_str()) {
                return Err(ConfigError::invalid(format!(
                    "unknown litellm extra_options \"{key}\" for {prefix}/ models"
                ))
                .with_hint(format!("{prefix}/ models take: {}", allowed.join(", "))));
            }
        }
        Ok(Options { map })
    }

    fn text(&self, key: &str) -> Result<Option<String>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ConfigError::invalid(format!(
                "litellm extra_options \"{key}\" must be a string, got {other}"
            ))),
        }
    }
}

pub(crate) fn service(
    model: &str,
    dimensions: i32,
    api_key_name: Option<&str>,
    extra_options: &Option<Value>,
) -> Result<Service> {
    let (prefix, name) = split(model)?;
    let allowed = PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, keys)| *keys)
        .expect("split returns a served prefix");
    let options = Options::new(prefix, allowed, extra_options)?;
    let api = match prefix {
        "openai" => Api::OpenAi {
            user: options.text("user")?,
        },
        "azure" => Api::Azure {
            api_version: options.text("api_version")?,
            user: options.text("user")?,
        },
        "mistral" => Api::Mistral,
        "ollama" => Api::Ollama {
            options: None,
            keep_alive: None,
        },
        "voyage" => Api::Voyage {
            input_type: voyage_input_type(Some(
                options.text("input_type")?.as_deref().unwrap_or("document"),
            ))?,
        },
        "cohere" => Api::Cohere {
            input_type: cohere_input_type(options.text("input_type")?.as_deref())?,
        },
        _ => {
            let mut b = bedrock(
                name,
                dimensions,
                options.text("aws_role_name")?,
                options.text("aws_region_name")?,
            )?;
            b.session_name = options.text("aws_session_name")?;
            b.access_key_id = options.text("aws_access_key_id")?;
            if let Some(s) = &b.session_name {
                validate_session_name(s)?;
            }
            if let Some(t) = options.text("input_type")? {
                if b.family != BedrockFamily::Cohere {
                    return Err(ConfigError::invalid(format!(
                        "Bedrock model \"{name}\" takes no input_type"
                    ))
                    .with_hint("input_type is for Cohere Embed models"));
                }
                b.input_type = Some(cohere_input_type(Some(&t))?);
            }
            Api::Bedrock(b)
        }
    };
    let api_key_name = match (&api, api.default_api_key_name(), api_key_name) {
        (Api::Bedrock(b), _, key) => bedrock_static_key(b, key)?,
        (_, None, Some(key)) => {
            return Err(ConfigError::invalid(format!(
                "{prefix}/ models take no api_key_name (\"{key}\")"
            ))
            .with_hint("leave api_key_name out"))
        }
        (_, default, given) => given.or(default).map(str::to_string),
    };
    Ok(Service {
        api,
        model: name.to_string(),
        dimensions,
        api_key_name,
        base_url: options.text("api_base")?,
    })
}

/// LiteLLM signs Bedrock requests with `aws_access_key_id` and the secret `api_key_name`
/// names: here only the server's own `AWS_SECRET_ACCESS_KEY`, which signs and is never
/// sent. Without them, the server's AWS credentials (or a role) sign.
fn bedrock_static_key(
    b: &super::service::Bedrock,
    api_key_name: Option<&str>,
) -> Result<Option<String>> {
    let hint = "Bedrock is reached with the server's AWS credentials, a role (extra_options => '{\"aws_role_name\": \"arn:aws:iam::…:role/…\"}'), or aws_access_key_id with api_key_name => 'AWS_SECRET_ACCESS_KEY'";
    match (api_key_name, &b.access_key_id) {
        (None, None) => Ok(None),
        (Some(key), Some(id)) if key.eq_ignore_ascii_case("AWS_SECRET_ACCESS_KEY") => {
            let id_ok = (16..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !id_ok {
                return Err(
                    ConfigError::invalid(format!("invalid aws_access_key_id \"{id}\""))
                        .with_hint("an access key id such as AKIAIOSFODNN7EXAMPLE"),
                );
            }
            if b.aws_role_arn.is_some() {
                return Err(ConfigError::invalid(
                    "aws_access_key_id and aws_role_name together are not supported",
                )
                .with_hint("a role is assumed with the server's AWS credentials: leave aws_access_key_id and api_key_name out"));
            }
            Ok(Some("AWS_SECRET_ACCESS_KEY".into()))
        }
        (Some(key), _) => Err(ConfigError::invalid(format!(
            "bedrock/ models take no api_key_name \"{key}\""
        ))
        .with_hint(hint)),
        (None, Some(_)) => Err(ConfigError::invalid(
            "aws_access_key_id needs api_key_name => 'AWS_SECRET_ACCESS_KEY'",
        )
        .with_hint(hint)),
    }
}

/// The prefix and the provider's model name. LiteLLM reads a bare OpenAI model name
/// (`text-embedding-3-small`) as `openai/`.
fn split(model: &str) -> Result<(&str, &str)> {
    if model.starts_with("text-embedding-") {
        return Ok(("openai", model));
    }
    let unsupported = |what: String| {
        ConfigError::new(SqlState::FeatureNotSupported, what)
            .with_detail(format!("Model prefixes served: {}.", prefix_list()))
            .with_hint("for another provider with an OpenAI-compatible API (a LiteLLM proxy, a gateway), use ai.embedding_openai(model, dimensions, base_url => '…')")
    };
    let Some((prefix, name)) = model.split_once('/') else {
        return Err(unsupported(format!(
            "litellm model \"{model}\" names no provider"
        )));
    };
    if !PREFIXES.iter().any(|(p, _)| *p == prefix) {
        return Err(unsupported(format!(
            "litellm provider \"{prefix}/\" is not supported"
        )));
    }
    if name.trim().is_empty() {
        return Err(ConfigError::invalid(format!(
            "litellm model \"{model}\" names no model after \"{prefix}/\""
        )));
    }
    Ok((prefix, name))
}

/// An STS RoleSessionName: 2 to 64 of `[A-Za-z0-9+=,.@_-]`.
fn validate_session_name(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(
            ConfigError::invalid(format!("invalid aws_session_name \"{name}\""))
                .with_hint("2 to 64 letters, digits and +=,.@_-"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(model: &str, dims: i32, key: Option<&str>, options: Value) -> Result<Service> {
        service(model, dims, key, &Some(options))
    }

    #[test]
    fn prefixes_map_to_services() {
        let s = svc("openai/text-embedding-3-small", 768, None, json!({})).unwrap();
        assert_eq!(s.api, Api::OpenAi { user: None });
        assert_eq!(
            (s.model.as_str(), s.api_key_name.as_deref()),
            ("text-embedding-3-small", Some("OPENAI_API_KEY"))
        );
        let s = svc("text-embedding-3-small", 768, None, json!({})).unwrap();
        assert_eq!(s.model, "text-embedding-3-small");

        let s = svc(
            "azure/my-deployment",
            1536,
            None,
            json!({"api_base": "https://res.openai.azure.com", "api_version": "2024-10-21"}),
        )
        .unwrap();
        assert_eq!(s.model, "my-deployment");
        assert_eq!(s.api_key_name.as_deref(), Some("AZURE_API_KEY"));
        assert_eq!(s.base_url.as_deref(), Some("https://res.openai.azure.com"));

        let s = svc(
            "cohere/embed-english-v3.0",
            1024,
            Some("CO_API_KEY"),
            json!({}),
        )
        .unwrap();
        assert_eq!(
            s.api,
            Api::Cohere {
                input_type: "search_document".into()
            }
        );
        assert_eq!(s.api_key_name.as_deref(), Some("CO_API_KEY"));

        let s = svc("voyage/voyage-3-lite", 512, None, json!(null)).unwrap();
        assert_eq!(
            s.api,
            Api::Voyage {
                input_type: Some("document".into())
            }
        );
        assert_eq!(
            svc("mistral/mistral-embed", 1024, None, json!({}))
                .unwrap()
                .api_key_name
                .as_deref(),
            Some("MISTRAL_API_KEY")
        );
        let s = svc("ollama/nomic-embed-text", 768, None, json!({})).unwrap();
        assert_eq!(s.api_key_name, None);
    }

    #[test]
    fn bedrock_options() {
        let s = svc(
            "bedrock/amazon.titan-embed-text-v2:0",
            512,
            None,
            json!({"aws_region_name": "eu-west-1",
                   "aws_role_name": "arn:aws:iam::123456789012:role/Bedrock",
                   "aws_session_name": "docs-embedder"}),
        )
        .unwrap();
        let Api::Bedrock(b) = s.api else {
            panic!("{s:?}")
        };
        assert_eq!(b.family, BedrockFamily::TitanV2);
        assert_eq!(b.region.as_deref(), Some("eu-west-1"));
        assert_eq!(b.session_name.as_deref(), Some("docs-embedder"));
        assert_eq!(b.input_type, None);
        assert_eq!(s.model, "amazon.titan-embed-text-v2:0");

        let e = svc("bedrock/amazon.titan-embed-text-v2:0", 768, None, json!({})).unwrap_err();
        assert!(
            e.message.contains("256, 512 or 1024 dimensions, not 768"),
            "{}",
            e.message
        );
        let e = svc("bedrock/meta.llama3", 1024, None, json!({})).unwrap_err();
        assert_eq!(e.state, SqlState::FeatureNotSupported);
        let e = svc(
            "bedrock/amazon.titan-embed-text-v2:0",
            1024,
            Some("AWS_API_KEY"),
            json!({}),
        )
        .unwrap_err();
        assert!(e.hint.unwrap().contains("aws_role_name"));
        // pgai's documented form: the key id in the configuration, the secret the server's.
        let s = svc(
            "bedrock/amazon.titan-embed-text-v2:0",
            1024,
            Some("AWS_SECRET_ACCESS_KEY"),
            json!({"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_region_name": "us-east-1"}),
        )
        .unwrap();
        assert_eq!(s.api_key_name.as_deref(), Some("AWS_SECRET_ACCESS_KEY"));
        let Api::Bedrock(b) = s.api else { panic!() };
        assert_eq!(b.access_key_id.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        assert!(svc(
            "bedrock/amazon.titan-embed-text-v2:0",
            1024,
            None,
            json!({"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE"}),
        )
        .is_err());
        let e = svc(
            "bedrock/amazon.titan-embed-text-v2:0",
            1024,
            None,
            json!({"input_type": "search_query"}),
        )
        .unwrap_err();
        assert!(e.message.contains("takes no input_type"));
        let s = svc(
            "bedrock/cohere.embed-english-v3",
            1024,
            None,
            json!({"input_type": "clustering"}),
        )
        .unwrap();
        let Api::Bedrock(b) = s.api else { panic!() };
        assert_eq!(b.input_type.as_deref(), Some("clustering"));
    }

    #[test]
    fn what_is_refused() {
        let e = svc("huggingface/BAAI/bge", 768, None, json!({})).unwrap_err();
        assert_eq!(e.state, SqlState::FeatureNotSupported);
        assert!(e.detail.unwrap().contains("openai/, azure/, bedrock/"));
        assert!(e.hint.unwrap().contains("ai.embedding_openai"));
        let e = svc("my-model", 768, None, json!({})).unwrap_err();
        assert_eq!(e.state, SqlState::FeatureNotSupported);

        let e = svc("openai/x", 8, None, json!({"api_version": "1"})).unwrap_err();
        assert_eq!(
            e.message,
            "unknown litellm extra_options \"api_version\" for openai/ models"
        );
        assert_eq!(e.state, SqlState::InvalidParameterValue);
        for key in ["api_key", "aws_secret_access_key", "aws_external_id"] {
            let e = svc(
                "bedrock/amazon.titan-embed-text-v1",
                1536,
                None,
                json!({key: "x"}),
            )
            .unwrap_err();
            assert!(e.message.contains("is not accepted"), "{key}");
        }
        assert!(svc("openai/x", 8, None, json!([1])).is_err());
        assert!(svc("openai/x", 8, None, json!({"api_base": 3})).is_err());
        assert!(svc("cohere/embed-v4.0", 8, None, json!({"input_type": "query"})).is_err());
        assert!(svc(
            "bedrock/amazon.titan-embed-text-v1",
            1536,
            None,
            json!({"aws_role_name": "role"})
        )
        .is_err());
        assert!(svc(
            "bedrock/amazon.titan-embed-text-v1",
            1536,
            None,
            json!({"aws_region_name": "EU WEST"})
        )
        .is_err());
    }
}
