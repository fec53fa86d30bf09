//! `ai.check_s3_access`: S3 diagnostics in the calling backend, honouring cancel and
//! `statement_timeout`.

use ai_loader_config::loading::validate_role_arn;
use ai_loader_pipeline::loading::check::check;
use pgrx::prelude::*;

use crate::errors::OrRaise;
use crate::gucs;

/// One row per step — uri, credentials, role, bucket, object, and with a queue, queue —
/// with whether it passed (NULL: not checked), what was found, and for a failure what to
/// fix. A `uri` ending in `/` is a prefix, as an S3 sync lists it.
#[pg_extern(volatile, parallel_unsafe)]
fn check_s3_access(
    uri: &str,
    aws_role_arn: default!(Option<&str>, "NULL"),
    sqs_queue_url: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(step, String),
        name!(ok, Option<bool>),
        name!(detail, String),
        name!(hint, Option<String>),
    ),
> {
    crate::api::vectorizer::require_s3_reader("call ai.check_s3_access");
    if let Some(arn) = aws_role_arn {
        validate_role_arn(arn).or_raise();
    }
    let settings = gucs::loading_settings();
    let steps = crate::interrupts::block_on(check(&settings, uri, aws_role_arn, sqs_queue_url));
    TableIterator::new(
        steps
            .into_iter()
            .map(|s| (s.step.to_string(), s.ok, s.detail, s.hint)),
    )
}
