//! A complete listing of a sync's prefix (ListObjectsV2, page by page), filtered.

use ai_loader_core::s3_sync::reconcile::Object;
use ai_loader_core::s3_sync::{Filter, Prefix};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
use aws_smithy_types::date_time::Format;

use crate::loading::s3::S3;
use crate::loading::{guard, scrub, Settings};

/// The most objects a listing keeps: a prefix holding more is refused rather than held
/// in the worker's memory.
pub const MAX_OBJECTS: usize = 2_000_000;

/// Every object under the prefix that the filter keeps; an error — and no partial
/// result — if any page fails.
pub async fn list(
    s3: &S3,
    settings: &Settings,
    prefix: &Prefix,
    filter: &Filter,
) -> Result<Vec<Object>, String> {
    guard::check_s3(&settings.s3_allowed, &prefix.bucket, &prefix.prefix)?;
    let mut objects = Vec::new();
    let mut listed = 0usize;
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .client()
            .list_objects_v2()
            .bucket(&prefix.bucket)
            .prefix(&prefix.prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| explain_list(&e, prefix, s3.role()))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            listed += 1;
            if !filter.keeps(key) {
                continue;
            }
            objects.push(Object {
                key: key.to_string(),
                etag: o.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                size: o.size().unwrap_or(0),
                last_modified: o.last_modified().and_then(|t| t.fmt(Format::DateTime).ok()),
            });
        }
        if listed > MAX_OBJECTS {
            return Err(format!(
                "{} holds more than {MAX_OBJECTS} objects: narrow the sync's uri_prefix",
                prefix.uri()
            ));
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => return Ok(objects),
        }
    }
}

fn explain_list(
    e: &SdkError<ListObjectsV2Error, HttpResponse>,
    prefix: &Prefix,
    role: Option<&str>,
) -> String {
    let who = who(role);
    let what = prefix.uri();
    let bucket = &prefix.bucket;
    let message = match e {
        SdkError::ServiceError(s) => match s.err().code() {
            Some("AccessDenied" | "Forbidden") => format!(
                "access denied listing {what} (AccessDenied): {who} needs s3:ListBucket on arn:aws:s3:::{bucket}"
            ),
            Some("NoSuchBucket") => format!(
                "bucket \"{bucket}\" does not exist (NoSuchBucket): check the uri_prefix, the region and ai_loader.s3_endpoint"
            ),
            Some(code) => format!(
                "listing {what} failed ({code}): {}",
                s.err().message().unwrap_or_default()
            ),
            None => format!("listing {what} failed (HTTP {})", s.raw().status().as_u16()),
        },
        _ => format!("listing {what} failed: {}", DisplayErrorContext(e)),
    };
    scrub(&message)
}

/// Whose credentials a request used, for an error message.
pub fn who(role: Option<&str>) -> String {
    match role {
        Some(arn) => format!("the role {arn}"),
        None => "the server's AWS credentials".to_string(),
    }
}
