//! `ai.indexing_none`, `ai.indexing_default`, `ai.indexing_hnsw` and
//! `ai.indexing_diskann`: the vector index on the store, built once it holds `min_rows`
//! rows (pgvector's HNSW, or pgvectorscale's StreamingDiskANN).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::ident::{qualified, quote_ident, quote_literal};
use crate::part::{in_range, ConfigPart};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Indexing {
    None,
    /// HNSW when pgvector is installed, else none; resolved by `create_vectorizer`.
    Default,
    Hnsw {
        #[serde(default = "default_min_rows")]
        min_rows: i32,
        #[serde(default = "default_opclass")]
        opclass: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        m: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ef_construction: Option<i32>,
        #[serde(default = "default_true")]
        create_when_queue_empty: bool,
    },
    /// pgvectorscale's index; its options as pgai names them, left to the extension's
    /// defaults when not given.
    Diskann {
        #[serde(default = "default_min_rows")]
        min_rows: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storage_layout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        num_neighbors: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        search_list_size: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_alpha: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        num_dimensions: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        num_bits_per_dimension: Option<i32>,
        #[serde(default = "default_true")]
        create_when_queue_empty: bool,
    },
}

/// pgvectorscale's storage layouts.
pub const STORAGE_LAYOUTS: &[&str] = &["memory_optimized", "plain"];

pub const OPCLASSES: &[&str] = &[
    "vector_cosine_ops",
    "vector_ip_ops",
    "vector_l2_ops",
    "vector_l1_ops",
];

/// pgvector's limit on the dimensions of an HNSW-indexed `vector`.
pub const HNSW_MAX_DIMENSIONS: i32 = 2000;

fn default_min_rows() -> i32 {
    100_000
}
fn default_opclass() -> String {
    OPCLASSES[0].into()
}
fn default_true() -> bool {
    true
}

impl Indexing {
    pub fn hnsw_default() -> Self {
        Indexing::Hnsw {
            min_rows: default_min_rows(),
            opclass: default_opclass(),
            m: None,
            ef_construction: None,
            create_when_queue_empty: true,
        }
    }
}

/// The vector index the worker builds on a vectorizer's embeddings, and the rule for
/// when: once `table` holds `min_rows` rows (and, with `when_queue_empty`, the queue is
/// empty), unless a valid index on `column` already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBuild {
    /// The table holding the embeddings (the store, or the source for an embedding
    /// column), schema and name.
    pub table: (String, String),
    pub column: String,
    /// The index's name, in the table's schema.
    pub name: String,
    min_rows: i32,
    when_queue_empty: bool,
    /// `USING …`: hnsw or diskann.
    method: &'static str,
    /// pgvector's operator class (HNSW); pgvectorscale's index takes its default.
    opclass: Option<String>,
    options: Vec<String>,
}

/// Postgres' limit on a name's length, in bytes.
const NAME_BYTES: usize = 63;

impl Indexing {
    /// The index to build on `column` of `table` (`None` for `indexing_none`).
    pub fn index_build(&self, table: (String, String), column: &str) -> Option<IndexBuild> {
        let (method, min_rows, when_queue_empty, opclass, options) = match self {
            Indexing::None | Indexing::Default => return None,
            Indexing::Hnsw {
                min_rows,
                opclass,
                m,
                ef_construction,
                create_when_queue_empty,
            } => {
                let options = [("m", m), ("ef_construction", ef_construction)]
                    .into_iter()
                    .filter_map(|(name, value)| value.map(|v| format!("{name} = {v}")))
                    .collect();
                (
                    "hnsw",
                    min_rows,
                    create_when_queue_empty,
                    Some(opclass.clone()),
                    options,
                )
            }
            Indexing::Diskann {
                min_rows,
                storage_layout,
                num_neighbors,
                search_list_size,
                max_alpha,
                num_dimensions,
                num_bits_per_dimension,
                create_when_queue_empty,
            } => {
                let whole = [
                    ("num_neighbors", num_neighbors),
                    ("search_list_size", search_list_size),
                    ("num_dimensions", num_dimensions),
                    ("num_bits_per_dimension", num_bits_per_dimension),
                ];
                let options = (storage_layout.iter())
                    .map(|l| format!("storage_layout = {}", quote_literal(l)))
                    .chain(
                        whole
                            .iter()
                            .filter_map(|(name, v)| v.map(|v| format!("{name} = {v}"))),
                    )
                    .chain(max_alpha.map(|a| format!("max_alpha = {a}")))
                    .collect();
                ("diskann", min_rows, create_when_queue_empty, None, options)
            }
        };
        Some(IndexBuild {
            name: index_name(&table.1, column),
            table,
            column: column.to_string(),
            min_rows: *min_rows,
            when_queue_empty: *when_queue_empty,
            method,
            opclass,
            options,
        })
    }
}

/// `<table>_<column>_idx`, the table's part cut (at a character) to fit 63 bytes.
fn index_name(table: &str, column: &str) -> String {
    let suffix = format!("_{column}_idx");
    let mut end = NAME_BYTES.saturating_sub(suffix.len()).min(table.len());
    while !table.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &table[..end])
}

impl IndexBuild {
    /// One row saying whether the index is due — `due`: the queue empty if that is the
    /// rule (checked first: while rows are queued, nothing is counted), enough rows,
    /// and no valid index on the column yet — and whether an invalid index of its name
    /// is left from a build that failed (`leftover`).
    pub fn check_sql(&self, queue: &(String, String)) -> String {
        let table = qualified(&self.table.0, &self.table.1);
        let queue_rule = if self.when_queue_empty {
            format!("NOT EXISTS (SELECT FROM {})", qualified(&queue.0, &queue.1))
        } else {
            "true".into()
        };
        format!(
            "WITH t AS (SELECT pg_catalog.to_regclass({table_literal}) AS oid)
             SELECT {queue_rule}
                    AND (SELECT pg_catalog.count(*) FROM (SELECT FROM {table} LIMIT {min_rows}) r)
                        OPERATOR(pg_catalog.>=) {min_rows}
                    AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                                        ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                                       AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])
                                     WHERE i.indrelid OPERATOR(pg_catalog.=) t.oid AND i.indisvalid
                                       AND a.attname OPERATOR(pg_catalog.=) {column})
                        AS due,
                    EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c
                                ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
                             WHERE i.indrelid OPERATOR(pg_catalog.=) t.oid
                               AND c.relname OPERATOR(pg_catalog.=) {name} AND NOT i.indisvalid)
                        AS leftover
               FROM t",
            table_literal = quote_literal(&table),
            min_rows = self.min_rows,
            column = quote_literal(&self.column),
            name = quote_literal(&self.name),
        )
    }

    /// Builds the index without blocking writes to the table; `vector_schema` is
    /// where pgvector's operator classes are.
    pub fn create_sql(&self, vector_schema: &str) -> String {
        let with = if self.options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", self.options.join(", "))
        };
        let opclass = (self.opclass.iter())
            .map(|o| format!(" {}", qualified(vector_schema, o)))
            .collect::<String>();
        format!(
            "CREATE INDEX CONCURRENTLY {} ON {} USING {} ({}{opclass}){with}",
            quote_ident(&self.name),
            qualified(&self.table.0, &self.table.1),
            self.method,
            quote_ident(&self.column),
        )
    }

    /// Drops what a failed build left: an invalid index of the same name.
    pub fn drop_sql(&self) -> String {
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            qualified(&self.table.0, &self.name)
        )
    }
}

impl ConfigPart for Indexing {
    const CONFIG_TYPE: &'static str = "indexing";
    const BUILDERS: &'static str =
        "ai.indexing_none(), ai.indexing_default(), ai.indexing_hnsw(…) or ai.indexing_diskann(…)";

    fn validate(&self) -> Result<()> {
        if let Indexing::Diskann {
            min_rows,
            storage_layout,
            ..
        } = self
        {
            in_range("indexing min_rows", *min_rows, 0..=i32::MAX)?;
            if let Some(layout) = storage_layout {
                if !STORAGE_LAYOUTS.contains(&layout.as_str()) {
                    return Err(ConfigError::invalid(format!(
                        "invalid DiskANN storage_layout \"{layout}\""
                    ))
                    .with_hint(format!("use one of {}", STORAGE_LAYOUTS.join(", "))));
                }
            }
        }
        if let Indexing::Hnsw {
            min_rows,
            opclass,
            m,
            ef_construction,
            ..
        } = self
        {
            in_range("indexing min_rows", *min_rows, 0..=i32::MAX)?;
            if !OPCLASSES.contains(&opclass.as_str()) {
                return Err(
                    ConfigError::invalid(format!("invalid HNSW opclass \"{opclass}\""))
                        .with_hint(format!("use one of {}", OPCLASSES.join(", "))),
                );
            }
            // pgvector's bounds for the index options.
            if let Some(m) = m {
                in_range("HNSW m", *m, 2..=100)?;
            }
            if let Some(ef) = ef_construction {
                in_range("HNSW ef_construction", *ef, 4..=1000)?;
                if ef < &(2 * m.unwrap_or(16)) {
                    return Err(ConfigError::invalid(format!(
                        "HNSW ef_construction ({ef}) must be at least twice m ({})",
                        m.unwrap_or(16)
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diskann_build() {
        let diskann = Indexing::Diskann {
            min_rows: 5,
            storage_layout: Some("plain".into()),
            num_neighbors: Some(50),
            search_list_size: None,
            max_alpha: Some(1.2),
            num_dimensions: None,
            num_bits_per_dimension: None,
            create_when_queue_empty: true,
        };
        assert!(diskann.validate().is_ok());
        let build = diskann
            .index_build(("public".into(), "doc_store".into()), "embedding")
            .unwrap();
        assert_eq!(
            build.create_sql("public"),
            "CREATE INDEX CONCURRENTLY \"doc_store_embedding_idx\" ON \"public\".\"doc_store\" \
             USING diskann (\"embedding\") WITH (storage_layout = 'plain', num_neighbors = 50, max_alpha = 1.2)"
        );
        let bad = Indexing::from_json(
            &json!({"implementation": "diskann", "config_type": "indexing",
                                              "storage_layout": "super_advanced"}),
        );
        assert_eq!(
            bad.unwrap_err().message,
            "invalid DiskANN storage_layout \"super_advanced\""
        );
    }

    #[test]
    fn hnsw_defaults() {
        assert_eq!(
            Indexing::hnsw_default().build().unwrap(),
            json!({"implementation": "hnsw", "config_type": "indexing", "min_rows": 100000,
                   "opclass": "vector_cosine_ops", "create_when_queue_empty": true})
        );
    }

    #[test]
    fn hnsw_build() {
        let table = ("my schema".to_string(), "doc_store".to_string());
        assert_eq!(Indexing::None.index_build(table.clone(), "embedding"), None);
        let hnsw = Indexing::Hnsw {
            min_rows: 10,
            opclass: "vector_l2_ops".into(),
            m: Some(8),
            ef_construction: None,
            create_when_queue_empty: false,
        };
        let build = hnsw.index_build(table, "embedding").unwrap();
        assert_eq!(
            build.create_sql("public"),
            "CREATE INDEX CONCURRENTLY \"doc_store_embedding_idx\" ON \"my schema\".\"doc_store\" \
             USING hnsw (\"embedding\" \"public\".\"vector_l2_ops\") WITH (m = 8)"
        );
        assert_eq!(
            build.drop_sql(),
            "DROP INDEX CONCURRENTLY IF EXISTS \"my schema\".\"doc_store_embedding_idx\""
        );
        let check = build.check_sql(&("ai".into(), "q".into()));
        assert!(
            check.contains("LIMIT 10) r)\n                        OPERATOR(pg_catalog.>=) 10"),
            "{check}"
        );
        assert!(!check.contains("\"ai\".\"q\""), "{check}");
        let waits = Indexing::Hnsw {
            min_rows: 10,
            opclass: "vector_l2_ops".into(),
            m: None,
            ef_construction: None,
            create_when_queue_empty: true,
        };
        let check = (waits
            .index_build(("s".into(), "t".into()), "embedding")
            .unwrap())
        .check_sql(&("ai".into(), "q".into()));
        assert!(
            check.contains("SELECT NOT EXISTS (SELECT FROM \"ai\".\"q\")\n"),
            "{check}"
        );
    }

    #[test]
    fn index_names_fit() {
        assert_eq!(index_name("doc", "embedding"), "doc_embedding_idx");
        let long = "é".repeat(40);
        let name = index_name(&long, "embedding");
        assert!(
            name.len() <= NAME_BYTES && name.ends_with("_embedding_idx"),
            "{name}"
        );
    }

    #[test]
    fn hnsw_checks() {
        let mk = |opclass: &str, m, ef| Indexing::Hnsw {
            min_rows: 0,
            opclass: opclass.into(),
            m,
            ef_construction: ef,
            create_when_queue_empty: true,
        };
        assert!(mk("vector_l2_ops", Some(16), Some(64)).validate().is_ok());
        assert!(mk("bogus_ops", None, None).validate().is_err());
        assert!(mk("vector_ip_ops", Some(1), None).validate().is_err());
        assert!(mk("vector_ip_ops", Some(40), Some(64)).validate().is_err());
    }
}
