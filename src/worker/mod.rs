//! The background workers: one launcher, started by the postmaster, and one worker per
//! database where ai_loader is installed, started by the launcher.

mod batch;
mod database;
mod error_log;
mod index;
mod launcher;
mod queues;
mod s3_sync;
mod session;
pub(crate) mod shared;
mod signals;
mod transaction;
mod vectorizer;
mod write;

/// Where this session runs, as an S3 sync records its home: the server's system
/// identifier and the database's OID. A restored or cloned copy of a database differs
/// in one of them.
pub fn home() -> String {
    // SAFETY: reads the control file's copy in shared memory, and a backend global.
    let (system, database) = unsafe { (pg_sys::GetSystemIdentifier(), pg_sys::MyDatabaseId) };
    format!("{system}/{}", database.to_u32())
}

/// The S3 sync that reads the SQS queue `url` now, in any database of the cluster: its
/// database's OID and its id.
pub fn queue_reader(url: &str) -> Option<(pg_sys::Oid, i32)> {
    queues::reader(url).map(|r| (pg_sys::Oid::from(r.database), r.sync))
}

/// A database's name by its OID, for messages ("with OID n" once it is gone); inside a
/// transaction.
pub fn database_name(database: pg_sys::Oid) -> String {
    pgrx::Spi::get_one_with_args::<String>(
        "SELECT d.datname::pg_catalog.text FROM pg_catalog.pg_database d
          WHERE d.oid OPERATOR(pg_catalog.=) $1",
        &[database.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| format!("with OID {}", database.to_u32()))
}

/// What a database's worker process is: its worker (which also builds indexes and
/// serves S3 syncs), or a helper the launcher added while the worker has a backlog.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Worker,
    Helper,
}

/// Sets up the shared memory the workers need; called from `_PG_init`.
pub fn init() {
    shared::init();
    queues::init();
}

use std::time::Duration;

use pgrx::pg_sys;

use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};

/// Registers the launcher; called from `_PG_init`. Not under `pg_upgrade` (a server
/// started in binary-upgrade mode), which restores databases — `postgres` among them —
/// that a worker must not hold or write.
pub fn register() {
    // SAFETY: a flag the postmaster sets from its options, before libraries load.
    if unsafe { pgrx::pg_sys::IsBinaryUpgrade } {
        return;
    }
    BackgroundWorkerBuilder::new("ai_loader launcher")
        .set_type("ai_loader launcher")
        .set_library("ai_loader")
        .set_function("ai_loader_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

/// Reports what this process is doing in `pg_stat_activity.query`.
pub fn report_activity(what: &str) {
    let text = std::ffi::CString::new(what.replace('\0', " ")).unwrap_or_default();
    // SAFETY: a NUL-terminated string; pgstat copies it.
    unsafe {
        pgrx::pg_sys::pgstat_report_activity(
            pgrx::pg_sys::BackendState::STATE_RUNNING,
            text.as_ptr(),
        )
    };
}
