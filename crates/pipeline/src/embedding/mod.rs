//! Embedding providers behind one trait: the OpenAI-shaped APIs (OpenAI, Azure OpenAI,
//! Mistral, VoyageAI), Cohere, Ollama, Amazon Bedrock and the local model. Inputs are
//! batched to the provider's limits and the requests run concurrently up to the
//! vectorizer's concurrency; throttling and outages are retried with backoff honouring
//! `Retry-After`, then reported for the whole batch; an input the provider rejects is
//! isolated by bisection and reported alone.

mod bedrock;
pub mod check;
mod cohere;
mod http;
mod ollama;
mod openai;

use std::sync::Arc;
use std::time::Duration;

use ai_loader_core::embedding::{Api, Embedding, Purpose};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use crate::loading::UriLoader;
use http::Endpoint;

/// How one request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// Throttled or unavailable (429, 5xx, timeout, connection): try again later.
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused these inputs (400, 413, 422).
    Rejected(String),
    /// Nothing will work until someone fixes it (a bad key, an unknown model, the
    /// wrong dimensions).
    Fatal(String),
}

/// Per input: its vector, or why the provider refused it.
pub type Embedded = Vec<Result<Vec<f32>, String>>;

/// Why a whole batch could not be embedded; nothing of it is consumed.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchError {
    pub message: String,
    /// How long to wait before trying again, when the provider said.
    pub retry_after: Option<Duration>,
}

/// A provider: one request embeds some inputs, in order.
pub trait Provider: Send + Sync {
    /// Inputs per request.
    fn max_inputs(&self) -> usize;
    /// Estimated tokens per request (4 bytes a token is the usual rule; 3 is cautious).
    fn max_tokens(&self) -> usize;
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>>;
    /// Requests that may run at once (the local model runs one at a time: its
    /// threads are its own setting).
    fn concurrent_requests(&self) -> usize {
        usize::MAX
    }
    /// The order in which to send `inputs`, when some order makes requests cheaper
    /// (the local model pads each request to its longest input); `None`: as they come.
    fn order(&self, _inputs: &[String]) -> Option<Vec<usize>> {
        None
    }
}

/// Retries of one request within a batch before the batch gives up.
const ATTEMPTS: u32 = 3;
/// The longest wait within a batch; a longer Retry-After ends the batch instead.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

fn estimated_tokens(text: &str) -> usize {
    text.len() / 3 + 1
}

/// Embeds `inputs`, each to a vector of `dimensions` or its own error; or fails the
/// whole batch when the provider is unavailable or misconfigured. Requests run at once
/// as far as `slots` (the vectorizer's concurrency, shared by its batches) allows.
pub async fn embed_all<P: Provider + ?Sized>(
    provider: &P,
    dimensions: usize,
    inputs: &[String],
    slots: &Semaphore,
) -> Result<Embedded, BatchError> {
    let Some(order) = provider.order(inputs) else {
        return embed_in_order(provider, dimensions, inputs, slots).await;
    };
    let reordered: Vec<String> = order.iter().map(|&i| inputs[i].clone()).collect();
    let embedded = embed_in_order(provider, dimensions, &reordered, slots).await?;
    // Back in the inputs' order.
    let mut paired: Vec<_> = order.into_iter().zip(embedded).collect();
    paired.sort_by_key(|(i, _)| *i);
    Ok(paired.into_iter().map(|(_, e)| e).collect())
}

/// `embed_all`, the inputs grouped into requests in the order given.
async fn embed_in_order<P: Provider + ?Sized>(
    provider: &P,
    dimensions: usize,
    inputs: &[String],
    slots: &Semaphore,
) -> Result<Embedded, BatchError> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < inputs.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < inputs.len()
            && end - start < provider.max_inputs()
            && (end == start || tokens + estimated_tokens(&inputs[end]) <= provider.max_tokens())
        {
            tokens += estimated_tokens(&inputs[end]);
            end += 1;
        }
        groups.push(&inputs[start..end]);
        start = end;
    }
    let at_once = provider.concurrent_requests().clamp(1, groups.len().max(1));
    let requests: Vec<_> = groups
        .into_iter()
        .map(|group| in_slot(provider, dimensions, group, slots))
        .collect();
    let parts: Vec<Embedded> = futures::stream::iter(requests)
        .buffered(at_once)
        .try_collect()
        .await?;
    Ok(parts.into_iter().flatten().collect())
}

async fn in_slot<P: Provider + ?Sized>(
    provider: &P,
    dimensions: usize,
    inputs: &[String],
    slots: &Semaphore,
) -> Result<Embedded, BatchError> {
    let _slot = slots.acquire().await.expect("semaphore open");
    isolate(provider, dimensions, inputs).await
}

/// One request; when the provider rejects it, halves until the rejected inputs stand
/// alone, so that one bad input does not fail the others.
fn isolate<'a, P: Provider + ?Sized>(
    provider: &'a P,
    dimensions: usize,
    inputs: &'a [String],
) -> BoxFuture<'a, Result<Embedded, BatchError>> {
    Box::pin(async move {
        match with_retries(provider, inputs).await {
            Ok(vectors) => {
                if vectors.len() != inputs.len() {
                    return Err(BatchError {
                        message: format!(
                            "the provider returned {} embeddings for {} inputs",
                            vectors.len(),
                            inputs.len()
                        ),
                        retry_after: None,
                    });
                }
                // Every vector of another length: the model is not the one configured.
                if vectors.iter().all(|v| v.len() != dimensions) {
                    return Err(BatchError {
                        message: format!(
                            "the provider returned embeddings of {} dimensions, the vectorizer expects {dimensions}",
                            vectors[0].len()
                        ),
                        retry_after: None,
                    });
                }
                Ok(vectors.into_iter().map(|v| usable(v, dimensions)).collect())
            }
            Err(RequestError::Rejected(message)) if inputs.len() == 1 => Ok(vec![Err(message)]),
            Err(RequestError::Rejected(_)) => {
                let (left, right) = inputs.split_at(inputs.len() / 2);
                let mut out = isolate(provider, dimensions, left).await?;
                out.extend(isolate(provider, dimensions, right).await?);
                Ok(out)
            }
            Err(RequestError::Unavailable {
                message,
                retry_after,
            }) => Err(BatchError {
                message,
                retry_after,
            }),
            Err(RequestError::Fatal(message)) => Err(BatchError {
                message,
                retry_after: None,
            }),
        }
    })
}

/// A vector the store can hold, or why this input's is not: of the wrong length (when
/// the others are right), or with a value that is not finite (`vector` and `real[]`
/// refuse infinity and NaN).
fn usable(v: Vec<f32>, dimensions: usize) -> Result<Vec<f32>, String> {
    if v.len() != dimensions {
        return Err(format!(
            "the provider returned {} dimensions for this input, the vectorizer expects {dimensions}",
            v.len()
        ));
    }
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(format!(
            "the provider returned a non-finite value ({}) at dimension {i}",
            v[i]
        )),
        None => Ok(v),
    }
}

async fn with_retries<P: Provider + ?Sized>(
    provider: &P,
    inputs: &[String],
) -> Result<Vec<Vec<f32>>, RequestError> {
    let mut attempt = 0;
    loop {
        match provider.request(inputs).await {
            Err(RequestError::Unavailable {
                message,
                retry_after,
            }) => {
                attempt += 1;
                let wait = retry_after.unwrap_or(Duration::from_millis(250 << attempt));
                if attempt >= ATTEMPTS || wait > LONGEST_WAIT {
                    return Err(RequestError::Unavailable {
                        message,
                        retry_after,
                    });
                }
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// What building a provider takes from the server's settings.
pub struct ProviderSettings {
    /// The server's key for the configuration's `api_key_name`, if it holds one.
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// Where the local models are.
    pub model_dir: std::path::PathBuf,
    /// How the local model runs.
    pub model_runtime: crate::local::Runtime,
    /// `ai_loader.http_allowed_hosts`: hosts that may be reached although their
    /// addresses are loopback, private or link-local. They get no key for that.
    pub http_allowed_hosts: Vec<String>,
    /// `ai_loader.api_key_endpoints`: the endpoints, besides each provider's default,
    /// that a superuser trusts with the server's API keys (and lets it reach).
    pub api_key_endpoints: Vec<String>,
    /// The endpoint the server's environment names instead of the provider's default
    /// (`OPENAI_API_BASE`, `VOYAGE_API_BASE`, …).
    pub default_base_url: Option<String>,
    /// The server's AWS identities (default credentials, assumed roles), for Bedrock.
    pub aws: Option<Arc<UriLoader>>,
}

impl ProviderSettings {
    /// Where `api`'s requests go when the configuration names no endpoint: the one the
    /// server's environment names instead of the provider's, or the provider's own.
    pub fn default_endpoint(&self, api: &Api) -> Option<&str> {
        self.default_base_url.as_deref().or(api.default_base_url())
    }
}

/// Why a provider cannot be built.
#[derive(Debug)]
pub enum ProviderError {
    /// Its endpoint is somewhere the settings do not let the server go.
    Refused(String),
    /// Anything else: a local model that is missing, a malformed URL.
    Unusable(String),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Refused(m) | ProviderError::Unusable(m) => f.write_str(m),
        }
    }
}

/// The provider a vectorizer's embedding configuration names, embedding for `purpose`.
pub fn provider(
    config: &Embedding,
    purpose: Purpose,
    settings: &ProviderSettings,
) -> Result<Box<dyn Provider>, ProviderError> {
    let service = config
        .service()
        .map_err(|e| ProviderError::Unusable(e.message))?
        .for_purpose(purpose);
    let endpoint = || {
        let default = settings.default_endpoint(&service.api);
        if service.base_url.is_none() && default.is_none() {
            return Err(ProviderError::Unusable(format!(
                "{} needs an endpoint: extra_options => '{{\"api_base\": \"https://<resource>.openai.azure.com\"}}', or AZURE_API_BASE in the server's environment",
                service.api.provider_name()
            )));
        }
        Endpoint::new(service.base_url.as_deref(), default, settings)
    };
    Ok(match &service.api {
        Api::OpenAi { .. } | Api::Azure { .. } | Api::Mistral | Api::Voyage { .. } => {
            Box::new(openai::provider(&service, endpoint()?).ok_or_else(|| {
                ProviderError::Unusable(format!(
                    "invalid endpoint for {}",
                    service.api.provider_name()
                ))
            })?)
        }
        Api::Cohere { input_type } => Box::new(cohere::Cohere {
            endpoint: endpoint()?,
            model: service.model.clone(),
            input_type: input_type.clone(),
            dimensions: service.dimensions,
        }),
        Api::Ollama {
            options,
            keep_alive,
        } => Box::new(ollama::Ollama {
            endpoint: endpoint()?,
            model: service.model.clone(),
            options: options.clone(),
            keep_alive: keep_alive.clone(),
            dimensions: service.dimensions,
        }),
        Api::Bedrock(target) => {
            let aws = settings.aws.clone().ok_or_else(|| {
                ProviderError::Unusable("Bedrock needs the server's AWS configuration".into())
            })?;
            if target.access_key_id.is_some() && settings.api_key.is_none() {
                return Err(ProviderError::Unusable(
                    "the server holds no AWS_SECRET_ACCESS_KEY for the configuration's aws_access_key_id".into(),
                ));
            }
            Box::new(bedrock::Bedrock::new(
                &service,
                target.clone(),
                aws,
                settings.api_key.clone(),
            ))
        }
        Api::Local => Box::new(crate::local::Local {
            model: crate::local::LocalModel::shared(
                &settings.model_dir.join(&service.model),
                &settings.model_runtime,
            )
            .map_err(ProviderError::Unusable)?,
        }),
    })
}

/// Whether embedding with `config` would send the server's API key somewhere: the
/// server holds a key for it and its endpoint is trusted with keys.
pub fn sends_server_key(config: &Embedding, settings: &ProviderSettings) -> bool {
    let Ok(service) = config.service() else {
        return false;
    };
    let default = settings.default_endpoint(&service.api);
    let Some(base_url) = service.base_url.as_deref().or(default) else {
        return false;
    };
    let base_url = base_url.trim_end_matches('/');
    settings.api_key.is_some()
        && service.api_key_name.is_some()
        && reqwest::Url::parse(base_url)
            .is_ok_and(|url| http::gets_key(base_url, &url, default, settings))
}

#[cfg(test)]
mod tests {
    use super::http::{error_message, httpdate, retry_after};
    use super::*;

    const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
    const OLLAMA_BASE_URL: &str = "http://localhost:11434";

    fn embed<P: Provider>(
        p: &P,
        dimensions: usize,
        inputs: &[String],
    ) -> Result<Embedded, BatchError> {
        block_on(embed_all(p, dimensions, inputs, &Semaphore::new(4)))
    }
    use std::future::Future;
    use std::sync::Mutex;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    type Answer =
        Box<dyn Fn(&[String], usize) -> Result<Vec<Vec<f32>>, RequestError> + Send + Sync>;

    /// A provider scripted by a function of the request's inputs and call number.
    struct Fake {
        calls: Mutex<Vec<usize>>,
        answer: Answer,
        max_inputs: usize,
    }

    impl Provider for Fake {
        fn max_inputs(&self) -> usize {
            self.max_inputs
        }
        fn max_tokens(&self) -> usize {
            1000
        }
        fn request<'a>(
            &'a self,
            inputs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(inputs.len());
                calls.len()
            };
            let r = (self.answer)(inputs, n);
            Box::pin(async move { r })
        }
    }

    fn fake(
        max_inputs: usize,
        answer: impl Fn(&[String], usize) -> Result<Vec<Vec<f32>>, RequestError> + Send + Sync + 'static,
    ) -> Fake {
        Fake {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(answer),
            max_inputs,
        }
    }

    fn inputs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("input {i}")).collect()
    }

    #[test]
    fn batches_to_the_provider_limit() {
        let p = fake(4, |inputs, _| {
            Ok(inputs.iter().map(|_| vec![1.0, 0.0]).collect())
        });
        let out = embed(&p, 2, &inputs(10)).unwrap();
        assert_eq!(out.len(), 10);
        assert_eq!(*p.calls.lock().unwrap(), vec![4, 4, 2]);
    }

    /// Counts the requests in flight, each taking 20 ms.
    struct Slow {
        in_flight: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        one_at_a_time: bool,
    }

    impl Provider for Slow {
        fn max_inputs(&self) -> usize {
            1
        }
        fn max_tokens(&self) -> usize {
            1000
        }
        fn concurrent_requests(&self) -> usize {
            if self.one_at_a_time {
                1
            } else {
                usize::MAX
            }
        }
        fn request<'a>(
            &'a self,
            inputs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
            use std::sync::atomic::Ordering::SeqCst;
            Box::pin(async move {
                let now = self.in_flight.fetch_add(1, SeqCst) + 1;
                self.most.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.in_flight.fetch_sub(1, SeqCst);
                Ok(inputs.iter().map(|_| vec![1.0]).collect())
            })
        }
    }

    #[test]
    fn requests_run_at_once_up_to_the_slots() {
        for (one_at_a_time, expected) in [(false, 4), (true, 1)] {
            let p = Slow {
                in_flight: Default::default(),
                most: Default::default(),
                one_at_a_time,
            };
            let out = embed(&p, 1, &inputs(10)).unwrap();
            assert_eq!(out.len(), 10);
            assert_eq!(p.most.into_inner(), expected);
        }
    }

    /// Sends its inputs shortest first, two a request; embeds an input to its length
    /// and rejects the input "bad".
    struct ByLength {
        requests: Mutex<Vec<Vec<String>>>,
    }

    impl Provider for ByLength {
        fn max_inputs(&self) -> usize {
            2
        }
        fn max_tokens(&self) -> usize {
            1000
        }
        fn order(&self, inputs: &[String]) -> Option<Vec<usize>> {
            let mut order: Vec<usize> = (0..inputs.len()).collect();
            order.sort_by_key(|&i| inputs[i].len());
            Some(order)
        }
        fn request<'a>(
            &'a self,
            inputs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
            self.requests.lock().unwrap().push(inputs.to_vec());
            Box::pin(async move {
                match inputs.iter().any(|i| i == "bad") {
                    true => Err(RequestError::Rejected("HTTP 400: bad".into())),
                    false => Ok(inputs.iter().map(|i| vec![i.len() as f32]).collect()),
                }
            })
        }
    }

    #[test]
    fn inputs_go_in_the_providers_order_and_come_back_in_theirs() {
        let p = ByLength {
            requests: Mutex::new(vec![]),
        };
        let inputs: Vec<String> = ["ccccc", "a", "bad", "dddddddd", "bb"]
            .map(String::from)
            .into();
        let out = embed(&p, 1, &inputs).unwrap();
        let requests = p.requests.lock().unwrap().clone();
        assert_eq!(requests[..2], [vec!["a", "bb"], vec!["bad", "ccccc"]]);
        assert_eq!(
            out,
            vec![
                Ok(vec![5.0]),
                Ok(vec![1.0]),
                Err("HTTP 400: bad".to_string()),
                Ok(vec![8.0]),
                Ok(vec![2.0])
            ]
        );
    }

    #[test]
    fn a_rejected_input_is_isolated() {
        let p = fake(100, |inputs, _| {
            if inputs.iter().any(|i| i == "input 5") {
                Err(RequestError::Rejected("HTTP 400: bad input".into()))
            } else {
                Ok(inputs.iter().map(|_| vec![0.5]).collect())
            }
        });
        let out = embed(&p, 1, &inputs(8)).unwrap();
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 7);
        assert_eq!(out[5], Err("HTTP 400: bad input".to_string()));
    }

    #[test]
    fn outages_are_retried_then_fail_the_batch() {
        let p = fake(10, |inputs, call| {
            if call < 3 {
                Err(RequestError::Unavailable {
                    message: "HTTP 500: down".into(),
                    retry_after: Some(Duration::from_millis(1)),
                })
            } else {
                Ok(inputs.iter().map(|_| vec![0.0]).collect())
            }
        });
        assert!(embed(&p, 1, &inputs(3)).is_ok(), "third attempt succeeds");

        let p = fake(10, |_, _| {
            Err(RequestError::Unavailable {
                message: "HTTP 429: slow down".into(),
                retry_after: Some(Duration::from_secs(60)),
            })
        });
        let e = embed(&p, 1, &inputs(3)).unwrap_err();
        assert_eq!(e.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(
            p.calls.lock().unwrap().len(),
            1,
            "a long Retry-After is not waited out in the batch"
        );
    }

    #[test]
    fn wrong_dimensions_fail_the_batch() {
        let p = fake(10, |inputs, _| {
            Ok(inputs.iter().map(|_| vec![0.0; 3]).collect())
        });
        let e = embed(&p, 4, &inputs(2)).unwrap_err();
        assert_eq!(
            e.message,
            "the provider returned embeddings of 3 dimensions, the vectorizer expects 4"
        );
    }

    #[test]
    fn an_unusable_vector_fails_its_input_alone() {
        let p = fake(10, |inputs, _| {
            Ok(inputs
                .iter()
                .map(|i| match i.as_str() {
                    "input 1" => vec![f32::INFINITY, 0.0],
                    "input 2" => vec![0.0, 1.0, 2.0],
                    _ => vec![1.0, 0.0],
                })
                .collect())
        });
        let out = embed(&p, 2, &inputs(4)).unwrap();
        assert_eq!(out[0], Ok(vec![1.0, 0.0]));
        assert_eq!(
            out[1],
            Err("the provider returned a non-finite value (inf) at dimension 0".to_string())
        );
        assert_eq!(
            out[2],
            Err(
                "the provider returned 3 dimensions for this input, the vectorizer expects 2"
                    .to_string()
            )
        );
        assert_eq!(out[3], Ok(vec![1.0, 0.0]));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(784111777))
        );
    }

    #[test]
    fn error_messages() {
        let s = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            error_message(
                s,
                r#"{"error": {"message": "Invalid input", "type": "invalid_request_error"}}"#
            ),
            "HTTP 400: Invalid input"
        );
        assert_eq!(
            error_message(s, r#"{"error": "model not found"}"#),
            "HTTP 400: model not found"
        );
    }

    fn settings(hosts: &[&str], key_endpoints: &[&str]) -> ProviderSettings {
        ProviderSettings {
            api_key: Some("sk-server".into()),
            timeout: Duration::from_secs(1),
            model_dir: "/nonexistent".into(),
            model_runtime: crate::local::Runtime {
                library: "/nonexistent".into(),
                threads: 1,
            },
            http_allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            api_key_endpoints: key_endpoints.iter().map(|h| h.to_string()).collect(),
            default_base_url: None,
            aws: None,
        }
    }

    /// Whether the endpoint gets the server's key.
    fn gets_key(
        base_url: Option<&str>,
        default: &str,
        hosts: &[&str],
        key_endpoints: &[&str],
    ) -> Result<bool, ProviderError> {
        Endpoint::new(base_url, Some(default), &settings(hosts, key_endpoints))
            .map(|e| e.gets_key())
    }

    #[test]
    fn keys_go_only_to_the_default_endpoint_and_listed_endpoints() {
        assert!(gets_key(None, OPENAI_BASE_URL, &[], &[]).unwrap());
        assert!(gets_key(
            Some("https://api.openai.com/v1/"),
            OPENAI_BASE_URL,
            &[],
            &[]
        )
        .unwrap());
        let proxy = Some("https://embeddings.example.com/v1");
        assert!(!gets_key(proxy, OPENAI_BASE_URL, &[], &[]).unwrap());
        // A host allowed for its address is reached, but without the key.
        assert!(!gets_key(proxy, OPENAI_BASE_URL, &["embeddings.example.com"], &[]).unwrap());
        let local = Some("http://127.0.0.1:8000/v1");
        assert!(!gets_key(local, OPENAI_BASE_URL, &["127.0.0.1"], &[]).unwrap());
        assert!(gets_key(local, OPENAI_BASE_URL, &[], &["http://127.0.0.1:8000/v1"]).unwrap());
        // Listed for keys: another port of the same host is neither keyed nor reachable.
        match gets_key(
            Some("http://127.0.0.1:8001/v1"),
            OPENAI_BASE_URL,
            &[],
            &["http://127.0.0.1:8000/v1"],
        ) {
            Err(ProviderError::Refused(_)) => {}
            other => panic!("{other:?}"),
        }
        assert!(!gets_key(
            Some("http://127.0.0.1:8001/v1"),
            OPENAI_BASE_URL,
            &["127.0.0.1"],
            &["http://127.0.0.1:8000/v1"]
        )
        .unwrap());

        let openai = |base_url: Option<&str>| Embedding::Openai {
            model: "m".into(),
            dimensions: 8,
            chat_user: None,
            api_key_name: "OPENAI_API_KEY".into(),
            base_url: base_url.map(Into::into),
        };
        let s = settings(&["127.0.0.1"], &["http://127.0.0.1:8000/v1"]);
        assert!(sends_server_key(&openai(None), &s));
        assert!(sends_server_key(
            &openai(Some("http://127.0.0.1:8000/v1")),
            &s
        ));
        assert!(!sends_server_key(
            &openai(Some("http://127.0.0.1:9999/v1")),
            &s
        ));
        let keyless = ProviderSettings {
            api_key: None,
            ..settings(&[], &[])
        };
        assert!(!sends_server_key(&openai(None), &keyless));
    }

    #[test]
    fn azure_needs_an_endpoint() {
        let azure = Embedding::Litellm {
            model: "azure/text-embedding-3-small".into(),
            dimensions: 8,
            api_key_name: None,
            extra_options: None,
        };
        let s = settings(&[], &[]);
        match provider(&azure, Purpose::Store, &s) {
            Err(ProviderError::Unusable(m)) => {
                assert!(m.starts_with("Azure OpenAI needs an endpoint"), "{m}")
            }
            other => panic!("{:?}", other.err()),
        }
        let with_env = ProviderSettings {
            default_base_url: Some("https://res.openai.azure.com".into()),
            ..settings(&[], &[])
        };
        assert!(provider(&azure, Purpose::Store, &with_env).is_ok());
        assert!(sends_server_key(&azure, &with_env));
        assert!(!sends_server_key(&azure, &s));
    }

    #[test]
    fn other_endpoints_reach_public_addresses_or_listed_hosts_only() {
        assert!(gets_key(None, OLLAMA_BASE_URL, &[], &[]).unwrap()); // Ollama's default: localhost
        assert!(gets_key(
            Some("http://127.0.0.1:8000/v1"),
            OPENAI_BASE_URL,
            &["127.0.0.1"],
            &[]
        )
        .is_ok());
        for url in [
            "http://169.254.169.254/latest",
            "http://10.0.0.1:8000/v1",
            "http://[::1]:11434",
            "http://127.0.0.1:11434",
        ] {
            match gets_key(Some(url), OLLAMA_BASE_URL, &[], &[]) {
                Err(ProviderError::Refused(m)) => {
                    assert!(m.contains("ai_loader.http_allowed_hosts"), "{url}: {m}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
