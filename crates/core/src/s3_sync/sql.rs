//! The statements a sync writes its destination with, run with its owner's rights, and
//! those that keep what it knows of each object in `ai._s3_sync_object`.

use super::Sync;
use crate::ident::{qualified, quote_ident};

/// The arrays the upsert takes, one element per object, in this order:
/// `$1` uri, `$2` key, `$3` basename, `$4` size, `$5` etag, `$6` last_modified.
pub const OBJECT_ARRAYS: &str =
    "ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[]), \
     pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.int8[]), \
     pg_catalog.unnest($5::pg_catalog.text[]), pg_catalog.unnest($6::pg_catalog.timestamptz[])) \
     AS o(uri, key, basename, size, etag, last_modified)";

/// `a IS DISTINCT FROM b` with pg_catalog's `=` (the construct itself looks `=` up
/// through the search path).
fn distinct(a: &str, b: &str) -> String {
    format!(
        "(({a} OPERATOR(pg_catalog.=) {b}) IS NOT TRUE AND ({a} IS NOT NULL OR {b} IS NOT NULL))"
    )
}

/// Statements on one destination table.
pub struct Destination<'a> {
    pub table: String,
    sync: &'a Sync,
}

impl<'a> Destination<'a> {
    pub fn new(sync: &'a Sync, schema: &str, table: &str) -> Self {
        Destination {
            table: qualified(schema, table),
            sync,
        }
    }

    fn column(&self) -> String {
        quote_ident(&self.sync.column)
    }

    /// The URIs of the rows under the prefix: `$1` the prefix's URI.
    pub fn rows(&self) -> String {
        format!(
            "SELECT d.{c}::pg_catalog.text AS uri FROM {t} d
              WHERE pg_catalog.starts_with(d.{c}::pg_catalog.text, $1)",
            c = self.column(),
            t = self.table
        )
    }

    /// Inserts a row for each object, or, for a row already there, refreshes the mapped
    /// columns: always when `changed` (the object's ETag changed: the update is what
    /// makes a `loading_uri` vectorizer embed it again), else only when a mapped value
    /// differs. Returns one row: `inserted`, `updated`.
    pub fn upsert(&self, changed: bool) -> String {
        let c = self.column();
        let mapped: Vec<String> = self
            .sync
            .columns
            .iter()
            .map(|(n, _)| quote_ident(n))
            .collect();
        let values: Vec<String> = self
            .sync
            .columns
            .iter()
            .map(|(_, a)| format!("o.{}", a.name()))
            .collect();
        let mut set = vec![format!("{c} = EXCLUDED.{c}")];
        set.extend(mapped.iter().map(|m| format!("{m} = EXCLUDED.{m}")));
        let on_conflict = match (changed, mapped.is_empty()) {
            (true, _) => format!("DO UPDATE SET {}", set.join(", ")),
            (false, true) => "DO NOTHING".to_string(),
            (false, false) => format!(
                "DO UPDATE SET {} WHERE {}",
                set.join(", "),
                mapped
                    .iter()
                    .map(|m| distinct(&format!("d.{m}"), &format!("EXCLUDED.{m}")))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
        };
        let columns: Vec<String> = std::iter::once(c.clone()).chain(mapped).collect();
        let selected: Vec<String> = std::iter::once("o.uri".to_string()).chain(values).collect();
        format!(
            "WITH w AS (INSERT INTO {t} AS d ({cols}) SELECT {sel} FROM {OBJECT_ARRAYS}
                 ON CONFLICT ({c}) {on_conflict}
                 RETURNING d.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid AS inserted)
             SELECT pg_catalog.count(*) FILTER (WHERE inserted) AS inserted,
                    pg_catalog.count(*) FILTER (WHERE NOT inserted) AS updated FROM w",
            t = self.table,
            cols = columns.join(", "),
            sel = selected.join(", "),
        )
    }

    /// Deletes the rows of `$1`, an array of URIs; returns one row: `deleted`.
    pub fn delete(&self) -> String {
        format!(
            "WITH w AS (DELETE FROM {t} d WHERE d.{c} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) RETURNING 1)
             SELECT pg_catalog.count(*) AS deleted FROM w",
            t = self.table,
            c = self.column()
        )
    }
}

/// The queues of the destination's `loading_uri` vectorizers that load the sync's
/// column (`$1` schema, `$2` table, `$3` column): `queue_schema`, `queue_table`, and
/// `key`, the source's key columns in order.
pub const URI_QUEUES: &str = "SELECT v.queue_schema::pg_catalog.text AS queue_schema,
        v.queue_table::pg_catalog.text AS queue_table,
        (SELECT pg_catalog.array_agg(k.c OPERATOR(pg_catalog.->>) 'attname' ORDER BY k.n)
           FROM pg_catalog.jsonb_array_elements(v.source_pk) WITH ORDINALITY AS k(c, n)) AS key
   FROM ai.vectorizer v
  WHERE v.source_schema OPERATOR(pg_catalog.=) $1::pg_catalog.name
    AND v.source_table OPERATOR(pg_catalog.=) $2::pg_catalog.name
    AND v.config OPERATOR(pg_catalog.#>>) '{loading,implementation}' OPERATOR(pg_catalog.=) 'uri'
    AND v.config OPERATOR(pg_catalog.#>>) '{loading,column_name}' OPERATOR(pg_catalog.=) $3::pg_catalog.text";

impl Destination<'_> {
    /// Queues the rows of `$1`, an array of URIs, in a vectorizer's queue (`queue`,
    /// with the source's `key` columns): their objects changed, whether or not the
    /// row did (an update writing the same values queues nothing by itself).
    pub fn requeue(&self, queue: &(String, String), key: &[String]) -> String {
        let keys: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
        let selected: Vec<String> = keys.iter().map(|k| format!("d.{k}")).collect();
        format!(
            "INSERT INTO {q} ({keys}) SELECT {selected} FROM {t} d
              WHERE d.{c}::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])",
            q = qualified(&queue.0, &queue.1),
            keys = keys.join(", "),
            selected = selected.join(", "),
            t = self.table,
            c = self.column(),
        )
    }
}

/// What the sync knows of each key (`$1` the sync, `$2` when the listing began, as a
/// Unix time): whether an event touched it since.
pub const KNOWN: &str = "SELECT o.key, o.etag, o.present,
        coalesce(o.event_applied_at OPERATOR(pg_catalog.>=) pg_catalog.to_timestamp($2), false) AS touched
   FROM ai._s3_sync_object o WHERE o.sync_id OPERATOR(pg_catalog.=) $1";

/// Remembers objects as listed (the object arrays, then `$7` the sync): their ETag, size
/// and last modification.
pub fn remember() -> String {
    format!(
        "INSERT INTO ai._s3_sync_object AS s (sync_id, key, etag, size, last_modified, present)
         SELECT $7, o.key, o.etag, o.size, o.last_modified, true FROM {OBJECT_ARRAYS}
         ON CONFLICT (sync_id, key) DO UPDATE
            SET etag = EXCLUDED.etag, size = EXCLUDED.size, last_modified = EXCLUDED.last_modified,
                present = true"
    )
}

/// Forgets keys (`$2`) the sync no longer has, and tombstones of deleted objects older
/// than a day, which no late event can still need.
pub const FORGET: &str = "DELETE FROM ai._s3_sync_object o
  WHERE o.sync_id OPERATOR(pg_catalog.=) $1
    AND (o.key OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])
         OR (NOT o.present AND o.event_applied_at
                 OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval)))";

/// The syncs that are not paused, with their owner, destination and home.
pub const ENABLED: &str = "SELECT s.id, s.name, s.column_name::pg_catalog.text AS column_name, s.uri_prefix, s.aws_role_arn,
        s.sqs_queue_url, s.include, s.exclude, s.columns,
        extract(epoch FROM s.reconcile_interval)::pg_catalog.float8 AS interval_seconds,
        extract(epoch FROM s.reconcile_requested_at)::pg_catalog.float8 AS requested,
        coalesce(r.rolname::pg_catalog.text,
                 pg_catalog.concat('role with OID ', s.owner::pg_catalog.oid)) AS owner,
        r.oid AS owner_oid, ai._may_load_uris(s.owner) AS may_load,
        n.nspname::pg_catalog.text AS dest_schema, c.relname::pg_catalog.text AS dest_table,
        c.relowner AS dest_owner, s.home,
        pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.-) 'reconcile_requested_at'::pg_catalog.text
            OPERATOR(pg_catalog.-) 'paused'::pg_catalog.text AS config
   FROM ai.s3_sync s
   LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.owner
   LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.destination
   LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE NOT s.paused
  ORDER BY s.id";

/// Pauses sync `$1` found away from its home `$2` (a copy of its database); true if it did.
pub const PAUSE_COPY: &str = "UPDATE ai.s3_sync SET paused = true
  WHERE id OPERATOR(pg_catalog.=) $1 AND home OPERATOR(pg_catalog.=) $2 RETURNING true";

/// What sync `$1` knows of key `$2`, locked until the event is applied.
pub const SEEN: &str =
    "SELECT o.sequencer, extract(epoch FROM o.event_time)::pg_catalog.float8 AS event_time,
        extract(epoch FROM o.last_modified)::pg_catalog.float8 AS last_modified,
        o.etag, o.present
   FROM ai._s3_sync_object o
  WHERE o.sync_id OPERATOR(pg_catalog.=) $1 AND o.key OPERATOR(pg_catalog.=) $2 FOR UPDATE";

/// Records the event applied to sync `$1`'s key `$2`: whether the object is `$3`
/// present, its `$4` sequencer and `$5` time (a Unix time).
pub const EVENT_APPLIED: &str = "INSERT INTO ai._s3_sync_object AS o (sync_id, key, present, sequencer, event_time, event_applied_at)
  VALUES ($1, $2, $3, $4, pg_catalog.to_timestamp($5), pg_catalog.now())
  ON CONFLICT (sync_id, key) DO UPDATE
     SET present = EXCLUDED.present, sequencer = EXCLUDED.sequencer,
         event_time = EXCLUDED.event_time, event_applied_at = EXCLUDED.event_applied_at";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3_sync::Definition;
    use serde_json::json;
    use std::time::Duration;

    fn sync(columns: Option<serde_json::Value>) -> Sync {
        Definition {
            uri_prefix: "s3://docs/".into(),
            column_name: "uri".into(),
            columns,
            reconcile_interval: Duration::from_secs(60),
            ..Default::default()
        }
        .check()
        .unwrap()
    }

    #[test]
    fn every_operator_is_pg_catalogs() {
        let s = sync(None);
        let d = Destination::new(&s, "public", "Doc");
        for sql in [
            ENABLED,
            PAUSE_COPY,
            SEEN,
            EVENT_APPLIED,
            KNOWN,
            FORGET,
            URI_QUEUES,
            &remember(),
            &d.upsert(true),
            &d.delete(),
            &d.rows(),
        ] {
            crate::ident::assert_qualified(sql);
        }
    }

    #[test]
    fn upserts() {
        let s = sync(Some(
            json!({"title": "basename", "updated_at": "last_modified"}),
        ));
        let d = Destination::new(&s, "public", "Doc");
        let first = d.upsert(false);
        assert!(first.contains("INSERT INTO \"public\".\"Doc\" AS d (\"uri\", \"title\", \"updated_at\") SELECT o.uri, o.basename, o.last_modified"), "{first}");
        assert!(
            first.contains(
                "WHERE ((d.\"title\" OPERATOR(pg_catalog.=) EXCLUDED.\"title\") IS NOT TRUE \
            AND (d.\"title\" IS NOT NULL OR EXCLUDED.\"title\" IS NOT NULL)) OR ((d.\"updated_at\""
            ),
            "{first}"
        );
        let changed = d.upsert(true);
        assert!(changed.contains("DO UPDATE SET \"uri\" = EXCLUDED.\"uri\", \"title\" = EXCLUDED.\"title\", \"updated_at\" = EXCLUDED.\"updated_at\"\n"), "{changed}");
        let bare = sync(None);
        let d = Destination::new(&bare, "public", "doc");
        assert!(d.upsert(false).contains("ON CONFLICT (\"uri\") DO NOTHING"));
        assert!(d
            .upsert(true)
            .contains("DO UPDATE SET \"uri\" = EXCLUDED.\"uri\"\n"));
        assert!(d
            .rows()
            .contains("starts_with(d.\"uri\"::pg_catalog.text, $1)"));
        assert_eq!(
            d.requeue(&("ai".into(), "_vectorizer_q_2".into()), &["Id".into()]),
            "INSERT INTO \"ai\".\"_vectorizer_q_2\" (\"Id\") SELECT d.\"Id\" FROM \"public\".\"doc\" d
              WHERE d.\"uri\"::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])"
        );
    }
}
