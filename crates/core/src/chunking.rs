//! `ai.chunking_*`: how a document's text is split before embedding. Sizes are in
//! characters, with LangChain's meaning of size and overlap, as in pgai.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result, SqlState};
use crate::part::{in_range, ConfigPart};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Chunking {
    RecursiveCharacterTextSplitter {
        #[serde(default = "default_size")]
        chunk_size: i32,
        #[serde(default = "default_overlap")]
        chunk_overlap: i32,
        #[serde(default = "default_separators")]
        separators: Vec<String>,
        #[serde(default)]
        is_separator_regex: bool,
    },
    CharacterTextSplitter {
        #[serde(default = "default_size")]
        chunk_size: i32,
        #[serde(default = "default_overlap")]
        chunk_overlap: i32,
        #[serde(default = "default_separator")]
        separator: String,
        #[serde(default)]
        is_separator_regex: bool,
    },
    /// The whole document is one chunk.
    None,
}

pub const DEFAULT_SIZE: i32 = 800;
pub const DEFAULT_OVERLAP: i32 = 400;

fn default_size() -> i32 {
    DEFAULT_SIZE
}
fn default_overlap() -> i32 {
    DEFAULT_OVERLAP
}
fn default_separator() -> String {
    "\n\n".into()
}

/// pgai's (and LangChain's) separators, most to least preferred.
pub fn default_separators() -> Vec<String> {
    ["\n\n", "\n", ".", "?", "!", " ", ""]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl ConfigPart for Chunking {
    const CONFIG_TYPE: &'static str = "chunking";
    const BUILDERS: &'static str = "ai.chunking_recursive_character_text_splitter(…), \
        ai.chunking_character_text_splitter(…) or ai.chunking_none()";

    fn validate(&self) -> Result<()> {
        let (size, overlap, separators, is_regex) = match self {
            Chunking::None => return Ok(()),
            Chunking::RecursiveCharacterTextSplitter {
                chunk_size,
                chunk_overlap,
                separators,
                is_separator_regex,
            } => (
                *chunk_size,
                *chunk_overlap,
                separators.as_slice(),
                *is_separator_regex,
            ),
            Chunking::CharacterTextSplitter {
                chunk_size,
                chunk_overlap,
                separator,
                is_separator_regex,
            } => (
                *chunk_size,
                *chunk_overlap,
                std::slice::from_ref(separator),
                *is_separator_regex,
            ),
        };
        in_range("chunk_size", size, 1..=i32::MAX)?;
        in_range("chunk_overlap", overlap, 0..=i32::MAX)?;
        if overlap > size {
            return Err(ConfigError::invalid(format!(
                "chunk_overlap ({overlap}) must not be larger than chunk_size ({size})"
            ))
            .with_hint("the overlap is part of each chunk: pick an overlap below the size, e.g. a quarter to a half of it"));
        }
        if separators.is_empty() {
            return Err(ConfigError::invalid("separators must not be empty")
                .with_hint("use '' as the last separator to split anywhere"));
        }
        if is_regex {
            for s in separators {
                regex::Regex::new(s).map_err(|e| {
                    ConfigError::new(
                        SqlState::InvalidRegularExpression,
                        format!("invalid separator regular expression \"{s}\": {e}"),
                    )
                    .with_hint("set is_separator_regex => false to split on the text as written")
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recursive(size: i32, overlap: i32) -> Chunking {
        Chunking::RecursiveCharacterTextSplitter {
            chunk_size: size,
            chunk_overlap: overlap,
            separators: default_separators(),
            is_separator_regex: false,
        }
    }

    #[test]
    fn defaults_match_pgai() {
        let c = Chunking::from_json(
            &json!({"implementation": "recursive_character_text_splitter",
                                            "config_type": "chunking"}),
        )
        .unwrap();
        assert_eq!(c, recursive(800, 400));
        assert_eq!(
            c.build().unwrap(),
            json!({"implementation": "recursive_character_text_splitter", "config_type": "chunking",
                   "chunk_size": 800, "chunk_overlap": 400, "is_separator_regex": false,
                   "separators": ["\n\n", "\n", ".", "?", "!", " ", ""]})
        );
    }

    #[test]
    fn sizes() {
        assert!(recursive(100, 100).validate().is_ok());
        let e = recursive(100, 101).validate().unwrap_err();
        assert_eq!(
            e.message,
            "chunk_overlap (101) must not be larger than chunk_size (100)"
        );
        assert_eq!(
            recursive(0, 0).validate().unwrap_err().message,
            "chunk_size must be at least 1, got 0"
        );
        assert!(recursive(10, -1).validate().is_err());
    }

    #[test]
    fn bad_regex() {
        let c = Chunking::CharacterTextSplitter {
            chunk_size: 10,
            chunk_overlap: 0,
            separator: "(".into(),
            is_separator_regex: true,
        };
        assert_eq!(
            c.validate().unwrap_err().state,
            SqlState::InvalidRegularExpression
        );
        let c = Chunking::CharacterTextSplitter {
            chunk_size: 10,
            chunk_overlap: 0,
            separator: "(".into(),
            is_separator_regex: false,
        };
        assert!(c.validate().is_ok());
    }
}
