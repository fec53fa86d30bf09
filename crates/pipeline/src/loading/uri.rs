//! Where a URI points: an S3 object (`s3://bucket/key`, or an `amazonaws.com` URL in
//! virtual-hosted or path style), a plain HTTP(S) URL, or a local file.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, key: String },
    Http(String),
    File(String),
}

impl Location {
    /// Reads a URI; the error names it and says which forms are understood.
    pub fn parse(uri: &str) -> Result<Location, String> {
        let uri = uri.trim();
        let invalid = |why: &str| format!("invalid URI \"{uri}\": {why}");
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected s3://bucket/key, https://… or file://…"))?;
        match scheme.to_ascii_lowercase().as_str() {
            // An s3:// URI is taken literally, as the AWS CLI does: "my file.pdf", "ü.md".
            "s3" => {
                let (bucket, key) = rest
                    .split_once('/')
                    .ok_or_else(|| invalid("no object key after the bucket"))?;
                if bucket.is_empty() || key.is_empty() {
                    return Err(invalid("expected s3://bucket/key"));
                }
                Ok(Location::S3 { bucket: bucket.to_string(), key: key.to_string() })
            }
            "https" | "http" => Ok(amazon_s3(rest).unwrap_or_else(|| Location::Http(uri.to_string()))),
            "file" => {
                let path = decode(rest);
                if !path.starts_with('/') {
                    return Err(invalid("a file URI needs an absolute path (file:///…)"));
                }
                Ok(Location::File(path))
            }
            other => Err(format!(
                "unsupported URI scheme \"{other}\" in \"{uri}\" (supported: s3://, https://, http://, file://)"
            )),
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `bucket.s3[.-]<region>.amazonaws.com/key`, `bucket.s3.amazonaws.com/key`,
/// `s3[.-]<region>.amazonaws.com/bucket/key` or `s3.amazonaws.com/bucket/key`.
fn amazon_s3(rest: &str) -> Option<Location> {
    let (host, path) = rest.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let host = host.split(':').next()?.to_ascii_lowercase();
    let stem = host.strip_suffix(".amazonaws.com")?;
    let is_s3 = |s: &str| s == "s3" || s.starts_with("s3.") || s.starts_with("s3-");
    if is_s3(stem) {
        let (bucket, key) = path.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| Location::S3 {
            bucket: decode(bucket),
            key: decode(key),
        })
    } else {
        let at = stem.find(".s3")?;
        let (bucket, service) = stem.split_at(at);
        (is_s3(&service[1..]) && !bucket.is_empty() && !path.is_empty()).then(|| Location::S3 {
            bucket: bucket.to_string(),
            key: decode(path),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, key: &str) -> Location {
        Location::S3 {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn s3_forms() {
        assert_eq!(
            Location::parse("s3://docs/guide.pdf"),
            Ok(s3("docs", "guide.pdf"))
        );
        assert_eq!(
            Location::parse("s3://docs/a dir/my file ü.md"),
            Ok(s3("docs", "a dir/my file ü.md"))
        );
        assert_eq!(
            Location::parse("s3://docs/100%25.md"),
            Ok(s3("docs", "100%25.md")),
            "literal"
        );
        assert_eq!(
            Location::parse(
                "https://docs.s3.eu-west-1.amazonaws.com/a%20dir/my%20file%C3%BC.md?versionId=1"
            ),
            Ok(s3("docs", "a dir/my fileü.md"))
        );
        assert_eq!(
            Location::parse("https://docs.s3.amazonaws.com/k"),
            Ok(s3("docs", "k"))
        );
        assert_eq!(
            Location::parse("https://my.bucket.s3-us-west-2.amazonaws.com/k"),
            Ok(s3("my.bucket", "k"))
        );
        assert_eq!(
            Location::parse("https://s3.us-east-2.amazonaws.com/docs/x/y.txt"),
            Ok(s3("docs", "x/y.txt"))
        );
        assert_eq!(
            Location::parse("https://s3.amazonaws.com/docs/y.txt"),
            Ok(s3("docs", "y.txt"))
        );
    }

    #[test]
    fn other_forms() {
        assert_eq!(
            Location::parse("https://example.com/a.md"),
            Ok(Location::Http("https://example.com/a.md".into()))
        );
        assert_eq!(
            Location::parse("file:///srv/docs/a%20b.md"),
            Ok(Location::File("/srv/docs/a b.md".into()))
        );
    }

    #[test]
    fn errors_name_the_uri() {
        assert_eq!(
            Location::parse("ftp://host/file").unwrap_err(),
            "unsupported URI scheme \"ftp\" in \"ftp://host/file\" (supported: s3://, https://, http://, file://)"
        );
        assert!(Location::parse("s3://bucket-only")
            .unwrap_err()
            .contains("no object key"));
        assert!(Location::parse("s3:///key")
            .unwrap_err()
            .contains("expected s3://bucket/key"));
        assert!(Location::parse("just text")
            .unwrap_err()
            .starts_with("invalid URI \"just text\""));
        assert!(Location::parse("file://relative/x")
            .unwrap_err()
            .contains("absolute path"));
    }
}
