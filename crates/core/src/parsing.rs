//! `ai.parsing_auto`, `ai.parsing_none`, and pgai's `ai.parsing_pymupdf` and
//! `ai.parsing_docling`: how a loaded document becomes text.

use serde::{Deserialize, Serialize};

use crate::part::ConfigPart;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Parsing {
    /// Detect the type by magic bytes, then by the URI's extension.
    Auto,
    /// The document is already text.
    None,
    /// pgai's names for its PyMuPDF and docling parsers, kept in the configuration as
    /// written; the document is read as `Auto` reads it, by the built-in engines.
    Pymupdf,
    Docling,
}

impl Parsing {
    /// The builder of a pgai parser that reads binary documents only (from a column,
    /// a bytea one), as pgai checks.
    pub fn binary_only(self) -> Option<&'static str> {
        match self {
            Parsing::Pymupdf => Some("parsing_pymupdf"),
            Parsing::Docling => Some("parsing_docling"),
            Parsing::Auto | Parsing::None => None,
        }
    }
}

impl ConfigPart for Parsing {
    const CONFIG_TYPE: &'static str = "parsing";
    const BUILDERS: &'static str =
        "ai.parsing_auto(), ai.parsing_none(), ai.parsing_pymupdf() or ai.parsing_docling()";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert_eq!(
            Parsing::Auto.build().unwrap(),
            json!({"implementation": "auto", "config_type": "parsing"})
        );
        assert_eq!(
            Parsing::from_json(&json!({"implementation": "none", "config_type": "parsing"}))
                .unwrap(),
            Parsing::None
        );
        assert_eq!(
            Parsing::Pymupdf.build().unwrap(),
            json!({"implementation": "pymupdf", "config_type": "parsing"})
        );
        assert_eq!(
            Parsing::Docling.build().unwrap(),
            json!({"implementation": "docling", "config_type": "parsing"})
        );
    }
}
