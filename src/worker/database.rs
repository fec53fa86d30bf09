//! A database's worker: every poll interval (at once after a full batch) it serves
//! each enabled vectorizer, batch by batch. A vectorizer whose provider is down backs
//! off, honouring Retry-After, while the others go on. The worker also builds vector
//! indexes and serves S3 syncs. Its helpers (see `launcher`) only claim and embed
//! batches, and exit after a round that found nothing more to do.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_loader_config::loading::Loading;
use ai_loader_pipeline::batch::{Pipeline, Step};
use ai_loader_pipeline::embedding::BatchError;
use ai_loader_pipeline::loading::{s3, scrub, UriLoader};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use serde_json::Value;

use super::batch::{self, in_transaction, Abort};
use super::vectorizer::{self, Vectorizer};
use super::{index, report_activity, s3_sync, session, shared, signals, transaction, write, Role};
use crate::gucs;

/// The longest a vectorizer waits after its provider failed, when it did not say.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn ai_loader_worker_main(arg: pg_sys::Datum) {
    serve(arg, Role::Worker);
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn ai_loader_helper_main(arg: pg_sys::Datum) {
    serve(arg, Role::Helper);
}

/// Serves the database whose OID is `arg` in the given role.
fn serve(arg: pg_sys::Datum, role: Role) {
    let primary = role == Role::Worker;
    // SAFETY: the launcher passes the database's OID as the argument.
    let database = unsafe { pg_sys::Oid::from_datum(arg, false) }.expect("a database OID");
    signals::attach();
    if !shared::register_worker(database, primary) {
        return; // the database is being dropped
    }
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(database), None);

    if transaction::run(|| Ok::<_, ()>(installed()))
        .ok()
        .flatten()
        .is_none()
    {
        return; // the launcher tries this database again later
    }
    shared::set_installed(database);
    let Some(session) = session::open() else {
        return;
    };
    match primary {
        true => log!("ai_loader worker started"),
        false => debug1!("ai_loader helper started"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ai_loader")
        .on_thread_start(ai_loader_pipeline::signals::block_all)
        .enable_all()
        .build()
        .unwrap_or_else(|e| error!("ai_loader: cannot start the pipeline's runtime: {e}"));

    let mut uris = uri_loader();
    let mut reported = (0, 0);
    let mut pipelines: HashMap<i32, (Value, Arc<Pipeline>)> = HashMap::new();
    let mut backoff: HashMap<i32, Backoff> = HashMap::new();
    // The vectorizers whose left claims this worker gave back, since the count of
    // workers that ended leaving claims was `left_claims`.
    let mut released: HashSet<i32> = HashSet::new();
    let mut left_claims = shared::left_claims();
    let mut indexes = index::Builds::default();
    let mut syncs = s3_sync::Syncs::default();
    let mut wait = Duration::ZERO;
    // When its turn began (see `ai_loader.worker_turn`).
    let started = Instant::now();
    // Since when the worker has found nothing to do (see `ai_loader.idle_timeout`).
    let mut idle_since: Option<Instant> = None;
    // The installed version that is not the library's, once said in the log.
    let mut mismatch: Option<String> = None;
    while signals::wait(wait) {
        session.check();
        if signals::reload_requested() {
            // SAFETY: the main thread, outside a transaction.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            // Settings such as the timeout, the endpoint or a key may have changed.
            uris = uri_loader();
            pipelines.clear();
            syncs.reset();
        }
        let Ok(version) = transaction::run(|| Ok::<_, ()>(installed())) else {
            break;
        };
        match version {
            None => {
                log!("ai_loader was dropped from this database; worker exiting");
                break;
            }
            Some(v) if v != LIBRARY_VERSION && !primary => break,
            Some(v) if v != LIBRARY_VERSION => {
                // The catalog is another version's: serving it could misread it. Wait
                // for ALTER EXTENSION ai_loader UPDATE (queued rows stay queued).
                if mismatch.as_deref() != Some(&v) {
                    let name = transaction::run(|| {
                        Spi::get_one::<String>(
                            "SELECT pg_catalog.current_database()::pg_catalog.text",
                        )
                    })
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                    log!(
                        "ai_loader {v} is installed in database \"{name}\", the library is {LIBRARY_VERSION}: \
                         waiting for ALTER EXTENSION ai_loader UPDATE"
                    );
                    mismatch = Some(v);
                }
                wait = gucs::poll_interval();
                continue;
            }
            Some(_) => mismatch = None,
        }
        let Ok(vectorizers) = transaction::run(|| Ok::<_, ()>(vectorizer::enabled())) else {
            break;
        };
        // Rows committed from here on are not sure to be seen by this round.
        shared::take_wake();
        if shared::left_claims() != left_claims {
            left_claims = shared::left_claims();
            released.clear();
        }
        let mut busy = false;
        let mut claimed = false;
        for v in vectorizers {
            if signals::stopping() {
                break;
            }
            let v = match v {
                Ok(v) => v,
                Err((id, e)) => {
                    debug1!("ai_loader: vectorizer {id} skipped: {e}");
                    continue;
                }
            };
            let state = backoff.entry(v.id).or_default();
            if state.until.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            let aws_use = if matches!(v.loading, Loading::Uri { .. }) {
                Some((Step::Loading, "load URIs"))
            } else if v.embeds_with_aws() {
                Some((Step::Embedding, "embed with Amazon Bedrock"))
            } else {
                None
            };
            if v.owner_oid.is_some() && v.owner_oid != v.source_owner {
                let message = crate::roles::not_table_owner("vectorizer", &v.owner, "source");
                back_off(state, &v, Step::Loading, &stopped(message));
                continue;
            }
            if let Some((step, what)) = aws_use.filter(|_| !v.owner_may_load_uris) {
                let message = format!(
                    "the vectorizer's owner \"{0}\" may no longer {what} (it is neither a superuser nor a member of ai_loader_s3_reader); to resume: GRANT ai_loader_s3_reader TO \"{0}\"",
                    v.owner
                );
                back_off(state, &v, step, &stopped(message));
                continue;
            }
            if !released.contains(&v.id) {
                let sql = v.queue.release_left_claims();
                if in_transaction(|| batch::as_owner(&v, || Spi::run(&sql))).is_ok() {
                    released.insert(v.id);
                }
            }
            let pipeline = match pipeline_for(&mut pipelines, &v, &uris) {
                Ok(p) => p,
                Err(message) => {
                    back_off(state, &v, Step::Embedding, &stopped(message));
                    continue;
                }
            };
            match batch::run(&v, &pipeline, &runtime) {
                Ok(done) => {
                    state.failures = 0;
                    state.until = None;
                    busy |= done.more;
                    claimed |= done.claimed > 0;
                    if primary {
                        indexes.note(&v, done.claimed);
                        if indexes.run(&v).is_err() {
                            log!("ai_loader worker stopping");
                            return;
                        }
                    }
                }
                Err(Abort::Provider(e)) => back_off(state, &v, Step::Embedding, &e),
                Err(Abort::Refused(message)) => {
                    back_off(state, &v, Step::Loading, &stopped(message))
                }
                Err(Abort::Locked) => {
                    debug1!(
                        "ai_loader: vectorizer {}: a lock was not granted in time; next round",
                        v.name
                    )
                }
                Err(Abort::Stop) => {
                    log!("ai_loader worker stopping; the rows it had claimed are queued again");
                    return;
                }
            }
        }
        if !primary {
            if busy && !shared::others_waiting() {
                continue;
            }
            debug1!("ai_loader helper: nothing more queued, or other databases wait; exiting");
            return;
        }
        shared::set_backlog(busy);
        if !signals::stopping() {
            busy |= syncs.serve(&runtime, &uris);
        }
        let calls = (s3::get_object_calls(), s3::assume_role_calls());
        if !busy && calls != reported {
            log!(
                "ai_loader: since this worker started: {} S3 GetObject request(s), {} AssumeRole call(s)",
                calls.0,
                calls.1
            );
            reported = calls;
        }
        if shared::others_waiting() && started.elapsed() >= gucs::worker_turn() {
            if busy || claimed {
                shared::want_again();
            }
            log!(
                "ai_loader worker: had its turn ({}s) while other databases wait for a worker; \
                 giving its slot back",
                gucs::worker_turn().as_secs()
            );
            return;
        }
        idle_since = match busy || claimed || !syncs.is_empty() {
            true => None,
            false => idle_since.or_else(|| Some(Instant::now())),
        };
        if let Some(limit) = gucs::idle_timeout() {
            if idle_since.is_some_and(|t| t.elapsed() >= limit) {
                if nothing_queued() {
                    // A commit from here on finds no worker, or one about to leave: it
                    // notes the database as wanted, and the launcher starts a worker.
                    shared::set_left_idle();
                    log!(
                        "ai_loader worker: nothing queued for {}s; leaving until rows are queued",
                        limit.as_secs()
                    );
                    return;
                }
                // Rows wait for a retry: looked at again after another idle_timeout,
                // not every round.
                idle_since = Some(Instant::now());
            }
        }
        report_activity("idle");
        wait = if busy || shared::take_wake() || s3_sync::take_ready() {
            Duration::ZERO
        } else {
            gucs::poll_interval()
        };
    }
    log!("ai_loader worker stopping");
}

/// Whether every enabled vectorizer's queue is empty (rows waiting for a retry count as
/// queued: the worker stays for them).
fn nothing_queued() -> bool {
    in_transaction(|| {
        vectorizer::enabled().into_iter().flatten().all(|v| {
            let sql = v.queue.any_queued();
            batch::as_owner(&v, || Spi::get_one::<bool>(&sql))
                .ok()
                .flatten()
                == Some(false)
        })
    })
    .unwrap_or(false)
}

/// A failure that no retry within the batch would mend.
fn stopped(message: String) -> BatchError {
    BatchError {
        message,
        retry_after: None,
    }
}

/// A vectorizer that cannot run now (its provider is down, its owner lost a right)
/// waits — the `Retry-After`, or 2, 4, … up to 60 s — with an error row saying why.
fn back_off(state: &mut Backoff, v: &Vectorizer, step: Step, e: &BatchError) {
    state.failures += 1;
    let wait = e
        .retry_after
        .unwrap_or_else(|| Duration::from_secs(1 << state.failures.min(6)).min(MAX_BACKOFF));
    state.until = Some(Instant::now() + wait);
    warning!(
        "ai_loader: vectorizer {}: {}; retrying in {:.1}s",
        v.name,
        scrub(&e.message),
        wait.as_secs_f64()
    );
    write::record_batch_error(v, step, e);
}

/// The version of ai_loader installed in this database, if it is.
fn installed() -> Option<String> {
    Spi::get_one::<String>(
        "SELECT e.extversion::pg_catalog.text FROM pg_catalog.pg_extension e
          WHERE e.extname OPERATOR(pg_catalog.=) 'ai_loader'",
    )
    .ok()
    .flatten()
}

/// This library's version: the SQL it serves is the install script of the same version.
const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

fn uri_loader() -> Arc<UriLoader> {
    Arc::new(
        UriLoader::new(gucs::loading_settings())
            .unwrap_or_else(|e| error!("ai_loader: cannot set up loading: {e}")),
    )
}

/// The vectorizer's pipeline, rebuilt when its configuration changed.
fn pipeline_for(
    cache: &mut HashMap<i32, (Value, Arc<Pipeline>)>,
    v: &Vectorizer,
    uris: &Arc<UriLoader>,
) -> Result<Arc<Pipeline>, String> {
    if let Some((config, pipeline)) = cache.get(&v.id) {
        if *config == v.config {
            return Ok(Arc::clone(pipeline));
        }
    }
    let pipeline = v.pipeline(uris)?;
    cache.insert(v.id, (v.config.clone(), Arc::clone(&pipeline)));
    Ok(pipeline)
}
