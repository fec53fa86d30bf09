//! A database's worker: round after round (at once after a full batch, else every
//! poll interval or at a commit's wake-up) it serves the enabled vectorizers that may
//! have work — those a commit queued rows for, those whose last turn found rows — batch
//! by batch, and every revisit interval all of them. A vectorizer whose provider is down backs
//! off, honouring Retry-After, while the others go on. The worker also builds vector
//! indexes and serves S3 syncs. Its helpers (see `launcher`) only claim and embed
//! batches, and exit after a round that found nothing more to do.
//!
//! [`DatabaseWorker::round`] is one round: the version gate, each vectorizer's
//! [`turn`](DatabaseWorker::turn) (if [`may_run`] lets it), then what the role does
//! after ([`DatabaseWorker::worker_after`], [`helper_after`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_loader_core::backoff::{Backoff, PROVIDER};
use ai_loader_core::loading::Loading;
use ai_loader_pipeline::batch::{Pipeline, Step};
use ai_loader_pipeline::embedding::BatchError;
use ai_loader_pipeline::loading::{s3, scrub, UriLoader};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use serde_json::Value;

use super::batch;
use super::transaction::{in_transaction, Abort};
use super::vectorizer::{self, Vectorizer};
use super::{
    database_name, index, report_activity, s3_sync, session, shared, signals, transaction, write,
    Role,
};
use crate::gucs;
use crate::roles::Owned;
use crate::LIBRARY_VERSION;

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

/// Serves the database whose OID is `arg` in the given role: round after round, until
/// a round says to leave.
fn serve(arg: pg_sys::Datum, role: Role) {
    let Some(mut worker) = DatabaseWorker::start(arg, role) else {
        return;
    };
    let mut wait = Duration::ZERO;
    while signals::wait(wait) {
        match worker.round() {
            Next::Wait(next) => wait = next,
            Next::Leave => return,
            Next::Stop => break,
        }
    }
    log!("ai_loader worker stopping");
}

/// What a round tells the loop.
enum Next {
    /// Another round, after this long (or at a wake-up).
    Wait(Duration),
    /// The worker (or helper) is done here; it has said why.
    Leave,
    /// It stops: the extension is gone or another version, or the catalog unreadable.
    Stop,
}

/// What the vectorizers' turns of a round did.
#[derive(Default)]
struct Round {
    /// A turn's claim was full: more rows may be queued.
    busy: bool,
    /// A turn claimed rows.
    claimed: bool,
}

/// A database's worker or helper, and what it keeps from round to round.
struct DatabaseWorker {
    role: Role,
    database: pg_sys::Oid,
    runtime: tokio::runtime::Runtime,
    session: session::Session,
    uris: Arc<UriLoader>,
    /// Each vectorizer's pipeline, with the configuration it was built from.
    pipelines: HashMap<i32, (Value, Arc<Pipeline>)>,
    /// Each vectorizer's failures in a row (its provider down, its owner refused).
    backoff: HashMap<i32, Backoff>,
    /// The vectorizers whose left claims this worker gave back, since the count of
    /// workers that ended leaving claims was `left_claims`.
    released: HashSet<i32>,
    left_claims: u64,
    indexes: index::Builds,
    syncs: s3_sync::Syncs,
    /// The S3 calls last said in the log.
    reported: (u64, u64),
    /// When its turn began (see `ai_loader.worker_turn`).
    started: Instant,
    /// Since when the worker has found nothing to do (see `ai_loader.idle_timeout`).
    idle_since: Option<Instant>,
    /// The installed version that is not the library's, once said in the log.
    mismatch: Option<String>,
    /// The vectorizers that may have work — their last turn claimed rows, or rows of
    /// theirs wait (for a retry, their provider, a lock) — looked at every round. The
    /// others are looked at when a commit queues rows for them, and every one of them
    /// every `ai_loader.revisit_interval` (rows queued without a commit's wake-up): an
    /// idle worker runs no statement per vectorizer.
    active: HashSet<i32>,
    /// What commits woke the worker for, not served yet.
    wake: shared::Wake,
    /// When every enabled vectorizer is looked at next.
    next_sweep: Instant,
}

impl DatabaseWorker {
    /// Connects to the database and opens the session; none when there is nothing to
    /// serve (the database is being dropped, ai_loader is not installed in it).
    fn start(arg: pg_sys::Datum, role: Role) -> Option<DatabaseWorker> {
        // SAFETY: the launcher passes the database's OID as the argument.
        let database = unsafe { pg_sys::Oid::from_datum(arg, false) }.expect("a database OID");
        signals::attach();
        if !shared::register_worker(database, role == Role::Worker) {
            return None; // the database is being dropped
        }
        BackgroundWorker::connect_worker_to_spi_by_oid(Some(database), None);
        // Not installed: the launcher tries this database again later.
        transaction::run(|| Ok::<_, ()>(installed()))
            .ok()
            .flatten()?;
        shared::set_installed(database);
        let session = session::open()?;
        match role {
            Role::Worker => log!("ai_loader worker started"),
            Role::Helper => debug1!("ai_loader helper started"),
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ai_loader")
            .on_thread_start(ai_loader_pipeline::signals::block_all)
            .enable_all()
            .build()
            .unwrap_or_else(|e| error!("ai_loader: cannot start the pipeline's runtime: {e}"));
        Some(DatabaseWorker {
            role,
            database,
            runtime,
            session,
            uris: uri_loader(),
            pipelines: HashMap::new(),
            backoff: HashMap::new(),
            released: HashSet::new(),
            left_claims: shared::left_claims(),
            indexes: index::Builds::default(),
            syncs: s3_sync::Syncs::default(),
            reported: (0, 0),
            started: Instant::now(),
            idle_since: None,
            mismatch: None,
            active: HashSet::new(),
            wake: shared::Wake::default(),
            next_sweep: Instant::now(),
        })
    }

    /// One round: every enabled vectorizer's turn, then what the role does after.
    fn round(&mut self) -> Next {
        self.session.check();
        if signals::reload_requested() {
            // SAFETY: the main thread, outside a transaction.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            // Settings such as the timeout, the endpoint or a key may have changed.
            self.uris = uri_loader();
            self.pipelines.clear();
            self.syncs.reset();
        }
        if let Some(next) = self.version_gate() {
            return next;
        }
        // Rows committed from here on are not sure to be seen by this round.
        self.wake.merge(shared::take_wake());
        let mut sweep = self.wake.all || Instant::now() >= self.next_sweep;
        if shared::left_claims() != self.left_claims {
            // A worker ended leaving claims: every vectorizer gives back what it left.
            self.left_claims = shared::left_claims();
            self.released.clear();
            sweep = true;
        }
        let wake = std::mem::take(&mut self.wake);
        let among: Option<Vec<i32>> = match sweep {
            true => {
                self.next_sweep = Instant::now() + gucs::revisit_interval();
                None
            }
            false => Some(self.active.iter().copied().chain(wake.ids).collect()),
        };
        let vectorizers = match among.as_deref() {
            Some([]) => vec![],
            among => match transaction::run(|| Ok::<_, ()>(vectorizer::enabled(among))) {
                Ok(vectorizers) => vectorizers,
                Err(()) => return Next::Stop,
            },
        };
        let mut round = Round::default();
        for v in vectorizers {
            if signals::stopping() {
                break;
            }
            match v {
                Ok(v) => {
                    if let Err(stop) = self.turn(&v, &mut round) {
                        return stop;
                    }
                }
                Err((id, e)) => debug1!("ai_loader: vectorizer {id} skipped: {e}"),
            }
        }
        match self.role {
            Role::Helper => helper_after(&round),
            Role::Worker => self.worker_after(round),
        }
    }

    /// Whether this round may serve the catalog: `None` when it may, else what to do —
    /// stop once ai_loader is dropped (or, for a helper, is another version), or wait
    /// for `ALTER EXTENSION ai_loader UPDATE` (the catalog is another version's, and
    /// serving it could misread it; queued rows stay queued).
    fn version_gate(&mut self) -> Option<Next> {
        let Ok(version) = transaction::run(|| Ok::<_, ()>(installed())) else {
            return Some(Next::Stop);
        };
        match version {
            None => {
                log!("ai_loader was dropped from this database; worker exiting");
                Some(Next::Stop)
            }
            Some(v) if v == LIBRARY_VERSION => {
                self.mismatch = None;
                None
            }
            Some(_) if self.role == Role::Helper => Some(Next::Stop),
            Some(v) => {
                if self.mismatch.as_deref() != Some(&v) {
                    let database = self.database;
                    let name = transaction::run(|| Ok::<_, ()>(database_name(database)))
                        .unwrap_or_default();
                    log!(
                        "ai_loader {v} is installed in database \"{}\", the library is {LIBRARY_VERSION}: \
                         waiting for ALTER EXTENSION ai_loader UPDATE",
                        name
                    );
                    self.mismatch = Some(v);
                }
                Some(Next::Wait(gucs::poll_interval()))
            }
        }
    }

    /// One vectorizer's turn: a batch if it may run now (see `may_run`), then, for the
    /// worker, its vector index if due. `Err` to leave.
    fn turn(&mut self, v: &Vectorizer, round: &mut Round) -> Result<(), Next> {
        // Whatever keeps it from running now, it is looked at again next round.
        self.active.insert(v.id);
        let state = self.backoff.entry(v.id).or_default();
        if state.waiting(Instant::now()) {
            return Ok(());
        }
        if let Err((step, message)) = may_run(v) {
            back_off(state, v, step, &stopped(message));
            return Ok(());
        }
        if !self.released.contains(&v.id) {
            let sql = v.sql.release_left_claims();
            if in_transaction(|| v.as_owner(|| Spi::run(&sql))).is_ok() {
                self.released.insert(v.id);
            }
        }
        let pipeline = match pipeline_for(&mut self.pipelines, v, &self.uris) {
            Ok(p) => p,
            Err(message) => {
                back_off(state, v, Step::Embedding, &stopped(message));
                return Ok(());
            }
        };
        match batch::run(v, &pipeline, &self.runtime) {
            Ok(done) => {
                state.succeeded();
                round.busy |= done.more;
                round.claimed |= done.claimed > 0;
                if self.role == Role::Worker {
                    self.indexes.note(v, done.claimed);
                    if self.indexes.run(v).is_err() {
                        log!("ai_loader worker stopping");
                        return Err(Next::Leave);
                    }
                }
                // Nothing claimed, queued or due: quiet until a commit queues rows for it.
                if done.claimed == 0 && !done.more && !self.indexes.pending(v.id) && !queued(v) {
                    self.active.remove(&v.id);
                }
            }
            Err(Abort::Provider(e)) => back_off(state, v, Step::Embedding, &e),
            Err(Abort::Refused(message)) => back_off(state, v, Step::Loading, &stopped(message)),
            Err(Abort::Locked) => debug1!(
                "ai_loader: vectorizer {}: a lock was not granted in time; next round",
                v.name
            ),
            Err(Abort::Stop) => {
                log!("ai_loader worker stopping; the rows it had claimed are queued again");
                return Err(Next::Leave);
            }
        }
        Ok(())
    }

    /// After the vectorizers' turns, the worker serves the S3 syncs, gives its slot
    /// back once its turn is over and other databases wait, leaves after
    /// `ai_loader.idle_timeout` with nothing queued, and otherwise says when to come back.
    fn worker_after(&mut self, mut round: Round) -> Next {
        shared::set_backlog(round.busy);
        if !signals::stopping() {
            round.busy |= self.syncs.serve(&self.runtime, &self.uris);
        }
        let calls = (s3::get_object_calls(), s3::assume_role_calls());
        if !round.busy && calls != self.reported {
            log!(
                "ai_loader: since this worker started: {} S3 GetObject request(s), {} AssumeRole call(s)",
                calls.0,
                calls.1
            );
            self.reported = calls;
        }
        if shared::others_waiting() && self.started.elapsed() >= gucs::worker_turn() {
            if round.busy || round.claimed {
                shared::want_again();
            }
            log!(
                "ai_loader worker: had its turn ({}s) while other databases wait for a worker; \
                 giving its slot back",
                gucs::worker_turn().as_secs()
            );
            return Next::Leave;
        }
        self.idle_since = match round.busy || round.claimed || !self.syncs.is_empty() {
            true => None,
            false => self.idle_since.or_else(|| Some(Instant::now())),
        };
        if let Some(limit) = gucs::idle_timeout() {
            if self.idle_since.is_some_and(|t| t.elapsed() >= limit) {
                match queued_vectorizers() {
                    Some(queued) if queued.is_empty() => {
                        // A commit from here on finds no worker, or one about to leave: it
                        // notes the database as wanted, and the launcher starts a worker.
                        shared::set_left_idle();
                        log!(
                            "ai_loader worker: nothing queued for {}s; leaving until rows are queued",
                            limit.as_secs()
                        );
                        return Next::Leave;
                    }
                    // Rows wait for a retry, or were queued without a commit's wake-up:
                    // their vectorizers are looked at from the next round.
                    Some(queued) => self.active.extend(queued),
                    None => {}
                }
                // Looked at again after another idle_timeout, not every round.
                self.idle_since = Some(Instant::now());
            }
        }
        report_activity("idle");
        Next::Wait(match round.busy || self.woken() || s3_sync::take_ready() {
            true => Duration::ZERO,
            false => gucs::poll_interval(),
        })
    }

    /// Whether commits woke the worker since its round began (kept for the next round).
    fn woken(&mut self) -> bool {
        let wake = shared::take_wake();
        let any = wake.any;
        self.wake.merge(wake);
        any
    }
}

/// Whether rows of `v` are queued (waiting for a retry, or claimed by another worker),
/// in its own transaction.
fn queued(v: &Vectorizer) -> bool {
    in_transaction(|| holds_rows(v)).unwrap_or(true)
}

/// Whether `v`'s queue holds rows, read as its owner; yes when it cannot be read.
fn holds_rows(v: &Vectorizer) -> bool {
    let sql = v.sql.any_queued();
    v.as_owner(|| Spi::get_one::<bool>(&sql)).ok().flatten() != Some(false)
}

/// A helper goes on while its claims are full and no other database waits for a slot.
fn helper_after(round: &Round) -> Next {
    if round.busy && !shared::others_waiting() {
        return Next::Wait(Duration::ZERO);
    }
    debug1!("ai_loader helper: nothing more queued, or other databases wait; exiting");
    Next::Leave
}

/// Whether a vectorizer may run now: its owner still owns its source and, if it reads
/// with the server's AWS identity (loading URIs, Bedrock), may still do so; else the
/// step it stops at and why.
fn may_run(v: &Vectorizer) -> Result<(), (Step, String)> {
    if v.owner_oid.is_some() && v.owner_oid != v.source_owner {
        let message = crate::roles::not_table_owner("vectorizer", &v.owner, "source");
        return Err((Step::Loading, message));
    }
    let aws_use = if matches!(v.loading, Loading::Uri { .. }) {
        Some((Step::Loading, "load URIs"))
    } else if v.embeds_with_aws() {
        Some((Step::Embedding, "embed with Amazon Bedrock"))
    } else {
        None
    };
    match aws_use.filter(|_| !v.owner_may_load_uris) {
        Some((step, what)) => Err((
            step,
            crate::roles::not_s3_reader("vectorizer", &v.owner, what),
        )),
        None => Ok(()),
    }
}

/// The enabled vectorizers whose queues hold rows (rows waiting for a retry count: the
/// worker stays for them); none when the catalog could not be read.
fn queued_vectorizers() -> Option<Vec<i32>> {
    in_transaction(|| {
        (vectorizer::enabled(None).into_iter().flatten())
            .filter(holds_rows)
            .map(|v| v.id)
            .collect()
    })
    .ok()
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
    let wait = state.failed(PROVIDER, e.retry_after, Instant::now());
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
    Spi::get_one::<String>(ai_loader_core::catalog::INSTALLED_VERSION)
        .ok()
        .flatten()
}

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
