//! What the HTTP providers share: where an endpoint is and whether it gets the server's
//! key (SSRF rules included), one JSON request with the answer capped while it streams,
//! and errors sorted into what to retry, what to isolate and what to fix.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ProviderError, ProviderSettings, RequestError};
use crate::loading::guard;

/// How the key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI, Mistral, VoyageAI, Cohere).
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader,
}

/// Where an HTTP provider is reached. The server's API key goes only to the provider's
/// default endpoint and to the endpoints a superuser listed in `ai_loader.api_key_endpoints`
/// (scheme, host, port and path compared). Any other `base_url` is whatever a
/// vectorizer's creator chose, so it gets what a URI being loaded gets: public addresses
/// only, unless its host is in `ai_loader.http_allowed_hosts` (the instance metadata
/// service and the server's private network stay out of reach), and no key. Redirects
/// are not followed.
pub struct Endpoint {
    client: reqwest::Client,
    pub base_url: String,
    key: Option<String>,
    /// The server has a key, but not for this endpoint: said when the provider asks.
    key_withheld: bool,
}

impl Endpoint {
    /// `default`: the provider's own endpoint (or the one the server's environment
    /// names instead), which gets the key.
    pub fn new(
        base_url: Option<&str>,
        default: Option<&str>,
        settings: &ProviderSettings,
    ) -> Result<Self, ProviderError> {
        let base_url = base_url
            .or(default)
            .ok_or_else(|| ProviderError::Unusable("no endpoint".into()))?
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
            key: settings.api_key.clone().filter(|_| gets_key),
            key_withheld: settings.api_key.is_some() && !gets_key,
        })
    }

    #[cfg(test)]
    pub fn gets_key(&self) -> bool {
        self.key.is_some()
    }

    /// POSTs `body` to `url` (under `base_url`) and reads the answer as `T`, refusing
    /// an answer of more than `limit` bytes before reading it all.
    pub async fn post<T: DeserializeOwned + Send + 'static>(
        &self,
        url: &str,
        auth: Auth,
        body: &Value,
        limit: usize,
    ) -> Result<T, RequestError> {
        let mut request = self.client.post(url).json(body);
        if let Some(key) = &self.key {
            request = match auth {
                Auth::Bearer => request.bearer_auth(key),
                Auth::ApiKeyHeader => request.header("api-key", key),
            };
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer = read_capped(response, limit).await?;
        if status.is_redirection() {
            return Err(RequestError::Fatal(format!(
                "HTTP {}: a redirect, which is not followed; set base_url to where it leads",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(match classify(status, &headers, &String::from_utf8_lossy(&answer)) {
                RequestError::Fatal(m)
                    if self.key_withheld && matches!(status.as_u16(), 401 | 403) =>
                {
                    RequestError::Fatal(format!("{m} (the server's API key goes only to the provider's default endpoint and to the endpoints in ai_loader.api_key_endpoints)"))
                }
                e => e,
            });
        }
        // Decoding megabytes of numbers is CPU work: off the threads that drive the
        // network, so that the documents in flight are not kept waiting.
        let decoded = tokio::task::spawn_blocking(move || serde_json::from_slice::<T>(&answer))
            .await
            .map_err(|e| {
                RequestError::Fatal(format!("decoding the provider's response failed: {e}"))
            })?;
        decoded.map_err(|e| {
            RequestError::Fatal(format!(
                "the provider's response is not the expected JSON: {e}"
            ))
        })
    }
}

async fn read_capped(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, RequestError> {
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
    Ok(answer)
}

/// Whether the server's key may go to `base_url`: the provider's default endpoint, or
/// one a superuser listed.
pub fn gets_key(
    base_url: &str,
    url: &reqwest::Url,
    default: Option<&str>,
    settings: &ProviderSettings,
) -> bool {
    default.is_some_and(|d| base_url == d.trim_end_matches('/'))
        || guard::endpoint_listed(&settings.api_key_endpoints, url)
}

/// The most bytes an answer of `inputs` embeddings of `dimensions` may take: every value
/// written out in full (about 25 characters), and room for the rest of the JSON. A
/// larger answer is not read further: a provider's fault, it fails the batch.
pub fn answer_limit(inputs: usize, dimensions: i32) -> usize {
    (1 << 20) + inputs * (dimensions.max(1) as usize * 32 + 1024)
}

/// `Retry-After` as seconds or an HTTP date, or OpenAI's `retry-after-ms`.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
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
pub(super) fn httpdate(s: &str) -> Option<std::time::SystemTime> {
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

/// The message of an error response: OpenAI's and Azure's `{"error": {"message"}}`,
/// Ollama's `{"error": "…"}`, VoyageAI's `{"detail": "…"}`, Cohere's `{"message": "…"}`,
/// or the start of the body.
pub(super) fn error_message(status: reqwest::StatusCode, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(|v| {
            ["/error/message", "/error", "/detail", "/message"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(Value::as_str))
        })
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(200).collect());
    format!("HTTP {}: {detail}", status.as_u16())
}

pub fn classify(
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

pub fn transport_error(e: reqwest::Error) -> RequestError {
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
