//! The providers that answer in OpenAI's shape, `{"data": [{"embedding", "index"}]}`:
//! OpenAI and the servers compatible with it, Azure OpenAI, Mistral and VoyageAI. They
//! differ in the URL, how the key is sent and the request's parameters.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::http::{answer_limit, Auth, Endpoint};
use super::{Provider, RequestError};
use ai_loader_core::embedding::{Api, Service};

/// Azure OpenAI's API version when the configuration names none.
pub const AZURE_API_VERSION: &str = "2024-10-21";

pub struct OpenAiShaped {
    pub endpoint: Endpoint,
    pub url: String,
    pub auth: Auth,
    /// The request without its input: the model and the API's parameters.
    pub body: Map<String, Value>,
    pub dimensions: i32,
    pub max_inputs: usize,
    pub max_tokens: usize,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl Provider for OpenAiShaped {
    fn max_inputs(&self) -> usize {
        self.max_inputs
    }
    fn max_tokens(&self) -> usize {
        self.max_tokens
    }
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
        Box::pin(async move {
            let mut body = self.body.clone();
            body.insert("input".into(), json!(inputs));
            let limit = answer_limit(inputs.len(), self.dimensions);
            let answer: Answer = self
                .endpoint
                .post(&self.url, self.auth, &Value::Object(body), limit)
                .await?;
            let mut data: Vec<(usize, Vec<f32>)> = answer
                .data
                .into_iter()
                .enumerate()
                .map(|(i, d)| (d.index.unwrap_or(i), d.embedding))
                .collect();
            data.sort_by_key(|(i, _)| *i);
            Ok(data.into_iter().map(|(_, e)| e).collect())
        })
    }
}

/// The provider for an OpenAI-shaped service; `None` for the others.
pub fn provider(service: &Service, endpoint: Endpoint) -> Option<OpenAiShaped> {
    let mut body = Map::new();
    body.insert("model".into(), json!(service.model));
    let model = service.model.as_str();
    let base = endpoint.base_url.clone();
    let (url, auth, max_inputs, max_tokens) = match &service.api {
        Api::OpenAi { user } => {
            body.insert("encoding_format".into(), json!("float"));
            // Only the text-embedding-3 generation and compatible servers take dimensions.
            if model != "text-embedding-ada-002" {
                body.insert("dimensions".into(), json!(service.dimensions));
            }
            if let Some(user) = user {
                body.insert("user".into(), json!(user));
            }
            (format!("{base}/embeddings"), Auth::Bearer, 2048, 250_000)
        }
        Api::Azure { api_version, user } => {
            body.remove("model");
            body.insert("encoding_format".into(), json!("float"));
            // A deployment is named by its owner; those of the text-embedding-3
            // generation usually say so, and only they take dimensions.
            if model.contains("embedding-3") {
                body.insert("dimensions".into(), json!(service.dimensions));
            }
            if let Some(user) = user {
                body.insert("user".into(), json!(user));
            }
            let mut url = reqwest::Url::parse(&base).ok()?;
            url.path_segments_mut().ok()?.pop_if_empty().extend([
                "openai",
                "deployments",
                model,
                "embeddings",
            ]);
            url.query_pairs_mut().append_pair(
                "api-version",
                api_version.as_deref().unwrap_or(AZURE_API_VERSION),
            );
            (url.to_string(), Auth::ApiKeyHeader, 2048, 250_000)
        }
        Api::Mistral => {
            if model.starts_with("codestral-embed") {
                body.insert("output_dimension".into(), json!(service.dimensions));
            }
            (format!("{base}/embeddings"), Auth::Bearer, 512, 16_000)
        }
        Api::Voyage { input_type } => {
            if let Some(t) = input_type {
                body.insert("input_type".into(), json!(t));
            }
            if voyage_flexible(model) {
                body.insert("output_dimension".into(), json!(service.dimensions));
            }
            (format!("{base}/embeddings"), Auth::Bearer, 1000, 100_000)
        }
        _ => return None,
    };
    Some(OpenAiShaped {
        endpoint,
        url,
        auth,
        body,
        dimensions: service.dimensions,
        max_inputs,
        max_tokens,
    })
}

/// VoyageAI's models that make embeddings of a chosen size (`output_dimension`).
fn voyage_flexible(model: &str) -> bool {
    [
        "voyage-3-large",
        "voyage-3.5",
        "voyage-code-3",
        "voyage-context-3",
        "voyage-4",
    ]
    .iter()
    .any(|m| model.starts_with(m))
}
