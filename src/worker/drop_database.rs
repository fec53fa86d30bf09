//! `DROP DATABASE` cannot run while a worker is connected to the database, so a
//! ProcessUtility hook stops that worker first (and keeps the launcher from starting
//! another) before the statement runs.

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
            before_drop_database((*(stmt as *mut pg_sys::DropdbStmt)).dbname);
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
    if database != pg_sys::InvalidOid {
        stop_worker(database);
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
