//! `loading_uri`: fetching the document a URI names — S3 objects with the AWS SDK
//! (default credential chain, or an assumed role whose credentials are cached until
//! shortly before they expire), plain HTTP(S), and files under a configured root.

pub mod check;
pub mod guard;
pub mod s3;
pub mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use regex::Regex;
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::parsing::Document;
use uri::Location;

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// The document, and its ETag where the store has one.
    Document {
        document: Document,
        etag: Option<String>,
    },
    /// The object still has the ETag that was embedded: nothing to do.
    Unchanged,
}

/// Why a document could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub message: String,
    /// The store itself could not be reached (connection refused, timeout, 5xx):
    /// when every document of a batch fails this way, the batch waits instead.
    pub outage: bool,
}

impl LoadError {
    fn item(message: impl Into<String>) -> Self {
        LoadError {
            message: scrub(&message.into()),
            outage: false,
        }
    }
    fn outage(message: impl Into<String>) -> Self {
        LoadError {
            message: scrub(&message.into()),
            outage: true,
        }
    }
}

/// Settings the worker reads on its main thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// An S3-compatible endpoint for S3 only (MinIO, R2, a test server).
    pub s3_endpoint: Option<String>,
    pub s3_force_path_style: bool,
    /// The ExternalId sent with AssumeRole.
    pub external_id: Option<String>,
    pub timeout: Duration,
    pub max_bytes: u64,
    /// The only directory `file://` may read; `None` turns `file://` off.
    pub file_root: Option<PathBuf>,
    /// `bucket` or `bucket/prefix` entries S3 URIs must match; empty: any.
    pub s3_allowed: Vec<String>,
    /// Hosts http(s) URIs may reach although their addresses are not public.
    pub http_allowed_hosts: Vec<String>,
}

/// An AWS identity: a role and a session name, or (none) the server's own.
type Identity = (Option<String>, Option<String>);

/// Loads any supported URI; one per worker, so S3 clients and role credentials are
/// shared by every batch.
pub struct UriLoader {
    settings: Settings,
    http: reqwest::Client,
    s3: Mutex<HashMap<Option<String>, Arc<s3::S3>>>,
    /// The AWS identities made, by role and session name (none: the server's own).
    identities: Mutex<HashMap<Identity, aws_config::SdkConfig>>,
}

impl UriLoader {
    pub fn new(settings: Settings) -> Result<Self, String> {
        let allowed = Arc::new(settings.http_allowed_hosts.clone());
        let redirects = Arc::clone(&allowed);
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .dns_resolver(Arc::new(guard::PublicOnly {
                allowed: Arc::clone(&allowed),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 {
                    return attempt.error("more than 10 redirects");
                }
                match guard::check_url(attempt.url(), &redirects) {
                    Ok(()) => attempt.follow(),
                    Err(e) => {
                        let to = attempt.url().to_string();
                        attempt.error(format!("redirected to {to}: {e}"))
                    }
                }
            }))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(UriLoader {
            settings,
            http,
            s3: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The AWS identity of `role` with `session` as its session name (or the server's
    /// own), made once: S3, SQS and Bedrock clients made from it share its credentials.
    pub async fn aws(&self, role: Option<&str>, session: Option<&str>) -> aws_config::SdkConfig {
        let mut identities = self.identities.lock().await;
        let key = (role.map(str::to_string), session.map(str::to_string));
        if let Some(sdk) = identities.get(&key) {
            return sdk.clone();
        }
        let sdk = s3::identity(&self.settings, role, session).await;
        identities.insert(key, sdk.clone());
        sdk
    }

    /// The S3 client for a role (or the default credentials), made once.
    pub async fn s3(&self, role: Option<&str>) -> Arc<s3::S3> {
        let mut clients = self.s3.lock().await;
        let key = role.map(str::to_string);
        if let Some(c) = clients.get(&key) {
            return Arc::clone(c);
        }
        let sdk = self.aws(role, None).await;
        let client = Arc::new(s3::S3::new(&self.settings, sdk, role));
        clients.insert(key, Arc::clone(&client));
        client
    }

    /// Fetches `uri`; `role` is the vectorizer's `aws_role_arn`; `etag` the ETag of the
    /// object as last embedded.
    pub async fn load(
        &self,
        uri: &str,
        role: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Loaded, LoadError> {
        match Location::parse(uri).map_err(LoadError::item)? {
            Location::S3 { bucket, key } => {
                guard::check_s3(&self.settings.s3_allowed, &bucket, &key)
                    .map_err(LoadError::item)?;
                self.s3(role)
                    .await
                    .get(&bucket, &key, etag, self.settings.max_bytes)
                    .await
            }
            Location::Http(url) => self.get_http(&url).await,
            Location::File(path) => self.read_file(&path).await,
        }
    }

    async fn get_http(&self, url: &str) -> Result<Loaded, LoadError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| LoadError::item(format!("invalid URL \"{url}\": {e}")))?;
        guard::check_url(&parsed, &self.settings.http_allowed_hosts)
            .map_err(|e| LoadError::item(format!("refusing {url}: {e}")))?;
        let response = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| LoadError::item(format!("fetching {url}: {}", causes(e))))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("nowhere");
            return Err(LoadError::item(format!(
                "fetching {url}: HTTP {}, a redirect to {to} that is not followed (only http and https are)",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(LoadError::item(format!(
                "fetching {url}: HTTP {}",
                status.as_u16()
            )));
        }
        let max = self.settings.max_bytes;
        if let Some(len) = response.content_length().filter(|l| *l > max) {
            return Err(LoadError::item(too_large(url, len, max)));
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| LoadError::item(format!("reading {url}: {}", causes(e))))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(LoadError::item(too_large(url, bytes.len() as u64, max)));
            }
        }
        Ok(Loaded::Document {
            document: Document {
                bytes,
                name: Some(url.to_string()),
                is_text: false,
            },
            etag: None,
        })
    }

    async fn read_file(&self, path: &str) -> Result<Loaded, LoadError> {
        let Some(root) = &self.settings.file_root else {
            return Err(LoadError::item(format!(
                "file://{path}: file:// URIs are off; set ai_loader.file_root to the directory they may read"
            )));
        };
        // A hung mount or a file swapped for a FIFO fails this document, not the worker
        // (the read goes on in its blocking thread until the system lets go).
        let timeout = self.settings.timeout;
        let bytes = tokio::time::timeout(timeout, self.read_under(root, path))
            .await
            .map_err(|_| {
                LoadError::item(format!(
                    "file://{path}: not read within ai_loader.request_timeout ({:.0} s)",
                    timeout.as_secs_f64()
                ))
            })??;
        Ok(Loaded::Document {
            document: Document {
                bytes,
                name: Some(path.to_string()),
                is_text: false,
            },
            etag: None,
        })
    }

    /// The bytes of the regular file `path` under `root`, at most `max_bytes`.
    async fn read_under(&self, root: &Path, path: &str) -> Result<Vec<u8>, LoadError> {
        let failed = |e: std::io::Error| LoadError::item(format!("file://{path}: {e}"));
        let root = tokio::fs::canonicalize(root)
            .await
            .map_err(|e| LoadError::item(format!("ai_loader.file_root {}: {e}", root.display())))?;
        let outside = || LoadError::item(format!("file://{path} is outside ai_loader.file_root"));
        // Written outside the root: refused before the file system is asked anything, so
        // the answer is the same whether or not such a path exists.
        if !lexically(Path::new(path)).is_some_and(|p| p.starts_with(&root)) {
            return Err(outside());
        }
        let real = tokio::fs::canonicalize(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LoadError::item(format!(
                    "file://{path}: no such file under ai_loader.file_root"
                )),
                _ => failed(e),
            })?;
        if !real.starts_with(&root) {
            return Err(outside()); // a link out of the root
        }
        let meta = tokio::fs::metadata(&real).await.map_err(failed)?;
        if !meta.is_file() {
            return Err(LoadError::item(format!(
                "file://{path} is not a regular file (a directory, FIFO, socket or device)"
            )));
        }
        let max = self.settings.max_bytes;
        let too_large = |len| LoadError::item(too_large(&format!("file://{path}"), len, max));
        if meta.len() > max {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::new();
        let file = tokio::fs::File::open(&real).await.map_err(failed)?;
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(failed)?;
        if bytes.len() as u64 > max {
            return Err(too_large(bytes.len() as u64)); // it grew since
        }
        Ok(bytes)
    }
}

/// An error and its causes, as one line (reqwest's own text leaves out why).
pub(crate) fn causes(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        source = s.source();
    }
    out
}

fn too_large(what: &str, len: u64, max: u64) -> String {
    format!("{what} is {len} bytes, larger than ai_loader.max_object_bytes ({max} bytes)")
}

/// Removes what could be a secret from a message: access key ids, signatures,
/// security tokens and credentials in URLs.
pub fn scrub(message: &str) -> String {
    static PATTERNS: std::sync::OnceLock<Vec<(Regex, &'static str)>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            (r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b", "<access key id>"),
            (r"(?i)(x-amz-signature|signature)=[^&\s,]+", "$1=<redacted>"),
            (r"(?i)(x-amz-security-token|x-amz-credential|sessiontoken|security-token)[=:]\s*[^&\s,]+", "$1=<redacted>"),
            (r"(?i)(bearer)\s+[A-Za-z0-9._~+/=-]+", "$1 <redacted>"),
            (r"://[^/@\s]+:[^/@\s]+@", "://<redacted>@"),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("scrub pattern"), r))
        .collect()
    });
    patterns.iter().fold(message.to_string(), |m, (re, with)| {
        re.replace_all(&m, *with).into_owned()
    })
}

/// An absolute path with `.` and `..` resolved by their names alone, without asking the
/// file system; `None` for a relative path.
fn lexically(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return None,
        }
    }
    path.is_absolute().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets() {
        let m = "denied for AKIAIOSFODNN7EXAMPLE at https://u:p@h/x?X-Amz-Signature=abc123&X-Amz-Security-Token=tok Bearer sk-123";
        let s = scrub(m);
        assert!(
            !s.contains("AKIAIOSFODNN7EXAMPLE")
                && !s.contains("abc123")
                && !s.contains("tok ")
                && !s.contains("sk-123")
                && !s.contains("u:p@"),
            "{s}"
        );
    }

    #[tokio::test]
    async fn files_stay_under_the_root() {
        let dir = std::env::temp_dir().join(format!("ai_loader_files_{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("docs/a.md"), "hello").unwrap();
        std::fs::write(dir.join("secret.txt"), "no").unwrap();
        let loader = |root: Option<PathBuf>| {
            UriLoader::new(Settings {
                file_root: root,
                max_bytes: 1000,
                timeout: Duration::from_secs(5),
                ..Default::default()
            })
            .unwrap()
        };
        let off = loader(None)
            .load(&format!("file://{}/docs/a.md", dir.display()), None, None)
            .await
            .unwrap_err();
        assert!(off.message.contains("file:// URIs are off"));
        let l = loader(Some(dir.join("docs")));
        match l
            .load(&format!("file://{}/docs/a.md", dir.display()), None, None)
            .await
            .unwrap()
        {
            Loaded::Document { document, .. } => assert_eq!(document.bytes, b"hello"),
            other => panic!("{other:?}"),
        }
        let escape = l
            .load(
                &format!("file://{}/docs/../secret.txt", dir.display()),
                None,
                None,
            )
            .await
            .unwrap_err();
        assert!(
            escape.message.contains("outside ai_loader.file_root"),
            "{}",
            escape.message
        );
        // Outside the root, a path that exists and one that does not get the same answer.
        let answer = |p: String| {
            let l = &l;
            async move {
                l.load(&format!("file://{p}"), None, None)
                    .await
                    .unwrap_err()
                    .message
                    .replace(&p, "PATH")
            }
        };
        let exists = answer(format!("{}/secret.txt", dir.display())).await;
        let missing = answer(format!("{}/no-such-file.txt", dir.display())).await;
        assert_eq!(exists, missing);
        assert_eq!(exists, "file://PATH is outside ai_loader.file_root");
        let inside = answer(format!("{}/docs/nothing.md", dir.display())).await;
        assert_eq!(
            inside,
            "file://PATH: no such file under ai_loader.file_root"
        );
        // Special files are refused before they are opened (a FIFO would block).
        std::fs::create_dir_all(dir.join("docs/sub")).unwrap();
        let fifo = dir.join("docs/pipe");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for special in [
            fifo.display().to_string(),
            format!("{}/docs/sub", dir.display()),
        ] {
            assert_eq!(
                answer(special).await,
                "file://PATH is not a regular file (a directory, FIFO, socket or device)"
            );
        }
        assert_eq!(
            lexically(Path::new("/a/./b/../c")),
            Some(PathBuf::from("/a/c"))
        );
        assert_eq!(lexically(Path::new("/../..")), Some(PathBuf::from("/")));
        assert_eq!(lexically(Path::new("a/b")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
