//! The SQL the worker runs against one vectorizer's queue, store and source. Key
//! values travel as text arrays and are cast back to the key's types, so one statement
//! handles a whole batch whatever the key.

use crate::ddl::{key_list, key_match, KeyColumn};
use crate::destination::Names;
use crate::ident::{qualified, quote_ident, quote_literal};

/// The SQL the worker runs for one vectorizer, and the names and types it is built from.
#[derive(Debug, Clone)]
pub struct VectorizerSql {
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
    /// The embedding column's SQL type (`vector(768)`, `real[]`): written embeddings
    /// are cast from `real[]` to it.
    pub embedding_type: String,
    /// The store has `chunk_page` (stores made before it was added do not).
    pub pages: bool,
}

/// How long a claim keeps its rows from other claims: longer than any batch takes.
/// A worker that starts in a database, and its first worker after another one ended,
/// give back the claims no live worker holds (`release_left_claims`), so a crash
/// delays nothing by this much.
pub const LEASE: &str = "1 hour";

/// A claim is held, from its transaction until its batch is written or given back,
/// by a session-level advisory lock of the worker that made it: this tag plus the
/// claim's transaction id (the `xmin` of its leased queue rows). The lock goes with
/// the worker, whatever way it ends; a claim whose lock is free was left behind. (The
/// one-`bigint` advisory lock space: apart from the per-key locks of the claim,
/// which use the two-`int4` space.)
const CLAIM_LOCK_TAG: i64 = 0x6169_4c64 << 32;

/// Takes the claim lock of the transaction in progress (run in the claim's), without
/// waiting: `held` is false when another session holds that lock already (any role
/// may take advisory locks), and the claim is then given up.
pub fn hold_claim() -> String {
    format!(
        "SELECT pg_catalog.pg_try_advisory_lock({CLAIM_LOCK_TAG}::pg_catalog.int8 OPERATOR(pg_catalog.+) pg_catalog.pg_current_xact_id()::pg_catalog.xid::pg_catalog.text::pg_catalog.int8) AS held"
    )
}

/// Lets go of every claim lock this worker holds (it holds no other session-level
/// advisory lock): once its batches are written or given back.
pub const LET_GO_OF_CLAIMS: &str = "SELECT pg_catalog.pg_advisory_unlock_all()";
/// A row due further ahead than this is claimed, not waiting for a retry: retries
/// wait at most `backoff::ROW.longest`.
const CLAIMED_BEYOND: &str = "10 minutes";
/// Seconds before the next attempt of a row that failed `retries + 1` times (see
/// `backoff::ROW`).
pub fn retry_delay(retries: i32) -> f64 {
    crate::backoff::ROW
        .after(retries.max(0) as u32 + 1)
        .as_secs_f64()
}

/// The SQL alias of the `i`th key column in the claim's result.
pub fn key_alias(i: usize) -> String {
    format!("key_{i}")
}

/// The SQL alias of the `i`th template column in the claim's result.
pub fn column_alias(i: usize) -> String {
    format!("column_{i}")
}

/// The rows of `arrays` side by side: `pg_catalog.unnest` of one, or the multi-argument
/// `unnest(a, b, …)`, which exists only unqualified: the parser itself turns it into
/// `ROWS FROM (pg_catalog.unnest(a), pg_catalog.unnest(b), …)`.
fn unnest(arrays: &[String]) -> String {
    match arrays {
        [one] => format!("pg_catalog.unnest({one})"),
        _ => format!("unnest({})", arrays.join(", ")),
    }
}

impl VectorizerSql {
    fn queue_name(&self) -> String {
        qualified(&self.queue.0, &self.queue.1)
    }

    fn source_name(&self) -> String {
        qualified(&self.source.0, &self.source.1)
    }

    fn keys(&self, prefix: &str) -> String {
        key_list(&self.key, prefix)
    }

    /// `a.k = b.k AND …` (pg_catalog's `=`); with `cast`, `b`'s values are text cast to the key's types.
    fn key_match(&self, left: &str, right: &str, cast: bool) -> String {
        key_match(&self.key, &format!("{left}."), &format!("{right}."), cast)
    }

    /// `unnest($1::text[], …) AS u("k1", …, extra…)`, key arrays first.
    fn unnest(&self, extra: &[(&str, &str)]) -> String {
        self.unnest_with(extra, false)
    }

    /// The same `WITH ORDINALITY`: each row's number is `u.n`.
    fn unnest_numbered(&self, extra: &[(&str, &str)]) -> String {
        self.unnest_with(extra, true)
    }

    fn unnest_with(&self, extra: &[(&str, &str)], numbered: bool) -> String {
        let n = self.key.len();
        let mut arrays: Vec<String> = (1..=n)
            .map(|i| format!("${i}::pg_catalog.text[]"))
            .collect();
        let mut names: Vec<String> = self.key.iter().map(|k| quote_ident(&k.name)).collect();
        for (i, (name, ty)) in extra.iter().enumerate() {
            arrays.push(format!("${}::pg_catalog.{ty}[]", n + i + 1));
            names.push(name.to_string());
        }
        let ordinality = match numbered {
            true => {
                names.push("n".into());
                " WITH ORDINALITY"
            }
            false => "",
        };
        format!("{}{ordinality} AS u({})", unnest(&arrays), names.join(", "))
    }

    /// The parameter after the key arrays: a claim's transaction id.
    fn claim_param(&self) -> String {
        format!("${}::pg_catalog.xid", self.key.len() + 1)
    }

    fn key_casts(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{prefix}{}::{}", quote_ident(&k.name), k.type_sql))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One row, `queued`: whether the queue holds any row, due or not.
    pub fn any_queued(&self) -> String {
        format!(
            "SELECT EXISTS (SELECT FROM {}) AS queued",
            self.queue_name()
        )
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
    /// them as this claim's (their `xmin`). (The worker checks that the vectorizer is
    /// still enabled, in the claim's transaction, before it.) Returns per key: the key as text
    /// (`key_alias`), the highest `loading_retries` (`retries`), whether the source row
    /// exists (`found`), the loading column (`document`), the template's columns as
    /// text (`column_alias`), the ETag last embedded (`etag`) and the claim (`claim`).
    pub fn claim(&self) -> String {
        let keys = self.keys("");
        let key_text = self
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| {
                format!(
                    "c.{}::pg_catalog.text AS {}",
                    quote_ident(&k.name),
                    key_alias(i)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let loading = match self.loading_is_bytea {
            true => format!("s.{} AS document", quote_ident(&self.loading_column)),
            false => format!(
                "s.{}::pg_catalog.text AS document",
                quote_ident(&self.loading_column)
            ),
        };
        let mut columns = vec![loading];
        columns.extend(self.template_columns.iter().enumerate().map(|(i, c)| {
            format!(
                "s.{}::pg_catalog.text AS {}",
                quote_ident(c),
                column_alias(i)
            )
        }));
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
                  WHERE (loading_retry_after IS NULL OR loading_retry_after OPERATOR(pg_catalog.<=) pg_catalog.now())
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             locked AS (
                 SELECT DISTINCT {keys} FROM picked
                  WHERE pg_catalog.pg_try_advisory_xact_lock($2, pg_catalog.hashtext(ROW({keys})::pg_catalog.text))),
             leased AS (
                 UPDATE {queue} q
                    SET loading_retry_after = pg_catalog.now() OPERATOR(pg_catalog.+) '{LEASE}'::pg_catalog.interval
                   FROM locked l WHERE {match_claimed}
                 RETURNING {q_keys}, q.loading_retries),
             claimed AS (
                 SELECT {keys}, pg_catalog.max(loading_retries) AS loading_retries FROM leased GROUP BY {keys})
             SELECT {key_text}, c.loading_retries AS retries, s.ctid IS NOT NULL AS found, {columns},
                    pg_catalog.pg_current_xact_id()::pg_catalog.xid::pg_catalog.text AS claim
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
        let arrays: Vec<String> = (1..=n)
            .map(|i| format!("${i}::pg_catalog.text[]"))
            .collect();
        format!(
            "WITH u AS (
                 SELECT * FROM {arrays} WITH ORDINALITY AS u({names}, n)),
             live AS (
                 SELECT {s_keys} FROM {source} s
                  WHERE EXISTS (SELECT FROM u WHERE {present})
                  FOR {lock} OF s SKIP LOCKED)
             SELECT EXISTS (SELECT FROM live l WHERE {live}) AS locked,
                    EXISTS (SELECT FROM {source} s WHERE {present}) AS present,
                    EXISTS (SELECT FROM {queue} q WHERE {queued} AND q.xmin OPERATOR(pg_catalog.=) {claim}) AS ours,
                    EXISTS (SELECT FROM {queue} q WHERE {queued} AND q.xmin OPERATOR(pg_catalog.<>) {claim}) AS newer,
                    (SELECT c.relrowsecurity AND c.relforcerowsecurity FROM pg_catalog.pg_class c
                      WHERE c.oid OPERATOR(pg_catalog.=) {source_literal}::pg_catalog.regclass) AS forced
               FROM u ORDER BY u.n",
            arrays = unnest(&arrays),
            names = self.keys(""),
            s_keys = self.keys("s."),
            source = self.source_name(),
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
            "{} WHERE {} AND q.xmin OPERATOR(pg_catalog.=) {}",
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

    /// Gives back, due at once, the leased rows of claims no live worker holds (their
    /// claim lock is free): claims left by a worker that ended without giving them
    /// back. Run by a worker that holds no claim itself (its own would look free to
    /// it). Only the distinct claims of leased rows are tried, never every row's.
    pub fn release_left_claims(&self) -> String {
        format!(
            "WITH leased AS MATERIALIZED (
                 SELECT DISTINCT xmin::pg_catalog.text::pg_catalog.int8 AS claim FROM {queue}
                  WHERE loading_retry_after OPERATOR(pg_catalog.>) {beyond}),
             left_behind AS MATERIALIZED (
                 SELECT claim FROM leased
                  WHERE pg_catalog.pg_try_advisory_xact_lock({CLAIM_LOCK_TAG}::pg_catalog.int8 OPERATOR(pg_catalog.+) claim))
             UPDATE {queue} q SET loading_retry_after = NULL FROM left_behind l
              WHERE q.xmin::pg_catalog.text::pg_catalog.int8 OPERATOR(pg_catalog.=) l.claim
                AND q.loading_retry_after OPERATOR(pg_catalog.>) {beyond}",
            beyond = format!("(pg_catalog.now() OPERATOR(pg_catalog.+) '{CLAIMED_BEYOND}'::pg_catalog.interval)"),
            queue = self.queue_name()
        )
    }

    /// Puts keys back with their retry count (`$n+1`) due after `$n+2` seconds.
    pub fn requeue(&self) -> String {
        format!(
            "INSERT INTO {} ({}, loading_retries, loading_retry_after)
             SELECT {}, u.retries, pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => u.delay)
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

    /// Writes chunks: key arrays, then `chunk_seq`, `chunk`, the document's ETag and the
    /// chunk's page, then every embedding of the batch end to end in one `real[]` and
    /// their dimensions; for a column destination, key arrays, the embeddings and their
    /// dimensions. The `n`th row's embedding is the `n`th slice of the array, cast to
    /// the column's type in the server: no vector goes through decimal text.
    pub fn write_chunks(&self) -> String {
        let (page_column, page) = match self.pages {
            true => (", chunk_page", ", u.page"),
            false => ("", ""),
        };
        match &self.target {
            Names::Table { store, .. } => format!(
                "INSERT INTO {} ({}, chunk_seq, chunk, embedding, source_etag{page_column})
                 SELECT {}, u.seq, u.chunk, {}, u.etag{page} FROM {}",
                qualified(&store.0, &store.1),
                self.keys(""),
                self.key_casts("u."),
                self.embedding_slice(4),
                self.unnest_numbered(&[
                    ("seq", "int4"),
                    ("chunk", "text"),
                    ("etag", "text"),
                    ("page", "int4"),
                ])
            ),
            Names::Column(column) => format!(
                "UPDATE {} s SET {} = {} FROM {} WHERE {}",
                self.source_name(),
                quote_ident(column),
                self.embedding_slice(0),
                self.unnest_numbered(&[]),
                self.key_match("s", "u", true)
            ),
        }
    }

    /// Row `u.n`'s embedding: its slice of the `real[]` parameter after the key arrays
    /// and `extra` arrays (the dimensions are the parameter after it), cast to the
    /// embedding column's type.
    fn embedding_slice(&self, extra: usize) -> String {
        let array = self.key.len() + extra + 1;
        let dims = array + 1;
        format!(
            "(${array}::pg_catalog.float4[])[
                 (u.n::pg_catalog.int4 OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.*) ${dims}::pg_catalog.int4 OPERATOR(pg_catalog.+) 1
                 : u.n::pg_catalog.int4 OPERATOR(pg_catalog.*) ${dims}::pg_catalog.int4]::{}",
            self.embedding_type
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(target: Names) -> VectorizerSql {
        VectorizerSql {
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
            pages: true,
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
            queue(table()).any_queued(),
            "SELECT EXISTS (SELECT FROM \"ai\".\"_vectorizer_q_3\") AS queued"
        );
        assert_eq!(
            queue(table()).lock_source(),
            "LOCK TABLE \"public\".\"Doc\" IN ACCESS SHARE MODE"
        );
        let sql = queue(table()).claim();
        assert!(sql.contains("LIMIT $1 FOR UPDATE SKIP LOCKED"));
        // The claim runs as the owner, who need not read the catalog.
        assert!(!sql.contains("ai.vectorizer"));
        assert!(sql.contains(
            "pg_try_advisory_xact_lock($2, pg_catalog.hashtext(ROW(\"t\", \"id\")::pg_catalog.text))"
        ));
        assert!(sql.contains("SET loading_retry_after = pg_catalog.now() OPERATOR(pg_catalog.+) '1 hour'::pg_catalog.interval\n                   FROM locked l WHERE q.\"t\" OPERATOR(pg_catalog.=) l.\"t\" AND q.\"id\" OPERATOR(pg_catalog.=) l.\"id\""));
        assert!(sql.contains("SELECT c.\"t\"::pg_catalog.text AS key_0, c.\"id\"::pg_catalog.text AS key_1, c.loading_retries AS retries, s.ctid IS NOT NULL AS found, s.\"body\" AS document, s.\"title\"::pg_catalog.text AS column_0"));
        assert!(sql
            .contains("pg_catalog.pg_current_xact_id()::pg_catalog.xid::pg_catalog.text AS claim"));
        assert!(sql.contains(
            "LEFT JOIN \"public\".\"Doc\" s ON (s.\"t\" OPERATOR(pg_catalog.=) c.\"t\" AND s.\"id\" OPERATOR(pg_catalog.=) c.\"id\")"
        ));
    }

    #[test]
    fn a_write_checks_its_claim_first() {
        let sql = queue(table()).check();
        assert!(
            sql.contains("unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) WITH ORDINALITY AS u(\"t\", \"id\", n)")
        );
        assert!(sql.contains("WHERE EXISTS (SELECT FROM u WHERE s.\"t\" OPERATOR(pg_catalog.=) u.\"t\"::text AND s.\"id\" OPERATOR(pg_catalog.=) u.\"id\"::bigint)\n                  FOR KEY SHARE OF s SKIP LOCKED"));
        assert!(sql.contains(
            "q.\"t\" OPERATOR(pg_catalog.=) u.\"t\"::text AND q.\"id\" OPERATOR(pg_catalog.=) u.\"id\"::bigint AND q.xmin OPERATOR(pg_catalog.=) $3::pg_catalog.xid) AS ours"
        ));
        assert!(sql.contains("AND q.xmin OPERATOR(pg_catalog.<>) $3::pg_catalog.xid) AS newer"));
        assert!(sql.contains("WHERE c.oid OPERATOR(pg_catalog.=) '\"public\".\"Doc\"'::pg_catalog.regclass) AS forced"));
        assert!(queue(Names::Column("emb".into()))
            .check()
            .contains("FOR NO KEY UPDATE OF s SKIP LOCKED"));
        assert!(queue(table())
            .delete_claimed()
            .ends_with("AND q.xmin OPERATOR(pg_catalog.=) $3::pg_catalog.xid"));
        assert!(queue(table()).release().starts_with("UPDATE \"ai\".\"_vectorizer_q_3\" q SET loading_retry_after = NULL FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[])"));
        let left = queue(table()).release_left_claims();
        assert!(left.contains("SELECT DISTINCT xmin::pg_catalog.text::pg_catalog.int8 AS claim FROM \"ai\".\"_vectorizer_q_3\"\n                  WHERE loading_retry_after OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.+) '10 minutes'::pg_catalog.interval)"));
        assert!(left.contains(
            "WHERE pg_catalog.pg_try_advisory_xact_lock(7019225486614069248::pg_catalog.int8 OPERATOR(pg_catalog.+) claim)"
        ));
        assert!(hold_claim().contains(
            "pg_try_advisory_lock(7019225486614069248::pg_catalog.int8 OPERATOR(pg_catalog.+) pg_catalog.pg_current_xact_id()"
        ));
    }

    #[test]
    fn writes_cast_keys_back() {
        let q = queue(table());
        assert_eq!(
            q.delete_chunks().unwrap(),
            "DELETE FROM \"public\".\"Doc_embedding_store\" t \
             USING unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) AS u(\"t\", \"id\") \
             WHERE t.\"t\" OPERATOR(pg_catalog.=) u.\"t\"::text AND t.\"id\" OPERATOR(pg_catalog.=) u.\"id\"::bigint"
        );
        let write = q.write_chunks();
        assert!(write.contains("source_etag, chunk_page)"), "{write}");
        assert!(write.contains("SELECT u.\"t\"::text, u.\"id\"::bigint, u.seq, u.chunk, ($7::pg_catalog.float4[])["), "{write}");
        assert!(write.contains(
            "OPERATOR(pg_catalog.*) $8::pg_catalog.int4]::real[], u.etag, u.page \
             FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.int4[], $4::pg_catalog.text[], $5::pg_catalog.text[], $6::pg_catalog.int4[]) \
             WITH ORDINALITY AS u(\"t\", \"id\", seq, chunk, etag, page, n)"
        ), "{write}");
        // A store made before chunk_page: the pages are passed, not written.
        let older = VectorizerSql {
            pages: false,
            ..queue(table())
        }
        .write_chunks();
        assert!(
            older.contains("source_etag)") && older.contains("u.etag FROM"),
            "{older}"
        );
        assert!(q.claim().contains("(SELECT t.source_etag FROM \"public\".\"Doc_embedding_store\" t WHERE t.\"t\" OPERATOR(pg_catalog.=) c.\"t\" AND t.\"id\" OPERATOR(pg_catalog.=) c.\"id\" LIMIT 1) AS etag"));
        assert!(q
            .requeue()
            .contains("unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.int4[], $4::pg_catalog.float8[])"));
        let column = queue(Names::Column("emb".into()));
        assert!(column.delete_chunks().is_none());
        let update = column.write_chunks();
        assert!(
            update.starts_with(
                "UPDATE \"public\".\"Doc\" s SET \"emb\" = ($3::pg_catalog.float4[])["
            ),
            "{update}"
        );
        assert!(update.ends_with(
            "OPERATOR(pg_catalog.*) $4::pg_catalog.int4]::real[] \
             FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) WITH ORDINALITY AS u(\"t\", \"id\", n) \
             WHERE s.\"t\" OPERATOR(pg_catalog.=) u.\"t\"::text AND s.\"id\" OPERATOR(pg_catalog.=) u.\"id\"::bigint"
        ), "{update}");
    }
}
