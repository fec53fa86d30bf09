//! `ai.search`: the statement that answers a query over a vectorizer's store, by
//! meaning (`vector`), by words (`text`) or both (`hybrid`, reciprocal rank fusion).
//!
//! The statement's parameters: `$1` the query's embedding (`real[]`), `$2` the query's
//! text, `$3` how many rows to return, `$4` how many candidates each ranking of a hybrid
//! search brings. Its rows: `key` (the source row's primary key as a JSON object),
//! `chunk_seq`, `chunk`, `score` (higher is better), best first.
//!
//! The text ranking is BM25's idea on Postgres' full text search: a chunk matches when
//! it holds any of the query's words (lexemes, in the store's text search
//! configuration); each word it holds adds the word's inverse document frequency,
//! ln(1 + (N − n + 0.5) / (n + 0.5)) for a word n of the N chunks hold, weighted by
//! `ts_rank` of the word in the chunk, which grows with the word's occurrences and
//! saturates. So chunks holding more of the words, and rarer ones, rank higher.

use std::str::FromStr;

use crate::ddl::KeyColumn;
use crate::error::{ConfigError, Result, SqlState};
use crate::ident::{qualified, quote_ident, quote_literal};
use crate::text_indexing::TSVECTOR_COLUMN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Vector,
    Text,
    Hybrid,
}

impl FromStr for Mode {
    type Err = ConfigError;

    fn from_str(mode: &str) -> Result<Mode> {
        match mode {
            "vector" => Ok(Mode::Vector),
            "text" => Ok(Mode::Text),
            "hybrid" => Ok(Mode::Hybrid),
            other => Err(
                ConfigError::invalid(format!("unknown search mode \"{other}\""))
                    .with_hint("mode is 'vector', 'text' or 'hybrid'"),
            ),
        }
    }
}

/// The most rows a search returns: pgvector's HNSW scan finds at most `ef_search`
/// (at most 1000) neighbours.
pub const MAX_K: i32 = 1000;
/// Reciprocal rank fusion's constant: a row ranked r-th in a ranking scores 1 / (60 + r).
const RRF_K: i32 = 60;

/// How many candidates each ranking of a hybrid search brings for `k` rows.
pub fn candidates(k: i32) -> i32 {
    (k.saturating_mul(4)).clamp(40, MAX_K)
}

/// Checks `k`.
pub fn check_k(k: i32) -> Result<()> {
    if (1..=MAX_K).contains(&k) {
        Ok(())
    } else {
        Err(ConfigError::invalid(format!(
            "k must be between 1 and {MAX_K}, got {k}"
        )))
    }
}

/// A vectorizer's store, as a search reads it.
#[derive(Debug, Clone)]
pub struct Store {
    pub vectorizer: String,
    pub table: (String, String),
    pub key: Vec<KeyColumn>,
    /// pgvector's schema when the embeddings are `vector`s; `None` for `real[]`.
    pub vector_schema: Option<String>,
    /// The HNSW operator class, whose distance a vector search orders by (so that
    /// the index serves it); cosine without an index.
    pub opclass: Option<String>,
    /// The text search configuration of the store's `tsvector`, with text indexing.
    pub language: Option<String>,
}

impl Store {
    /// The search statement for `mode`.
    pub fn sql(&self, mode: Mode) -> Result<String> {
        if mode != Mode::Vector && self.language.is_none() {
            return Err(ConfigError::new(
                SqlState::ObjectNotInPrerequisiteState,
                format!(
                    "vectorizer \"{}\" has no text indexing: a {} search needs it",
                    self.vectorizer,
                    if mode == Mode::Text { "text" } else { "hybrid" }
                ),
            )
            .with_hint(
                "create the vectorizer with text_indexing => ai.text_indexing_fts(), or search with mode => 'vector'",
            ));
        }
        Ok(match mode {
            Mode::Vector => format!("{} LIMIT $3", self.vector_ranking()),
            Mode::Text => format!("{} LIMIT $3", self.text_ranking()),
            Mode::Hybrid => self.hybrid(),
        })
    }

    fn store(&self) -> String {
        qualified(&self.table.0, &self.table.1)
    }

    /// `pg_catalog.jsonb_build_object('id', s."id", …)`.
    fn key(&self) -> String {
        let pairs: Vec<String> = (self.key.iter())
            .map(|k| format!("{}, s.{}", quote_literal(&k.name), quote_ident(&k.name)))
            .collect();
        format!("pg_catalog.jsonb_build_object({})", pairs.join(", "))
    }

    /// The rows by cosine similarity, best first (no LIMIT).
    fn vector_ranking(&self) -> String {
        let (distance, order) = match &self.vector_schema {
            Some(schema) => {
                let operator = |op: &str| format!("OPERATOR({}.{op})", quote_ident(schema));
                let query = format!("$1::{}.vector", quote_ident(schema));
                let ordering = match self.opclass.as_deref() {
                    Some("vector_l2_ops") => "<->",
                    Some("vector_ip_ops") => "<#>",
                    Some("vector_l1_ops") => "<+>",
                    _ => "<=>",
                };
                (
                    format!("s.embedding {} {query}", operator("<=>")),
                    format!("s.embedding {} {query}", operator(ordering)),
                )
            }
            None => {
                let distance = "ai.cosine_distance(s.embedding, $1)".to_string();
                (distance.clone(), distance)
            }
        };
        format!(
            "SELECT {key} AS key, s.chunk_seq, s.chunk, 1 - ({distance})::float8 AS score
               FROM {store} s ORDER BY {order}",
            key = self.key(),
            store = self.store(),
        )
    }

    /// The rows holding any of the query's words, best first (no LIMIT).
    fn text_ranking(&self) -> String {
        let language = quote_literal(self.language.as_deref().unwrap_or_default());
        format!(
            "WITH words AS MATERIALIZED (
                 SELECT pg_catalog.array_to_tsvector(ARRAY[w])::text::pg_catalog.tsquery AS word
                   FROM pg_catalog.unnest(pg_catalog.tsvector_to_array(
                            pg_catalog.to_tsvector({language}::pg_catalog.regconfig, $2))) w),
             chunks AS MATERIALIZED (SELECT pg_catalog.count(*)::float8 AS n FROM {store}),
             weights AS MATERIALIZED (
                 SELECT w.word, pg_catalog.ln(1 + (c.n - h.n + 0.5) / (h.n + 0.5)) AS idf
                   FROM words w CROSS JOIN chunks c
                  CROSS JOIN LATERAL (SELECT pg_catalog.count(*)::float8 AS n FROM {store} s
                                       WHERE s.{tsv} OPERATOR(pg_catalog.@@) w.word) h)
             SELECT {key} AS key, s.chunk_seq, s.chunk,
                    (SELECT pg_catalog.sum(x.idf * pg_catalog.ts_rank(s.{tsv}, x.word)) FROM weights x
                      WHERE s.{tsv} OPERATOR(pg_catalog.@@) x.word) AS score
               FROM {store} s
              WHERE s.{tsv} OPERATOR(pg_catalog.@@)
                    (SELECT pg_catalog.string_agg(word::text, ' | ')::pg_catalog.tsquery FROM words)
              ORDER BY score DESC, key, s.chunk_seq",
            key = self.key(),
            store = self.store(),
            tsv = TSVECTOR_COLUMN,
        )
    }

    /// Both rankings' first `$4` rows, fused: each row scores the sum over the rankings
    /// that hold it of 1 / (60 + its rank there).
    fn hybrid(&self) -> String {
        format!(
            "WITH v AS MATERIALIZED (
                 SELECT r.*, pg_catalog.row_number() OVER (ORDER BY r.score DESC, r.key, r.chunk_seq) AS rank
                   FROM ({vector} LIMIT $4) r),
             t AS MATERIALIZED (
                 SELECT r.*, pg_catalog.row_number() OVER (ORDER BY r.score DESC, r.key, r.chunk_seq) AS rank
                   FROM ({text} LIMIT $4) r)
             SELECT coalesce(v.key, t.key) AS key, coalesce(v.chunk_seq, t.chunk_seq) AS chunk_seq,
                    coalesce(v.chunk, t.chunk) AS chunk,
                    coalesce(1::float8 / ({RRF_K} + v.rank), 0) + coalesce(1::float8 / ({RRF_K} + t.rank), 0)
                        AS score
               FROM v FULL JOIN t ON v.key = t.key AND v.chunk_seq = t.chunk_seq
              ORDER BY score DESC, key, chunk_seq
              LIMIT $3",
            vector = self.vector_ranking(),
            text = self.text_ranking(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(language: Option<&str>) -> Store {
        Store {
            vectorizer: "docs".into(),
            table: ("public".into(), "doc_embedding_store".into()),
            key: vec![
                KeyColumn {
                    name: "tenant".into(),
                    type_sql: "text".into(),
                },
                KeyColumn {
                    name: "id".into(),
                    type_sql: "int4".into(),
                },
            ],
            vector_schema: Some("public".into()),
            opclass: Some("vector_l2_ops".into()),
            language: language.map(str::to_string),
        }
    }

    #[test]
    fn modes_and_bounds() {
        assert_eq!("hybrid".parse::<Mode>().unwrap(), Mode::Hybrid);
        let e = "fuzzy".parse::<Mode>().unwrap_err();
        assert_eq!(e.message, "unknown search mode \"fuzzy\"");
        assert!(check_k(0).is_err() && check_k(1001).is_err() && check_k(10).is_ok());
        assert_eq!(
            (candidates(1), candidates(100), candidates(1000)),
            (40, 400, 1000)
        );
    }

    #[test]
    fn vector_orders_by_the_index_operator() {
        let sql = store(None).sql(Mode::Vector).unwrap();
        assert!(
            sql.contains("pg_catalog.jsonb_build_object('tenant', s.\"tenant\", 'id', s.\"id\")")
        );
        assert!(sql
            .contains("1 - (s.embedding OPERATOR(\"public\".<=>) $1::\"public\".vector)::float8"));
        assert!(sql.contains(
            "ORDER BY s.embedding OPERATOR(\"public\".<->) $1::\"public\".vector LIMIT $3"
        ));
        let mut plain = store(None);
        plain.vector_schema = None;
        assert!(plain
            .sql(Mode::Vector)
            .unwrap()
            .contains("ORDER BY ai.cosine_distance(s.embedding, $1)"));
    }

    #[test]
    fn text_modes_need_text_indexing() {
        for mode in [Mode::Text, Mode::Hybrid] {
            let e = store(None).sql(mode).unwrap_err();
            assert_eq!(e.state, SqlState::ObjectNotInPrerequisiteState);
            assert!(e.hint.unwrap().contains("ai.text_indexing_fts()"));
        }
        let sql = store(Some("pg_catalog.english")).sql(Mode::Hybrid).unwrap();
        assert!(
            sql.contains("pg_catalog.to_tsvector('pg_catalog.english'::pg_catalog.regconfig, $2)")
        );
        assert!(sql.contains("LIMIT $4) r)") && sql.ends_with("LIMIT $3"));
    }
}
