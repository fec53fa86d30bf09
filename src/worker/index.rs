//! The vector index on a vectorizer's embeddings, built by the worker when the
//! vectorizer's `indexing` rule says so (see `ai_loader_core::indexing`): checked when
//! the worker first sees the vectorizer and after each turn that claimed rows.
//!
//! The build is `CREATE INDEX CONCURRENTLY`, run with the owner's rights: writes to the
//! table go on while it runs (the worker embeds nothing meanwhile). It runs as a
//! client's top-level statement does, since it commits transactions of its own. A build
//! that fails (cancelled, out of memory, a lock not granted within a minute) leaves an
//! error row, its invalid index is dropped, and it is tried again later: after 10 s,
//! then twice as long each time, up to an hour. Once built, it is recorded in
//! `ai.vectorizer_worker_progress` and never built again.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use ai_loader_core::backoff::{Backoff, Doubling};
use ai_loader_core::indexing::IndexBuild;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use serde_json::json;

use super::transaction::{in_transaction, refused, Abort};
use super::vectorizer::Vectorizer;
use super::{report_activity, signals, transaction, write};
use crate::roles::Owned;

/// A failed build is tried again after 10 s, 20 s, … up to an hour.
const RETRY: Doubling = Doubling {
    first: Duration::from_secs(10),
    longest: Duration::from_secs(3600),
};
/// How long the build waits for a lock, or for the transactions it must outlast.
const BUILD_LOCK_TIMEOUT: &str = "1min";

/// What the worker knows of the index rule of each vectorizer.
#[derive(Default)]
pub struct Builds {
    /// The vectorizers whose rule is to be checked: new to this worker, or worked on.
    to_check: HashSet<i32>,
    /// Seen by this worker.
    seen: HashSet<i32>,
    /// Failed builds: how many times, and when to try again.
    failed: HashMap<i32, Backoff>,
}

impl Builds {
    /// Notes a turn of `v` that claimed `claimed` rows (embedded, failed or given back:
    /// the store or the queue may have changed).
    pub fn note(&mut self, v: &Vectorizer, claimed: usize) {
        if v.index.is_some() && (self.seen.insert(v.id) || claimed > 0) {
            self.to_check.insert(v.id);
        }
    }

    /// Whether `id`'s rule is still to be checked, or a failed build to be tried again.
    pub fn pending(&self, id: i32) -> bool {
        self.to_check.contains(&id) || self.failed.contains_key(&id)
    }

    /// Builds `v`'s index if it is due. `Err` only for a stop.
    pub fn run(&mut self, v: &Vectorizer) -> Result<(), Abort> {
        let Some((build, vector_schema)) = &v.index else {
            return Ok(());
        };
        match self.failed.get(&v.id) {
            Some(b) if b.waiting(Instant::now()) => return Ok(()),
            Some(_) => {}
            None if !self.to_check.contains(&v.id) => return Ok(()),
            None => {}
        }
        let check = build.check_sql(&v.sql.queue);
        let Some(due) = drop_leftover(v, build, &check)? else {
            return Ok(()); // a lock not granted, the table altered: next time
        };
        self.to_check.remove(&v.id);
        if !due {
            self.failed.remove(&v.id);
            return Ok(());
        }
        report_activity(&format!("building index \"{}\"", build.name));
        let result = build_with_timeout(v, &build.create_sql(vector_schema));
        match result {
            Ok(()) => {
                log!(
                    "ai_loader: vectorizer {}: built index \"{}\" on {}.{}",
                    v.name,
                    build.name,
                    build.table.0,
                    build.table.1
                );
                write::record_index_built(v);
                self.failed.remove(&v.id);
                Ok(())
            }
            Err(message) => {
                if signals::stopping() {
                    return Err(Abort::Stop);
                }
                drop_leftover(v, build, &check)?;
                self.failed(v, build, message);
                Ok(())
            }
        }
    }

    fn failed(&mut self, v: &Vectorizer, build: &IndexBuild, message: String) {
        let wait = (self.failed.entry(v.id).or_default()).failed(RETRY, None, Instant::now());
        let message = format!(
            "building the vector index \"{}\" failed: {message}; it is tried again in {} s",
            build.name,
            wait.as_secs()
        );
        warning!("ai_loader: vectorizer {}: {message}", v.name);
        let details = json!({"step": "indexing", "index": build.name,
                             "retry_after_seconds": wait.as_secs()});
        write::record_error(v, message, details);
    }
}

/// Drops the invalid index a failed build left, if there is one (an index of the
/// build's name on the table: a valid one is left alone); then says whether the index
/// is due (`None`: the check failed).
fn drop_leftover(v: &Vectorizer, build: &IndexBuild, check: &str) -> Result<Option<bool>, Abort> {
    let (due, leftover) = match in_transaction(|| v.as_owner(|| due(check))) {
        Ok(answer) => answer,
        Err(Abort::Stop) => return Err(Abort::Stop),
        Err(_) => return Ok(None),
    };
    if leftover {
        match statement(v, &build.drop_sql()) {
            Err(Abort::Stop) => return Err(Abort::Stop),
            Err(e) => {
                let why = match e {
                    Abort::Refused(m) => m,
                    _ => "a lock was not granted in time".to_string(),
                };
                warning!(
                    "ai_loader: vectorizer {}: dropping the invalid index \"{}\" failed: {why}",
                    v.name,
                    build.name
                );
                return Ok(None);
            }
            Ok(()) => {}
        }
    }
    Ok(Some(due))
}

/// Whether the index is due, and whether a failed build left one behind.
fn due(check: &str) -> (bool, bool) {
    Spi::connect(|client| {
        let row = client
            .select(check, None, &[])
            .unwrap_or_else(|e| error!("{e}"))
            .first();
        let flag = |name: &str| row.get_by_name::<bool, _>(name).ok().flatten() == Some(true);
        (flag("due"), flag("leftover"))
    })
}

/// The build, with a longer wait for locks than the worker's other statements allow.
fn build_with_timeout(v: &Vectorizer, create: &str) -> Result<(), String> {
    let set = |timeout: &str| {
        transaction::run(|| Spi::run(&format!("SET lock_timeout = '{timeout}'")))
            .map_err(|e| e.to_string())
    };
    set(BUILD_LOCK_TIMEOUT)?;
    let result = statement(v, create).map_err(|e| match e {
        Abort::Refused(message) => message,
        Abort::Locked => format!("a lock was not granted within {BUILD_LOCK_TIMEOUT}"),
        Abort::Provider(e) => e.message,
        Abort::Stop => "stopped".into(),
    });
    set(super::session::LOCK_TIMEOUT)?;
    result
}

/// Runs one utility statement as the vectorizer's owner, the way a client's top-level
/// statement runs (in a portal, outside a transaction block), free to commit and start
/// transactions of its own (`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`). An
/// ERROR aborts the transaction current then (the portal with it) and is returned.
fn statement(v: &Vectorizer, sql: &str) -> Result<(), Abort> {
    let Some(owner) = v.owner_oid else {
        return Err(Abort::Refused(format!(
            "the vectorizer's owner \"{}\" no longer exists",
            v.owner
        )));
    };
    let text = CString::new(sql).map_err(|e| Abort::Refused(e.to_string()))?;
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: the main thread, outside a transaction. The statement's parse tree lives
    // in a memory context of its own, which outlives the transactions the statement
    // commits; it is deleted at the end.
    let memory = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopMemoryContext,
            c"ai_loader statement".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    };
    let result = PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: as above; the statement is a single utility statement the worker wrote.
        unsafe {
            pg_sys::SetCurrentStatementStartTimestamp();
            pg_sys::StartTransactionCommand();
            pg_sys::SetUserIdAndSecContext(
                owner,
                context
                    | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                    | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
            pg_sys::MemoryContextSwitchTo(memory);
            let parsed =
                pgrx::PgList::<pg_sys::RawStmt>::from_pg(pg_sys::pg_parse_query(text.as_ptr()));
            let raw = parsed.get_ptr(0).expect("one statement");
            let planned = pg_sys::palloc0(std::mem::size_of::<pg_sys::PlannedStmt>())
                as *mut pg_sys::PlannedStmt;
            (*planned).type_ = pg_sys::NodeTag::T_PlannedStmt;
            (*planned).commandType = pg_sys::CmdType::CMD_UTILITY;
            (*planned).canSetTag = true;
            (*planned).utilityStmt = (*raw).stmt;
            (*planned).stmt_location = (*raw).stmt_location;
            (*planned).stmt_len = (*raw).stmt_len;
            // In a portal, as a client's statement runs: the portal takes the snapshots
            // the statement needs (and gives them up across its own commits), and
            // whatever runs inside it — an event trigger that writes — finds one.
            let portal = pg_sys::CreatePortal(c"".as_ptr(), true, true);
            (*portal).visible = false;
            let mut statements = pgrx::PgList::<pg_sys::PlannedStmt>::new();
            statements.push(planned);
            pg_sys::PortalDefineQuery(
                portal,
                std::ptr::null(),
                text.as_ptr(),
                pg_sys::CreateCommandTag((*raw).stmt),
                statements.into_pg(),
                std::ptr::null_mut(),
            );
            pg_sys::PortalStart(portal, std::ptr::null_mut(), 0, std::ptr::null_mut());
            let mut completion: pg_sys::QueryCompletion = std::mem::zeroed();
            pg_sys::PortalRun(
                portal,
                std::ffi::c_long::MAX,
                true,
                true,
                pg_sys::None_Receiver,
                pg_sys::None_Receiver,
                &mut completion,
            );
            pg_sys::PortalDrop(portal, false);
            pg_sys::SetUserIdAndSecContext(user, context);
            pg_sys::CommitTransactionCommand();
        }
        Ok(())
    }))
    .catch_others(|e| {
        // SAFETY: the ERROR left a transaction (the statement's own, perhaps) to abort;
        // the abort restores the user that transaction started with, so set ours.
        unsafe {
            pg_sys::AbortCurrentTransaction();
            pg_sys::SetUserIdAndSecContext(user, context);
        }
        Err(refused(&e))
    })
    .execute();
    // SAFETY: nothing points into the statement's memory any more.
    unsafe {
        pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        pg_sys::MemoryContextDelete(memory);
    }
    result
}
