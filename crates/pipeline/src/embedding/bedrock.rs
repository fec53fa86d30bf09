//! Amazon Bedrock's InvokeModel through the AWS SDK: the server's AWS credentials, or
//! a role assumed through the same cached identities as S3 reads; the endpoint from
//! the SDK's configuration (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL`).
//! Titan takes one text a request, Cohere Embed up to 96.

use std::sync::Arc;

use ai_loader_core::embedding::{Bedrock as Target, BedrockFamily, Service};
use aws_config::retry::RetryConfig;
use aws_config::Region;
use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::cohere;
use super::{Provider, RequestError};
use crate::loading::UriLoader;

pub struct Bedrock {
    pub aws: Arc<UriLoader>,
    pub model: String,
    pub dimensions: i32,
    pub target: Target,
    /// The server's secret key for `target.access_key_id`.
    secret: Option<String>,
    client: OnceCell<aws_sdk_bedrockruntime::Client>,
}

#[derive(Deserialize)]
struct TitanAnswer {
    embedding: Vec<f32>,
}

impl Bedrock {
    pub fn new(
        service: &Service,
        target: Target,
        aws: Arc<UriLoader>,
        secret: Option<String>,
    ) -> Self {
        Bedrock {
            aws,
            model: service.model.clone(),
            dimensions: service.dimensions,
            target,
            secret,
            client: OnceCell::new(),
        }
    }

    /// The client, made on first use from the identity shared with S3 reads. Retries
    /// are the batch's (a throttled request waits, then the batch waits), not the SDK's.
    async fn client(&self) -> &aws_sdk_bedrockruntime::Client {
        self.client
            .get_or_init(|| async {
                let sdk = self
                    .aws
                    .aws(
                        self.target.aws_role_arn.as_deref(),
                        self.target.session_name.as_deref(),
                    )
                    .await;
                let mut config = aws_sdk_bedrockruntime::config::Builder::from(&sdk)
                    .retry_config(RetryConfig::disabled());
                if let Some(region) = &self.target.region {
                    config = config.region(Region::new(region.clone()));
                }
                if let (Some(id), Some(secret)) = (&self.target.access_key_id, &self.secret) {
                    config = config.credentials_provider(Credentials::new(
                        id,
                        secret,
                        None,
                        None,
                        "ai_loader",
                    ));
                }
                aws_sdk_bedrockruntime::Client::from_conf(config.build())
            })
            .await
    }

    fn body(&self, inputs: &[String]) -> Value {
        match self.target.family {
            BedrockFamily::TitanV2 => json!({"inputText": inputs[0], "dimensions": self.dimensions,
                                              "normalize": true}),
            BedrockFamily::TitanV1 => json!({"inputText": inputs[0]}),
            BedrockFamily::Cohere => {
                let mut body = json!({"texts": inputs, "input_type": self.target.input_type,
                                      "embedding_types": ["float"]});
                if cohere::flexible(&self.model) {
                    body["output_dimension"] = json!(self.dimensions);
                }
                body
            }
        }
    }

    fn parse(&self, answer: &[u8]) -> Result<Vec<Vec<f32>>, RequestError> {
        let bad = |e: serde_json::Error| {
            RequestError::Fatal(format!("Bedrock's answer is not the expected JSON: {e}"))
        };
        match self.target.family {
            BedrockFamily::TitanV2 | BedrockFamily::TitanV1 => {
                let a: TitanAnswer = serde_json::from_slice(answer).map_err(bad)?;
                Ok(vec![a.embedding])
            }
            BedrockFamily::Cohere => {
                let a: cohere::Answer = serde_json::from_slice(answer).map_err(bad)?;
                Ok(a.embeddings.floats())
            }
        }
    }

    /// Bedrock's errors, as what to do about them.
    fn explain<E, R>(&self, e: &SdkError<E, R>) -> RequestError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let who = match (&self.target.aws_role_arn, &self.target.access_key_id) {
            (Some(arn), _) => format!("the role {arn}"),
            (None, Some(id)) => format!("the access key {id}"),
            (None, None) => "the server's AWS credentials".to_string(),
        };
        let model = &self.model;
        let region = self
            .client
            .get()
            .and_then(|c| c.config().region().map(|r| r.to_string()))
            .unwrap_or_else(|| "<region>".into());
        let unavailable = |message: String| RequestError::Unavailable {
            message,
            retry_after: None,
        };
        if let SdkError::ServiceError(service) = e {
            let err = service.err();
            let code = err.code().unwrap_or("");
            let message = err.message().unwrap_or("");
            return match code {
                "ThrottlingException" | "ServiceUnavailableException" | "InternalServerException"
                | "ModelNotReadyException" | "ModelTimeoutException" | "ServiceQuotaExceededException" => {
                    unavailable(format!("Bedrock is throttling or unavailable ({code}): {message}"))
                }
                "AccessDeniedException" => RequestError::Fatal(format!(
                    "access denied invoking Bedrock model {model} (AccessDeniedException: {message}): {who} needs bedrock:InvokeModel on arn:aws:bedrock:{region}::foundation-model/{model}, and the account needs access to the model enabled in the Bedrock console"
                )),
                "ResourceNotFoundException" => RequestError::Fatal(format!(
                    "Bedrock model {model} was not found in {region} (ResourceNotFoundException: {message}): check the model id and the region"
                )),
                "ValidationException" if message.contains("model identifier") => RequestError::Fatal(format!(
                    "Bedrock does not know model {model} in {region} (ValidationException: {message}): check the model id and the region"
                )),
                "ValidationException" | "ModelErrorException" => {
                    RequestError::Rejected(format!("Bedrock refused the input ({code}): {message}"))
                }
                "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException"
                | "IncompleteSignature" | "MissingAuthenticationToken" => RequestError::Fatal(format!(
                    "Bedrock refused {who} ({code}): {message} — check the server's AWS credentials"
                )),
                _ => RequestError::Fatal(format!("Bedrock model {model} failed ({code}): {message}")),
            };
        }
        let detail = DisplayErrorContext(e).to_string();
        if detail.contains("AssumeRole") || detail.contains("credentials") {
            let what = match &self.target.aws_role_arn {
                Some(arn) => format!("could not assume the role {arn}: check that its trust policy names the server's identity (and ExternalId, if set) and that the identity may sts:AssumeRole on it"),
                None => "no AWS credentials found in the server's environment".to_string(),
            };
            return RequestError::Fatal(format!("{what}: {detail}"));
        }
        match e {
            SdkError::TimeoutError(_) => {
                unavailable(format!("timed out invoking Bedrock model {model}"))
            }
            _ => unavailable(format!("could not reach Bedrock: {detail}")),
        }
    }
}

impl Provider for Bedrock {
    fn max_inputs(&self) -> usize {
        match self.target.family {
            BedrockFamily::Cohere => 96,
            BedrockFamily::TitanV2 | BedrockFamily::TitanV1 => 1,
        }
    }
    fn max_tokens(&self) -> usize {
        250_000
    }
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&self.body(inputs)).expect("JSON");
            let answer = self
                .client()
                .await
                .invoke_model()
                .model_id(&self.model)
                .content_type("application/json")
                .accept("application/json")
                .body(Blob::new(body))
                .send()
                .await
                .map_err(|e| self.explain(&e))?;
            self.parse(answer.body().as_ref())
        })
    }
}
