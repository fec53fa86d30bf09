//! The SQL the worker runs against one vectorizer's queue, store and source. Key
//! values travel as text arrays and are cast back to the key's types, so one statement
//! handles a whole batch whatever the key.

use crate::ddl::{key_list, key_match, KeyColumn};
use crate::destination::Names;
use crate::ident::{qualified, quote_ident, quote_literal};

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

/// How long a claim keeps its rows from other claims: longer than any batch takes.
/// The worker that starts in a database gives back the claims its predecessor left
/// (`release_left_claims`), so a crash delays nothing by this much.
pub const LEASE: &str = "1 hour";
/// A row due further ahead than this is claimed, not waiting for a retry: retries
/// wait at most `MAX_RETRY_DELAY` seconds.
const CLAIMED_BEYOND: &str = "10 minutes";
/// The longest wait before a failed row is tried again, in seconds.
const MAX_RETRY_DELAY: f64 = 300.0;

/// Seconds before the next attempt of a row that failed `retries + 1` times.
pub fn retry_delay(retries: i32) -> f64 {
    2f64.powi(retries.clamp(0, 8)).min(MAX_RETRY_DELAY)
}

/// The SQL alias of the `i`th key column in the claim's result.
pub fn key_alias(i: usize) -> String {
    format!("key_{i}")
}

/// The SQL alias of the `i`th template column in the claim's result.
pub fn column_alias(i: usize) -> String {
    format!("column_{i}")
}

impl Queue {
    fn queue_name(&self) -> String {
        qualified(&self.queue.0, &self.queue.1)
    }

    fn source_name(&self) -> String {
        qualified(&self.source.0, &self.source.1)
    }

    fn keys(&self, prefix: &str) -> String {
        key_list(&self.key, prefix)
    }

    /// `a.k = b.k AND …`; with `cast`, `b`'s values are text cast to the key's types.
    fn key_match(&self, left: &str, right: &str, cast: bool) -> String {
        key_match(&self.key, &format!("{left}."), &format!("{right}."), cast)
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

    /// The parameter after the key arrays: a claim's transaction id.
    fn claim_param(&self) -> String {
        format!("${}::xid", self.key.len() + 1)
    }

    fn key_casts(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{prefix}{}::{}", quote_ident(&k.name), k.type_sql))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Locks the source for reading before a claim or a write touches the queue: the
    /// order in which the queue triggers (source, then queue) and `ai.drop_vectorizer`
    /// take the two, so that neither can deadlock with them (held until the commit,
    /// which comes at once: no network call happens in these transactions).
    pub fn lock_source(&self) -> String {
        format!("LOCK TABLE {} IN ACCESS SHARE MODE", self.source_name())
    }

    /// Claims up to `$1` due rows: rows locked with SKIP LOCKED, each key under a
    /// transaction advisory lock (`$2` is the vectorizer id), then every queued row of a
    /// claimed key leased — due only after `LEASE` — in this transaction, whose id marks
    /// them as this claim's (their `xmin`). Nothing while the vectorizer is disabled,
    /// checked in the claim's own snapshot. Returns per key: the key as text
    /// (`key_alias`), the highest `loading_retries` (`retries`), whether the source row
    /// exists (`found`), the loading column (`document`), the template's columns as
    /// text (`column_alias`), the ETag last embedded (`etag`) and the claim (`claim`).
    pub fn claim(&self) -> String {
        let keys = self.keys("");
        let key_text = self
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("c.{}::text AS {}", quote_ident(&k.name), key_alias(i)))
            .collect::<Vec<_>>()
            .join(", ");
        let loading = match self.loading_is_bytea {
            true => format!("s.{} AS document", quote_ident(&self.loading_column)),
            false => format!("s.{}::text AS document", quote_ident(&self.loading_column)),
        };
        let mut columns = vec![loading];
        columns.extend(
            self.template_columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("s.{}::text AS {}", quote_ident(c), column_alias(i))),
        );
        if let (true, Names::Table { store, .. }) = (self.etags, &self.target) {
            columns.push(format!(
                "(SELECT t.source_etag FROM {} t WHERE {} LIMIT 1) AS etag",
                qualified(&store.0, &store.1),
                self.key_match("t", "c", false)
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
             leased AS (
                 UPDATE {queue} q SET loading_retry_after = pg_catalog.now() + interval '{LEASE}'
                   FROM locked l WHERE {match_claimed}
                 RETURNING {q_keys}, q.loading_retries),
             claimed AS (
                 SELECT {keys}, max(loading_retries) AS loading_retries FROM leased GROUP BY {keys})
             SELECT {key_text}, c.loading_retries AS retries, s.ctid IS NOT NULL AS found, {columns},
                    pg_catalog.pg_current_xact_id()::xid::text AS claim
               FROM claimed c LEFT JOIN {source} s ON ({source_match})",
            queue = self.queue_name(),
            match_claimed = self.key_match("q", "l", false),
            q_keys = self.keys("q."),
            source = self.source_name(),
            source_match = self.key_match("s", "c", false),
            columns = columns.join(", "),
        )
    }

    /// Before writing a claim's outcomes: per key (key arrays, then the claim), in
    /// order, whether the source row exists and is now locked against a delete or a
    /// key change (`locked`: a row another transaction holds is skipped, not waited
    /// for), exists at all (`present`), whether the claim still holds queued rows of
    /// the key (`ours`) and whether rows queued since (`newer`): a change the claim did
    /// not see. A column destination locks its rows for the update it will make.
    /// `forced`: the source forces row-level security on its owner, whose policies may
    /// not let it lock a row it can read (locking needs the UPDATE policy too).
    pub fn check(&self) -> String {
        let lock = match self.target {
            Names::Table { .. } => "KEY SHARE",
            Names::Column(_) => "NO KEY UPDATE",
        };
        let n = self.key.len();
        let arrays: Vec<String> = (1..=n).map(|i| format!("${i}::text[]")).collect();
        format!(
            "WITH u AS (
                 SELECT * FROM unnest({arrays}) WITH ORDINALITY AS u({names}, n)),
             live AS (
                 SELECT {s_keys} FROM {source} s
                  WHERE ({s_keys}) IN (SELECT {u_casts} FROM u)
                  FOR {lock} OF s SKIP LOCKED)
             SELECT EXISTS (SELECT FROM live l WHERE {live}) AS locked,
                    EXISTS (SELECT FROM {source} s WHERE {present}) AS present,
                    EXISTS (SELECT FROM {queue} q WHERE {queued} AND q.xmin = {claim}) AS ours,
                    EXISTS (SELECT FROM {queue} q WHERE {queued} AND q.xmin <> {claim}) AS newer,
                    (SELECT c.relrowsecurity AND c.relforcerowsecurity FROM pg_catalog.pg_class c
                      WHERE c.oid = {source_literal}::pg_catalog.regclass) AS forced
               FROM u ORDER BY u.n",
            arrays = arrays.join(", "),
            names = self.keys(""),
            s_keys = self.keys("s."),
            source = self.source_name(),
            u_casts = self.key_casts("u."),
            live = self.key_match("l", "u", true),
            present = self.key_match("s", "u", true),
            queue = self.queue_name(),
            queued = self.key_match("q", "u", true),
            claim = self.claim_param(),
            source_literal = quote_literal(&self.source_name()),
        )
    }

    /// `unnest(…) AS u(…) WHERE <q is u's key> AND <q is the claim's>`: the claim's
    /// queued rows of the keys (key arrays, then the claim).
    fn claimed_rows(&self) -> String {
        format!(
            "{} WHERE {} AND q.xmin = {}",
            self.unnest(&[]),
            self.key_match("q", "u", true),
            self.claim_param()
        )
    }

    /// Deletes the claim's rows of the keys.
    pub fn delete_claimed(&self) -> String {
        format!(
            "DELETE FROM {} q USING {}",
            self.queue_name(),
            self.claimed_rows()
        )
    }

    /// Gives the claim's rows of the keys back: due now.
    pub fn release(&self) -> String {
        format!(
            "UPDATE {} q SET loading_retry_after = NULL FROM {}",
            self.queue_name(),
            self.claimed_rows()
        )
    }

    /// Gives back every claim a worker of this database left when it ended (one worker
    /// serves a database: any claim is its predecessor's).
    pub fn release_left_claims(&self) -> String {
        format!(
            "UPDATE {} SET loading_retry_after = NULL \
             WHERE loading_retry_after > pg_catalog.now() + interval '{CLAIMED_BEYOND}'",
            self.queue_name()
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
                self.key_match("t", "u", true)
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
                self.source_name(),
                quote_ident(column),
                self.embedding_type,
                self.unnest(&[("embedding", "text")]),
                self.key_match("s", "u", true)
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
    fn claim_leases_and_reads_the_source_row() {
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
        assert!(sql.contains("UPDATE \"ai\".\"_vectorizer_q_3\" q SET loading_retry_after = pg_catalog.now() + interval '1 hour'\n                   FROM locked l WHERE q.\"t\" = l.\"t\" AND q.\"id\" = l.\"id\""));
        assert!(sql.contains("SELECT c.\"t\"::text AS key_0, c.\"id\"::text AS key_1, c.loading_retries AS retries, s.ctid IS NOT NULL AS found, s.\"body\" AS document, s.\"title\"::text AS column_0"));
        assert!(sql.contains("pg_catalog.pg_current_xact_id()::xid::text AS claim"));
        assert!(sql.contains(
            "LEFT JOIN \"public\".\"Doc\" s ON (s.\"t\" = c.\"t\" AND s.\"id\" = c.\"id\")"
        ));
    }

    #[test]
    fn a_write_checks_its_claim_first() {
        let sql = queue(table()).check();
        assert!(
            sql.contains("unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(\"t\", \"id\", n)")
        );
        assert!(sql.contains("WHERE (s.\"t\", s.\"id\") IN (SELECT u.\"t\"::text, u.\"id\"::bigint FROM u)\n                  FOR KEY SHARE OF s SKIP LOCKED"));
        assert!(sql.contains(
            "q.\"t\" = u.\"t\"::text AND q.\"id\" = u.\"id\"::bigint AND q.xmin = $3::xid) AS ours"
        ));
        assert!(sql.contains("AND q.xmin <> $3::xid) AS newer"));
        assert!(sql.contains("WHERE c.oid = '\"public\".\"Doc\"'::pg_catalog.regclass) AS forced"));
        assert!(queue(Names::Column("emb".into()))
            .check()
            .contains("FOR NO KEY UPDATE OF s SKIP LOCKED"));
        assert!(queue(table())
            .delete_claimed()
            .ends_with("AND q.xmin = $3::xid"));
        assert!(queue(table()).release().starts_with("UPDATE \"ai\".\"_vectorizer_q_3\" q SET loading_retry_after = NULL FROM unnest($1::text[], $2::text[])"));
        assert_eq!(
            queue(table()).release_left_claims(),
            "UPDATE \"ai\".\"_vectorizer_q_3\" SET loading_retry_after = NULL \
             WHERE loading_retry_after > pg_catalog.now() + interval '10 minutes'"
        );
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
        assert!(q.claim().contains("(SELECT t.source_etag FROM \"public\".\"Doc_embedding_store\" t WHERE t.\"t\" = c.\"t\" AND t.\"id\" = c.\"id\" LIMIT 1) AS etag"));
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
