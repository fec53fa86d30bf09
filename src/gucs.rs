//! ai_loader's settings, all under the reserved prefix `ai_loader.`. The worker rereads
//! them on SIGHUP (`pg_reload_conf()`).

use std::ffi::{CStr, CString};
use std::time::Duration;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

static POLL_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(1000);
static MAX_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(8);
static MAX_OBJECT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024 * 1024);
static REQUEST_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
static OPENAI_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Defines the settings; called once from `_PG_init`.
pub fn init() {
    GucRegistry::define_int_guc(
        c"ai_loader.poll_interval",
        c"How often an idle worker looks for queued rows.",
        c"A worker that found work looks again at once.",
        &POLL_INTERVAL,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.max_workers",
        c"The most database workers the launcher runs at once.",
        c"One worker serves each database where ai_loader is installed.",
        &MAX_WORKERS,
        1,
        256,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ai_loader.max_object_bytes",
        c"Documents larger than this are refused before they are read.",
        c"",
        &MAX_OBJECT_BYTES,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.request_timeout",
        c"The longest an S3 or HTTP request may take.",
        c"",
        &REQUEST_TIMEOUT,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"ai_loader.openai_api_key",
        c"The API key for embedding_openai(api_key_name => 'OPENAI_API_KEY').",
        c"The environment variable OPENAI_API_KEY of the server wins. Superusers only.",
        &OPENAI_API_KEY,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    // SAFETY: called from _PG_init in the postmaster, with a static C string.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"ai_loader".as_ptr()) };
}

fn millis(setting: &GucSetting<i32>) -> Duration {
    Duration::from_millis(setting.get().max(0) as u64)
}

pub fn poll_interval() -> Duration {
    millis(&POLL_INTERVAL)
}

pub fn max_workers() -> usize {
    MAX_WORKERS.get().max(1) as usize
}

pub fn max_object_bytes() -> u64 {
    MAX_OBJECT_BYTES.get().max(1) as u64
}

pub fn request_timeout() -> Duration {
    millis(&REQUEST_TIMEOUT)
}

/// The key named `api_key_name`: the server's environment variable of that name, else
/// the setting `ai_loader.<name in lower case>` where one is defined.
pub fn api_key(api_key_name: &str) -> Option<String> {
    if let Ok(key) = std::env::var(api_key_name) {
        if !key.is_empty() {
            return Some(key);
        }
    }
    let setting = CString::new(format!("ai_loader.{}", api_key_name.to_ascii_lowercase())).ok()?;
    // SAFETY: a NUL-terminated name; missing_ok, so an undefined setting is NULL.
    let value = unsafe { pg_sys::GetConfigOption(setting.as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    // SAFETY: GetConfigOption returns a NUL-terminated string owned by the GUC system.
    let key = unsafe { CStr::from_ptr(value) }
        .to_string_lossy()
        .into_owned();
    (!key.is_empty()).then_some(key)
}
