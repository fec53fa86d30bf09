//! An S3 sync: a bucket prefix kept in step with a table whose rows name its objects
//! (`s3://bucket/key` in a column with a unique index). What `ai.create_s3_sync` checks,
//! the statements the worker writes with, and what a listing changes.

pub mod reconcile;
pub mod sql;

use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;

use crate::loading::validate_role_arn;
use crate::{ConfigError, Result, SqlState};

/// What a destination column may be filled with, from each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// The key's last segment: `report.pdf` of `a/b/report.pdf`.
    Basename,
    Key,
    Size,
    Etag,
    LastModified,
}

impl Attribute {
    pub const ALL: [Attribute; 5] = [
        Attribute::Basename,
        Attribute::Key,
        Attribute::Size,
        Attribute::Etag,
        Attribute::LastModified,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attribute::Basename => "basename",
            Attribute::Key => "key",
            Attribute::Size => "size",
            Attribute::Etag => "etag",
            Attribute::LastModified => "last_modified",
        }
    }

    /// The SQL type the worker writes it as.
    pub fn sql_type(self) -> &'static str {
        match self {
            Attribute::Size => "int8",
            Attribute::LastModified => "timestamptz",
            _ => "text",
        }
    }

    fn parse(name: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// `s3://bucket/` or `s3://bucket/some/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub bucket: String,
    /// The keys' common start; empty for the whole bucket.
    pub prefix: String,
}

impl Prefix {
    pub fn parse(uri: &str) -> Result<Prefix> {
        let invalid = |why: &str| {
            ConfigError::invalid(format!("invalid uri_prefix \"{uri}\": {why}"))
                .with_hint("write s3://bucket/ for a whole bucket, or s3://bucket/some/prefix/")
        };
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("it does not start with s3://"))?;
        let (bucket, prefix) = rest
            .split_once('/')
            .ok_or_else(|| invalid("no / after the bucket"))?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b));
        if !bucket_ok {
            return Err(invalid(
                "not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)",
            ));
        }
        if prefix.contains('\0') || prefix.len() > 1024 {
            return Err(invalid("a key prefix holds at most 1024 bytes and no NUL"));
        }
        Ok(Prefix {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The URI every row of the sync starts with.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The URI of an object, as `loading_uri` reads it (the key taken literally).
    pub fn uri_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The key a URI names, if it is under the prefix.
    pub fn key_of<'a>(&self, uri: &'a str) -> Option<&'a str> {
        let key = uri
            .strip_prefix("s3://")?
            .strip_prefix(self.bucket.as_str())?
            .strip_prefix('/')?;
        (key.starts_with(&self.prefix) && !key.is_empty()).then_some(key)
    }
}

/// Which keys a sync keeps: any that match an `include` glob (all, without), and none
/// that match an `exclude` glob. `*` matches across `/`. A key ending in `/` is a folder
/// marker, not a document: never kept.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter> {
        Ok(Filter {
            include: globs("include", include)?,
            exclude: globs("exclude", exclude)?,
        })
    }

    pub fn keeps(&self, key: &str) -> bool {
        !key.ends_with('/')
            && self.include.as_ref().is_none_or(|g| g.is_match(key))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(key))
    }
}

fn globs(what: &str, patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| {
            ConfigError::invalid(format!("invalid {what} pattern \"{p}\": {}", e.kind()))
                .with_hint("a glob on the object key: *.pdf, reports/**/*.md, {*.md,*.txt}")
        })?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| ConfigError::invalid(format!("invalid {what} patterns: {e}")))
}

/// A sync as the catalog records it.
#[derive(Debug, Clone, Default)]
pub struct Definition {
    pub uri_prefix: String,
    pub column_name: String,
    pub aws_role_arn: Option<String>,
    pub sqs_queue_url: Option<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// `{"destination column": "attribute"}`.
    pub columns: Option<Value>,
    pub reconcile_interval: Duration,
}

/// A checked sync: what the worker acts on.
#[derive(Debug, Clone)]
pub struct Sync {
    pub prefix: Prefix,
    pub filter: Filter,
    /// The column that names each object.
    pub column: String,
    /// Destination columns filled from the objects' attributes.
    pub columns: Vec<(String, Attribute)>,
    pub role: Option<String>,
    pub queue_url: Option<String>,
    pub reconcile_interval: Duration,
}

/// The shortest reconcile interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl Definition {
    pub fn check(&self) -> Result<Sync> {
        let prefix = Prefix::parse(&self.uri_prefix)?;
        if self.column_name.is_empty() {
            return Err(ConfigError::invalid("column_name must not be empty"));
        }
        if let Some(arn) = &self.aws_role_arn {
            validate_role_arn(arn)?;
        }
        if let Some(url) = &self.sqs_queue_url {
            check_queue_url(url)?;
        }
        if self.reconcile_interval < MIN_INTERVAL {
            return Err(ConfigError::invalid(format!(
                "reconcile_interval {:?} is shorter than a second",
                self.reconcile_interval
            ))
            .with_hint("the listing is the safety net that catches missed events: every few minutes is usual"));
        }
        Ok(Sync {
            filter: Filter::new(&self.include, &self.exclude)?,
            columns: mapped_columns(self.columns.as_ref(), &self.column_name)?,
            column: self.column_name.clone(),
            role: self.aws_role_arn.clone(),
            queue_url: self.sqs_queue_url.clone(),
            reconcile_interval: self.reconcile_interval,
            prefix,
        })
    }
}

fn mapped_columns(columns: Option<&Value>, key_column: &str) -> Result<Vec<(String, Attribute)>> {
    let Some(columns) = columns.filter(|c| !c.is_null()) else {
        return Ok(Vec::new());
    };
    let names = Attribute::ALL.map(Attribute::name).join(", ");
    let object = columns.as_object().ok_or_else(|| {
        ConfigError::invalid("columns must be a JSON object")
            .with_hint(format!("map destination columns to object attributes ({names}), e.g. '{{\"title\": \"basename\"}}'"))
    })?;
    object
        .iter()
        .map(|(column, attribute)| {
            let attribute = attribute
                .as_str()
                .and_then(Attribute::parse)
                .ok_or_else(|| {
                    ConfigError::invalid(format!(
                        "columns maps \"{column}\" to {attribute}, which is not an object attribute"
                    ))
                    .with_hint(format!("the attributes are {names}"))
                })?;
            if column == key_column {
                return Err(ConfigError::invalid(format!(
                    "columns maps \"{column}\", the column that names each object"
                ))
                .with_hint("the sync writes s3://bucket/key there itself; map other columns"));
            }
            Ok((column.clone(), attribute))
        })
        .collect()
}

/// An SQS queue URL: `https://sqs.<region>.amazonaws.com/<account>/<queue>` (or any host
/// that serves the SQS protocol: the endpoint is the server's AWS configuration).
fn check_queue_url(url: &str) -> Result<()> {
    let invalid = || {
        ConfigError::invalid(format!("invalid sqs_queue_url \"{url}\""))
            .with_hint("the queue's URL as SQS shows it: https://sqs.<region>.amazonaws.com/<account id>/<queue name>")
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(invalid)?;
    let mut parts = rest.split('/');
    let (host, account, queue) = (parts.next(), parts.next(), parts.next());
    let ok = host.is_some_and(|h| !h.is_empty())
        && account.is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        && queue.is_some_and(|q| {
            (1..=80).contains(&q.len())
                && q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        && parts.next().is_none();
    if ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// The region a queue URL names (`sqs.<region>.amazonaws.com`, `<region>.queue.amazonaws.com`).
pub fn queue_region(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let stem = host.strip_suffix(".amazonaws.com")?;
    stem.strip_prefix("sqs.")
        .or_else(|| stem.strip_suffix(".queue"))
        .filter(|r| !r.is_empty() && !r.contains('.'))
        .map(str::to_string)
}

/// A destination table's column, as `ai.create_s3_sync` checks it.
#[derive(Debug, Clone, Default)]
pub struct TableColumn {
    pub name: String,
    pub not_null: bool,
    pub has_default: bool,
    pub generated: bool,
}

/// Checks a sync against its destination: the key column has a unique index of its own,
/// mapped columns exist and can be written, and a row can be inserted with what the sync
/// knows.
pub fn check_destination(
    sync: &Sync,
    table: &str,
    columns: &[TableColumn],
    unique: bool,
) -> Result<()> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let missing = |name: &str| {
        ConfigError::new(
            SqlState::UndefinedColumn,
            format!("column \"{name}\" of {table} does not exist"),
        )
    };
    let key = find(&sync.column).ok_or_else(|| missing(&sync.column))?;
    if key.generated {
        return Err(ConfigError::invalid(format!(
            "column \"{}\" of {table} is generated: the sync cannot write it",
            key.name
        )));
    }
    if !unique {
        return Err(ConfigError::new(
            SqlState::ObjectNotInPrerequisiteState,
            format!(
                "column \"{}\" of {table} has no unique index of its own",
                sync.column
            ),
        )
        .with_hint(format!(
            "the sync finds each object's row by it: ALTER TABLE {table} ADD UNIQUE ({})",
            crate::ident::quote_ident(&sync.column)
        )));
    }
    for (name, _) in &sync.columns {
        let c = find(name).ok_or_else(|| {
            missing(name).with_hint("columns => maps columns of the destination table")
        })?;
        if c.generated {
            return Err(ConfigError::invalid(format!(
                "columns maps \"{name}\", a generated column of {table}"
            )));
        }
    }
    if let Some(c) = columns.iter().find(|c| {
        c.not_null
            && !c.has_default
            && !c.generated
            && c.name != sync.column
            && !sync.columns.iter().any(|(m, _)| *m == c.name)
    }) {
        return Err(ConfigError::new(
            SqlState::ObjectNotInPrerequisiteState,
            format!(
                "column \"{}\" of {table} is NOT NULL without a default, and the sync does not fill it",
                c.name
            ),
        )
        .with_hint("map it to an object attribute in columns => …, or give it a default"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition() -> Definition {
        Definition {
            uri_prefix: "s3://docs/reports/".into(),
            column_name: "uri".into(),
            reconcile_interval: Duration::from_secs(300),
            ..Default::default()
        }
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("s3://docs/reports/").unwrap();
        assert_eq!((p.bucket.as_str(), p.prefix.as_str()), ("docs", "reports/"));
        assert_eq!(p.uri(), "s3://docs/reports/");
        assert_eq!(p.uri_of("reports/a b+c.md"), "s3://docs/reports/a b+c.md");
        assert_eq!(p.key_of("s3://docs/reports/x/ü.md"), Some("reports/x/ü.md"));
        assert_eq!(p.key_of("s3://docs/other/x.md"), None);
        assert_eq!(p.key_of("s3://docsx/reports/x.md"), None);
        let whole = Prefix::parse("s3://docs/").unwrap();
        assert_eq!(whole.key_of("s3://docs/a.md"), Some("a.md"));
        assert_eq!(whole.key_of("s3://docs/"), None);
        for bad in [
            "docs/",
            "s3://docs",
            "s3://Docs/",
            "https://docs/",
            "s3:///x/",
        ] {
            let e = Prefix::parse(bad).unwrap_err();
            assert!(e.message.contains("invalid uri_prefix"), "{bad}: {e:?}");
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn filters() {
        let f = Filter::new(&["*.pdf".into(), "*.md".into()], &["drafts/**".into()]).unwrap();
        assert!(f.keeps("a.pdf") && f.keeps("reports/2024/b.md"));
        assert!(!f.keeps("a.txt") && !f.keeps("drafts/c.md"));
        assert!(Filter::default().keeps("anything"));
        assert!(!Filter::default().keeps("folder/"));
        let e = Filter::new(&["[a".into()], &[]).unwrap_err();
        assert!(
            e.message.contains("invalid include pattern \"[a\""),
            "{e:?}"
        );
    }

    #[test]
    fn checks_a_definition() {
        let mut d = definition();
        d.columns = Some(json!({"title": "basename", "updated_at": "last_modified"}));
        let s = d.check().unwrap();
        assert_eq!(
            s.columns,
            vec![
                ("title".to_string(), Attribute::Basename),
                ("updated_at".to_string(), Attribute::LastModified)
            ]
        );
        let bad = |f: &dyn Fn(&mut Definition)| {
            let mut d = definition();
            f(&mut d);
            d.check().unwrap_err().message
        };
        assert!(bad(&|d| d.columns = Some(json!({"title": "name"})))
            .contains("not an object attribute"));
        assert!(bad(&|d| d.columns = Some(json!(["title"]))).contains("JSON object"));
        assert!(bad(&|d| d.columns = Some(json!({"uri": "key"}))).contains("names each object"));
        assert!(bad(&|d| d.reconcile_interval = Duration::from_millis(10)).contains("shorter"));
        assert!(bad(&|d| d.aws_role_arn = Some("role".into())).contains("aws_role_arn"));
        assert!(bad(&|d| d.sqs_queue_url = Some("sqs://q".into())).contains("sqs_queue_url"));
        let mut d = definition();
        d.sqs_queue_url =
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/docs-events".into());
        d.check().unwrap();
        assert_eq!(
            queue_region(d.sqs_queue_url.as_deref().unwrap()).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:5000/123456789012/q"), None);
    }

    #[test]
    fn checks_the_destination() {
        let mut d = definition();
        d.columns = Some(json!({"title": "basename"}));
        let s = d.check().unwrap();
        let col = |name: &str, not_null, has_default| TableColumn {
            name: name.into(),
            not_null,
            has_default,
            generated: false,
        };
        let ok = [
            col("id", true, true),
            col("uri", true, false),
            col("title", true, false),
        ];
        check_destination(&s, "doc", &ok, true).unwrap();
        let e = check_destination(&s, "doc", &ok, false).unwrap_err();
        assert_eq!(e.state, SqlState::ObjectNotInPrerequisiteState);
        assert!(e.hint.unwrap().contains("ADD UNIQUE (\"uri\")"));
        let e = check_destination(&s, "doc", &ok[..2], true).unwrap_err();
        assert_eq!(e.state, SqlState::UndefinedColumn);
        let mut more = ok.to_vec();
        more.push(col("owner", true, false));
        let e = check_destination(&s, "doc", &more, true).unwrap_err();
        assert!(e.message.contains("\"owner\""), "{e:?}");
    }
}
