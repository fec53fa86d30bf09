//! One turn of one vectorizer: batches of queued rows are claimed, run through the
//! pipeline off the main thread (the next batch loading while the one before is
//! written) and their outcomes written. No transaction is open and no lock held while a
//! document or an embedding is on the network: a claim commits at once, leasing its
//! rows (see `ai_loader_core::queue`), and the write, another short transaction,
//! checks that the rows are still the ones claimed. A batch that cannot be written is
//! given back; a worker that dies leaves its claims to the next one.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ai_loader_core::loading::Loading;
use ai_loader_core::queue::{column_alias, hold_claim, key_alias, LET_GO_OF_CLAIMS};
use ai_loader_pipeline::batch::{Item, Outcome, Pipeline, Source};
use ai_loader_pipeline::embedding::BatchError;
use ai_loader_pipeline::parsing::Document;
use pgrx::prelude::*;
use pgrx::spi::SpiHeapTupleData;
use tokio::task::JoinHandle;

use super::transaction::{in_transaction, Abort};
use super::vectorizer::Vectorizer;
use super::write::{self, key_arrays};
use super::{report_activity, shared, signals};
use crate::roles::Owned;

thread_local! {
    /// This worker holds claim locks (`hold_claim`) to let go of at the end of a turn.
    static HOLDING_CLAIMS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Batches in flight at once: while one is written, the next one loads.
const IN_FLIGHT: usize = 2;
/// Batches a turn claims at most, so that the other vectorizers get theirs.
const BATCHES_PER_TURN: usize = 8;

/// What a turn did.
#[derive(Default)]
pub struct Done {
    pub claimed: usize,
    pub embedded: usize,
    pub failed: usize,
    /// The last claim was full: more rows may be queued.
    pub more: bool,
}

/// A claimed row: its key, how often it failed before, and its document — `None` when
/// the source row is gone.
struct Claimed {
    key: Vec<String>,
    retries: i32,
    document: Option<Item>,
}

/// A claimed batch whose documents are in the pipeline.
pub struct Running {
    /// The claim's transaction id, which marks its queued rows.
    pub claim: String,
    /// Every key claimed, the gone rows' too.
    pub claimed: Vec<Vec<String>>,
    /// The keys whose rows are in the pipeline, with their retries: the pipeline's
    /// outcomes are theirs, one each, in this order.
    pub keys: Vec<(Vec<String>, i32)>,
    task: JoinHandle<Result<Vec<Outcome>, BatchError>>,
}

pub fn run(
    v: &Vectorizer,
    pipeline: &Arc<Pipeline>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Done, Abort> {
    let mut running: VecDeque<Running> = VecDeque::new();
    let result = turn(v, pipeline, runtime, &mut running);
    if !running.is_empty() {
        // The turn ended early: stop the batches' work and give their rows back.
        for batch in &running {
            batch.task.abort();
        }
        release(v, &running);
    }
    // Every claim of the turn is written or given back (or, if giving back failed,
    // left to its lease). Should this fail (a stop under way), the locks go with the
    // process, or hold claims that are no longer pending anyway.
    if HOLDING_CLAIMS.replace(false) {
        let _ = in_transaction(|| Spi::run(LET_GO_OF_CLAIMS));
    }
    result
}

/// The turn's work: batches claimed, run and written in turn.
fn turn(
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
        while done.more && running.len() < IN_FLIGHT && claims < BATCHES_PER_TURN {
            report_activity(&format!("vectorizer {}: claiming", v.name));
            let (claim, rows) = in_transaction(|| match enabled(v) {
                true => v.as_owner(|| claim(v)),
                false => (String::new(), Vec::new()),
            })?;
            claims += 1;
            done.more = rows.len() >= batch_size;
            if rows.is_empty() {
                break;
            }
            running.push_back(start(claim, rows, pipeline, runtime));
            if done.more && running.len() == IN_FLIGHT {
                // More is queued than this worker keeps in flight: a helper may start.
                shared::set_backlog(true);
            }
        }
        let Some(batch) = running.front_mut() else {
            break;
        };
        report_activity(&format!(
            "vectorizer {}: embedding {} rows",
            v.name,
            batch.keys.len()
        ));
        let outcomes = wait(runtime, &mut batch.task)?;
        report_activity(&format!(
            "vectorizer {}: writing {} rows",
            v.name,
            batch.keys.len()
        ));
        let written = in_transaction(|| write::batch(v, &running[0], outcomes))?;
        running.pop_front();
        done.claimed += written.claimed;
        done.embedded += written.embedded;
        done.failed += written.failed;
    }
    Ok(done)
}

/// Puts a claimed batch's documents into the pipeline.
fn start(
    claim: String,
    rows: Vec<Claimed>,
    pipeline: &Arc<Pipeline>,
    runtime: &tokio::runtime::Runtime,
) -> Running {
    let claimed = rows.iter().map(|c| c.key.clone()).collect();
    let (keys, items): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .filter_map(|c| Some(((c.key, c.retries), c.document?)))
        .unzip();
    Running {
        claim,
        claimed,
        keys,
        task: runtime.spawn(Arc::clone(pipeline).run(items)),
    }
}

/// Whether the vectorizer is still enabled, and its owner still may act with the
/// server's AWS identity if it does, read by the worker in the claim's transaction (its
/// owner need not read the catalog): a membership revoked before the claim stops it.
fn enabled(v: &Vectorizer) -> bool {
    let args = [v.id.into(), v.uses_aws_identity().into()];
    Spi::get_one_with_args::<bool>(ai_loader_core::catalog::ENABLED, &args)
        .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name))
        == Some(true)
}

/// Claims a batch, reading each row's document; returns the claim and its rows.
fn claim(v: &Vectorizer) -> (String, Vec<Claimed>) {
    let batch_size = v.processing.batch_size();
    Spi::connect_mut(|client| {
        client
            .update(&v.sql.lock_source(), None, &[])
            .unwrap_or_else(|e| error!("claiming from vectorizer {}: {e}", v.name));
        let rows = client
            .update(&v.sql.claim(), None, &[batch_size.into(), v.id.into()])
            .unwrap_or_else(|e| error!("claiming from vectorizer {}: {e}", v.name));
        let mut claim = String::new();
        let claimed: Vec<Claimed> = rows
            .map(|row| {
                claim = get(&row, "claim").unwrap_or_default();
                claimed(v, &row)
            })
            .collect();
        if !claimed.is_empty() {
            let held = client
                .update(&hold_claim(), None, &[])
                .and_then(|rows| rows.first().get_by_name::<bool, _>("held"))
                .unwrap_or_else(|e| error!("claiming from vectorizer {}: {e}", v.name));
            if held == Some(true) {
                HOLDING_CLAIMS.set(true);
            } else {
                // Rolled back: the rows stay due; the next round claims them anew.
                ereport!(
                    PgLogLevel::ERROR,
                    PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE,
                    format!(
                        "claiming from vectorizer {}: another session holds the claim's advisory lock",
                        v.name
                    )
                );
            }
        }
        (claim, claimed)
    })
}

/// A column of a row the worker's own SQL returned, by name.
fn get<T: IntoDatum + FromDatum>(row: &SpiHeapTupleData<'_>, name: &str) -> Option<T> {
    row.get_by_name(name)
        .unwrap_or_else(|e| error!("ai_loader: reading column \"{name}\": {e}"))
}

/// One row of a claim.
fn claimed(v: &Vectorizer, row: &SpiHeapTupleData<'_>) -> Claimed {
    let q = &v.sql;
    let key = (0..q.key.len())
        .map(|i| get::<String>(row, &key_alias(i)).unwrap_or_default())
        .collect();
    let document = get::<bool>(row, "found").unwrap_or(false).then(|| {
        let columns: HashMap<String, Option<String>> = (q.template_columns.iter().enumerate())
            .map(|(i, c)| (c.clone(), get::<String>(row, &column_alias(i))))
            .collect();
        let bytes: Vec<u8> = match q.loading_is_bytea {
            true => get(row, "document").unwrap_or_default(),
            false => get::<String>(row, "document")
                .map(String::into_bytes)
                .unwrap_or_default(),
        };
        let source = match v.loading {
            Loading::Uri { .. } => Source::Uri {
                uri: String::from_utf8_lossy(&bytes).into_owned(),
                etag: get(row, "etag"),
            },
            Loading::Column { .. } => Source::Inline(Document {
                bytes,
                name: None,
                is_text: !q.loading_is_bytea,
            }),
        };
        Item { source, columns }
    });
    Claimed {
        key,
        retries: get(row, "retries").unwrap_or(0),
        document,
    }
}

/// Waits for a batch on the runtime, in short slices so that SIGTERM and postmaster
/// death are noticed; only this (main) thread touches Postgres.
fn wait(
    runtime: &tokio::runtime::Runtime,
    task: &mut JoinHandle<Result<Vec<Outcome>, BatchError>>,
) -> Result<Vec<Outcome>, Abort> {
    match signals::finish(runtime, &mut *task) {
        None => Err(Abort::Stop),
        Some(Ok(Ok(outcomes))) => Ok(outcomes),
        Some(Ok(Err(e))) => Err(Abort::Provider(e)),
        Some(Err(join)) => Err(Abort::Provider(BatchError {
            message: format!("the pipeline failed: {join}"),
            retry_after: None,
        })),
    }
}

/// Gives the batches' rows back, due at once, in a transaction of its own. Should it
/// fail, the leases expire (or the next worker gives them back).
fn release(v: &Vectorizer, batches: &VecDeque<Running>) {
    signals::allow_last_statements();
    let n = v.sql.key.len();
    let released = in_transaction(|| {
        v.as_owner(|| {
            Spi::connect_mut(|client| {
                for batch in batches {
                    let mut args = key_arrays(batch.claimed.iter(), n);
                    args.push(batch.claim.clone().into());
                    client
                        .update(&v.sql.release(), None, &args)
                        .unwrap_or_else(|e| error!("vectorizer {}: {e}", v.name));
                }
            })
        })
    });
    if let Err(Abort::Refused(message)) = released {
        warning!(
            "ai_loader: vectorizer {}: claimed rows not given back ({message}); they are due again within {}",
            v.name,
            ai_loader_core::queue::LEASE
        );
    }
}
