//! Cohere's `/v2/embed`: up to 96 texts a request, each with its `input_type`.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::http::{answer_limit, Auth, Endpoint};
use super::{Provider, RequestError};

pub struct Cohere {
    pub endpoint: Endpoint,
    pub model: String,
    pub input_type: String,
    pub dimensions: i32,
}

/// `{"embeddings": {"float": [[…]]}}`, or without `embedding_types` a bare list.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Embeddings {
    ByType { float: Vec<Vec<f32>> },
    Floats(Vec<Vec<f32>>),
}

impl Embeddings {
    pub fn floats(self) -> Vec<Vec<f32>> {
        match self {
            Embeddings::ByType { float } | Embeddings::Floats(float) => float,
        }
    }
}

#[derive(Deserialize)]
pub struct Answer {
    pub embeddings: Embeddings,
}

/// Cohere's models that make embeddings of a chosen size (`output_dimension`).
pub fn flexible(model: &str) -> bool {
    model.contains("embed-v4")
}

impl Provider for Cohere {
    fn max_inputs(&self) -> usize {
        96
    }
    fn max_tokens(&self) -> usize {
        250_000
    }
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
        Box::pin(async move {
            let mut body = json!({"model": self.model, "texts": inputs,
                                  "input_type": self.input_type, "embedding_types": ["float"]});
            if flexible(&self.model) {
                body["output_dimension"] = json!(self.dimensions);
            }
            let url = format!("{}/v2/embed", self.endpoint.base_url);
            let limit = answer_limit(inputs.len(), self.dimensions);
            let answer: Answer = self.endpoint.post(&url, Auth::Bearer, &body, limit).await?;
            Ok(answer.embeddings.floats())
        })
    }
}
