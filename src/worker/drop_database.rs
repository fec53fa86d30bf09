//! `DROP DATABASE` cannot run while a worker is connected to the database, so a
//! ProcessUtility hook stops that worker first (and keeps the launcher from starting
//! another) before the statement runs — only when the statement will really drop it:
//! run at top level, outside a transaction block, by the database's owner or a
//! superuser. Anyone else's attempt fails as it would without the hook, and the worker
//! goes on.

use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::shared;

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

/// How long a dropped database's worker is kept from starting again.
const PAUSE_SECONDS: i64 = 30;
/// How long `DROP DATABASE` waits for the worker to go.
const WAIT: Duration = Duration::from_secs(5);

pub fn init() {
    // SAFETY: called once from _PG_init, before any backend runs.
    unsafe {
        PREVIOUS = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

// Postgres' own function, declared here without pgrx's guard: errors raised by the
// statement must reach the caller untouched (with their CONTEXT), as without the hook.
extern "C-unwind" {
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// Not guarded on purpose, and holding nothing that needs dropping: an ERROR from the
/// statement unwinds straight through to Postgres.
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: Postgres passes a valid statement; the node tag says what it is.
    unsafe {
        let stmt = (*pstmt).utilityStmt;
        if !stmt.is_null() && (*stmt).type_ == pg_sys::NodeTag::T_DropdbStmt {
            if context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL {
                before_drop_database((*(stmt as *mut pg_sys::DropdbStmt)).dbname);
            }
        }
        match PREVIOUS {
            Some(previous) => previous(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => standard_process_utility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
}

#[pg_guard]
extern "C-unwind" fn before_drop_database(name: *const std::ffi::c_char) {
    // SAFETY: the statement's database name, NUL-terminated.
    let database = unsafe { pg_sys::get_database_oid(name, true) };
    // SAFETY: backend globals and catalog lookups, in a transaction.
    let will_drop = unsafe {
        database != pg_sys::InvalidOid
            && database != pg_sys::MyDatabaseId
            && !pg_sys::IsTransactionBlock()
            && owns_database(database)
    };
    if will_drop {
        stop_worker(database);
    }
}

/// Whether the current user owns `database` (a superuser owns everything).
unsafe fn owns_database(database: pg_sys::Oid) -> bool {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    // SAFETY: the caller is in a transaction.
    unsafe {
        pg_sys::pg_database_ownercheck(database, pg_sys::GetUserId())
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    // SAFETY: the caller is in a transaction.
    unsafe {
        pg_sys::object_ownercheck(pg_sys::DatabaseRelationId, database, pg_sys::GetUserId())
    }
}

fn stop_worker(database: pg_sys::Oid) {
    let Some(pid) = shared::pause(database, PAUSE_SECONDS) else {
        return;
    };
    // SAFETY: signalling a process of this cluster, running as the same user.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + WAIT;
    while shared::running(pid) && Instant::now() < deadline {
        check_for_interrupts!();
        // SAFETY: sleeps this backend for 10 ms.
        unsafe { pg_sys::pg_usleep(10_000) };
    }
}
