//! The launcher: finds the databases that may have ai_loader and starts a worker in
//! each that has work, within `ai_loader.max_workers`. A worker in a database without
//! the extension exits at once; that database is looked at again after a while, or at
//! once when `CREATE EXTENSION ai_loader` wakes the launcher. A worker that finds
//! nothing queued for `ai_loader.idle_timeout` leaves, giving its slot to a database
//! waiting for one; a commit that queues rows there starts a worker again at once, and
//! every `ai_loader.revisit_interval` one comes to find rows queued without a commit.
//! While a worker reports a backlog, the launcher adds helpers — the first as soon as
//! the worker reports it, then one a second, up to
//! `ai_loader.workers_per_database` workers in all — which claim batches beside it and
//! exit once a round finds nothing left.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::prelude::*;

use super::{report_activity, shared, transaction, Role};
use crate::gucs;

/// How often the launcher looks at the list of databases.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// A database whose worker found no ai_loader there waits this long before another
/// try (a CREATE EXTENSION wakes the launcher sooner).
const RETRY_ABSENT: Duration = Duration::from_secs(30);
/// Before restarting a worker that served its database and stopped (an error, or
/// pg_terminate_backend).
const RETRY_FAILED: Duration = Duration::from_secs(1);

struct Worker {
    handle: DynamicBackgroundWorker,
    /// The wake-up count when it started: a wake-up since then (a CREATE EXTENSION it
    /// may have missed) means trying again at once.
    generation: u64,
}

struct Database {
    worker: Option<Worker>,
    helpers: Vec<DynamicBackgroundWorker>,
    not_before: Instant,
    /// Since when it waits for a worker slot (the log said so then).
    waiting_since: Option<Instant>,
}

/// Whether a started worker has not exited.
fn alive(handle: &DynamicBackgroundWorker) -> bool {
    matches!(
        handle.pid(),
        Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted)
    )
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn ai_loader_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // No database: the launcher reads only pg_database, a shared catalog, so it needs
    // none to exist and holds none that DROP DATABASE or pg_upgrade would wait for.
    BackgroundWorker::connect_worker_to_spi(None, None);
    // SAFETY: reading this process's own pid.
    shared::set_launcher_pid(unsafe { pg_sys::MyProcPid });
    log!("ai_loader launcher started");

    let mut databases: HashMap<pg_sys::Oid, Database> = HashMap::new();
    let mut seen_generation = shared::generation();
    while BackgroundWorker::wait_latch(Some(SCAN_INTERVAL)) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the main thread, outside a transaction.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let now = Instant::now();
        let generation = shared::generation();
        let woken = generation != seen_generation;
        seen_generation = generation;

        let listed = transaction::run(|| Ok::<_, ()>(list_databases())).unwrap_or_default();
        databases.retain(|oid, _| listed.iter().any(|(o, _)| o == oid));
        for db in databases.values_mut() {
            db.helpers.retain(alive);
        }
        let mut running: usize = (databases.values())
            .map(|d| usize::from(d.worker.is_some()) + d.helpers.len())
            .sum();
        // Databases that may get a worker now: those with rows a commit queued first,
        // longest waiting first, so that a freed slot goes where work waited most.
        let mut candidates: Vec<(Option<Instant>, pg_sys::Oid, String)> = Vec::new();
        for (oid, name) in listed {
            let db = databases.entry(oid).or_insert(Database {
                worker: None,
                helpers: vec![],
                not_before: now,
                waiting_since: None,
            });
            if let Some(worker) = &db.worker {
                match alive(&worker.handle) {
                    true => {
                        running += add_helper(db, oid, &name, running);
                        continue;
                    }
                    false => {
                        db.not_before = if worker.generation != generation {
                            now
                        } else if shared::left_idle(oid) {
                            now + gucs::revisit_interval()
                        } else if shared::was_installed(oid) {
                            now + RETRY_FAILED
                        } else {
                            now + RETRY_ABSENT
                        };
                        db.worker = None;
                        running -= 1;
                    }
                }
            }
            if woken || now >= db.not_before || shared::wanted(oid) {
                candidates.push((db.waiting_since, oid, name));
            }
        }
        candidates.sort_by_key(|(since, oid, _)| (since.is_none(), *since, oid.to_u32()));
        let mut waiting = Vec::new();
        for (_, oid, name) in candidates {
            let db = databases.get_mut(&oid).expect("listed above");
            if running >= gucs::max_workers() {
                // Said once a wait, and only for rows a commit queued (not a mere visit).
                if shared::wanted(oid) {
                    waiting.push(oid);
                    if db.waiting_since.is_none() && gucs::max_workers() > 0 {
                        warning!(
                            "ai_loader: database \"{name}\" has work waiting, but all {} worker slots \
                             (ai_loader.max_workers) are taken; it is served when one is given back",
                            gucs::max_workers()
                        );
                        db.waiting_since = Some(now);
                    }
                }
                continue;
            }
            if shared::may_start(oid) {
                shared::take_wanted(oid);
                match start_worker(oid, &name, Role::Worker) {
                    Ok(handle) => {
                        db.worker = Some(Worker { handle, generation });
                        db.waiting_since = None;
                        running += 1;
                    }
                    Err(e) => {
                        warning!(
                            "ai_loader: could not start a worker for database \"{name}\": {e}"
                        );
                        db.not_before = now + RETRY_ABSENT;
                    }
                }
            }
        }
        shared::set_waiting(&waiting);
        let served = databases.values().filter(|d| d.worker.is_some()).count();
        report_activity(&format!(
            "serving {served} database(s) with {running} worker(s)"
        ));
    }
    log!("ai_loader launcher stopping");
}

/// Starts a helper in the database when its worker has a backlog and the settings
/// allow one more process; returns how many it started (0 or 1). A helper that cannot
/// start (no free slot of max_worker_processes) is tried again a second later.
fn add_helper(db: &mut Database, oid: pg_sys::Oid, name: &str, running: usize) -> usize {
    let wanted = shared::backlog(oid)
        && db.helpers.len() + 1 < gucs::workers_per_database()
        && running < gucs::max_workers()
        && shared::may_start(oid);
    match wanted.then(|| start_worker(oid, name, Role::Helper)) {
        Some(Ok(helper)) => {
            db.helpers.push(helper);
            1
        }
        _ => 0,
    }
}

/// Databases that accept connections, except templates, read from the shared catalog
/// pg_database (a connection to no database cannot run SQL).
fn list_databases() -> Vec<(pg_sys::Oid, String)> {
    let mut out = Vec::new();
    // SAFETY: inside a transaction; the scan is ended and the catalog closed before
    // returning, and each tuple is read while the scan holds it.
    unsafe {
        let catalog = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as _);
        let scan = pg_sys::table_beginscan_catalog(catalog, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let db = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if db.datallowconn && !db.datistemplate {
                let name = std::ffi::CStr::from_ptr(db.datname.data.as_ptr());
                out.push((db.oid, name.to_string_lossy().into_owned()));
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::table_close(catalog, pg_sys::AccessShareLock as _);
    }
    out.sort_by_key(|(oid, _)| oid.to_u32());
    out
}

fn start_worker(
    oid: pg_sys::Oid,
    name: &str,
    role: Role,
) -> Result<DynamicBackgroundWorker, String> {
    let (kind, function) = match role {
        Role::Worker => ("worker", "ai_loader_worker_main"),
        Role::Helper => ("helper", "ai_loader_helper_main"),
    };
    BackgroundWorkerBuilder::new(&format!("ai_loader {kind} for {name}"))
        .set_type(&format!("ai_loader {kind}"))
        .set_library("ai_loader")
        .set_function(function)
        .set_argument(oid.into_datum())
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        // SAFETY: reading this process's own pid.
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .map_err(|e| format!("{e:?} (is max_worker_processes large enough?)"))
}
