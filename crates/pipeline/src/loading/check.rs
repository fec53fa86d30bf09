//! `ai.check_s3_access`: walks what loading an S3 object takes — credentials, the role,
//! the bucket, the object — and says which step fails and how to fix it.

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::s3::{sdk_config, SESSION_NAME};
use super::uri::Location;
use super::{scrub, Settings};

/// One step of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub step: &'static str,
    /// `None`: not checked (an earlier step failed, or not asked for).
    pub ok: Option<bool>,
    pub detail: String,
    pub hint: Option<String>,
}

pub fn step(
    step: &'static str,
    ok: Option<bool>,
    detail: impl Into<String>,
    hint: Option<String>,
) -> Step {
    Step {
        step,
        ok,
        detail: scrub(&detail.into()),
        hint,
    }
}

pub fn skipped(name: &'static str) -> Step {
    step(name, None, "not checked: an earlier step failed", None)
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The steps of reading `uri` — an object, or a prefix (ending in `/`) that an S3 sync
/// lists — and, with `queue`, of receiving the sync's events.
pub async fn check(
    settings: &Settings,
    uri: &str,
    role: Option<&str>,
    queue: Option<&str>,
) -> Vec<Step> {
    let mut out = Vec::new();
    let walked = walk(settings, uri, role, &mut out).await;
    if let Some(url) = queue {
        match walked {
            Ok(sdk) => out.push(check_queue(&sdk, url, role).await),
            Err(Stop) => out.push(skipped("queue")),
        }
    }
    out
}

/// A step failed so that the next ones cannot run; its steps are already told.
struct Stop;

/// The steps up to the object; the SDK configuration with the credentials they used.
async fn walk(
    settings: &Settings,
    uri: &str,
    role: Option<&str>,
    out: &mut Vec<Step>,
) -> Result<aws_config::SdkConfig, Stop> {
    let (bucket, key) = check_uri(settings, uri, out)?;
    let sdk = sdk_config(settings).await;
    check_credentials(&sdk, out).await?;
    let (client, sdk) = check_role(settings, sdk, role, out).await?;
    let who = role.map_or("the server's credentials".to_string(), |arn| {
        format!("the role {arn}")
    });
    check_bucket(&client, &bucket, &key, &who, out).await?;
    if key.is_empty() || key.ends_with('/') {
        out.push(step(
            "object",
            None,
            "not checked: a prefix names no object (an S3 sync lists it, as the bucket step did)",
            None,
        ));
    } else {
        check_object(settings, &client, &bucket, &key, &who, out).await;
    }
    Ok(sdk)
}

/// The queue's messages can be received (one, made visible again at once).
async fn check_queue(sdk: &aws_config::SdkConfig, url: &str, role: Option<&str>) -> Step {
    let mut config = aws_sdk_sqs::config::Builder::from(sdk);
    if let Some(region) = ai_loader_core::s3_sync::queue_region(url) {
        config = config.region(aws_config::Region::new(region));
    }
    let client = aws_sdk_sqs::Client::from_conf(config.build());
    let received = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(1)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .send()
        .await;
    match received {
        Ok(r) => step(
            "queue",
            Some(true),
            format!("{url}: {} message(s) waiting were seen", r.messages().len()),
            Some("deleting needs sqs:DeleteMessage too, which this check cannot try".into()),
        ),
        Err(e) => {
            let queue = crate::s3_sync::sqs::Queue::from_client(client, url, role);
            step(
                "queue",
                Some(false),
                queue.explain(&e, "sqs:ReceiveMessage", "receiving from"),
                Some("the queue's URL as SQS shows it, in the region the URL names; the permission above".into()),
            )
        }
    }
}

/// The URI names an S3 object in an allowed bucket.
fn check_uri(
    settings: &Settings,
    uri: &str,
    out: &mut Vec<Step>,
) -> Result<(String, String), Stop> {
    let failed = |detail: String, hint: &str| step("uri", Some(false), detail, Some(hint.into()));
    let parsed = match ai_loader_core::s3_sync::Prefix::parse(uri) {
        // A prefix, as an S3 sync names it (the whole bucket's too).
        Ok(p) if uri.ends_with('/') => Ok(Location::S3 {
            bucket: p.bucket,
            key: p.prefix,
        }),
        _ => Location::parse(uri),
    };
    match parsed {
        Ok(Location::S3 { bucket, key }) => {
            if let Err(refused) = super::guard::check_s3(&settings.s3_allowed, &bucket, &key) {
                out.push(failed(
                    refused,
                    "a superuser can add the bucket (or bucket/prefix) to ai_loader.s3_allowed_buckets",
                ));
                return Err(Stop);
            }
            out.push(step(
                "uri",
                Some(true),
                format!("bucket \"{bucket}\", key \"{key}\""),
                None,
            ));
            Ok((bucket, key))
        }
        Ok(_) => {
            out.push(failed(
                format!("\"{uri}\" is not an S3 URI"),
                "write s3://bucket/key",
            ));
            Err(Stop)
        }
        Err(e) => {
            out.push(failed(e, "write s3://bucket/key"));
            Err(Stop)
        }
    }
}

/// The server has AWS credentials, and where from.
async fn check_credentials(sdk: &aws_config::SdkConfig, out: &mut Vec<Step>) -> Result<(), Stop> {
    let base = match sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await,
        None => {
            Err(aws_credential_types::provider::error::CredentialsError::not_loaded("no provider"))
        }
    };
    match &base {
        Ok(c) => {
            let source = regex::Regex::new(r#"provider_name: "([^"]+)""#)
                .ok()
                .and_then(|r| r.captures(&format!("{c:?}")).map(|m| m[1].to_string()))
                .unwrap_or_else(|| "unknown".into());
            let place = match source.as_str() {
                "EnvironmentVariable" => "the environment (AWS_ACCESS_KEY_ID)",
                "ProfileFile" | "Profile" => "the shared config and credentials files",
                "WebIdentityToken" => "a web identity token",
                "EcsContainer" => "the ECS container credentials endpoint",
                "Ec2InstanceMetadata" => "the EC2 instance metadata",
                _ => "the default chain",
            };
            out.push(step(
                "credentials",
                Some(true),
                format!("found, from {place} [{source}]"),
                None,
            ));
            Ok(())
        }
        Err(e) => {
            out.push(step(
                "credentials",
                Some(false),
                format!("no AWS credentials: {}", DisplayErrorContext(e)),
                Some("give the server credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment, a profile in ~/.aws of its OS user, web identity, or an EC2/ECS role".into()),
            ));
            for s in ["role", "bucket", "object"] {
                out.push(skipped(s));
            }
            Err(Stop)
        }
    }
}

/// The S3 client, with the role's credentials when one is named and can be assumed, and
/// the SDK configuration that holds those credentials.
async fn check_role(
    settings: &Settings,
    sdk: aws_config::SdkConfig,
    role: Option<&str>,
    out: &mut Vec<Step>,
) -> Result<(aws_sdk_s3::Client, aws_config::SdkConfig), Stop> {
    let s3 = |sdk: &aws_config::SdkConfig| {
        let mut config =
            aws_sdk_s3::config::Builder::from(sdk).force_path_style(settings.s3_force_path_style);
        if let Some(endpoint) = &settings.s3_endpoint {
            config = config.endpoint_url(endpoint);
        }
        aws_sdk_s3::Client::from_conf(config.build())
    };
    let Some(arn) = role else {
        out.push(step(
            "role",
            None,
            "no aws_role_arn: the server's own credentials are used",
            None,
        ));
        return Ok((s3(&sdk), sdk));
    };
    let mut request = aws_sdk_sts::Client::new(&sdk)
        .assume_role()
        .role_arn(arn)
        .role_session_name(SESSION_NAME);
    if let Some(id) = &settings.external_id {
        request = request.external_id(id);
    }
    match request.send().await {
        Ok(assumed) => {
            let Some(c) = assumed.credentials() else {
                out.push(step(
                    "role",
                    Some(false),
                    format!("STS returned no credentials for {arn}"),
                    None,
                ));
                return Err(Stop);
            };
            out.push(step(
                "role",
                Some(true),
                format!("assumed {arn}, credentials until {}", c.expiration()),
                None,
            ));
            let credentials = aws_credential_types::Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "AssumeRole",
            );
            let sdk = sdk
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
                )
                .build();
            Ok((s3(&sdk), sdk))
        }
        Err(e) => {
            let code = e.code().unwrap_or("error").to_string();
            out.push(step(
                "role",
                Some(false),
                format!("could not assume {arn} ({code}): {}", e.message().unwrap_or_default()),
                Some(format!(
                    "the server's identity needs sts:AssumeRole on {arn}, and the role's trust policy must name that identity{}",
                    if settings.external_id.is_some() { " with this ExternalId" } else { "" }
                )),
            ));
            out.push(skipped("bucket"));
            out.push(skipped("object"));
            Err(Stop)
        }
    }
}

/// The bucket is reachable: ListObjectsV2 needs s3:ListBucket, as HeadBucket does, on
/// every S3 implementation. Without that permission the object may still be readable.
async fn check_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    who: &str,
    out: &mut Vec<Step>,
) -> Result<(), Stop> {
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key)
        .max_keys(1)
        .send()
        .await;
    let e = match listed {
        Ok(_) => {
            out.push(step(
                "bucket",
                Some(true),
                format!("bucket \"{bucket}\" is reachable"),
                None,
            ));
            return Ok(());
        }
        Err(e) => e,
    };
    let (detail, hint) = match status(&e) {
        Some(404) => (format!("bucket \"{bucket}\" does not exist (NoSuchBucket)"), "check the bucket name, the region and ai_loader.s3_endpoint".to_string()),
        Some(403) => (format!("access denied to bucket \"{bucket}\""), format!("{who} needs s3:ListBucket on arn:aws:s3:::{bucket} (without it a missing key also reads as AccessDenied)")),
        _ => (format!("bucket \"{bucket}\": {}", DisplayErrorContext(&e)), "check ai_loader.s3_endpoint, the network and the region".to_string()),
    };
    out.push(step("bucket", Some(false), detail, Some(hint)));
    if status(&e) == Some(403) {
        return Ok(());
    }
    out.push(skipped("object"));
    Err(Stop)
}

/// The object exists, may be read, and is not too large.
async fn check_object(
    settings: &Settings,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    who: &str,
    out: &mut Vec<Step>,
) {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => {
            let size = head.content_length().unwrap_or(0).max(0) as u64;
            let kind = head.content_type().unwrap_or("unknown type").to_string();
            if size > settings.max_bytes {
                out.push(step(
                    "object",
                    Some(false),
                    format!("s3://{bucket}/{key} is {size} bytes ({kind}), larger than ai_loader.max_object_bytes ({} bytes)", settings.max_bytes),
                    Some("raise ai_loader.max_object_bytes, or split the document".into()),
                ));
            } else {
                out.push(step(
                    "object",
                    Some(true),
                    format!("s3://{bucket}/{key}: {size} bytes, {kind}"),
                    None,
                ));
            }
        }
        Err(e) => {
            let (detail, hint) = match status(&e) {
                Some(404) => (
                    format!("s3://{bucket}/{key} does not exist (NoSuchKey)"),
                    "check the key (it is case-sensitive; s3:// keys are taken literally)"
                        .to_string(),
                ),
                Some(403) => (
                    format!("access denied to s3://{bucket}/{key}"),
                    format!("{who} needs s3:GetObject on arn:aws:s3:::{bucket}/{key}"),
                ),
                _ => (
                    format!("s3://{bucket}/{key}: {}", DisplayErrorContext(&e)),
                    "check ai_loader.s3_endpoint and the network".to_string(),
                ),
            };
            out.push(step("object", Some(false), detail, Some(hint)));
        }
    }
}
