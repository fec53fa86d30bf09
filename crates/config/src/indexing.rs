//! `ai.indexing_none`, `ai.indexing_default` and `ai.indexing_hnsw`: the vector index
//! on the store, built once it holds `min_rows` rows (pgvector's HNSW).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::part::{in_range, ConfigPart};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

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

impl ConfigPart for Indexing {
    const CONFIG_TYPE: &'static str = "indexing";
    const BUILDERS: &'static str =
        "ai.indexing_none(), ai.indexing_default() or ai.indexing_hnsw(…)";

    fn validate(&self) -> Result<()> {
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
    fn hnsw_defaults() {
        assert_eq!(
            Indexing::hnsw_default().build().unwrap(),
            json!({"implementation": "hnsw", "config_type": "indexing", "min_rows": 100000,
                   "opclass": "vector_cosine_ops", "create_when_queue_empty": true})
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
