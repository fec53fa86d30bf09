//! A worker's transactions: committed when the body succeeds, rolled back when it
//! says so (an ERROR raised inside rolls back too, as everywhere in Postgres).

use pgrx::pg_sys;

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
