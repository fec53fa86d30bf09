//! The SQL the worker runs against one vectorizer's queue, store and source. Key
//! values travel as text arrays and are cast back to the key's types, so one statement
//! handles a whole batch whatever the key.

use crate::ddl::{key_list, KeyColumn};
use crate::destination::Names;
use crate::ident::{qualified, quote_ident};

/// One vectorizer's objects, as the worker needs them.
#[derive(Debug, Clone)]
pub struct Queue {
    pub id: i32,
    pub source: (String, String),
    pub key: Vec<KeyColumn>,
    pub queue: (String, String),
    pub failed: (String, String),
    pub target: Names,
    pub loading_column: String,
    /// The loading column holds bytes (bytea), not text.
    pub loading_is_bytea: bool,
    /// The columns the template names.
    pub template_columns: Vec<String>,
    /// Documents are objects with ETags (loading_uri into a store table): the claim
    /// returns the ETag last embedded, and writes record the new one.
    pub etags: bool,
    /// The embedding's SQL type, to cast text like `[1,2,3]` (vector) or `{1,2,3}` (real[]).
    pub embedding_type: String,
}

impl Queue {
    fn queue_name(&self) -> String {
        qualified(&self.queue.0, &self.queue.1)
    }

    fn keys(&self, prefix: &str) -> String {
        key_list(&self.key, prefix)
    }

    /// `a.k = b.k::type AND …`, casting `b`'s text back to the key's types.
    fn key_match_text(&self, table: &str, text: &str) -> String {
        self.key
            .iter()
            .map(|k| {
                let c = quote_ident(&k.name);
                format!("{table}.{c} = {text}.{c}::{}", k.type_sql)
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// `unnest($1::text[], …) AS u("k1", …, extra…)`, key arrays first.
    fn unnest(&self, extra: &[(&str, &str)]) -> String {
        let n = self.key.len();
        let mut arrays: Vec<String> = (1..=n).map(|i| format!("${i}::text[]")).collect();
        let mut names: Vec<String> = self.key.iter().map(|k| quote_ident(&k.name)).collect();
        for (i, (name, ty)) in extra.iter().enumerate() {
            arrays.push(format!("${}::{ty}[]", n + i + 1));
            names.push(name.to_string());
        }
        format!("unnest({}) AS u({})", arrays.join(", "), names.join(", "))
    }

    fn key_casts(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{prefix}{}::{}", quote_ident(&k.name), k.type_sql))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Locks the source for reading before a claim touches the queue: the order in
    /// which the queue triggers (source, then queue) and `ai.drop_vectorizer` take the
    /// two, so that a claim and a drop cannot deadlock (held until the commit).
    pub fn lock_source(&self) -> String {
        format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE",
            qualified(&self.source.0, &self.source.1)
        )
    }

    /// Claims up to `$1` due rows pgai's way: rows locked with SKIP LOCKED, each key
    /// under a transaction advisory lock (`$2` is the vectorizer id), every queued row
    /// of a claimed key deleted (duplicates too); nothing while the vectorizer is
    /// disabled, checked in the claim's own snapshot. Returns per key: the key as text, the
    /// highest `loading_retries`, whether the source row still exists, the loading
    /// column and the template's columns as text.
    pub fn claim(&self) -> String {
        let keys = self.keys("");
        let match_claimed = self
            .key
            .iter()
            .map(|k| {
                let c = quote_ident(&k.name);
                format!("q.{c} = l.{c}")
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let key_text = self
            .key
            .iter()
            .map(|k| format!("c.{}::text", quote_ident(&k.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let source_match = self
            .key
            .iter()
            .map(|k| {
                let c = quote_ident(&k.name);
                format!("s.{c} = c.{c}")
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let loading = if self.loading_is_bytea {
            format!("s.{}", quote_ident(&self.loading_column))
        } else {
            format!("s.{}::text", quote_ident(&self.loading_column))
        };
        let mut columns = vec![loading];
        columns.extend(
            self.template_columns
                .iter()
                .map(|c| format!("s.{}::text", quote_ident(c))),
        );
        if let (true, Names::Table { store, .. }) = (self.etags, &self.target) {
            let stored_match = self
                .key
                .iter()
                .map(|k| {
                    let c = quote_ident(&k.name);
                    format!("t.{c} = c.{c}")
                })
                .collect::<Vec<_>>()
                .join(" AND ");
            columns.push(format!(
                "(SELECT t.source_etag FROM {} t WHERE {stored_match} LIMIT 1)",
                qualified(&store.0, &store.1)
            ));
        }
        format!(
            "WITH picked AS (
                 SELECT {keys} FROM {queue}
                  WHERE (loading_retry_after IS NULL OR loading_retry_after <= pg_catalog.now())
                    AND (SELECT NOT v.disabled FROM ai.vectorizer v WHERE v.id = $2)
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             locked AS (
                 SELECT DISTINCT {keys} FROM picked
                  WHERE pg_catalog.pg_try_advisory_xact_lock($2, pg_catalog.hashtext(ROW({keys})::text))),
             deleted AS (
                 DELETE FROM {queue} q USING locked l WHERE {match_claimed}
                 RETURNING {q_keys}, q.loading_retries),
             claimed AS (
                 SELECT {keys}, max(loading_retries) AS loading_retries FROM deleted GROUP BY {keys})
             SELECT {key_text}, c.loading_retries, s.ctid IS NOT NULL AS found, {columns}
               FROM claimed c LEFT JOIN {source} s ON ({source_match})",
            queue = self.queue_name(),
            q_keys = self.keys("q."),
            source = qualified(&self.source.0, &self.source.1),
            columns = columns.join(", "),
        )
    }

    /// Puts keys back with their retry count (`$n+1`) due after `$n+2` seconds.
    pub fn requeue(&self) -> String {
        format!(
            "INSERT INTO {} ({}, loading_retries, loading_retry_after)
             SELECT {}, u.retries, pg_catalog.now() + pg_catalog.make_interval(secs => u.delay)
               FROM {}",
            self.queue_name(),
            self.keys(""),
            self.key_casts("u."),
            self.unnest(&[("retries", "int4"), ("delay", "float8")])
        )
    }

    /// Moves keys to the failed queue with their failure step (`$n+1`).
    pub fn fail(&self) -> String {
        format!(
            "INSERT INTO {} ({}, failure_step) SELECT {}, u.step FROM {}",
            qualified(&self.failed.0, &self.failed.1),
            self.keys(""),
            self.key_casts("u."),
            self.unnest(&[("step", "text")])
        )
    }

    /// Removes the keys' embeddings from the store (a table destination).
    pub fn delete_chunks(&self) -> Option<String> {
        match &self.target {
            Names::Table { store, .. } => Some(format!(
                "DELETE FROM {} t USING {} WHERE {}",
                qualified(&store.0, &store.1),
                self.unnest(&[]),
                self.key_match_text("t", "u")
            )),
            Names::Column(_) => None,
        }
    }

    /// Writes chunks: key arrays, then `chunk_seq`, `chunk`, the embedding as text and
    /// the document's ETag; for a column destination, the embedding only.
    pub fn write_chunks(&self) -> String {
        match &self.target {
            Names::Table { store, .. } => format!(
                "INSERT INTO {} ({}, chunk_seq, chunk, embedding, source_etag)
                 SELECT {}, u.seq, u.chunk, u.embedding::{}, u.etag FROM {}",
                qualified(&store.0, &store.1),
                self.keys(""),
                self.key_casts("u."),
                self.embedding_type,
                self.unnest(&[
                    ("seq", "int4"),
                    ("chunk", "text"),
                    ("embedding", "text"),
                    ("etag", "text"),
                ])
            ),
            Names::Column(column) => format!(
                "UPDATE {} s SET {} = u.embedding::{} FROM {} WHERE {}",
                qualified(&self.source.0, &self.source.1),
                quote_ident(column),
                self.embedding_type,
                self.unnest(&[("embedding", "text")]),
                self.key_match_text("s", "u")
            ),
        }
    }

    /// An embedding as text its SQL type reads: `[…]` for vector, `{…}` for real[].
    pub fn embedding_text(&self, v: &[f32]) -> String {
        let body = v
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if self.embedding_type.ends_with("[]") {
            format!("{{{body}}}")
        } else {
            format!("[{body}]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(target: Names) -> Queue {
        Queue {
            id: 3,
            source: ("public".into(), "Doc".into()),
            key: vec![
                KeyColumn {
                    name: "t".into(),
                    type_sql: "text".into(),
                },
                KeyColumn {
                    name: "id".into(),
                    type_sql: "bigint".into(),
                },
            ],
            queue: ("ai".into(), "_vectorizer_q_3".into()),
            failed: ("ai".into(), "_vectorizer_q_failed_3".into()),
            target,
            loading_column: "body".into(),
            loading_is_bytea: true,
            template_columns: vec!["title".into()],
            etags: true,
            embedding_type: "real[]".into(),
        }
    }

    fn table() -> Names {
        Names::Table {
            store: ("public".into(), "Doc_embedding_store".into()),
            view: ("public".into(), "Doc_embedding".into()),
        }
    }

    #[test]
    fn claim_reads_the_source_row() {
        assert_eq!(
            queue(table()).lock_source(),
            "LOCK TABLE \"public\".\"Doc\" IN ACCESS SHARE MODE"
        );
        let sql = queue(table()).claim();
        assert!(sql.contains("LIMIT $1 FOR UPDATE SKIP LOCKED"));
        // A vectorizer disabled (or dropped) after the worker listed it claims nothing.
        assert!(sql.contains("AND (SELECT NOT v.disabled FROM ai.vectorizer v WHERE v.id = $2)"));
        assert!(sql.contains(
            "pg_try_advisory_xact_lock($2, pg_catalog.hashtext(ROW(\"t\", \"id\")::text))"
        ));
        assert!(sql.contains("SELECT c.\"t\"::text, c.\"id\"::text, c.loading_retries, s.ctid IS NOT NULL AS found, s.\"body\", s.\"title\"::text"));
        assert!(sql.contains(
            "LEFT JOIN \"public\".\"Doc\" s ON (s.\"t\" = c.\"t\" AND s.\"id\" = c.\"id\")"
        ));
    }

    #[test]
    fn writes_cast_keys_back() {
        let q = queue(table());
        assert_eq!(
            q.delete_chunks().unwrap(),
            "DELETE FROM \"public\".\"Doc_embedding_store\" t USING unnest($1::text[], $2::text[]) AS u(\"t\", \"id\") \
             WHERE t.\"t\" = u.\"t\"::text AND t.\"id\" = u.\"id\"::bigint"
        );
        assert!(q.write_chunks().contains(
            "SELECT u.\"t\"::text, u.\"id\"::bigint, u.seq, u.chunk, u.embedding::real[], u.etag FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::text[]) AS u(\"t\", \"id\", seq, chunk, embedding, etag)"
        ));
        assert!(q.claim().contains("(SELECT t.source_etag FROM \"public\".\"Doc_embedding_store\" t WHERE t.\"t\" = c.\"t\" AND t.\"id\" = c.\"id\" LIMIT 1)"));
        assert!(q
            .requeue()
            .contains("unnest($1::text[], $2::text[], $3::int4[], $4::float8[])"));
        assert_eq!(q.embedding_text(&[0.5, -1.0]), "{0.5,-1}");
        let column = queue(Names::Column("emb".into()));
        assert!(column.delete_chunks().is_none());
        assert!(column
            .write_chunks()
            .starts_with("UPDATE \"public\".\"Doc\" s SET \"emb\" = u.embedding::real[]"));
    }
}
