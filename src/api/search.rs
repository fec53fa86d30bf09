//! `ai.search(vectorizer, query, k, mode)`: the best `k` chunks of a vectorizer's store
//! for a query, by meaning, by words or both (see `ai_loader_core::search`). It runs
//! with the caller's rights: a caller who may read the store (row-level security
//! applying) gets the rows it may read; the query is embedded once.

use ai_loader_core::catalog::Recorded;
use ai_loader_core::ident::qualified;
use ai_loader_core::indexing::Indexing;
use ai_loader_core::search::{candidates, check_k, Mode, Store};
use ai_loader_core::text_indexing::TextIndexing;
use ai_loader_core::{ConfigError, SqlState};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

use crate::api::embed::{query_embedding, readable, readable_id};
use crate::errors::{raise, OrRaise};

/// The search, by vectorizer id; `ai.search` calls it with a fixed search path.
#[pg_extern(create_or_replace, name = "_search", stable, parallel_unsafe)]
fn search(
    vectorizer_id: i32,
    query: &str,
    k: i32,
    mode: &str,
) -> TableIterator<
    'static,
    (
        name!(key, JsonB),
        name!(chunk_seq, i32),
        name!(chunk, String),
        name!(score, f64),
    ),
> {
    let mode = mode.parse::<Mode>().or_raise();
    check_k(k).or_raise();
    let store = store(readable(vectorizer_id));
    store.check(mode).or_raise();
    let (words, weights): (Vec<String>, Vec<f64>) = if mode == Mode::Vector {
        Default::default()
    } else {
        words(&store, query).into_iter().unzip()
    };
    let sql = store.sql(mode, words.len()).or_raise();
    let embedding = (mode != Mode::Text).then(|| query_embedding(vectorizer_id, query));
    let candidates = candidates(k);
    let any_word = words.join(" | ");
    let rows = with_ef_search(store.vector_schema.is_some(), candidates.max(k), || {
        Spi::connect(|client| {
            let args = [
                embedding.into(),
                k.into(),
                candidates.into(),
                any_word.as_str().into(),
                words.into(),
                weights.into(),
            ];
            client
                .select(&sql, None, &args)
                .or_raise()
                .map(|row| {
                    (
                        row.get_by_name::<JsonB, _>("key")
                            .or_raise()
                            .unwrap_or(JsonB(Value::Null)),
                        row.get_by_name::<i32, _>("chunk_seq")
                            .or_raise()
                            .unwrap_or_default(),
                        row.get_by_name::<String, _>("chunk")
                            .or_raise()
                            .unwrap_or_default(),
                        row.get_by_name::<f64, _>("score")
                            .or_raise()
                            .unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    TableIterator::new(rows)
}

/// The same, by the vectorizer's name.
#[pg_extern(create_or_replace, name = "_search", stable, parallel_unsafe)]
fn search_by_name(
    vectorizer: &str,
    query: &str,
    k: i32,
    mode: &str,
) -> TableIterator<
    'static,
    (
        name!(key, JsonB),
        name!(chunk_seq, i32),
        name!(chunk, String),
        name!(score, f64),
    ),
> {
    search(readable_id(vectorizer), query, k, mode)
}

/// The store of a vectorizer the caller may read, as the search reads it.
fn store(vectorizer: Recorded) -> Store {
    let Some(table) = vectorizer.store().cloned() else {
        raise(
            ConfigError::new(
                SqlState::FeatureNotSupported,
                format!("vectorizer \"{}\" stores its embeddings in a column of its source, not in a store", vectorizer.name),
            )
            .with_hint("order the source by its embedding column: ORDER BY <column> <=> ai.vectorizer_embed(…)"),
        );
    };
    let opclass = match vectorizer.part::<Indexing>("indexing") {
        Ok(Indexing::Hnsw { opclass, .. }) => Some(opclass),
        _ => None,
    };
    // Vectorizers made before text indexing existed have none.
    let language = vectorizer
        .part::<TextIndexing>("text_indexing")
        .ok()
        .and_then(|t| t.language().map(str::to_string));
    Store {
        vector_schema: vector_schema(&table).unwrap_or_else(|| {
            raise(ConfigError::new(
                SqlState::UndefinedObject,
                format!(
                    "the store {}.{} of vectorizer \"{}\" does not exist",
                    table.0, table.1, vectorizer.name
                ),
            ))
        }),
        vectorizer: vectorizer.name,
        table,
        key: vectorizer.key,
        opclass,
        language,
    }
}

/// The query's words, each a `tsquery`, with their weights.
fn words(store: &Store, query: &str) -> Vec<(String, f64)> {
    Spi::connect(|client| {
        client
            .select(&store.words_sql(), None, &[query.into()])
            .or_raise()
            .map(|row| {
                (
                    row.get_by_name::<String, _>("word")
                        .or_raise()
                        .unwrap_or_default(),
                    row.get_by_name::<f64, _>("idf")
                        .or_raise()
                        .unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// pgvector's schema if the store's embeddings are pgvector's `vector`s (`Some(None)`
/// for `real[]`); `None` if the store is gone. The type is pgvector's own, found by OID
/// through the `vector` extension's members, so its operators are pgvector's (an
/// operator's schema, name and argument types name it alone); a store whose embedding
/// column has any other type — a domain, a type of a user's — is refused: its operators
/// would be whatever that type's owner made them, run with the searcher's rights.
fn vector_schema(table: &(String, String)) -> Option<Option<String>> {
    let row = Spi::connect(|client| {
        client
            .select(
                "SELECT a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.float4[]'::pg_catalog.regtype AS plain,
                        pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
                        (SELECT n.nspname::text
                           FROM pg_catalog.pg_depend d
                           JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
                           JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.objid
                           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
                          WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
                            AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                            AND d.deptype OPERATOR(pg_catalog.=) 'e'
                            AND e.extname OPERATOR(pg_catalog.=) 'vector'
                            AND t.typname OPERATOR(pg_catalog.=) 'vector'
                            AND t.oid OPERATOR(pg_catalog.=) a.atttypid) AS schema
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1, $2))
                    AND a.attname OPERATOR(pg_catalog.=) 'embedding' AND NOT a.attisdropped",
                None,
                &[table.0.as_str().into(), table.1.as_str().into()],
            )
            .or_raise()
            .next()
            .map(|row| {
                (
                    row.get_by_name::<bool, _>("plain").or_raise().unwrap_or(false),
                    row.get_by_name::<String, _>("type").or_raise().unwrap_or_default(),
                    row.get_by_name::<String, _>("schema").or_raise(),
                )
            })
    })?;
    match row {
        (_, _, Some(schema)) => Some(Some(schema)),
        (true, _, None) => Some(None),
        (false, type_name, None) => raise(
            ConfigError::new(
                SqlState::DatatypeMismatch,
                format!(
                    "the store {} has an embedding column of type {type_name}, neither pgvector's vector nor real[]",
                    qualified(&table.0, &table.1)
                ),
            )
            .with_hint("a search runs only pgvector's own operators (or ai_loader's for real[]); give the column its type back"),
        ),
    }
}

/// Runs `work` with pgvector's `hnsw.ef_search` at least `wanted` (an HNSW scan finds
/// at most that many rows), then sets it back.
fn with_ef_search<T>(vectors: bool, wanted: i32, work: impl FnOnce() -> T) -> T {
    let current = || {
        Spi::get_one::<String>("SELECT pg_catalog.current_setting('hnsw.ef_search', true)")
            .or_raise()
    };
    let set = |value: &str| {
        Spi::run_with_args(
            "SELECT pg_catalog.set_config('hnsw.ef_search', $1, true)",
            &[value.into()],
        )
        .or_raise()
    };
    let before = if vectors { current() } else { None };
    // pgvector's default, when nothing set it.
    let was: i32 = before.as_deref().and_then(|v| v.parse().ok()).unwrap_or(40);
    if !vectors || was >= wanted {
        return work();
    }
    set(&wanted.to_string());
    let out = work();
    set(&was.to_string());
    out
}
