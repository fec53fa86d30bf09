//! `ai.text_indexing_none` and `ai.text_indexing_fts`: full text search on the store,
//! with Postgres' own text search — a `tsvector` of each chunk, kept by the store as a
//! generated column, and a GIN index on it — for `ai.search`'s text and hybrid modes.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::part::ConfigPart;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum TextIndexing {
    None,
    /// `language`: the text search configuration, schema-qualified
    /// (`pg_catalog.english`), as `ai.text_indexing_fts` records it.
    Fts {
        language: String,
    },
}

/// The store's column holding each chunk's `tsvector`.
pub const TSVECTOR_COLUMN: &str = "chunk_tsvector";

impl TextIndexing {
    /// The text search configuration, with full text search.
    pub fn language(&self) -> Option<&str> {
        match self {
            TextIndexing::None => None,
            TextIndexing::Fts { language } => Some(language),
        }
    }
}

impl ConfigPart for TextIndexing {
    const CONFIG_TYPE: &'static str = "text_indexing";
    const BUILDERS: &'static str = "ai.text_indexing_none() or ai.text_indexing_fts(…)";

    fn validate(&self) -> Result<()> {
        match self {
            TextIndexing::Fts { language } if language.trim().is_empty() => Err(
                ConfigError::invalid("text_indexing_fts needs a text search configuration")
                    .with_hint("e.g. ai.text_indexing_fts('english')"),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_the_builders_make() {
        let fts = json!({"implementation": "fts", "config_type": "text_indexing",
                         "language": "pg_catalog.english"});
        let part = TextIndexing::from_json(&fts).unwrap();
        assert_eq!(part.language(), Some("pg_catalog.english"));
        assert_eq!(part.to_json(), fts);
        let none = json!({"implementation": "none", "config_type": "text_indexing"});
        assert_eq!(TextIndexing::from_json(&none).unwrap(), TextIndexing::None);
        let empty =
            json!({"implementation": "fts", "config_type": "text_indexing", "language": " "});
        assert!(TextIndexing::from_json(&empty).is_err());
    }
}
