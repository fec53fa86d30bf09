//! Writing a batch's outcomes, in a short transaction of their own: only rows still as
//! claimed are written, so the store never gets chunks of a row deleted or re-keyed
//! while its document was on the network, nor older chunks over newer ones.

use ai_loader_core::destination::Names;
use ai_loader_core::error_log::VECTORIZER_ERRORS;
use ai_loader_core::progress;
use ai_loader_core::queue::retry_delay;
use ai_loader_pipeline::batch::{Chunk, Outcome, Step};
use ai_loader_pipeline::embedding::BatchError;
use ai_loader_pipeline::loading::scrub;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use serde_json::json;

use super::batch::{Done, Running};
use super::error_log;
use super::transaction::in_transaction;
use super::vectorizer::Vectorizer;
use crate::catalog::{self, VECTORIZERS};
use crate::roles::Owned;

/// Seconds before a row held by another transaction at write time is tried again.
const BUSY_DELAY: f64 = 1.0;

/// Key values as one text array per key column, for the queue SQL's `unnest`.
pub fn key_arrays<'a>(
    keys: impl Iterator<Item = &'a Vec<String>>,
    n: usize,
) -> Vec<DatumWithOid<'static>> {
    let mut arrays = vec![Vec::<String>::new(); n];
    for key in keys {
        for (array, value) in arrays.iter_mut().zip(key) {
            array.push(value.clone());
        }
    }
    arrays.into_iter().map(DatumWithOid::from).collect()
}

/// What became of a claimed key by the time its outcome is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// As claimed, and now locked: its outcome is written.
    Current,
    /// Another transaction holds the source row (deleting it, changing its key or, for
    /// a column destination, updating it): queued again, shortly.
    Busy,
    /// Changed since the claim (queued again), deleted or claimed anew: nothing to do.
    Stale,
}

/// One stored chunk (or embedding column value) of the batch.
struct Row<'a> {
    key: &'a Vec<String>,
    seq: i32,
    chunk: &'a str,
    embedding: &'a [f32],
    etag: Option<&'a str>,
    page: Option<i32>,
}

/// An error row to record: its message and details (JSON text).
type ErrorRow = (String, String);

/// The outcomes of a batch, sorted by what the write does with them.
#[derive(Default)]
struct Sorted<'a> {
    embedded: Vec<(&'a Vec<String>, Vec<Chunk>, Option<String>)>,
    unchanged: usize,
    requeue: Vec<(&'a Vec<String>, i32, f64)>,
    failed: Vec<(&'a Vec<String>, String)>,
    errors: Vec<ErrorRow>,
}

/// Writes a batch's outcomes with the owner's rights, then records errors and progress
/// as the worker.
pub fn batch(v: &Vectorizer, batch: &Running, outcomes: Vec<Outcome>) -> Done {
    let (done, errors) = v.as_owner(|| {
        Spi::connect_mut(|client| {
            runner(client, v)(&v.sql.lock_source(), vec![]);
            let states = check(client, v, batch);
            let sorted = sort(v, batch, outcomes, &states);
            let done = Done {
                claimed: batch.keys.len(),
                embedded: sorted.embedded.len() + sorted.unchanged,
                failed: sorted.errors.len(),
                more: false,
            };
            let mut run = runner(client, v);
            store(v, &mut run, &sorted);
            settle(v, &mut run, batch, &sorted, &states);
            (done, sorted.errors)
        })
    });
    record(v, done.embedded, done.failed, errors);
    done
}

/// Each batch key's state, checked (and its source row locked) in this transaction.
fn check(client: &mut pgrx::spi::SpiClient<'_>, v: &Vectorizer, batch: &Running) -> Vec<State> {
    let mut args = key_arrays(batch.keys.iter().map(|(k, _)| k), v.sql.key.len());
    args.push(batch.claim.clone().into());
    let flag = |row: &pgrx::spi::SpiHeapTupleData<'_>, name: &str| -> bool {
        row.get_by_name::<bool, _>(name)
            .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name))
            .unwrap_or(false)
    };
    client
        .update(&v.sql.check(), None, &args)
        .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name))
        .map(|row| {
            let claimed = flag(&row, "ours") && !flag(&row, "newer");
            match (claimed, flag(&row, "locked"), flag(&row, "present")) {
                (true, true, _) => State::Current,
                // Readable but not lockable under forced row-level security: written
                // unguarded (see the README).
                (true, false, true) if flag(&row, "forced") => State::Current,
                (true, false, true) => State::Busy,
                _ => State::Stale,
            }
        })
        .collect()
}

/// Sorts the current keys' outcomes: chunks to store, retries, failures for good.
fn sort<'a>(
    v: &Vectorizer,
    batch: &'a Running,
    outcomes: Vec<Outcome>,
    states: &[State],
) -> Sorted<'a> {
    let mut sorted = Sorted::default();
    let retries_allowed = v.loading.retries();
    for (((key, retries), outcome), state) in batch.keys.iter().zip(outcomes).zip(states) {
        if *state != State::Current {
            continue;
        }
        match outcome {
            Outcome::Embedded { chunks, etag } => sorted.embedded.push((key, chunks, etag)),
            Outcome::Unchanged => sorted.unchanged += 1,
            Outcome::Failed {
                step,
                message,
                lasting,
            } => {
                // A failure the same document would meet again is not retried.
                let last = lasting || *retries >= retries_allowed;
                sorted
                    .errors
                    .push(error_row(v, key, *retries, step, &message, lasting, last));
                match last {
                    true => sorted.failed.push((key, step.to_string())),
                    false => sorted
                        .requeue
                        .push((key, retries + 1, retry_delay(*retries))),
                }
            }
        }
    }
    sorted
}

fn error_row(
    v: &Vectorizer,
    key: &[String],
    retries: i32,
    step: Step,
    message: &str,
    deterministic: bool,
    last: bool,
) -> ErrorRow {
    let key_json: serde_json::Map<String, serde_json::Value> = (v.sql.key.iter().zip(key))
        .map(|(k, value)| (k.name.clone(), json!(value)))
        .collect();
    (
        format!("{step} failed: {}", scrub(message)),
        json!({"step": step.to_string(), "key": key_json, "attempt": retries + 1,
               "deterministic": deterministic, "moved_to_failed_queue": last})
        .to_string(),
    )
}

/// Replaces the embedded keys' chunks (or sets their embedding column).
fn store(v: &Vectorizer, run: &mut impl FnMut(&str, Vec<DatumWithOid<'static>>), s: &Sorted) {
    let q = &v.sql;
    let n = q.key.len();
    if s.embedded.is_empty() {
        return;
    }
    if let Some(delete) = q.delete_chunks() {
        run(
            &delete,
            key_arrays(s.embedded.iter().map(|(k, _, _)| *k), n),
        );
    }
    let rows: Vec<Row> = match &q.target {
        Names::Table { .. } => (s.embedded.iter())
            .flat_map(|(k, chunks, etag)| {
                chunks.iter().map(move |c| Row {
                    key: k,
                    seq: c.seq,
                    chunk: &c.text,
                    embedding: &c.embedding,
                    etag: etag.as_deref(),
                    page: c.page,
                })
            })
            .collect(),
        Names::Column(_) => (s.embedded.iter())
            .filter_map(|(k, chunks, _)| {
                chunks.first().map(|c| Row {
                    key: k,
                    seq: 0,
                    chunk: "",
                    embedding: &c.embedding,
                    etag: None,
                    page: None,
                })
            })
            .collect(),
    };
    if rows.is_empty() {
        return;
    }
    let mut args = key_arrays(rows.iter().map(|r| r.key), n);
    if let Names::Table { .. } = &q.target {
        args.push(rows.iter().map(|r| r.seq).collect::<Vec<i32>>().into());
        args.push(
            (rows.iter().map(|r| r.chunk.to_string()))
                .collect::<Vec<String>>()
                .into(),
        );
        args.push(
            (rows.iter().map(|r| r.etag.map(str::to_string)))
                .collect::<Vec<Option<String>>>()
                .into(),
        );
        args.push(
            rows.iter()
                .map(|r| r.page)
                .collect::<Vec<Option<i32>>>()
                .into(),
        );
    }
    let (embeddings, dimensions) = end_to_end(v, &rows);
    args.push(embeddings);
    args.push(dimensions.into());
    run(&q.write_chunks(), args);
}

/// The rows' embeddings end to end in one `real[]`, and the length of each: the write
/// slices them apart in the server. Every embedding has the vectorizer's dimensions
/// (the pipeline checked them); a batch where they differ is refused rather than
/// sliced wrong.
fn end_to_end(v: &Vectorizer, rows: &[Row]) -> (DatumWithOid<'static>, i32) {
    let dimensions = rows[0].embedding.len();
    let mut datums: Vec<pg_sys::Datum> = Vec::with_capacity(rows.len() * dimensions);
    for row in rows {
        if row.embedding.len() != dimensions {
            error!(
                "vectorizer {}: embeddings of {} and {} dimensions in one batch",
                v.name,
                dimensions,
                row.embedding.len()
            );
        }
        datums.extend(
            row.embedding
                .iter()
                .map(|x| pg_sys::Datum::from(x.to_bits())),
        );
    }
    (real_array(datums), dimensions as i32)
}

/// Settles the queues: the claim's rows deleted, failed keys queued again or moved to
/// the failed queue, busy keys queued again shortly.
fn settle(
    v: &Vectorizer,
    run: &mut impl FnMut(&str, Vec<DatumWithOid<'static>>),
    batch: &Running,
    s: &Sorted,
    states: &[State],
) {
    let q = &v.sql;
    let n = q.key.len();
    let mut args = key_arrays(batch.claimed.iter(), n);
    args.push(batch.claim.clone().into());
    run(&q.delete_claimed(), args);

    let busy = (batch.keys.iter().zip(states))
        .filter(|(_, state)| **state == State::Busy)
        .map(|((key, retries), _)| (key, *retries, BUSY_DELAY));
    let requeue: Vec<(&Vec<String>, i32, f64)> = s.requeue.iter().copied().chain(busy).collect();
    if !requeue.is_empty() {
        let mut args = key_arrays(requeue.iter().map(|r| r.0), n);
        args.push(requeue.iter().map(|r| r.1).collect::<Vec<i32>>().into());
        args.push(requeue.iter().map(|r| r.2).collect::<Vec<f64>>().into());
        run(&q.requeue(), args);
    }
    if !s.failed.is_empty() {
        let mut args = key_arrays(s.failed.iter().map(|f| f.0), n);
        args.push(
            (s.failed.iter().map(|f| f.1.clone()))
                .collect::<Vec<String>>()
                .into(),
        );
        run(&q.fail(), args);
    }
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

/// Float4 datums as one `real[]` parameter, built in one call rather than element by
/// element (the batch's embeddings are hundreds of thousands of them).
fn real_array(mut datums: Vec<pg_sys::Datum>) -> DatumWithOid<'static> {
    // SAFETY: the datums hold float4 values; float4 is passed by value, 4 bytes long and int-aligned (typlen,
    // typbyval, typalign of pg_type); construct_array copies the datums, in the current
    // memory context, which outlives the statement the array is a parameter of.
    unsafe {
        let array = pg_sys::construct_array(
            datums.as_mut_ptr(),
            datums.len() as i32,
            pg_sys::FLOAT4OID,
            4,
            true,
            b'i' as std::ffi::c_char,
        );
        DatumWithOid::new(pg_sys::Datum::from(array), pg_sys::FLOAT4ARRAYOID)
    }
}

/// Records error rows and progress for a vectorizer, as the worker: the catalog is not
/// the owner's to write. Nothing, once the vectorizer is gone: its catalog row is
/// locked against a concurrent `ai.drop_vectorizer` first (which only deletes it after
/// this transaction, or is waited for and then seen to have).
fn record(v: &Vectorizer, successes: usize, failures: usize, errors: Vec<ErrorRow>) {
    let last_error = errors.last().map(|e| e.0.clone());
    Spi::connect_mut(|client| {
        if !still_there(client, v) {
            return;
        }
        error_log::append(client, &VECTORIZER_ERRORS, v.id, errors)
            .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name));
        let mut run = runner(client, v);
        run(
            progress::VECTORIZER,
            vec![
                v.id.into(),
                (successes as i64).into(),
                (failures as i64).into(),
                last_error.into(),
            ],
        );
    });
}

/// Whether the vectorizer is still in the catalog, its row locked against a concurrent
/// `ai.drop_vectorizer` until the end of the transaction.
fn still_there(client: &mut pgrx::spi::SpiClient<'_>, v: &Vectorizer) -> bool {
    catalog::still_there(client, VECTORIZERS, v.id)
        .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name))
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
    record_error(v, message, details);
}

/// Records an error row and the progress, in a transaction of their own.
pub fn record_error(v: &Vectorizer, message: String, details: serde_json::Value) {
    let _ = in_transaction(|| record(v, 0, 1, vec![(message, details.to_string())]));
}

/// Records that the worker built the vectorizer's vector index, so that it never
/// builds it again.
pub fn record_index_built(v: &Vectorizer) {
    let _ = in_transaction(|| {
        Spi::connect_mut(|client| {
            if still_there(client, v) {
                runner(client, v)(progress::INDEX_BUILT, vec![v.id.into()]);
            }
        })
    });
}
