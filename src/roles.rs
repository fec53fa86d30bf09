//! Whose rights each piece of work runs with.
//!
//! - The **catalog owner** (the superuser who created the extension) owns schema `ai`,
//!   the catalog tables and every function of the extension. Only it creates objects in
//!   `ai` and writes the catalog (`ai.vectorizer`, errors, progress); a user reaches the
//!   catalog only through functions that check what the user may do, and then switch to
//!   the catalog owner for that one write.
//! - A vectorizer's **owner** (the role that created it) owns its queue, failed queue and
//!   trigger function, its store and view. Everything done to them — the worker's reads
//!   and writes, dropping them — runs with the owner's rights, so a name in the catalog
//!   can never make the server act on an object the owner could not touch.
//!
//! Switches are sealed as Postgres seals maintenance commands (see [`as_role`]): a
//! security-restricted operation in a GUC nest level of its own, with a safe search
//! path, every setting rolled back on exit. So neither a user's code run inside (a
//! trigger, a policy, a default) nor a setting it leaves behind can change what runs
//! after, with other rights.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The current user.
pub fn current() -> pg_sys::Oid {
    // SAFETY: reads a backend global.
    unsafe { pg_sys::GetUserId() }
}

/// The search path of every section that runs with another role's rights: nothing a
/// user created is found through it (pg_temp is never searched for functions and
/// operators, and comes after pg_catalog for everything else).
pub const SAFE_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Runs `work` as `role`, sealed as Postgres seals its own maintenance commands acting
/// as a table's owner (VACUUM, CREATE INDEX, REFRESH MATERIALIZED VIEW): a
/// security-restricted operation, in a new GUC nest level whose search path is
/// [`SAFE_SEARCH_PATH`]. Every setting changed inside — by `work` or by a user's code it
/// fires, at session level too — is rolled back on exit; an ERROR inside ends the
/// transaction (or subtransaction), whose abort rolls them back and restores the user.
pub fn as_role<T>(role: pg_sys::Oid, work: impl FnOnce() -> T) -> T {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: the main thread, inside a transaction; restored below, or by the abort.
    let nest_level = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let nest_level = pg_sys::NewGUCNestLevel();
        set_for_section(c"search_path", SAFE_SEARCH_PATH);
        nest_level
    };
    let out = work();
    // SAFETY: as above; the nest level is the one opened above (an inner one left open
    // would have been closed by the same call).
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(user, context);
    }
    out
}

/// Sets `name` to `value` for the current GUC nest level (undone when it closes).
///
/// # Safety
/// Inside a transaction, after `NewGUCNestLevel`.
unsafe fn set_for_section(name: &std::ffi::CStr, value: &str) {
    let value = std::ffi::CString::new(value).expect("no NUL in a constant");
    // SAFETY: as the caller promises; Postgres copies both strings.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}

/// The role that owns the catalog (and schema `ai`).
pub fn catalog_owner() -> pg_sys::Oid {
    Spi::get_one::<pg_sys::Oid>(
        "SELECT c.relowner FROM pg_catalog.pg_class c
          WHERE c.oid = 'ai.vectorizer'::pg_catalog.regclass",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error!("ai_loader's catalog ai.vectorizer is missing"))
}

/// Runs `work` as the catalog owner.
pub fn as_catalog_owner<T>(work: impl FnOnce() -> T) -> T {
    as_role(catalog_owner(), work)
}

/// A role's name.
pub fn name_of(role: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = $1",
        &[role.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error!("role with OID {} does not exist", role.to_u32()))
}

/// Whether the current user has the privileges of `role` (a member that inherits them,
/// or a superuser).
pub fn has_privileges_of(role: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup in a transaction.
    unsafe { pg_sys::has_privs_of_role(current(), role) }
}

/// Whether the current user may manage what `owner` owns: it has the owner's
/// privileges, or, once the owner role is gone (`None`), is a superuser.
pub fn may_manage(owner: Option<pg_sys::Oid>) -> bool {
    owner.map_or_else(is_superuser, has_privileges_of)
}

/// Whether the current user is a superuser.
pub fn is_superuser() -> bool {
    // SAFETY: a catalog lookup in a transaction.
    unsafe { pg_sys::superuser() }
}

/// Why the worker does not act for a vectorizer or sync (`what`) whose owner `owner` no
/// longer owns its `table` (source or destination): it writes a table only as the
/// table's owner, so that nobody's code on the table runs with more rights than its
/// owner's (see README, Security).
pub fn not_table_owner(what: &str, owner: &str, table: &str) -> String {
    format!(
        "the {what}'s owner \"{owner}\" no longer owns its {table} table, and the worker acts on a table only as its owner; \
         to resume, give the table back (ALTER TABLE … OWNER TO), or move everything the role owns with REASSIGN OWNED"
    )
}

/// Why the worker does not act for a vectorizer or sync (`what`) whose owner `owner` may
/// no longer `action` (load URIs, read S3, embed with Bedrock): the server's own AWS
/// identity is for superusers and members of ai_loader_s3_reader only.
pub fn not_s3_reader(what: &str, owner: &str, action: &str) -> String {
    format!(
        "the {what}'s owner \"{owner}\" may no longer {action} (it is neither a superuser nor a member of ai_loader_s3_reader); \
         to resume: GRANT ai_loader_s3_reader TO \"{owner}\""
    )
}

/// A vectorizer or an S3 sync, as the worker serves it: what it does for one runs with
/// its owner's rights (its table privileges, row-level security and triggers apply).
pub trait Owned {
    /// The owner, none once the role is gone.
    fn owner_oid(&self) -> Option<pg_sys::Oid>;
    /// "vectorizer \"docs\"", for messages.
    fn describe(&self) -> String;

    /// Runs `work` as the owner; an ERROR once the owner is gone.
    fn as_owner<T>(&self, work: impl FnOnce() -> T) -> T {
        match self.owner_oid() {
            Some(owner) => as_role(owner, work),
            None => error!(
                "the owner of {} no longer exists; drop it and create it again",
                self.describe()
            ),
        }
    }
}
