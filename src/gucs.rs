//! ai_loader's settings, all under the reserved prefix `ai_loader.`.

use std::ffi::CStr;

use pgrx::pg_sys;

const PREFIX: &CStr = c"ai_loader";

/// Defines the settings; called once from `_PG_init`.
pub fn init() {
    // SAFETY: called from _PG_init in the postmaster, with a static C string.
    unsafe { pg_sys::MarkGUCPrefixReserved(PREFIX.as_ptr()) };
}
