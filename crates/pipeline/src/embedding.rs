//! Embedding providers behind one trait: OpenAI-compatible servers (`/embeddings`) and
//! Ollama (`/api/embed`). Inputs are batched to the provider's limits; throttling and
//! outages are retried with backoff honouring `Retry-After`, then reported for the whole
//! batch; an input the provider rejects is isolated by bisection and reported alone.

use std::sync::Arc;
use std::time::Duration;

use ai_loader_config::embedding::Embedding;
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::loading::guard;

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
}

/// Retries of one request within a batch before the batch gives up.
const ATTEMPTS: u32 = 3;
/// The longest wait within a batch; a longer Retry-After ends the batch instead.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

fn estimated_tokens(text: &str) -> usize {
    text.len() / 3 + 1
}

/// Embeds `inputs`, each to a vector of `dimensions` or its own error; or fails the
/// whole batch when the provider is unavailable or misconfigured.
pub async fn embed_all<P: Provider + ?Sized>(
    provider: &P,
    dimensions: usize,
    inputs: &[String],
) -> Result<Embedded, BatchError> {
    let mut out = Vec::with_capacity(inputs.len());
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
        out.extend(isolate(provider, dimensions, &inputs[start..end]).await?);
        start = end;
    }
    Ok(out)
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

/// `Retry-After` as seconds or an HTTP date, or OpenAI's `retry-after-ms`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(secs.max(0.0)));
    }
    let when = httpdate(value)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + m * 60 + sec;
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
}

/// The message of an error response: OpenAI's `{"error": {"message"}}`, Ollama's
/// `{"error": "…"}`, or the start of the body.
fn error_message(status: reqwest::StatusCode, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(200).collect());
    format!("HTTP {}: {detail}", status.as_u16())
}

fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> RequestError {
    let message = error_message(status, body);
    match status.as_u16() {
        408 | 409 | 425 | 429 | 500..=599 => RequestError::Unavailable {
            message,
            retry_after: retry_after(headers),
        },
        400 | 413 | 422 => RequestError::Rejected(message),
        _ => RequestError::Fatal(message),
    }
}

fn transport_error(e: reqwest::Error) -> RequestError {
    // An address the settings refuse: no retry will reach it.
    if let Some(refused) = guard::refusal(&e) {
        return RequestError::Fatal(refused.to_string());
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    // reqwest's messages name the URL (left out here), never a header.
    RequestError::Unavailable {
        message: format!("{kind}: {}", crate::loading::causes(e).trim()),
        retry_after: None,
    }
}

/// The most bytes an answer of `inputs` embeddings of `dimensions` may take: every value
/// written out in full (about 25 characters), and room for the rest of the JSON. A
/// larger answer is not read further: a provider's fault, it fails the batch.
fn answer_limit(inputs: usize, dimensions: i32) -> usize {
    (1 << 20) + inputs * (dimensions.max(1) as usize * 32 + 1024)
}

async fn post_json(
    client: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    body: &Value,
    limit: usize,
) -> Result<Value, RequestError> {
    use futures::StreamExt;
    let mut request = client.post(url).json(body);
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    let headers = response.headers().clone();
    let too_large = || {
        RequestError::Fatal(format!(
            "the provider's answer is larger than {limit} bytes, more than the embeddings asked for take"
        ))
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut answer = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport_error)?;
        if answer.len() + chunk.len() > limit {
            return Err(too_large());
        }
        answer.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&answer);
    if status.is_redirection() {
        return Err(RequestError::Fatal(format!(
            "HTTP {}: a redirect, which is not followed; set base_url to where it leads",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(classify(status, &headers, &text));
    }
    serde_json::from_str(&text).map_err(|e| {
        RequestError::Fatal(format!(
            "the provider's response is not the expected JSON: {e}"
        ))
    })
}

fn vectors(values: Option<&Vec<Value>>) -> Result<Vec<Vec<f32>>, RequestError> {
    let bad = || RequestError::Fatal("the provider's response has no embeddings".into());
    values
        .ok_or_else(bad)?
        .iter()
        .map(|v| {
            v.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(bad))
                .collect()
        })
        .collect()
}

/// An OpenAI-compatible `/embeddings` endpoint.
pub struct OpenAi {
    pub client: reqwest::Client,
    pub base_url: String,
    pub model: String,
    pub dimensions: i32,
    pub user: Option<String>,
    pub api_key: Option<String>,
    /// The server has a key, but not for this endpoint: said when the provider asks.
    pub key_withheld: bool,
}

pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

impl Provider for OpenAi {
    fn max_inputs(&self) -> usize {
        2048
    }
    fn max_tokens(&self) -> usize {
        250_000
    }
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
        Box::pin(async move {
            let mut body =
                json!({"model": self.model, "input": inputs, "encoding_format": "float"});
            // Only the text-embedding-3 generation and compatible servers take dimensions.
            if self.model != "text-embedding-ada-002" {
                body["dimensions"] = json!(self.dimensions);
            }
            if let Some(user) = &self.user {
                body["user"] = json!(user);
            }
            let url = format!("{}/embeddings", self.base_url.trim_end_matches('/'));
            let limit = answer_limit(inputs.len(), self.dimensions);
            let response = post_json(&self.client, &url, self.api_key.as_deref(), &body, limit)
                .await
                .map_err(|e| match e {
                    RequestError::Fatal(m) if self.key_withheld && m.starts_with("HTTP 401") => {
                        RequestError::Fatal(format!("{m} (the server's API key goes only to the provider's default endpoint and to the endpoints in ai_loader.api_key_endpoints)"))
                    }
                    e => e,
                })?;
            let mut data: Vec<(usize, Value)> = response
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| RequestError::Fatal("the provider's response has no data".into()))?
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let index = d
                        .get("index")
                        .and_then(Value::as_u64)
                        .map_or(i, |x| x as usize);
                    (index, d.get("embedding").cloned().unwrap_or(Value::Null))
                })
                .collect();
            data.sort_by_key(|(i, _)| *i);
            let embeddings: Vec<Value> = data.into_iter().map(|(_, e)| e).collect();
            vectors(Some(&embeddings))
        })
    }
}

/// An Ollama server's `/api/embed`.
pub struct Ollama {
    pub client: reqwest::Client,
    pub base_url: String,
    pub model: String,
    pub options: Option<Value>,
    pub keep_alive: Option<String>,
    pub dimensions: i32,
}

pub const OLLAMA_BASE_URL: &str = "http://localhost:11434";

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
            let url = format!("{}/api/embed", self.base_url.trim_end_matches('/'));
            let limit = answer_limit(inputs.len(), self.dimensions);
            let response = post_json(&self.client, &url, None, &body, limit).await?;
            vectors(response.get("embeddings").and_then(Value::as_array))
        })
    }
}

/// What building a provider takes from the server's settings.
pub struct ProviderSettings {
    /// The server's key for the configuration's `api_key_name`, if it holds one.
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// Where the local models are.
    pub model_dir: std::path::PathBuf,
    /// `ai_loader.http_allowed_hosts`: hosts that may be reached although their
    /// addresses are loopback, private or link-local. They get no key for that.
    pub http_allowed_hosts: Vec<String>,
    /// `ai_loader.api_key_endpoints`: the endpoints, besides each provider's default,
    /// that a superuser trusts with the server's API keys (and lets it reach).
    pub api_key_endpoints: Vec<String>,
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

/// The provider a vectorizer's embedding configuration names.
pub fn provider(
    config: &Embedding,
    settings: &ProviderSettings,
) -> Result<Box<dyn Provider>, ProviderError> {
    match config {
        Embedding::Openai {
            model,
            dimensions,
            chat_user,
            base_url,
            ..
        } => {
            let endpoint = Endpoint::new(base_url.as_deref(), OPENAI_BASE_URL, settings)?;
            Ok(Box::new(OpenAi {
                client: endpoint.client,
                base_url: endpoint.base_url,
                model: model.clone(),
                dimensions: *dimensions,
                user: chat_user.clone(),
                key_withheld: settings.api_key.is_some() && !endpoint.gets_key,
                api_key: settings.api_key.clone().filter(|_| endpoint.gets_key),
            }))
        }
        Embedding::Ollama {
            model,
            base_url,
            options,
            keep_alive,
            dimensions,
        } => {
            let endpoint = Endpoint::new(base_url.as_deref(), OLLAMA_BASE_URL, settings)?;
            Ok(Box::new(Ollama {
                client: endpoint.client,
                base_url: endpoint.base_url,
                model: model.clone(),
                options: options.clone(),
                keep_alive: keep_alive.clone(),
                dimensions: *dimensions,
            }))
        }
        Embedding::Local { model, .. } => Ok(Box::new(crate::local::Local {
            model: crate::local::LocalModel::shared(&settings.model_dir.join(model))
                .map_err(ProviderError::Unusable)?,
        })),
    }
}

/// Where an HTTP provider is reached. The server's API key goes only to the provider's
/// default endpoint and to the endpoints a superuser listed in `ai_loader.api_key_endpoints`
/// (scheme, host, port and path compared). Any other `base_url` is whatever a
/// vectorizer's creator chose, so it gets what a URI being loaded gets: public addresses
/// only, unless its host is in `ai_loader.http_allowed_hosts` (the instance metadata
/// service and the server's private network stay out of reach), and no key. Redirects
/// are not followed.
struct Endpoint {
    client: reqwest::Client,
    base_url: String,
    gets_key: bool,
}

impl Endpoint {
    fn new(
        base_url: Option<&str>,
        default: &str,
        settings: &ProviderSettings,
    ) -> Result<Self, ProviderError> {
        let base_url = base_url
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string();
        let url = reqwest::Url::parse(&base_url)
            .map_err(|e| ProviderError::Unusable(format!("base_url {base_url}: {e}")))?;
        let allowed = &settings.http_allowed_hosts;
        let gets_key = gets_key(&base_url, &url, default, settings);
        let any_address =
            gets_key || guard::host_allowed(allowed, url.host_str().unwrap_or_default());
        let mut client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none());
        if !any_address {
            guard::check_url(&url, allowed)
                .map_err(|e| ProviderError::Refused(format!("base_url {base_url}: {e}")))?;
            client = client.dns_resolver(Arc::new(guard::PublicOnly {
                allowed: Arc::new(allowed.clone()),
            }));
        }
        Ok(Endpoint {
            client: client
                .build()
                .map_err(|e| ProviderError::Unusable(format!("HTTP client: {e}")))?,
            base_url,
            gets_key,
        })
    }
}

/// Whether the server's key may go to `base_url`: the provider's default endpoint, or
/// one a superuser listed.
fn gets_key(
    base_url: &str,
    url: &reqwest::Url,
    default: &str,
    settings: &ProviderSettings,
) -> bool {
    base_url == default || guard::endpoint_listed(&settings.api_key_endpoints, url)
}

/// Whether embedding with `config` would send the server's API key somewhere: the
/// server holds a key for it and its endpoint is trusted with keys.
pub fn sends_server_key(config: &Embedding, settings: &ProviderSettings) -> bool {
    let Embedding::Openai { base_url, .. } = config else {
        return false;
    };
    let base_url = base_url
        .as_deref()
        .unwrap_or(OPENAI_BASE_URL)
        .trim_end_matches('/');
    settings.api_key.is_some()
        && reqwest::Url::parse(base_url)
            .is_ok_and(|url| gets_key(base_url, &url, OPENAI_BASE_URL, settings))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let out = block_on(embed_all(&p, 2, &inputs(10))).unwrap();
        assert_eq!(out.len(), 10);
        assert_eq!(*p.calls.lock().unwrap(), vec![4, 4, 2]);
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
        let out = block_on(embed_all(&p, 1, &inputs(8))).unwrap();
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
        assert!(
            block_on(embed_all(&p, 1, &inputs(3))).is_ok(),
            "third attempt succeeds"
        );

        let p = fake(10, |_, _| {
            Err(RequestError::Unavailable {
                message: "HTTP 429: slow down".into(),
                retry_after: Some(Duration::from_secs(60)),
            })
        });
        let e = block_on(embed_all(&p, 1, &inputs(3))).unwrap_err();
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
        let e = block_on(embed_all(&p, 4, &inputs(2))).unwrap_err();
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
        let out = block_on(embed_all(&p, 2, &inputs(4))).unwrap();
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
            http_allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            api_key_endpoints: key_endpoints.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// Whether the endpoint gets the server's key.
    fn gets_key(
        base_url: Option<&str>,
        default: &str,
        hosts: &[&str],
        key_endpoints: &[&str],
    ) -> Result<bool, ProviderError> {
        Endpoint::new(base_url, default, &settings(hosts, key_endpoints)).map(|e| e.gets_key)
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
