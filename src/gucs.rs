//! ai_loader's settings, all under the reserved prefix `ai_loader.`. The worker rereads
//! them on SIGHUP (`pg_reload_conf()`).

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

static POLL_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(1000);
static MAX_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(8);
static IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static REVISIT_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(300_000);
static WORKER_TURN: GucSetting<i32> = GucSetting::<i32>::new(30_000);
static MAX_OBJECT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024 * 1024);
static REQUEST_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
static OPENAI_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static VOYAGE_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static COHERE_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static MISTRAL_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static AZURE_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static S3_ENDPOINT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static S3_FORCE_PATH_STYLE: GucSetting<bool> = GucSetting::<bool>::new(false);
static AWS_EXTERNAL_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static FILE_ROOT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static S3_ALLOWED_BUCKETS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static HTTP_ALLOWED_HOSTS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static API_KEY_ENDPOINTS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static MODEL_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static MODEL_THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);
static MAX_PARSERS: GucSetting<i32> = GucSetting::<i32>::new(0);
static WORKERS_PER_DATABASE: GucSetting<i32> = GucSetting::<i32>::new(2);
static PARSE_MEMORY: GucSetting<i32> = GucSetting::<i32>::new(512 * 1024);
static PARSE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(60_000);
static MAX_DOCUMENT_TEXT: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024 * 1024);

/// Defines the settings; called once from `_PG_init`.
pub fn init() {
    GucRegistry::define_int_guc(
        c"ai_loader.poll_interval",
        c"How often a worker comes back to the vectorizers that may have work without a commit's wake-up (rows waiting for a retry, their provider or a lock).",
        c"A worker that found work looks again at once; a commit that queues rows wakes it.",
        &POLL_INTERVAL,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.max_workers",
        c"The most database workers the launcher runs at once, helpers included.",
        c"One worker serves each database where ai_loader is installed; with 0 none is started.",
        &MAX_WORKERS,
        0,
        256,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ai_loader.idle_timeout",
        c"How long a database's worker stays with nothing queued before it leaves, giving its slot back.",
        c"A commit that queues rows starts a worker again at once; 0 keeps workers for good.",
        &IDLE_TIMEOUT,
        0,
        86_400_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.revisit_interval",
        c"How often a worker looks at every vectorizer, and a database whose worker left idle gets a worker again, to find rows queued without a commit's wake-up.",
        c"Rows a trigger queues wake a worker at commit; a restore's rows or a prepared transaction's are found this way.",
        &REVISIT_INTERVAL,
        1_000,
        86_400_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.worker_turn",
        c"How long a database's worker keeps its slot while other databases with queued rows wait for one.",
        c"After its turn it gives the slot back at the end of a round, and its database waits in line behind them.",
        &WORKER_TURN,
        1_000,
        86_400_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
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
        c"ai_loader.parse_memory",
        c"The memory a parser may use for one document (any format but plain text).",
        c"Each such document is parsed by a process of its own (ai_loader_parse) with this much address space beyond its size with the document read; one that needs more fails alone.",
        &PARSE_MEMORY,
        16 * 1024,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.parse_timeout",
        c"The longest parsing one document (any format but plain text) may take.",
        c"",
        &PARSE_TIMEOUT,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"ai_loader.max_document_text",
        c"The most text one document may yield; a document with more fails alone.",
        c"",
        &MAX_DOCUMENT_TEXT,
        1024,
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
    // The providers' keys by their default names; any other api_key_name is the
    // server's environment variable, or a setting defined in postgresql.conf.
    for (name, short, long, setting) in [
        (
            c"ai_loader.openai_api_key",
            c"The API key for embedding_openai(api_key_name => 'OPENAI_API_KEY').",
            c"The environment variable OPENAI_API_KEY of the server wins. Superusers only.",
            &OPENAI_API_KEY,
        ),
        (
            c"ai_loader.voyage_api_key",
            c"The API key for embedding_voyageai() and litellm voyage/ models.",
            c"The environment variable VOYAGE_API_KEY of the server wins. Superusers only.",
            &VOYAGE_API_KEY,
        ),
        (
            c"ai_loader.cohere_api_key",
            c"The API key for litellm cohere/ models.",
            c"The environment variable COHERE_API_KEY of the server wins. Superusers only.",
            &COHERE_API_KEY,
        ),
        (
            c"ai_loader.mistral_api_key",
            c"The API key for litellm mistral/ models.",
            c"The environment variable MISTRAL_API_KEY of the server wins. Superusers only.",
            &MISTRAL_API_KEY,
        ),
        (
            c"ai_loader.azure_api_key",
            c"The API key for litellm azure/ models (Azure OpenAI).",
            c"The environment variable AZURE_API_KEY of the server wins. Superusers only.",
            &AZURE_API_KEY,
        ),
    ] {
        GucRegistry::define_string_guc(
            name,
            short,
            long,
            setting,
            GucContext::Sighup,
            GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
        );
    }
    GucRegistry::define_string_guc(
        c"ai_loader.s3_endpoint",
        c"An S3-compatible endpoint URL for S3 requests (MinIO, R2, a test server).",
        c"Empty: the SDK's default, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL of the server's environment.",
        &S3_ENDPOINT,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"ai_loader.s3_force_path_style",
        c"Address S3 buckets in the path (endpoint/bucket/key) rather than the host name.",
        c"Needed by most S3-compatible servers.",
        &S3_FORCE_PATH_STYLE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ai_loader.aws_external_id",
        c"The ExternalId sent when assuming a vectorizer's aws_role_arn.",
        c"Empty: the server's AWS_ASSUME_ROLE_EXTERNAL_ID, if set.",
        &AWS_EXTERNAL_ID,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ai_loader.file_root",
        c"The only directory file:// URIs may read; empty turns file:// off.",
        c"",
        &FILE_ROOT,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ai_loader.s3_allowed_buckets",
        c"The only S3 buckets, or bucket/prefix pairs, URIs may read (comma-separated).",
        c"Empty: whatever the server's credentials reach.",
        &S3_ALLOWED_BUCKETS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ai_loader.http_allowed_hosts",
        c"Hosts http(s) URIs and embedding base_urls may reach although they are loopback, private or link-local (comma-separated).",
        c"Other such addresses, the instance metadata service among them, are refused. Being listed here does not send a host the server's API keys (ai_loader.api_key_endpoints does).",
        &HTTP_ALLOWED_HOSTS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ai_loader.api_key_endpoints",
        c"Embedding endpoints, besides each provider's default, trusted with the server's API keys (comma-separated URLs).",
        c"Scheme, host, port and path are compared: http://127.0.0.1:8080/v1 covers that server's /v1 and below, nothing else.",
        &API_KEY_ENDPOINTS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ai_loader.model_dir",
        c"Where the local embedding models are, one directory per model.",
        c"Empty: $sharedir/extension/ai_loader/models, where make setup installs all-MiniLM-L6-v2.",
        &MODEL_DIR,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ai_loader.workers_per_database",
        c"The most workers embedding one database's queues at once.",
        c"A database has one worker; while it has a backlog the launcher adds helpers up to this many workers in all, each taking a slot of max_worker_processes.",
        &WORKERS_PER_DATABASE,
        1,
        64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ai_loader.model_threads",
        c"Threads the local model may use in each worker.",
        c"0: the machine's cores divided by ai_loader.workers_per_database (at least 1). Read when a worker starts.",
        &MODEL_THREADS,
        0,
        256,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ai_loader.max_parsers",
        c"Parser programs each worker runs at once.",
        c"0: the machine's cores divided by ai_loader.workers_per_database (at least 1). Parsers run at a lower CPU priority than the server's processes.",
        &MAX_PARSERS,
        0,
        256,
        GucContext::Sighup,
        GucFlags::default(),
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

/// How long a worker with nothing queued waits before it leaves; `None`: never.
pub fn idle_timeout() -> Option<Duration> {
    Some(millis(&IDLE_TIMEOUT)).filter(|d| !d.is_zero())
}

pub fn worker_turn() -> Duration {
    millis(&WORKER_TURN)
}

pub fn revisit_interval() -> Duration {
    millis(&REVISIT_INTERVAL)
}

pub fn max_workers() -> usize {
    MAX_WORKERS.get().max(0) as usize
}

pub fn max_object_bytes() -> u64 {
    MAX_OBJECT_BYTES.get().max(1) as u64
}

pub fn request_timeout() -> Duration {
    millis(&REQUEST_TIMEOUT)
}

/// What parsing one document may use, and the parser program.
pub fn parse_limits() -> ai_loader_pipeline::isolate::Limits {
    ai_loader_pipeline::isolate::Limits {
        memory: PARSE_MEMORY.get().max(0) as u64 * 1024,
        time: millis(&PARSE_TIMEOUT),
        text: MAX_DOCUMENT_TEXT.get().max(0) as usize,
        program: installed(&PROGRAM, "ai_loader_parse"),
        pdfium: installed(&PDFIUM, ai_loader_pipeline::isolate::PDFIUM_LIBRARY),
        parsers: max_parsers(),
    }
}

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
static PDFIUM: OnceLock<PathBuf> = OnceLock::new();
static ONNX_RUNTIME: OnceLock<PathBuf> = OnceLock::new();

/// A file installed beside the library (under the server's `pkglibdir`): the parser
/// program, PDFium's library, which it loads, and ONNX Runtime's.
fn installed(path: &'static OnceLock<PathBuf>, name: &str) -> &'static Path {
    path.get_or_init(|| server_path(pg_sys::get_pkglib_path).join(name))
}

fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn workers_per_database() -> usize {
    WORKERS_PER_DATABASE.get().max(1) as usize
}

/// `ai_loader.model_threads`, or when 0 a share of the machine's cores.
pub fn model_threads() -> usize {
    setting_or_cores_share(&MODEL_THREADS)
}

/// `ai_loader.max_parsers`, or when 0 a share of the machine's cores.
pub fn max_parsers() -> usize {
    setting_or_cores_share(&MAX_PARSERS)
}

/// A positive setting, or the machine's cores divided between a database's workers.
fn setting_or_cores_share(setting: &GucSetting<i32>) -> usize {
    match setting.get() {
        n if n > 0 => n as usize,
        _ => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / workers_per_database()).max(1)
        }
    }
}

/// The directory of the local models: the setting, or `$sharedir/extension/ai_loader/models`.
pub fn model_dir() -> std::path::PathBuf {
    match text(&MODEL_DIR) {
        Some(dir) => dir.into(),
        None => server_path(pg_sys::get_share_path).join("extension/ai_loader/models"),
    }
}

/// How the local model runs: ONNX Runtime's library in the server's library directory
/// (`pg_config --pkglibdir`), `ai_loader.model_threads` threads.
pub fn model_runtime() -> ai_loader_pipeline::local::Runtime {
    ai_loader_pipeline::local::Runtime {
        library: installed(&ONNX_RUNTIME, ai_loader_pipeline::local::RUNTIME_LIBRARY).into(),
        threads: model_threads(),
    }
}

/// One of the server's installation directories, as `get_path` finds it from the
/// server's executable (a relocated installation included).
fn server_path(
    get_path: unsafe fn(*const std::ffi::c_char, *mut std::ffi::c_char),
) -> std::path::PathBuf {
    let mut path = [0 as std::ffi::c_char; pg_sys::MAXPGPATH as usize];
    // SAFETY: my_exec_path is this server's executable path; path has MAXPGPATH bytes.
    unsafe { get_path((&raw const pg_sys::my_exec_path).cast(), path.as_mut_ptr()) };
    // SAFETY: get_*_path writes a NUL-terminated path.
    let path = unsafe { CStr::from_ptr(path.as_ptr()) };
    path.to_string_lossy().into_owned().into()
}

/// What loading from URIs needs to know.
pub fn loading_settings() -> ai_loader_pipeline::loading::Settings {
    ai_loader_pipeline::loading::Settings {
        s3_endpoint: text(&S3_ENDPOINT),
        s3_force_path_style: S3_FORCE_PATH_STYLE.get(),
        external_id: text(&AWS_EXTERNAL_ID).or_else(|| {
            std::env::var("AWS_ASSUME_ROLE_EXTERNAL_ID")
                .ok()
                .filter(|s| !s.is_empty())
        }),
        timeout: request_timeout(),
        max_bytes: max_object_bytes(),
        file_root: text(&FILE_ROOT).map(Into::into),
        s3_allowed: list(&S3_ALLOWED_BUCKETS),
        http_allowed_hosts: list(&HTTP_ALLOWED_HOSTS),
    }
}

/// What building the provider of `embedding` needs: the server's key for it, the
/// endpoint the server's environment names instead of the provider's, the timeout, the
/// models' directory, the hosts trusted with private addresses and keys, and the AWS
/// identities for Bedrock (`aws`: the worker's, shared with its S3 reads).
pub fn provider_settings(
    embedding: &ai_loader_core::embedding::Embedding,
    aws: Option<std::sync::Arc<ai_loader_pipeline::loading::UriLoader>>,
) -> ai_loader_pipeline::embedding::ProviderSettings {
    let service = embedding.service().ok();
    let api = service.as_ref().map(|s| &s.api);
    ai_loader_pipeline::embedding::ProviderSettings {
        api_key: service
            .as_ref()
            .and_then(|s| s.api_key_name.as_deref())
            .and_then(api_key),
        timeout: request_timeout(),
        model_dir: model_dir(),
        model_runtime: model_runtime(),
        http_allowed_hosts: list(&HTTP_ALLOWED_HOSTS),
        api_key_endpoints: list(&API_KEY_ENDPOINTS),
        default_base_url: api
            .and_then(|a| a.base_url_variable())
            .and_then(|name| std::env::var(name).ok())
            .filter(|url| !url.is_empty()),
        aws,
    }
}

/// A comma-separated setting's entries.
fn list(setting: &GucSetting<Option<CString>>) -> Vec<String> {
    text(setting)
        .map(|s| {
            s.split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The key named `api_key_name`, whatever its case: the server's environment variable of
/// that name in upper case, else the setting `ai_loader.<name in lower case>` where one
/// is defined.
fn api_key(api_key_name: &str) -> Option<String> {
    if let Ok(key) = std::env::var(api_key_name.to_ascii_uppercase()) {
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
