//! `ai.search`: the statements that answer a query over a vectorizer's store, by
//! meaning (`vector`), by words (`text`) or both (`hybrid`, reciprocal rank fusion).
//!
//! The text ranking is BM25's idea on Postgres' full text search: a chunk matches when
//! it holds any of the query's words (lexemes, in the store's text search
//! configuration); each word it holds adds the word's inverse document frequency,
//! ln(1 + (N − n + 0.5) / (n + 0.5)) for a word n of the N chunks hold, weighted by
//! `ts_rank` of the word in the chunk, which grows with the word's occurrences and
//! saturates. So chunks holding more of the words, and rarer ones, rank higher.
//!
//! A text or hybrid search runs two statements: `words_sql` finds the query's words and
//! their weights (`$1` the query's text); then `sql` ranks, with one term per word
//! written out — which spares each candidate chunk a subquery over the words. Its
//! parameters: `$1` the query's embedding (`real[]`), `$2` how many rows to return, `$3`
//! how many candidates each ranking of a hybrid search brings, `$4` the words as a
//! `tsquery` matching any of them, `$5` the words (`text[]`, each a `tsquery`), `$6`
//! their weights (`float8[]`). Its rows: `key` (the source row's primary key as a JSON
//! object), `chunk_seq`, `chunk`, `score` (higher is better), best first.

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
/// The most words of a query a text ranking weighs (the first ones, distinct).
pub const MAX_WORDS: usize = 64;

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
    /// Checks that the store can be searched in `mode`.
    pub fn check(&self, mode: Mode) -> Result<()> {
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
        Ok(())
    }

    /// The query's words (`word`, a `tsquery` as text) and their weights (`idf`): the
    /// first `MAX_WORDS` distinct lexemes of `$1` in the store's configuration.
    pub fn words_sql(&self) -> String {
        let language = quote_literal(self.language.as_deref().unwrap_or_default());
        format!(
            "WITH words AS MATERIALIZED (
                 SELECT pg_catalog.array_to_tsvector(ARRAY[w])::text::pg_catalog.tsquery AS word
                   FROM pg_catalog.unnest(pg_catalog.tsvector_to_array(
                            pg_catalog.to_tsvector({language}::pg_catalog.regconfig, $1))) w
                  LIMIT {MAX_WORDS}),
             chunks AS MATERIALIZED (SELECT pg_catalog.count(*)::float8 AS n FROM {store})
             SELECT w.word::text AS word, pg_catalog.ln(1 + (c.n - h.n + 0.5) / (h.n + 0.5)) AS idf
               FROM words w CROSS JOIN chunks c
              CROSS JOIN LATERAL (SELECT pg_catalog.count(*)::float8 AS n FROM {store} s
                                   WHERE s.{tsv} OPERATOR(pg_catalog.@@) w.word) h",
            store = self.store(),
            tsv = TSVECTOR_COLUMN,
        )
    }

    /// The search statement for `mode`, for a query of `words` words.
    pub fn sql(&self, mode: Mode, words: usize) -> Result<String> {
        self.check(mode)?;
        Ok(match mode {
            Mode::Vector => self.vector_ranking("$2"),
            Mode::Text => self.text_ranking(words, "$2"),
            Mode::Hybrid => self.hybrid(words),
        })
    }

    fn store(&self) -> String {
        qualified(&self.table.0, &self.table.1)
    }

    /// The key columns as the rankings select them, `s."id" AS key_0, …` (so that no
    /// key column's name meets a name of the ranking's own), and their aliases.
    fn key_columns(&self) -> (String, Vec<String>) {
        let aliases: Vec<String> = (0..self.key.len()).map(|i| format!("key_{i}")).collect();
        let columns = (self.key.iter().zip(&aliases))
            .map(|(k, alias)| format!("s.{} AS {alias}", quote_ident(&k.name)))
            .collect::<Vec<_>>();
        (columns.join(", "), aliases)
    }

    /// A ranking's first rows, from `inner` (which selects the key columns, `chunk_seq`,
    /// `chunk`, `score` and `position`, and has its LIMIT): the key as a JSON object,
    /// `pg_catalog.jsonb_build_object('id', r.key_0, …)`, made for those rows alone.
    fn ranked(&self, inner: String) -> String {
        let (_, aliases) = self.key_columns();
        let pairs: Vec<String> = (self.key.iter().zip(&aliases))
            .map(|(k, alias)| format!("{}, r.{alias}", quote_literal(&k.name)))
            .collect();
        format!(
            "SELECT pg_catalog.jsonb_build_object({}) AS key, r.chunk_seq, r.chunk, r.score
               FROM ({inner}) r ORDER BY r.position",
            pairs.join(", ")
        )
    }

    /// The first `limit` rows by cosine similarity, best first.
    fn vector_ranking(&self, limit: &str) -> String {
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
        self.ranked(format!(
            "SELECT {keys}, s.chunk_seq, s.chunk, 1 - ({distance})::float8 AS score,
                    pg_catalog.row_number() OVER () AS position
               FROM (SELECT * FROM {store} s ORDER BY {order} LIMIT {limit}) s",
            keys = self.key_columns().0,
            store = self.store(),
        ))
    }

    /// The first `limit` rows holding any of the query's `words`, best first.
    fn text_ranking(&self, words: usize, limit: &str) -> String {
        let tsv = format!("s.{TSVECTOR_COLUMN}");
        let score = (1..=words)
            .map(|i| format!("$6[{i}] * pg_catalog.ts_rank({tsv}, ($5[{i}])::pg_catalog.tsquery)"))
            .collect::<Vec<_>>();
        let (keys, aliases) = self.key_columns();
        self.ranked(format!(
            "SELECT r.*, pg_catalog.row_number() OVER () AS position FROM (
                 SELECT {keys}, s.chunk_seq, s.chunk, ({score})::float8 AS score
                   FROM {store} s
                  WHERE {matches}
                  ORDER BY score DESC, {aliases}, s.chunk_seq LIMIT {limit}) r",
            store = self.store(),
            score = if words == 0 {
                "0".into()
            } else {
                score.join(" + ")
            },
            matches = if words == 0 {
                "false".into()
            } else {
                format!("{tsv} OPERATOR(pg_catalog.@@) ($4)::pg_catalog.tsquery")
            },
            aliases = aliases.join(", "),
        ))
    }

    /// Both rankings' first `$3` rows, fused: each row scores the sum over the rankings
    /// that hold it of 1 / (60 + its rank there).
    fn hybrid(&self, words: usize) -> String {
        format!(
            "WITH v AS MATERIALIZED (
                 SELECT r.*, pg_catalog.row_number() OVER (ORDER BY r.score DESC, r.key, r.chunk_seq) AS rank
                   FROM ({vector}) r),
             t AS MATERIALIZED (
                 SELECT r.*, pg_catalog.row_number() OVER (ORDER BY r.score DESC, r.key, r.chunk_seq) AS rank
                   FROM ({text}) r)
             SELECT coalesce(v.key, t.key) AS key, coalesce(v.chunk_seq, t.chunk_seq) AS chunk_seq,
                    coalesce(v.chunk, t.chunk) AS chunk,
                    coalesce(1::float8 / ({RRF_K} + v.rank), 0) + coalesce(1::float8 / ({RRF_K} + t.rank), 0)
                        AS score
               FROM v FULL JOIN t ON v.key = t.key AND v.chunk_seq = t.chunk_seq
              ORDER BY score DESC, key, chunk_seq
              LIMIT $2",
            vector = self.vector_ranking("$3"),
            text = self.text_ranking(words, "$3"),
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
        let sql = store(None).sql(Mode::Vector, 0).unwrap();
        assert!(sql.contains("pg_catalog.jsonb_build_object('tenant', r.key_0, 'id', r.key_1)"));
        assert!(sql.contains("SELECT s.\"tenant\" AS key_0, s.\"id\" AS key_1, s.chunk_seq"));
        assert!(sql
            .contains("1 - (s.embedding OPERATOR(\"public\".<=>) $1::\"public\".vector)::float8"));
        assert!(sql.contains(
            "ORDER BY s.embedding OPERATOR(\"public\".<->) $1::\"public\".vector LIMIT $2"
        ));
        let mut plain = store(None);
        plain.vector_schema = None;
        assert!(plain
            .sql(Mode::Vector, 0)
            .unwrap()
            .contains("ORDER BY ai.cosine_distance(s.embedding, $1)"));
    }

    #[test]
    fn text_modes_need_text_indexing() {
        for mode in [Mode::Text, Mode::Hybrid] {
            let e = store(None).sql(mode, 1).unwrap_err();
            assert_eq!(e.state, SqlState::ObjectNotInPrerequisiteState);
            assert!(e.hint.unwrap().contains("ai.text_indexing_fts()"));
        }
        let english = store(Some("pg_catalog.english"));
        assert!(english.words_sql().contains(
            "pg_catalog.to_tsvector('pg_catalog.english'::pg_catalog.regconfig, $1))) w\n                  LIMIT 64"
        ));
        let sql = english.sql(Mode::Hybrid, 2).unwrap();
        assert!(sql.contains(
            "($6[1] * pg_catalog.ts_rank(s.chunk_tsvector, ($5[1])::pg_catalog.tsquery) \
             + $6[2] * pg_catalog.ts_rank(s.chunk_tsvector, ($5[2])::pg_catalog.tsquery))::float8 AS score"
        ));
        assert!(sql.contains("LIMIT $3) r)") && sql.ends_with("LIMIT $2"));
        let none = english.sql(Mode::Text, 0).unwrap();
        assert!(none.contains("(0)::float8 AS score") && none.contains("WHERE false"));
    }
}
