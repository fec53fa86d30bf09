//! S3 objects through the AWS SDK: the default credential chain of the server's
//! environment, or an assumed role; errors turned into what to check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::{too_large, LoadError, Loaded, Settings};
use crate::parsing::Document;

/// The `RoleSessionName` of every AssumeRole call, as CloudTrail shows it.
pub const SESSION_NAME: &str = "ai_loader";

static ASSUME_ROLE_CALLS: AtomicU64 = AtomicU64::new(0);
static GET_OBJECT_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many times this process asked STS for role credentials.
pub fn assume_role_calls() -> u64 {
    ASSUME_ROLE_CALLS.load(Ordering::Relaxed)
}

/// How many GetObject requests this process sent (retries by the SDK not counted).
pub fn get_object_calls() -> u64 {
    GET_OBJECT_CALLS.load(Ordering::Relaxed)
}

/// Counts the calls that reach STS; the client's identity cache in front of it keeps
/// the credentials until shortly before they expire.
#[derive(Debug)]
struct Counted(AssumeRoleProvider);

impl ProvideCredentials for Counted {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        ASSUME_ROLE_CALLS.fetch_add(1, Ordering::Relaxed);
        self.0.provide_credentials()
    }
}

/// The SDK configuration of the server's environment: credentials, region, endpoints
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, …), with our timeouts and TLS.
pub async fn sdk_config(settings: &Settings) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .operation_attempt_timeout(settings.timeout)
        .build();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .load()
        .await;
    if sdk.region().is_some() {
        sdk
    } else {
        sdk.into_builder().region(Region::new("us-east-1")).build()
    }
}

pub struct S3 {
    client: aws_sdk_s3::Client,
    /// The SDK configuration with the role's credentials, for other services (SQS): one
    /// identity cache, so the role is assumed once for all of them.
    sdk: aws_config::SdkConfig,
    role: Option<String>,
}

/// The SDK configuration acting as `role` (assumed with `session` as its
/// RoleSessionName, `ai_loader` by default, and the server's ExternalId), or as the
/// server's own identity. Its identity cache keeps the role's credentials until
/// shortly before they expire, for every client made from it.
pub async fn identity(
    settings: &Settings,
    role: Option<&str>,
    session: Option<&str>,
) -> aws_config::SdkConfig {
    let sdk = sdk_config(settings).await;
    let Some(arn) = role else {
        return sdk;
    };
    let mut provider = AssumeRoleProvider::builder(arn)
        .session_name(session.unwrap_or(SESSION_NAME))
        .configure(&sdk);
    if let Some(id) = &settings.external_id {
        provider = provider.external_id(id);
    }
    let provider = SharedCredentialsProvider::new(Counted(provider.build().await));
    sdk.into_builder().credentials_provider(provider).build()
}

impl S3 {
    /// An S3 client acting with `sdk`, the identity of `role`.
    pub fn new(settings: &Settings, sdk: aws_config::SdkConfig, role: Option<&str>) -> Self {
        let mut config =
            aws_sdk_s3::config::Builder::from(&sdk).force_path_style(settings.s3_force_path_style);
        if let Some(endpoint) = &settings.s3_endpoint {
            config = config.endpoint_url(endpoint);
        }
        S3 {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            sdk,
            role: role.map(str::to_string),
        }
    }

    /// An SQS client with the same credentials, in `region` (the queue's) if given, whose
    /// requests may take `attempt_timeout` (a long poll waits).
    pub fn sqs(&self, region: Option<String>, attempt_timeout: Duration) -> aws_sdk_sqs::Client {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(attempt_timeout.min(Duration::from_secs(10)))
            .operation_attempt_timeout(attempt_timeout)
            .build();
        let mut config = aws_sdk_sqs::config::Builder::from(&self.sdk).timeout_config(timeouts);
        if let Some(region) = region {
            config = config.region(Region::new(region));
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    /// The role whose credentials this client uses, if any.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Gets an object, refusing it before the body is read when it is too large; with
    /// `etag`, an unchanged object is not downloaded at all (If-None-Match).
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
        max: u64,
    ) -> Result<Loaded, LoadError> {
        let what = format!("s3://{bucket}/{key}");
        let mut request = self.client.get_object().bucket(bucket).key(key);
        if let Some(etag) = etag {
            request = request.if_none_match(etag);
        }
        GET_OBJECT_CALLS.fetch_add(1, Ordering::Relaxed);
        let out = match request.send().await {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 304 => {
                return Ok(Loaded::Unchanged)
            }
            Err(e) => return Err(explain(&e, &what, bucket, key, self.role.as_deref())),
        };
        if let Some(len) = out
            .content_length()
            .map(|l| l.max(0) as u64)
            .filter(|l| *l > max)
        {
            return Err(LoadError::item(too_large(&what, len, max)));
        }
        let etag = out.e_tag().map(str::to_string);
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            LoadError::outage(format!("reading {what}: {}", DisplayErrorContext(&e)))
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(LoadError::item(too_large(&what, bytes.len() as u64, max)));
            }
        }
        Ok(Loaded::Document {
            document: Document {
                bytes,
                name: Some(key.to_string()),
                is_text: false,
            },
            etag,
        })
    }
}

/// What went wrong, and what to check; outages are marked so the batch can wait.
pub fn explain<E, R>(
    e: &SdkError<E, R>,
    what: &str,
    bucket: &str,
    key: &str,
    role: Option<&str>,
) -> LoadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let who = match role {
        Some(arn) => format!("the role {arn}"),
        None => "the server's AWS credentials".to_string(),
    };
    let detail = DisplayErrorContext(e).to_string();
    if let SdkError::ServiceError(service) = e {
        let err = service.err();
        let code = err.code().unwrap_or("");
        let message = err.message().unwrap_or("");
        return match code {
            "NoSuchKey" | "NotFound" => LoadError::item(format!("{what} does not exist (NoSuchKey): check the object key in the row")),
            "NoSuchBucket" => LoadError::item(format!(
                "bucket \"{bucket}\" does not exist (NoSuchBucket): check the bucket name, the region and ai_loader.s3_endpoint"
            )),
            "AccessDenied" | "Forbidden" => LoadError::item(format!(
                "access denied to {what} (AccessDenied): {who} needs s3:GetObject on arn:aws:s3:::{bucket}/{key}"
            )),
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => {
                LoadError::item(format!("S3 refused {who} ({code}): {message} — check the server's AWS credentials"))
            }
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
                LoadError::outage(format!("S3 is throttling or unavailable ({code}) fetching {what}"))
            }
            _ => LoadError::item(format!("fetching {what} failed ({code}): {message}")),
        };
    }
    // Credentials that could not be had: a role that may not be assumed, or none found.
    if detail.contains("AssumeRole")
        || detail.contains("credentials")
        || detail.contains("Credentials")
    {
        let hint = match role {
            Some(arn) => format!(
                "could not assume the role {arn}: check that its trust policy names the server's identity (and ExternalId, if set) and that the identity may sts:AssumeRole on it"
            ),
            None => "no AWS credentials found in the server's environment (env, shared files, web identity, ECS or EC2 metadata)".to_string(),
        };
        let outage = !detail.contains("AccessDenied")
            && (detail.contains("dispatch")
                || detail.contains("timed out")
                || detail.contains("io error"));
        let e = format!("{hint}: {detail}");
        return if outage {
            LoadError::outage(e)
        } else {
            LoadError::item(e)
        };
    }
    match e {
        SdkError::TimeoutError(_) => LoadError::outage(format!("timed out fetching {what}")),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            LoadError::outage(format!("could not reach S3 fetching {what}: {detail}"))
        }
        _ => LoadError::item(format!("fetching {what} failed: {detail}")),
    }
}
