//! A ProcessUtility hook for the statements that would otherwise trip over ai_loader:
//!
//! - `DROP DATABASE` cannot run while a worker is connected to the database, so the hook
//!   stops that worker first (and keeps the launcher from starting another) — only when
//!   the statement will really drop it: run at top level, outside a transaction block,
//!   by the database's owner or a superuser. Anyone else's attempt fails as it would
//!   without the hook, and the worker goes on.
//! - `DROP EXTENSION ai_loader` (with or without CASCADE) first drops every vectorizer
//!   the way `ai.drop_vectorizer` does: its triggers, trigger function and queues go,
//!   its store and view stay. No trigger is left calling a function that is gone, and
//!   nothing reaches the source tables. It is one transaction: a refused drop undoes it.

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
        if stmt.is_null() || pg_sys::IsBinaryUpgrade {
            // pg_upgrade restores schemas as they were: nothing to do for it.
        } else if (*stmt).type_ == pg_sys::NodeTag::T_DropdbStmt {
            if context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL {
                before_drop_database((*(stmt as *mut pg_sys::DropdbStmt)).dbname);
            }
        } else if (*stmt).type_ == pg_sys::NodeTag::T_DropStmt
            && (*(stmt as *mut pg_sys::DropStmt)).removeType == pg_sys::ObjectType::OBJECT_EXTENSION
            && names_this_extension((*(stmt as *mut pg_sys::DropStmt)).objects)
        {
            before_drop_extension();
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

/// Whether a `DROP EXTENSION` list names ai_loader.
unsafe fn names_this_extension(objects: *mut pg_sys::List) -> bool {
    // SAFETY: DROP EXTENSION's objects are String nodes.
    unsafe {
        pgrx::PgList::<pg_sys::Node>::from_pg(objects)
            .iter_ptr()
            .filter(|node| !node.is_null() && (**node).type_ == pg_sys::NodeTag::T_String)
            .any(|node| {
                let name = (*(node as *mut pg_sys::String)).sval;
                !name.is_null() && std::ffi::CStr::from_ptr(name).to_bytes() == b"ai_loader"
            })
    }
}

#[pg_guard]
extern "C-unwind" fn before_drop_extension() {
    // SAFETY: catalog lookups in a transaction.
    let owner = unsafe {
        let extension = pg_sys::get_extension_oid(c"ai_loader".as_ptr(), true);
        extension != pg_sys::InvalidOid && owns_extension(extension)
    };
    if owner {
        Spi::run("SELECT ai.drop_vectorizer(id) FROM ai.vectorizer ORDER BY id")
            .unwrap_or_else(|e| error!("dropping the vectorizers before the extension: {e}"));
    }
}

/// Whether the current user owns `extension` (a superuser owns everything).
unsafe fn owns_extension(extension: pg_sys::Oid) -> bool {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    // SAFETY: the caller is in a transaction.
    unsafe {
        pg_sys::pg_extension_ownercheck(extension, pg_sys::GetUserId())
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    // SAFETY: the caller is in a transaction.
    unsafe {
        pg_sys::object_ownercheck(pg_sys::ExtensionRelationId, extension, pg_sys::GetUserId())
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
