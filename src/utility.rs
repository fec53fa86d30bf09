//! A ProcessUtility hook for the statements that would otherwise trip over ai_loader:
//!
//! - `DROP DATABASE`, `CREATE DATABASE … TEMPLATE` and `ALTER DATABASE … RENAME` cannot
//!   run while another session is connected to the database, so the hook stops its
//!   worker first (and keeps the launcher from starting another for a while) — only
//!   when the statement will run: at top level, outside a transaction block, by the
//!   database's owner or a superuser. Anyone else's attempt fails as it would without
//!   the hook, and the worker goes on.
//! - `DROP EXTENSION ai_loader` (with or without CASCADE) first drops every vectorizer
//!   the way `ai.drop_vectorizer` does: its triggers, trigger function and queues go,
//!   its store and view stay. No trigger is left calling a function that is gone, and
//!   nothing reaches the source tables. It is one transaction: a refused drop undoes it.
//! - `REASSIGN OWNED BY a TO b` gives b, with a's tables, the vectorizers and S3 syncs a
//!   owns (the catalog names owners by OID). `DROP OWNED BY a` needs nothing here: it
//!   drops a's tables, and with them their vectorizers and syncs (the drop event
//!   trigger).

use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::worker::shared;

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

/// How long, in seconds, a dropped database's worker is kept from starting again.
const DROP_PAUSE: i64 = 30;
/// How long, in seconds, workers are kept out of a database being copied (the
/// template of a `CREATE DATABASE`) or renamed. Past it a new worker waits for the
/// statement's lock on the database before it connects.
const COPY_PAUSE: i64 = 2;
/// How long the statement waits for the worker to go.
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
        let reassign = (!stmt.is_null()
            && !pg_sys::IsBinaryUpgrade
            && (*stmt).type_ == pg_sys::NodeTag::T_ReassignOwnedStmt)
            .then_some(stmt as *mut pg_sys::ReassignOwnedStmt);
        if stmt.is_null() || pg_sys::IsBinaryUpgrade {
            // pg_upgrade restores schemas as they were: nothing to do for it.
        } else if is_drop_of_this_extension(stmt) {
            before_drop_extension();
        } else if context != pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL {
            // What follows runs only at top level (or fails on its own).
        } else if (*stmt).type_ == pg_sys::NodeTag::T_DropdbStmt {
            stop_worker_of((*(stmt as *mut pg_sys::DropdbStmt)).dbname, DROP_PAUSE);
        } else if (*stmt).type_ == pg_sys::NodeTag::T_CreatedbStmt {
            if let Some(template) = template_of((*(stmt as *mut pg_sys::CreatedbStmt)).options) {
                stop_worker_of(template, COPY_PAUSE);
            }
        } else if (*stmt).type_ == pg_sys::NodeTag::T_RenameStmt
            && (*(stmt as *mut pg_sys::RenameStmt)).renameType
                == pg_sys::ObjectType::OBJECT_DATABASE
        {
            stop_worker_of((*(stmt as *mut pg_sys::RenameStmt)).subname, COPY_PAUSE);
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
        if let Some(reassign) = reassign {
            after_reassign_owned(reassign);
        }
    }
}

/// Moves the vectorizers and S3 syncs of the roles a `REASSIGN OWNED` named to its new
/// owner, once Postgres moved their tables (and checked the caller's right to).
#[pg_guard]
extern "C-unwind" fn after_reassign_owned(stmt: *mut pg_sys::ReassignOwnedStmt) {
    // SAFETY: catalog lookups in a transaction; the statement's roles are RoleSpec nodes
    // that the statement itself just resolved.
    let (installed, from, to) = unsafe {
        let installed =
            pg_sys::get_extension_oid(c"ai_loader".as_ptr(), true) != pg_sys::InvalidOid;
        let from: Vec<pg_sys::Oid> = pgrx::PgList::<pg_sys::RoleSpec>::from_pg((*stmt).roles)
            .iter_ptr()
            .map(|spec| pg_sys::get_rolespec_oid(spec, false))
            .collect();
        (
            installed,
            from,
            pg_sys::get_rolespec_oid((*stmt).newrole, false),
        )
    };
    if !installed {
        return;
    }
    crate::roles::as_catalog_owner(|| {
        for catalog in ["ai.vectorizer", "ai.s3_sync"] {
            Spi::run_with_args(
                &format!(
                    "UPDATE {catalog} SET owner = $1::pg_catalog.oid::pg_catalog.regrole
                      WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[])"
                ),
                &[to.into(), from.clone().into()],
            )
            .unwrap_or_else(|e| error!("moving {catalog}'s rows to the new owner: {e}"));
        }
    });
}

/// Whether `stmt` is a `DROP EXTENSION` naming ai_loader.
unsafe fn is_drop_of_this_extension(stmt: *mut pg_sys::Node) -> bool {
    // SAFETY: the node tag says what the statement is; DROP EXTENSION's objects are
    // String nodes.
    unsafe {
        if (*stmt).type_ != pg_sys::NodeTag::T_DropStmt {
            return false;
        }
        let drop = stmt as *mut pg_sys::DropStmt;
        (*drop).removeType == pg_sys::ObjectType::OBJECT_EXTENSION
            && pgrx::PgList::<pg_sys::Node>::from_pg((*drop).objects)
                .iter_ptr()
                .filter(|node| !node.is_null() && (**node).type_ == pg_sys::NodeTag::T_String)
                .any(|node| {
                    let name = (*(node as *mut pg_sys::String)).sval;
                    !name.is_null() && std::ffi::CStr::from_ptr(name).to_bytes() == b"ai_loader"
                })
    }
}

/// The `TEMPLATE` a `CREATE DATABASE` names, if it names one.
unsafe fn template_of(options: *mut pg_sys::List) -> Option<*const std::ffi::c_char> {
    // SAFETY: CREATE DATABASE's options are DefElem nodes.
    unsafe {
        pgrx::PgList::<pg_sys::DefElem>::from_pg(options)
            .iter_ptr()
            .find(|d| {
                !d.is_null()
                    && !(**d).defname.is_null()
                    && std::ffi::CStr::from_ptr((**d).defname).to_bytes() == b"template"
                    && !(**d).arg.is_null()
            })
            .map(|d| pg_sys::defGetString(d) as *const _)
    }
}

#[pg_guard]
extern "C-unwind" fn before_drop_extension() {
    // SAFETY: catalog lookups in a transaction.
    let owner = unsafe {
        let extension = pg_sys::get_extension_oid(c"ai_loader".as_ptr(), true);
        extension != pg_sys::InvalidOid && owns(pg_sys::ExtensionRelationId, extension)
    };
    if owner {
        Spi::run("SELECT ai.drop_vectorizer(id) FROM ai.vectorizer ORDER BY id")
            .unwrap_or_else(|e| error!("dropping the vectorizers before the extension: {e}"));
    }
}

/// Stops the workers of the database named `name` and keeps others out of it for
/// `pause`, when the statement will run: outside a transaction block, by the
/// database's owner (a superuser owns everything), on another database than this one.
#[pg_guard]
extern "C-unwind" fn stop_worker_of(name: *const std::ffi::c_char, pause: i64) {
    // SAFETY: the statement's database name, NUL-terminated.
    let database = unsafe { pg_sys::get_database_oid(name, true) };
    // SAFETY: backend globals and catalog lookups, in a transaction.
    let will_run = unsafe {
        database != pg_sys::InvalidOid
            && database != pg_sys::MyDatabaseId
            && !pg_sys::IsTransactionBlock()
            && owns(pg_sys::DatabaseRelationId, database)
    };
    if will_run {
        stop_worker(database, pause);
    }
}

/// Whether the current user owns `object` of catalog `class` (pg_database
/// or pg_extension here); a superuser owns everything.
unsafe fn owns(class: pg_sys::Oid, object: pg_sys::Oid) -> bool {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    // SAFETY: the caller is in a transaction.
    unsafe {
        match class {
            pg_sys::DatabaseRelationId => {
                pg_sys::pg_database_ownercheck(object, pg_sys::GetUserId())
            }
            pg_sys::ExtensionRelationId => {
                pg_sys::pg_extension_ownercheck(object, pg_sys::GetUserId())
            }
            _ => pg_sys::superuser(),
        }
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    // SAFETY: the caller is in a transaction.
    unsafe {
        pg_sys::object_ownercheck(class, object, pg_sys::GetUserId())
    }
}

fn stop_worker(database: pg_sys::Oid, pause: i64) {
    let pids = shared::pause(database, pause);
    for &pid in &pids {
        // SAFETY: signalling a process of this cluster, running as the same user.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + WAIT;
    while pids.iter().any(|&pid| shared::running(pid)) && Instant::now() < deadline {
        check_for_interrupts!();
        // SAFETY: sleeps this backend for 10 ms.
        unsafe { pg_sys::pg_usleep(10_000) };
    }
}
