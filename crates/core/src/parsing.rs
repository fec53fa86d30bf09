//! `ai.parsing_auto` and `ai.parsing_none`: how a loaded document becomes text.

use serde::{Deserialize, Serialize};

use crate::part::ConfigPart;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Parsing {
    /// Detect the type by magic bytes, then by the URI's extension.
    Auto,
    /// The document is already text.
    None,
}

impl ConfigPart for Parsing {
    const CONFIG_TYPE: &'static str = "parsing";
    const BUILDERS: &'static str = "ai.parsing_auto() or ai.parsing_none()";
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
    }
}
