//! `ai.check_s3_access` and `ai.check_embedding`: S3 and embedding diagnostics in the
//! calling backend, honouring cancel and `statement_timeout`.

use ai_loader_core::embedding::Embedding;
use ai_loader_core::loading::validate_role_arn;
use ai_loader_core::ConfigPart;
use ai_loader_pipeline::loading::check::{check, Step};
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::errors::OrRaise;
use crate::gucs;

/// One row per step — uri, credentials, role, bucket, object, and with a queue, queue —
/// with whether it passed (NULL: not checked), what was found, and for a failure what to
/// fix. A `uri` ending in `/` is a prefix, as an S3 sync lists it.
#[pg_extern(create_or_replace, volatile, parallel_unsafe)]
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
    rows(steps)
}

/// The rows of a check (pgrx wants the type spelled out where a function returns it).
type Steps = TableIterator<
    'static,
    (
        name!(step, String),
        name!(ok, Option<bool>),
        name!(detail, String),
        name!(hint, Option<String>),
    ),
>;

fn rows(steps: Vec<Step>) -> Steps {
    TableIterator::new(
        steps
            .into_iter()
            .map(|s| (s.step.to_string(), s.ok, s.detail, s.hint)),
    )
}

/// Embeds a probe text with vectorizer `vectorizer_name`'s model, as a query would, and
/// says step by step — configuration, credentials, endpoint, embed — what failed and
/// how to fix it. For those who may embed with the vectorizer.
#[pg_extern(create_or_replace, volatile, parallel_unsafe)]
fn check_embedding(
    vectorizer_name: &str,
) -> TableIterator<
    'static,
    (
        name!(step, String),
        name!(ok, Option<bool>),
        name!(detail, String),
        name!(hint, Option<String>),
    ),
> {
    let id = crate::api::embed::readable_id(vectorizer_name);
    let vectorizer = crate::api::embed::readable(id);
    match Embedding::from_json(&vectorizer.config["embedding"]) {
        Ok(config) => run_check(&config),
        Err(e) => rows(vec![ai_loader_pipeline::loading::check::step(
            "configuration",
            Some(false),
            e.message,
            e.hint,
        )]),
    }
}

/// The same for an embedding configuration (`ai.embedding_…(…)`), under the rules of
/// `ai.vectorizer_embed` with a configuration: the server's API key for superusers,
/// Bedrock for members of ai_loader_s3_reader.
#[pg_extern(create_or_replace, name = "check_embedding", volatile, parallel_unsafe)]
fn check_embedding_config(
    config: JsonB,
) -> TableIterator<
    'static,
    (
        name!(step, String),
        name!(ok, Option<bool>),
        name!(detail, String),
        name!(hint, Option<String>),
    ),
> {
    let config = Embedding::from_json(&config.0).or_raise();
    crate::api::embed::may_embed_with_config(&config);
    run_check(&config)
}

fn run_check(config: &Embedding) -> Steps {
    let aws = config.uses_aws().then(crate::api::embed::backend_aws);
    let settings = gucs::provider_settings(config, aws);
    rows(crate::interrupts::block_on(
        ai_loader_pipeline::embedding::check::check(config, &settings),
    ))
}
