//! One transaction of one vectorizer: batches of queued rows are claimed, run through
//! the pipeline off the main thread (the next batch loading while the one before is
//! written) and every outcome written, all in one transaction. A crash anywhere
//! before the commit leaves the rows queued.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use ai_loader_config::destination::Names;
use ai_loader_config::loading::Loading;
use ai_loader_pipeline::batch::{Chunk, Item, Outcome, Pipeline, Source, Step};
use ai_loader_pipeline::embedding::BatchError;
use ai_loader_pipeline::loading::scrub;
use ai_loader_pipeline::parsing::Document;
use pgrx::bgworkers::BackgroundWorker;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use serde_json::json;
use tokio::task::JoinHandle;

use super::vectorizer::Vectorizer;
use super::{report_activity, transaction};
use crate::gucs;

/// Batches a transaction runs at once: while one is written, the next one loads.
const IN_FLIGHT: usize = 2;
/// Batches a transaction claims at most, so that commits stay frequent and the other
/// vectorizers get their turn.
const BATCHES_PER_TRANSACTION: usize = 8;

/// Why a transaction was rolled back.
pub enum Abort {
    /// The provider is down or misconfigured: nothing consumed; try again later.
    Provider(BatchError),
    /// Postgres refused a statement — most often the owner lacks a privilege on the
    /// source, queue or store: nothing consumed; try again later.
    Refused(String),
    /// SIGTERM or postmaster death while waiting.
    Stop,
}

/// Runs `work` with the rights of the vectorizer's owner (see `crate::roles`): its
/// table privileges, row-level security and triggers apply to what the worker reads and
/// writes for it.
fn as_owner<T>(v: &Vectorizer, work: impl FnOnce() -> T) -> T {
    let Some(owner) = v.owner_oid else {
        error!(
            "the vectorizer's owner \"{}\" no longer exists; drop the vectorizer and create it again",
            v.owner
        );
    };
    crate::roles::as_role(owner, work)
}

/// What a caught ERROR says, for the error row.
fn describe(e: &CaughtError) -> String {
    let report = match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    match report.hint() {
        Some(hint) => format!("{} ({hint})", report.message()),
        None => report.message().to_string(),
    }
}

/// What a committed transaction did.
#[derive(Default)]
pub struct Done {
    pub claimed: usize,
    pub embedded: usize,
    pub failed: usize,
    /// The last claim was full: more rows may be queued.
    pub more: bool,
}

struct Claimed {
    key: Vec<String>,
    retries: i32,
    /// `None` when the source row is gone; `Err` when the document is refused before
    /// the pipeline (too large).
    document: Option<Result<Item, String>>,
}

/// A claimed batch whose items are in the pipeline.
struct Running {
    keys: Vec<(Vec<String>, i32)>,
    /// Per key: why it was refused before the pipeline, if it was.
    refused: Vec<Option<String>>,
    task: JoinHandle<Result<Vec<Outcome>, BatchError>>,
}

/// Delay before the next attempt of an item that failed `retries + 1` times.
fn retry_delay(retries: i32) -> f64 {
    2f64.powi(retries.clamp(0, 8)).min(300.0)
}

pub fn run(
    v: &Vectorizer,
    pipeline: &Arc<Pipeline>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Done, Abort> {
    let mut running: VecDeque<Running> = VecDeque::new();
    let result = transaction::run(|| {
        PgTryBuilder::new(AssertUnwindSafe(|| {
            batches(v, pipeline, runtime, &mut running)
        }))
        .catch_others(|e| Err(Abort::Refused(describe(&e))))
        .execute()
    });
    // A rolled-back transaction leaves its batches queued: stop their work.
    for batch in running {
        batch.task.abort();
    }
    result
}

/// The transaction's work: batches claimed, run and written in turn, reading and
/// writing the vectorizer's tables as its owner.
fn batches(
    v: &Vectorizer,
    pipeline: &Arc<Pipeline>,
    runtime: &tokio::runtime::Runtime,
    running: &mut VecDeque<Running>,
) -> Result<Done, Abort> {
    let batch_size = v.processing.batch_size() as usize;
    let mut done = Done {
        more: true,
        ..Default::default()
    };
    let mut claims = 0;
    loop {
        while done.more && running.len() < IN_FLIGHT && claims < BATCHES_PER_TRANSACTION {
            report_activity(&format!("vectorizer {}: claiming", v.name));
            let claimed = as_owner(v, || claim(v));
            claims += 1;
            done.more = claimed.len() >= batch_size;
            if claimed.is_empty() {
                break;
            }
            running.push_back(start(claimed, pipeline, runtime));
        }
        let Some(batch) = running.pop_front() else {
            break;
        };
        report_activity(&format!(
            "vectorizer {}: embedding {} rows",
            v.name,
            batch.keys.len()
        ));
        let mut outcomes = wait(runtime, batch.task)?.into_iter();
        let outcomes: Vec<Outcome> = batch
            .refused
            .into_iter()
            .map(|r| match r {
                Some(message) => Outcome::Failed {
                    step: Step::Loading,
                    message,
                },
                None => outcomes.next().expect("one outcome per item"),
            })
            .collect();
        report_activity(&format!(
            "vectorizer {}: writing {} rows",
            v.name,
            batch.keys.len()
        ));
        let (written, errors) = as_owner(v, || write(v, batch.keys, outcomes));
        record(v, written.embedded, written.failed, errors);
        done.claimed += written.claimed;
        done.embedded += written.embedded;
        done.failed += written.failed;
    }
    Ok(done)
}

/// Puts a claimed batch's items into the pipeline.
fn start(
    claimed: Vec<Claimed>,
    pipeline: &Arc<Pipeline>,
    runtime: &tokio::runtime::Runtime,
) -> Running {
    let mut keys = Vec::new();
    let mut refused = Vec::new();
    let mut items = Vec::new();
    for c in claimed {
        match c.document {
            None => {}
            Some(Ok(item)) => {
                keys.push((c.key, c.retries));
                refused.push(None);
                items.push(item);
            }
            Some(Err(message)) => {
                keys.push((c.key, c.retries));
                refused.push(Some(message));
            }
        }
    }
    Running {
        keys,
        refused,
        task: runtime.spawn(Arc::clone(pipeline).run(items)),
    }
}

/// Claims a batch and reads each row's document.
fn claim(v: &Vectorizer) -> Vec<Claimed> {
    let n = v.queue.key.len();
    let max_bytes = gucs::max_object_bytes();
    let batch_size = v.processing.batch_size();
    Spi::connect_mut(|client| {
        client
            .update(&v.queue.lock_source(), None, &[])
            .unwrap_or_else(|e| error!("claiming from vectorizer {}: {e}", v.name));
        let rows = client
            .update(&v.queue.claim(), None, &[batch_size.into(), v.id.into()])
            .unwrap_or_else(|e| error!("claiming from vectorizer {}: {e}", v.name));
        let template_columns =
            |row: &pgrx::spi::SpiHeapTupleData<'_>| -> HashMap<String, Option<String>> {
                v.queue
                    .template_columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), row.get::<String>(n + 4 + i).ok().flatten()))
                    .collect()
            };
        rows.map(|row| {
            let key: Vec<String> = (1..=n)
                .map(|i| row.get::<String>(i).ok().flatten().unwrap_or_default())
                .collect();
            let retries: i32 = row.get(n + 1).ok().flatten().unwrap_or(0);
            let found: bool = row.get(n + 2).ok().flatten().unwrap_or(false);
            let bytes: Vec<u8> = if v.queue.loading_is_bytea {
                row.get::<Vec<u8>>(n + 3).ok().flatten().unwrap_or_default()
            } else {
                row.get::<String>(n + 3)
                    .ok()
                    .flatten()
                    .map(String::into_bytes)
                    .unwrap_or_default()
            };
            let document = found.then(|| {
                if let Loading::Uri { .. } = v.loading {
                    let etag_column = n + 4 + v.queue.template_columns.len();
                    return Ok(Item {
                        source: Source::Uri {
                            uri: String::from_utf8_lossy(&bytes).into_owned(),
                            etag: row.get::<String>(etag_column).ok().flatten(),
                        },
                        columns: template_columns(&row),
                    });
                }
                if bytes.len() as u64 > max_bytes {
                    return Err(format!(
                        "the document ({} bytes) is larger than ai_loader.max_object_bytes ({max_bytes} bytes)",
                        bytes.len()
                    ));
                }
                let columns = template_columns(&row);
                Ok(Item {
                    source: Source::Inline(Document {
                        bytes,
                        name: None,
                        is_text: !v.queue.loading_is_bytea,
                    }),
                    columns,
                })
            });
            Claimed {
                key,
                retries,
                document,
            }
        })
        .collect()
    })
}

/// Waits for a batch on the runtime, in short slices so that SIGTERM and postmaster
/// death are noticed; only this (main) thread touches Postgres.
fn wait(
    runtime: &tokio::runtime::Runtime,
    mut task: JoinHandle<Result<Vec<Outcome>, BatchError>>,
) -> Result<Vec<Outcome>, Abort> {
    loop {
        let slice = runtime
            .block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut task).await });
        match slice {
            Ok(Ok(Ok(outcomes))) => return Ok(outcomes),
            Ok(Ok(Err(e))) => return Err(Abort::Provider(e)),
            Ok(Err(join)) => {
                return Err(Abort::Provider(BatchError {
                    message: format!("the pipeline failed: {join}"),
                    retry_after: None,
                }))
            }
            Err(_) => {
                if !BackgroundWorker::wait_latch(Some(Duration::ZERO)) {
                    task.abort();
                    return Err(Abort::Stop);
                }
            }
        }
    }
}

/// Arrays of key values by key column, for the queue SQL's `unnest`.
fn key_arrays<'a>(keys: impl Iterator<Item = &'a Vec<String>>, n: usize) -> Vec<Vec<String>> {
    let mut arrays = vec![Vec::new(); n];
    for key in keys {
        for (array, value) in arrays.iter_mut().zip(key) {
            array.push(value.clone());
        }
    }
    arrays
}

fn args(
    mut arrays: Vec<DatumWithOid<'static>>,
    keys: Vec<Vec<String>>,
) -> Vec<DatumWithOid<'static>> {
    let mut all: Vec<DatumWithOid<'static>> = keys.into_iter().map(DatumWithOid::from).collect();
    all.append(&mut arrays);
    all
}

/// One stored chunk (or embedding column value) of the batch.
struct Row<'a> {
    key: &'a Vec<String>,
    seq: i32,
    chunk: &'a str,
    embedding: String,
    etag: Option<&'a str>,
}

/// An error row to record: its message and details (JSON text).
type ErrorRow = (String, String);

/// Writes a batch's outcomes to the store and the queues, with the owner's rights;
/// returns what to record in the catalog (which only the worker itself writes).
fn write(
    v: &Vectorizer,
    keys: Vec<(Vec<String>, i32)>,
    outcomes: Vec<Outcome>,
) -> (Done, Vec<ErrorRow>) {
    let q = &v.queue;
    let n = q.key.len();
    let retries_allowed = v.loading.retries();
    let mut done = Done {
        claimed: keys.len(),
        ..Default::default()
    };
    let mut embedded: Vec<(&Vec<String>, Vec<Chunk>, Option<String>)> = Vec::new();
    let mut unchanged = 0;
    let mut requeue: Vec<(&Vec<String>, i32, f64)> = Vec::new();
    let mut failed: Vec<(&Vec<String>, String)> = Vec::new();
    let mut errors: Vec<ErrorRow> = Vec::new();

    for ((key, retries), outcome) in keys.iter().zip(outcomes) {
        let retries = *retries;
        match outcome {
            Outcome::Embedded { chunks, etag } => embedded.push((key, chunks, etag)),
            Outcome::Unchanged => unchanged += 1,
            Outcome::Failed { step, message } => {
                let key_json: serde_json::Map<String, serde_json::Value> = q
                    .key
                    .iter()
                    .zip(key)
                    .map(|(k, value)| (k.name.clone(), json!(value)))
                    .collect();
                let last = retries >= retries_allowed;
                errors.push((
                    format!("{step} failed: {}", scrub(&message)),
                    json!({"step": step.to_string(), "key": key_json, "attempt": retries + 1,
                           "moved_to_failed_queue": last})
                    .to_string(),
                ));
                if last {
                    failed.push((key, step.to_string()));
                } else {
                    requeue.push((key, retries + 1, retry_delay(retries)));
                }
            }
        }
    }
    done.embedded = embedded.len() + unchanged;
    done.failed = errors.len();

    Spi::connect_mut(|client| {
        let mut run = runner(client, v);
        if !embedded.is_empty() {
            if let Some(delete) = q.delete_chunks() {
                run(
                    &delete,
                    args(vec![], key_arrays(embedded.iter().map(|(k, _, _)| *k), n)),
                );
            }
            let rows: Vec<Row> = match &q.target {
                Names::Table { .. } => embedded
                    .iter()
                    .flat_map(|(k, chunks, etag)| {
                        chunks.iter().map(move |c| Row {
                            key: k,
                            seq: c.seq,
                            chunk: &c.text,
                            embedding: q.embedding_text(&c.embedding),
                            etag: etag.as_deref(),
                        })
                    })
                    .collect(),
                Names::Column(_) => embedded
                    .iter()
                    .filter_map(|(k, chunks, _)| {
                        chunks.first().map(|c| Row {
                            key: k,
                            seq: 0,
                            chunk: "",
                            embedding: q.embedding_text(&c.embedding),
                            etag: None,
                        })
                    })
                    .collect(),
            };
            if !rows.is_empty() {
                let keys = key_arrays(rows.iter().map(|r| r.key), n);
                let embeddings: DatumWithOid<'static> = rows
                    .iter()
                    .map(|r| r.embedding.clone())
                    .collect::<Vec<String>>()
                    .into();
                let extra: Vec<DatumWithOid<'static>> = match &q.target {
                    Names::Table { .. } => vec![
                        rows.iter().map(|r| r.seq).collect::<Vec<i32>>().into(),
                        rows.iter()
                            .map(|r| r.chunk.to_string())
                            .collect::<Vec<String>>()
                            .into(),
                        embeddings,
                        rows.iter()
                            .map(|r| r.etag.map(str::to_string))
                            .collect::<Vec<Option<String>>>()
                            .into(),
                    ],
                    Names::Column(_) => vec![embeddings],
                };
                run(&q.write_chunks(), args(extra, keys));
            }
        }
        if !requeue.is_empty() {
            run(
                &q.requeue(),
                args(
                    vec![
                        requeue.iter().map(|r| r.1).collect::<Vec<i32>>().into(),
                        requeue.iter().map(|r| r.2).collect::<Vec<f64>>().into(),
                    ],
                    key_arrays(requeue.iter().map(|r| r.0), n),
                ),
            );
        }
        if !failed.is_empty() {
            run(
                &q.fail(),
                args(
                    vec![failed
                        .iter()
                        .map(|f| f.1.clone())
                        .collect::<Vec<String>>()
                        .into()],
                    key_arrays(failed.iter().map(|f| f.0), n),
                ),
            );
        }
    });
    (done, errors)
}

/// Runs one statement of `v`'s writes; an error ends the transaction, naming `v`.
fn runner<'a, 'c>(
    client: &'a mut pgrx::spi::SpiClient<'c>,
    v: &'a Vectorizer,
) -> impl FnMut(&str, Vec<DatumWithOid<'static>>) + use<'a, 'c> {
    move |sql, args| {
        client
            .update(sql, None, &args)
            .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name));
    }
}

/// Records error rows and progress for a vectorizer, as the worker: the catalog is not
/// the owner's to write. Nothing, once the vectorizer is gone: its catalog row is
/// locked against a concurrent `ai.drop_vectorizer` first (which only deletes it after
/// this transaction, or is waited for and then seen to have).
fn record(v: &Vectorizer, successes: usize, failures: usize, errors: Vec<ErrorRow>) {
    let last_error = errors.last().map(|e| e.0.clone());
    let (messages, details): (Vec<String>, Vec<String>) = errors.into_iter().unzip();
    Spi::connect_mut(|client| {
        let exists = client
            .update(
                "SELECT FROM ai.vectorizer WHERE id = $1 FOR KEY SHARE",
                None,
                &[v.id.into()],
            )
            .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name))
            .len()
            > 0;
        if !exists {
            return;
        }
        let mut run = runner(client, v);
        if !messages.is_empty() {
            run(
                "INSERT INTO ai._vectorizer_errors (id, message, details)
                 SELECT $1, m, d::jsonb FROM unnest($2::text[], $3::text[]) AS u(m, d)",
                vec![v.id.into(), messages.into(), details.into()],
            );
        }
        run(
            "UPDATE ai.vectorizer_worker_progress SET
                 success_count = success_count + $2,
                 error_count = error_count + $3,
                 last_success_at = CASE WHEN $2 > 0 THEN pg_catalog.now() ELSE last_success_at END,
                 last_error_at = CASE WHEN $3 > 0 THEN pg_catalog.now() ELSE last_error_at END,
                 last_error_message = coalesce($4, last_error_message)
             WHERE vectorizer_id = $1",
            vec![
                v.id.into(),
                (successes as i64).into(),
                (failures as i64).into(),
                last_error.into(),
            ],
        );
    });
}

/// Records a batch that could not run (the provider is down or misconfigured): an
/// error row and the progress, in a transaction of their own.
pub fn record_batch_error(v: &Vectorizer, step: Step, error: &BatchError) {
    let message = format!(
        "{step} failed, the batch stays queued: {}",
        scrub(&error.message)
    );
    let details = json!({"step": step.to_string(), "batch": true,
                         "retry_after_seconds": error.retry_after.map(|d| d.as_secs_f64())});
    let _ = transaction::run(|| {
        record(v, 0, 1, vec![(message.clone(), details.to_string())]);
        Ok::<_, ()>(())
    });
}
