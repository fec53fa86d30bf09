//! `ai.check_embedding`: what embedding with a configuration takes — a valid
//! configuration, the server's key (and whether it goes there), an endpoint the
//! settings let the server reach, the model answering — with which step fails and how
//! to fix it.

use std::time::Instant;

use ai_loader_core::embedding::{Api, Embedding, Purpose};
use tokio::sync::Semaphore;

use super::{embed_all, provider, sends_server_key, ProviderError, ProviderSettings};
use crate::loading::check::{skipped, step, Step};

/// What is embedded to check a configuration.
pub const PROBE: &str = "ai_loader check_embedding probe";

pub async fn check(config: &Embedding, settings: &ProviderSettings) -> Vec<Step> {
    let mut out = Vec::new();
    let service = match config.service() {
        Ok(s) => s,
        Err(e) => {
            out.push(step("configuration", Some(false), e.message, e.hint));
            out.extend(["credentials", "endpoint", "embed"].map(skipped));
            return out;
        }
    };
    let endpoint = service
        .base_url
        .as_deref()
        .or(settings.default_endpoint(&service.api));
    let place = match (&service.api, endpoint) {
        (Api::Bedrock(b), _) => format!(
            " in {}",
            b.region.as_deref().unwrap_or("the server's AWS region")
        ),
        (Api::Local, _) => String::new(),
        (_, Some(url)) => format!(" at {url}"),
        (_, None) => " (no endpoint)".into(),
    };
    out.push(step(
        "configuration",
        Some(true),
        format!(
            "{} model {}, {} dimensions{place}",
            service.api.provider_name(),
            service.model,
            service.dimensions
        ),
        None,
    ));
    let credentials = credentials(config, settings, &service, endpoint);
    let keyless = credentials.ok == Some(false);
    out.push(credentials);
    let provider = match provider(config, Purpose::Query, settings) {
        Ok(p) => p,
        Err(e) => {
            let hint = match &e {
                ProviderError::Refused(_) => Some("a superuser can let the server reach it: ai_loader.http_allowed_hosts, or ai_loader.api_key_endpoints to also send it the key".to_string()),
                ProviderError::Unusable(_) => None,
            };
            out.push(step("endpoint", Some(false), e.to_string(), hint));
            out.push(skipped("embed"));
            return out;
        }
    };
    out.push(step(
        "endpoint",
        Some(true),
        "the server may reach it",
        None,
    ));
    let start = Instant::now();
    let slots = Semaphore::new(1);
    let probe = [PROBE.to_string()];
    let result = embed_all(
        provider.as_ref(),
        service.dimensions as usize,
        &probe,
        &slots,
    )
    .await;
    let ms = start.elapsed().as_millis();
    out.push(match result.map(|mut v| v.pop()) {
        Ok(Some(Ok(v))) => {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            step(
                "embed",
                Some(true),
                format!(
                    "embedded a probe in {ms} ms: {} dimensions, norm {norm:.4}",
                    v.len()
                ),
                None,
            )
        }
        Ok(Some(Err(message))) => step("embed", Some(false), message, None),
        Ok(None) => step("embed", Some(false), "the provider returned nothing", None),
        Err(e) => {
            let hint = if e.message.contains("dimensions") {
                Some(format!(
                    "use the dimensions the model makes, or a model that makes {}",
                    service.dimensions
                ))
            } else if keyless {
                Some("see the credentials step".to_string())
            } else {
                None
            };
            step("embed", Some(false), e.message, hint)
        }
    });
    out
}

/// The key the server sends (never shown), or the AWS identity used.
fn credentials(
    config: &Embedding,
    settings: &ProviderSettings,
    service: &ai_loader_core::embedding::Service,
    endpoint: Option<&str>,
) -> Step {
    if let Api::Bedrock(b) = &service.api {
        return match (&b.aws_role_arn, &b.access_key_id) {
            (Some(arn), _) => step(
                "credentials",
                Some(true),
                format!("the role {arn}, assumed with the server's AWS credentials"),
                None,
            ),
            (None, Some(id)) if settings.api_key.is_none() => step(
                "credentials",
                Some(false),
                format!("the server holds no AWS_SECRET_ACCESS_KEY for the access key {id}"),
                Some("set AWS_SECRET_ACCESS_KEY in the database server's environment, or leave aws_access_key_id and api_key_name out to use the server's AWS credentials".into()),
            ),
            (None, Some(id)) => step(
                "credentials",
                Some(true),
                format!("the access key {id} with the server's AWS_SECRET_ACCESS_KEY"),
                None,
            ),
            (None, None) => step("credentials", Some(true), "the server's AWS credentials", None),
        };
    }
    let Some(name) = &service.api_key_name else {
        return step("credentials", Some(true), "none needed", None);
    };
    let setting = format!("ai_loader.{}", name.to_ascii_lowercase());
    let upper = name.to_ascii_uppercase();
    if settings.api_key.is_none() {
        return step(
            "credentials",
            Some(false),
            format!("the server holds no key named {name}"),
            Some(format!("set {upper} in the database server's environment, or the setting {setting} (a superuser, in postgresql.conf)")),
        );
    }
    let at = endpoint.unwrap_or("the endpoint");
    if sends_server_key(config, settings) {
        step(
            "credentials",
            Some(true),
            format!("the server's key {name} is sent to {at}"),
            None,
        )
    } else {
        step(
            "credentials",
            Some(false),
            format!("the server's key {name} is not sent to {at}: keys go only to a provider's own endpoint and to those a superuser listed"),
            Some(format!("a superuser can trust it: ai_loader.api_key_endpoints = '{at}'")),
        )
    }
}
