//! `formatting_python_template`: the text embedded for each chunk.

use ai_loader_core::formatting::{Formatting, Piece};

/// Fills the template with the chunk and the row's columns (their text form; NULL and
/// unknown columns as the empty string).
pub fn render(
    formatting: &Formatting,
    chunk: &str,
    column: impl Fn(&str) -> Option<String>,
) -> String {
    // The template was validated when the vectorizer was created.
    let Ok(pieces) = formatting.pieces() else {
        return chunk.to_string();
    };
    let mut out = String::with_capacity(formatting.template().len() + chunk.len());
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Chunk => out.push_str(chunk),
            Piece::Column(name) => out.push_str(&column(name).unwrap_or_default()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_chunk_and_columns() {
        let f = Formatting::PythonTemplate {
            template: "$title ($year) costs $$5: ${chunk}".into(),
        };
        let row = |c: &str| match c {
            "title" => Some("Guide".to_string()),
            _ => None,
        };
        assert_eq!(render(&f, "text", row), "Guide () costs $5: text");
    }
}
