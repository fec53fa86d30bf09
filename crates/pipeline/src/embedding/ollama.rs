//! An Ollama server's `/api/embed`.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{answer_limit, Auth, Endpoint};
use super::{Provider, RequestError};

pub struct Ollama {
    pub endpoint: Endpoint,
    pub model: String,
    pub options: Option<Value>,
    pub keep_alive: Option<String>,
    pub dimensions: i32,
}

#[derive(Deserialize)]
struct Answer {
    embeddings: Vec<Vec<f32>>,
}

impl Provider for Ollama {
    fn max_inputs(&self) -> usize {
        256
    }
    fn max_tokens(&self) -> usize {
        250_000
    }
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
        Box::pin(async move {
            let mut body = json!({"model": self.model, "input": inputs});
            if let Some(options) = &self.options {
                body["options"] = options.clone();
            }
            if let Some(keep_alive) = &self.keep_alive {
                body["keep_alive"] = json!(keep_alive);
            }
            let url = format!("{}/api/embed", self.endpoint.base_url);
            let limit = answer_limit(inputs.len(), self.dimensions);
            let answer: Answer = self.endpoint.post(&url, Auth::Bearer, &body, limit).await?;
            Ok(answer.embeddings)
        })
    }
}
