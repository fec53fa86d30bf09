//! What a session does for the workers when its transaction commits: rows it queued
//! wake its database's worker for the vectorizers they were queued for (the queue
//! triggers call `ai._wake_worker_at_commit(id)`), and `CREATE EXTENSION` wakes the
//! launcher. Runs in every backend that writes a source table; nothing here is the
//! workers' own.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use pgrx::prelude::*;

use crate::worker::shared::{wake_launcher, wake_worker, Wake};

/// Asks the launcher to look for databases to serve once this transaction commits
/// (`CREATE EXTENSION`: a worker started before the commit would not see it).
#[pg_extern(create_or_replace, name = "_wake_launcher", volatile, parallel_unsafe)]
fn wake_launcher_at_commit() {
    at_transaction_end();
    WAKE_LAUNCHER_AT_COMMIT.store(true, Ordering::Relaxed);
}

thread_local! {
    /// In this backend: what the transaction in progress wakes the worker for.
    static WAKE: RefCell<Wake> = RefCell::new(Wake::default());
}
/// In this backend: the transaction in progress installed ai_loader.
static WAKE_LAUNCHER_AT_COMMIT: AtomicBool = AtomicBool::new(false);
static AT_TRANSACTION_END: Once = Once::new();

/// When this transaction commits, the database's worker is woken to look at every
/// vectorizer (a sync asked for; the queue triggers of an earlier version call it too).
#[pg_extern(
    create_or_replace,
    name = "_wake_worker_at_commit",
    volatile,
    parallel_unsafe
)]
pub fn wake_worker_at_commit() {
    at_transaction_end();
    WAKE.with(|w| {
        let mut wake = w.borrow_mut();
        wake.any = true;
        wake.all = true;
    });
}

/// Called by the queue triggers (and by what changes one vectorizer: its creation,
/// `set_scheduling`, enabling, `execute_vectorizer`): when this transaction commits,
/// the database's worker is woken for this vectorizer, so a new row is embedded at
/// once, and the worker looks at no other vectorizer for it.
#[pg_extern(
    create_or_replace,
    name = "_wake_worker_at_commit",
    volatile,
    parallel_unsafe
)]
pub fn wake_vectorizer_at_commit(vectorizer_id: i32) {
    at_transaction_end();
    WAKE.with(|w| w.borrow_mut().add(vectorizer_id));
}

/// Whether this database's worker is running, waits for a worker slot, or is not
/// running (the next commit that queues rows starts it): `ai.vectorizer_status.worker`.
#[pg_extern(create_or_replace, name = "_worker_state", volatile, parallel_safe)]
fn worker_state() -> &'static str {
    // SAFETY: this backend's database.
    crate::worker::shared::worker_state(unsafe { pg_sys::MyDatabaseId })
}

/// Whether the installed catalog has `ai._wake_worker_at_commit(int4)`: a library newer
/// than the catalog (before `ALTER EXTENSION ai_loader UPDATE`) makes queue triggers
/// that wake the worker for every vectorizer, with the function the catalog has.
pub fn wakes_by_id(client: &pgrx::spi::SpiClient<'_>) -> bool {
    client
        .select(
            "SELECT pg_catalog.to_regprocedure('ai._wake_worker_at_commit(pg_catalog.int4)') IS NOT NULL",
            None,
            &[],
        )
        .ok()
        .and_then(|rows| rows.first().get_one::<bool>().ok().flatten())
        .unwrap_or(false)
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
            let wake = WAKE.with(|w| std::mem::take(&mut *w.borrow_mut()));
            if wake.any {
                // SAFETY: this backend's database.
                wake_worker(unsafe { pg_sys::MyDatabaseId }, &wake);
            }
            if WAKE_LAUNCHER_AT_COMMIT.swap(false, Ordering::Relaxed) {
                wake_launcher();
            }
        }
        // A prepared transaction's rows are found by the next poll.
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            WAKE.with(|w| *w.borrow_mut() = Wake::default());
            WAKE_LAUNCHER_AT_COMMIT.store(false, Ordering::Relaxed);
        }
        _ => {}
    }
}
