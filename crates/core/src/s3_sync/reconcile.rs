//! What a complete listing changes: objects without a row are inserted, objects whose
//! ETag changed are updated, rows whose object is gone are deleted. A key an event
//! touched after the listing began is left to the event (the listing may predate it).

use std::collections::{HashMap, HashSet};

use super::Sync;

/// An object as listed (or as an event describes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub key: String,
    pub etag: String,
    pub size: i64,
    /// RFC 3339.
    pub last_modified: Option<String>,
}

impl Object {
    /// The last segment of the key.
    pub fn basename(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// What the sync knew of a key before the listing.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub etag: Option<String>,
    /// False for a key whose deletion an event reported.
    pub present: bool,
    /// An event changed it after the listing began.
    pub touched: bool,
}

/// The writes a listing calls for.
#[derive(Debug, Default)]
pub struct Plan {
    /// Objects the sync did not know, or whose row is missing: inserted, or their row's
    /// mapped columns refreshed where they differ.
    pub new: Vec<Object>,
    /// Objects whose ETag changed since the sync last saw them: their rows updated.
    pub changed: Vec<Object>,
    /// The URIs of rows whose object is gone.
    pub gone: Vec<String>,
    /// Keys the sync may forget: no object, no row.
    pub forget: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty()
            && self.changed.is_empty()
            && self.gone.is_empty()
            && self.forget.is_empty()
    }
}

/// Compares a complete listing (already filtered) with what the sync knows and with the
/// URIs of the destination's rows under the prefix.
pub fn plan(
    sync: &Sync,
    listed: Vec<Object>,
    known: &HashMap<String, Known>,
    rows: &HashSet<String>,
) -> Plan {
    let mut plan = Plan::default();
    let mut seen = HashSet::with_capacity(listed.len());
    for object in listed {
        seen.insert(object.key.clone());
        let k = known.get(&object.key);
        if k.is_some_and(|k| k.touched) {
            continue;
        }
        let has_row = rows.contains(&sync.prefix.uri_of(&object.key));
        match k {
            Some(k) if has_row && k.present && k.etag.as_deref() == Some(&object.etag) => {}
            Some(k) if has_row && k.present => plan.changed.push(object),
            _ => plan.new.push(object),
        }
    }
    for uri in rows {
        let Some(key) = sync.prefix.key_of(uri) else {
            continue;
        };
        if seen.contains(key) || !sync.filter.keeps(key) {
            continue;
        }
        if known.get(key).is_some_and(|k| k.touched) {
            continue;
        }
        plan.gone.push(uri.clone());
    }
    for (key, k) in known {
        if !seen.contains(key)
            && !k.touched
            && k.present
            && !rows.contains(&sync.prefix.uri_of(key))
        {
            plan.forget.push(key.clone());
        }
    }
    plan.gone.sort();
    plan.forget.sort();
    for uri in &plan.gone {
        if let Some(key) = sync.prefix.key_of(uri) {
            if known.get(key).is_some_and(|k| k.present) {
                plan.forget.push(key.to_string());
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3_sync::Definition;
    use std::time::Duration;

    fn sync() -> Sync {
        Definition {
            uri_prefix: "s3://docs/r/".into(),
            column_name: "uri".into(),
            exclude: vec!["*.tmp".into()],
            reconcile_interval: Duration::from_secs(60),
            ..Default::default()
        }
        .check()
        .unwrap()
    }

    fn object(key: &str, etag: &str) -> Object {
        Object {
            key: key.into(),
            etag: etag.into(),
            size: 1,
            last_modified: None,
        }
    }

    fn known(etag: &str, present: bool, touched: bool) -> Known {
        Known {
            etag: Some(etag.into()),
            present,
            touched,
        }
    }

    #[test]
    fn a_listing_becomes_inserts_updates_and_deletes() {
        let s = sync();
        let listed = vec![
            object("r/same.md", "a"),
            object("r/changed.md", "b2"),
            object("r/new.md", "c"),
            object("r/row-deleted-by-hand.md", "d"),
            object("r/touched.md", "e2"),
            object("r/unknown-row.md", "f"),
        ];
        let known: HashMap<String, Known> = [
            ("r/same.md", known("a", true, false)),
            ("r/changed.md", known("b1", true, false)),
            ("r/row-deleted-by-hand.md", known("d", true, false)),
            ("r/touched.md", known("e1", true, true)),
            ("r/gone.md", known("g", true, false)),
            ("r/gone-no-row.md", known("h", true, false)),
            ("r/deleted-by-event.md", known("i", false, true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let rows: HashSet<String> = [
            "r/same.md",
            "r/changed.md",
            "r/touched.md",
            "r/unknown-row.md",
            "r/gone.md",
            "r/gone-by-hand.md",
            "r/excluded.tmp",
        ]
        .iter()
        .map(|k| s.prefix.uri_of(k))
        .chain([
            "s3://docs/other/x.md".to_string(),
            "s3://docs/r/".to_string(),
        ])
        .collect();
        let p = plan(&s, listed, &known, &rows);
        let keys = |v: &[Object]| v.iter().map(|o| o.key.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&p.new),
            ["r/new.md", "r/row-deleted-by-hand.md", "r/unknown-row.md"]
        );
        assert_eq!(keys(&p.changed), ["r/changed.md"]);
        assert_eq!(
            p.gone,
            ["s3://docs/r/gone-by-hand.md", "s3://docs/r/gone.md"]
        );
        assert_eq!(p.forget, ["r/gone-no-row.md", "r/gone.md"]);
    }

    #[test]
    fn an_unchanged_bucket_plans_nothing() {
        let s = sync();
        let listed = vec![object("r/a.md", "1"), object("r/b.md", "2")];
        let known = listed
            .iter()
            .map(|o| (o.key.clone(), known(&o.etag, true, false)))
            .collect();
        let rows = listed.iter().map(|o| s.prefix.uri_of(&o.key)).collect();
        assert!(plan(&s, listed, &known, &rows).is_empty());
        assert_eq!(object("r/x/report 1.pdf", "e").basename(), "report 1.pdf");
    }
}
