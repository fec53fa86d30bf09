//! What a session does for the workers when its transaction commits: rows it queued
//! wake its database's worker (the queue triggers call `ai._wake_worker_at_commit`),
//! and `CREATE EXTENSION` wakes the launcher. Runs in every backend that writes a
//! source table; nothing here is the workers' own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use pgrx::prelude::*;

use crate::worker::shared::{wake_launcher, wake_worker};

/// Asks the launcher to look for databases to serve once this transaction commits
/// (`CREATE EXTENSION`: a worker started before the commit would not see it).
#[pg_extern(create_or_replace, name = "_wake_launcher", volatile, parallel_unsafe)]
fn wake_launcher_at_commit() {
    at_transaction_end();
    WAKE_LAUNCHER_AT_COMMIT.store(true, Ordering::Relaxed);
}

/// In this backend: the transaction in progress queued rows, or installed ai_loader.
static WAKE_AT_COMMIT: AtomicBool = AtomicBool::new(false);
static WAKE_LAUNCHER_AT_COMMIT: AtomicBool = AtomicBool::new(false);
static AT_TRANSACTION_END: Once = Once::new();

/// Called by the queue triggers: when this transaction commits, the database's worker
/// is woken, so a new row is embedded at once rather than at the next poll.
#[pg_extern(
    create_or_replace,
    name = "_wake_worker_at_commit",
    volatile,
    parallel_unsafe
)]
pub fn wake_worker_at_commit() {
    at_transaction_end();
    WAKE_AT_COMMIT.store(true, Ordering::Relaxed);
}

/// Registers (once per process) what this backend does when a transaction ends.
fn at_transaction_end() {
    AT_TRANSACTION_END.call_once(|| {
        // SAFETY: a callback that lives as long as the process.
        unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        // Called once the commit is visible to others, so the workers see it.
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            if WAKE_AT_COMMIT.swap(false, Ordering::Relaxed) {
                // SAFETY: this backend's database.
                wake_worker(unsafe { pg_sys::MyDatabaseId });
            }
            if WAKE_LAUNCHER_AT_COMMIT.swap(false, Ordering::Relaxed) {
                wake_launcher();
            }
        }
        // A prepared transaction's rows are found by the next poll.
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            WAKE_AT_COMMIT.store(false, Ordering::Relaxed);
            WAKE_LAUNCHER_AT_COMMIT.store(false, Ordering::Relaxed);
        }
        _ => {}
    }
}
