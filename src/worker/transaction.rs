//! A worker's transactions: committed when the body succeeds, rolled back when it
//! says so (an ERROR raised inside rolls back too, as everywhere in Postgres); and why
//! one ended early.

use std::panic::AssertUnwindSafe;

use ai_loader_pipeline::embedding::BatchError;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;

use super::signals;

/// Runs `body` in a transaction with a snapshot; commits on `Ok`, aborts on `Err`.
pub fn run<T, E>(body: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    // SAFETY: called from a background worker's main thread, outside any transaction.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = body();
    // SAFETY: the transaction started above is still current (an ERROR would have
    // unwound past here and aborted it).
    unsafe {
        match &result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// Why a turn ended early.
pub enum Abort {
    /// The provider is down or misconfigured: nothing consumed; try again later.
    Provider(BatchError),
    /// Postgres refused a statement — most often the owner lacks a privilege on the
    /// source, queue or store, or a lock was not granted in time: nothing consumed;
    /// try again later.
    Refused(String),
    /// A lock was not granted within the worker's `lock_timeout` (DDL on the source, a
    /// long transaction): nothing consumed; the next round tries again.
    Locked,
    /// SIGTERM or postmaster death.
    Stop,
}

/// Runs `work` in a transaction of its own; an ERROR rolls it back and says why.
pub fn in_transaction<T>(work: impl FnOnce() -> T) -> Result<T, Abort> {
    run(|| {
        PgTryBuilder::new(AssertUnwindSafe(|| Ok(work())))
            .catch_others(|e| Err(refused(&e)))
            .execute()
    })
}

/// Why a caught ERROR ended a transaction; its message is for the error row.
pub fn refused(e: &CaughtError) -> Abort {
    let report = match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    if signals::stopping() {
        return Abort::Stop; // the statement was cancelled for the stop
    }
    if report.sql_error_code() == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE {
        return Abort::Locked;
    }
    Abort::Refused(match report.hint() {
        Some(hint) => format!("{} ({hint})", report.message()),
        None => report.message().to_string(),
    })
}
