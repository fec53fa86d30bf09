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
//! Switches use `SetUserIdAndSecContext` with a security-restricted operation, as
//! Postgres does for maintenance commands; an ERROR inside ends the transaction (or
//! subtransaction), which restores the user.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The current user.
pub fn current() -> pg_sys::Oid {
    // SAFETY: reads a backend global.
    unsafe { pg_sys::GetUserId() }
}

/// Runs `work` as `role`.
pub fn as_role<T>(role: pg_sys::Oid, work: impl FnOnce() -> T) -> T {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: the main thread, inside a transaction; restored below, or by the abort.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let out = work();
    // SAFETY: as above.
    unsafe { pg_sys::SetUserIdAndSecContext(user, context) };
    out
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
