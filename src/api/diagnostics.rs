//! `ai.check_s3_access`: S3 diagnostics in the calling backend, honouring cancel and
//! `statement_timeout`.

use std::time::Duration;

use ai_loader_config::loading::validate_role_arn;
use ai_loader_pipeline::loading::check::check;
use pgrx::prelude::*;

use crate::errors::OrRaise;
use crate::gucs;

/// One row per step — uri, credentials, role, bucket, object — with whether it passed
/// (NULL: not checked), what was found, and for a failure what to fix.
#[pg_extern(volatile, parallel_unsafe)]
fn check_s3_access(
    uri: &str,
    aws_role_arn: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(step, String),
        name!(ok, Option<bool>),
        name!(detail, String),
        name!(hint, Option<String>),
    ),
> {
    if let Some(arn) = aws_role_arn {
        validate_role_arn(arn).or_raise();
    }
    let settings = gucs::loading_settings();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| error!("ai_loader: cannot start a runtime: {e}"));
    let mut work = Box::pin(check(&settings, uri, aws_role_arn));
    // Wait in slices on this (the backend's) thread, so cancel and statement_timeout
    // interrupt the check.
    let steps = loop {
        match runtime
            .block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut work).await })
        {
            Ok(steps) => break steps,
            Err(_) => {
                check_for_interrupts!();
            }
        }
    };
    TableIterator::new(
        steps
            .into_iter()
            .map(|s| (s.step.to_string(), s.ok, s.detail, s.hint)),
    )
}
