//! The ceilings `make bench` measures the worker against, with the worker's own code
//! and runtime shape (two runtime threads) but no Postgres:
//!
//! - `ai-loader-bench s3-get --uris FILE [--concurrency N] [--role ARN] [--path-style]`:
//!   GETs every URI of FILE (one per line) through the worker's loader, N at a time,
//!   with the credentials and endpoint of the environment, as the worker would.
//! - `ai-loader-bench s3-list --prefix s3://bucket/prefix/ [--role ARN] [--path-style]`:
//!   lists the prefix completely with an S3 sync's listing code.
//! - `ai-loader-bench model --inputs FILE --model-dir DIR --runtime LIBRARY [--threads N]`:
//!   embeds FILE's texts (a JSON array of strings) with the local model in DIR on ONNX
//!   Runtime's LIBRARY, in the worker's request sizes and order.
//!
//! Each prints one JSON line: what was done, in how many seconds, at what rate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_loader_core::s3_sync::{Filter, Prefix};
use ai_loader_pipeline::embedding::{embed_all, Provider};
use ai_loader_pipeline::loading::s3::{self, S3};
use ai_loader_pipeline::loading::{Loaded, Settings, UriLoader};
use ai_loader_pipeline::local::{Local, LocalModel, Runtime};
use ai_loader_pipeline::s3_sync::list::list;
use futures::stream::{self, StreamExt};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let options = parse_options(args).unwrap_or_else(|e| fail(&e));
    let result = match command.as_str() {
        "s3-get" => s3_get(&options),
        "s3-list" => s3_list(&options),
        "model" => model(&options),
        _ => Err(format!(
            "unknown command {command:?}: expected s3-get, s3-list or model"
        )),
    };
    match result {
        Ok(report) => println!("{report}"),
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("ai-loader-bench: {message}");
    std::process::exit(2)
}

/// `--name value` pairs; a flag with no value (`--path-style`) reads as "true".
fn parse_options(args: impl Iterator<Item = String>) -> Result<HashMap<String, String>, String> {
    let mut options = HashMap::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
        let value = match args.peek() {
            Some(v) if !v.starts_with("--") => args.next().unwrap_or_default(),
            _ => "true".to_string(),
        };
        options.insert(name.to_string(), value);
    }
    Ok(options)
}

fn number(options: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, String> {
    options.get(name).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| format!("--{name} must be a number, got {v:?}"))
    })
}

fn required<'a>(options: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    options
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("--{name} is required"))
}

/// The worker's runtime: two threads for I/O, blocking work on its own pool.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn s3_get(options: &HashMap<String, String>) -> Result<serde_json::Value, String> {
    let uris: Vec<String> = std::fs::read_to_string(required(options, "uris")?)
        .map_err(|e| format!("--uris: {e}"))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let concurrency = number(options, "concurrency", 4)?.max(1);
    let role = options.get("role").cloned();
    let loader = Arc::new(UriLoader::new(Settings {
        s3_force_path_style: options.contains_key("path-style"),
        timeout: Duration::from_secs(30),
        max_bytes: u64::MAX,
        ..Default::default()
    })?);
    runtime()?.block_on(async move {
        let first = uris.first().ok_or("--uris names no URI")?;
        // One GET first, untimed: it makes the client and fetches credentials.
        loader
            .load(first, role.as_deref(), None)
            .await
            .map_err(|e| e.message)?;
        let start = Instant::now();
        let results: Vec<Result<usize, String>> = stream::iter(uris.iter())
            .map(|uri| {
                let (loader, role) = (Arc::clone(&loader), role.clone());
                async move {
                    match loader.load(uri, role.as_deref(), None).await {
                        Ok(Loaded::Document { document, .. }) => Ok(document.bytes.len()),
                        Ok(Loaded::Unchanged) => Ok(0),
                        Err(e) => Err(e.message),
                    }
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let seconds = start.elapsed().as_secs_f64();
        let bytes = results
            .into_iter()
            .collect::<Result<Vec<usize>, String>>()?
            .into_iter()
            .sum::<usize>();
        Ok(
            json!({"ceiling": "s3_get", "gets": uris.len(), "concurrency": concurrency,
                  "bytes": bytes, "seconds": seconds, "per_second": uris.len() as f64 / seconds}),
        )
    })
}

fn s3_list(options: &HashMap<String, String>) -> Result<serde_json::Value, String> {
    let prefix = Prefix::parse(required(options, "prefix")?).map_err(|e| e.message)?;
    let role = options.get("role").cloned();
    let settings = Settings {
        s3_force_path_style: options.contains_key("path-style"),
        timeout: Duration::from_secs(30),
        max_bytes: u64::MAX,
        ..Default::default()
    };
    runtime()?.block_on(async move {
        let sdk = s3::identity(&settings, role.as_deref(), None).await;
        let s3 = S3::new(&settings, sdk, role.as_deref());
        // One request first, untimed: it fetches the credentials.
        s3.client()
            .list_objects_v2()
            .bucket(&prefix.bucket)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| format!("listing: {e}"))?;
        let start = Instant::now();
        let objects = list(&s3, &settings, &prefix, &Filter::default()).await?;
        let seconds = start.elapsed().as_secs_f64();
        Ok(
            json!({"ceiling": "s3_list", "objects": objects.len(), "seconds": seconds,
                  "per_second": objects.len() as f64 / seconds}),
        )
    })
}

fn model(options: &HashMap<String, String>) -> Result<serde_json::Value, String> {
    let inputs: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(required(options, "inputs")?)
            .map_err(|e| format!("--inputs: {e}"))?,
    )
    .map_err(|e| format!("--inputs must hold a JSON array of strings: {e}"))?;
    let threads = number(options, "threads", 1)?.max(1);
    let dir = PathBuf::from(required(options, "model-dir")?);
    let onnx_runtime = Runtime {
        library: PathBuf::from(required(options, "runtime")?),
        threads,
    };
    let model = LocalModel::shared(&dir, &onnx_runtime)?;
    let provider = Local { model };
    let dimensions = 384;
    let slots = tokio::sync::Semaphore::new(1);
    runtime()?.block_on(async move {
        // Warm up on one input, untimed (first-use allocations, the thread pool).
        embed_all(
            &provider,
            dimensions,
            &inputs[..inputs.len().min(1)],
            &slots,
        )
        .await
        .map_err(|e| e.message)?;
        let start = Instant::now();
        let vectors = embed_all(&provider, dimensions, &inputs, &slots)
            .await
            .map_err(|e| e.message)?;
        let seconds = start.elapsed().as_secs_f64();
        if let Some(Err(e)) = vectors.iter().find(|v| v.is_err()) {
            return Err(e.clone());
        }
        Ok(
            json!({"ceiling": "model", "chunks": inputs.len(), "threads": threads,
                  "batch": provider.max_inputs(), "seconds": seconds,
                  "per_second": inputs.len() as f64 / seconds}),
        )
    })
}
