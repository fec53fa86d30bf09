//! `ai.formatting_python_template`: the text embedded for each chunk, written as a
//! Python `string.Template` (`$chunk`, `$title`, `${title}`, `$$` for a dollar sign).

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::part::ConfigPart;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Formatting {
    PythonTemplate {
        #[serde(default = "default_template")]
        template: String,
    },
}

fn default_template() -> String {
    "$chunk".into()
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Chunk,
    Column(&'a str),
}

fn placeholder() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Python's string.Template: $$, $identifier, ${identifier}, or an invalid `$`.
    RE.get_or_init(|| {
        Regex::new(r"\$(?:(\$)|([_A-Za-z][_A-Za-z0-9]*)|\{([_A-Za-z][_A-Za-z0-9]*)\}|())")
            .expect("placeholder pattern")
    })
}

impl Formatting {
    pub fn template(&self) -> &str {
        match self {
            Formatting::PythonTemplate { template } => template,
        }
    }

    /// The template split into text, `$chunk` and column placeholders.
    pub fn pieces(&self) -> Result<Vec<Piece<'_>>> {
        let template = self.template();
        let mut pieces = Vec::new();
        let mut last = 0;
        for caps in placeholder().captures_iter(template) {
            let whole = caps.get(0).expect("match");
            if whole.start() > last {
                pieces.push(Piece::Text(&template[last..whole.start()]));
            }
            last = whole.end();
            if caps.get(1).is_some() {
                pieces.push(Piece::Text("$"));
            } else if let Some(name) = caps.get(2).or_else(|| caps.get(3)) {
                pieces.push(match name.as_str() {
                    "chunk" => Piece::Chunk,
                    column => Piece::Column(column),
                });
            } else {
                let at = template[..whole.start()].chars().count() + 1;
                return Err(ConfigError::invalid(format!(
                    "invalid placeholder at character {at} of template \"{template}\""
                ))
                .with_hint("write $name or ${name} for a column, and $$ for a dollar sign"));
            }
        }
        if last < template.len() {
            pieces.push(Piece::Text(&template[last..]));
        }
        Ok(pieces)
    }

    /// The source columns the template names, in order of first use, without `chunk`.
    pub fn columns(&self) -> Result<Vec<String>> {
        let mut columns: Vec<String> = Vec::new();
        for piece in self.pieces()? {
            if let Piece::Column(c) = piece {
                if !columns.iter().any(|k| k == c) {
                    columns.push(c.to_string());
                }
            }
        }
        Ok(columns)
    }
}

impl ConfigPart for Formatting {
    const CONFIG_TYPE: &'static str = "formatting";
    const BUILDERS: &'static str = "ai.formatting_python_template(…)";

    fn validate(&self) -> Result<()> {
        if !self.pieces()?.contains(&Piece::Chunk) {
            return Err(ConfigError::invalid(format!(
                "template \"{}\" does not contain $chunk",
                self.template()
            ))
            .with_hint("the template must place the chunk text, e.g. '$title: $chunk'"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Formatting {
        Formatting::PythonTemplate { template: s.into() }
    }

    #[test]
    fn parses_like_python() {
        assert_eq!(
            t("$title: ${chunk}$$5 $x_1").pieces().unwrap(),
            vec![
                Piece::Column("title"),
                Piece::Text(": "),
                Piece::Chunk,
                Piece::Text("$"),
                Piece::Text("5 "),
                Piece::Column("x_1"),
            ]
        );
        assert_eq!(t("$a $b $a $chunk").columns().unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn needs_chunk() {
        let e = t("$title").validate().unwrap_err();
        assert_eq!(e.message, "template \"$title\" does not contain $chunk");
        assert!(
            t("$$chunk").validate().is_err(),
            "$$chunk is a literal dollar"
        );
        assert!(t("x $chunk").validate().is_ok());
    }

    #[test]
    fn invalid_placeholder() {
        let e = t("$chunk costs $5").validate().unwrap_err();
        assert_eq!(
            e.message,
            "invalid placeholder at character 14 of template \"$chunk costs $5\""
        );
        assert!(t("${chunk").validate().is_err());
    }
}
