//! The text splitters, with LangChain's semantics as pgai uses them: sizes and overlaps
//! in characters, separators kept at the start of the following piece by the recursive
//! splitter and dropped (then re-inserted when merging) by the character splitter, and
//! whitespace stripped from each chunk.
//!
//! No crate splits the way LangChain does (the text-splitter crate has its own, different
//! notion of overlap), and pgai users' chunks must not change when they move, so this is
//! a port of that algorithm.

use ai_loader_config::chunking::Chunking;
use regex::Regex;

/// Splits `text` as the vectorizer's chunking says. Empty when the text is blank.
pub fn split(chunking: &Chunking, text: &str) -> Vec<String> {
    match chunking {
        Chunking::None => strip(text).map(str::to_string).into_iter().collect(),
        Chunking::CharacterTextSplitter {
            chunk_size,
            chunk_overlap,
            separator,
            is_separator_regex,
        } => {
            let s = Splitter::new(*chunk_size, *chunk_overlap);
            let pattern = Pattern::new(separator, *is_separator_regex);
            let pieces = pattern.split(text, false);
            s.merge(&pieces, separator)
        }
        Chunking::RecursiveCharacterTextSplitter {
            chunk_size,
            chunk_overlap,
            separators,
            is_separator_regex,
        } => {
            let s = Splitter::new(*chunk_size, *chunk_overlap);
            let patterns: Vec<Pattern> = separators
                .iter()
                .map(|sep| Pattern::new(sep, *is_separator_regex))
                .collect();
            s.recursive(text, &patterns)
        }
    }
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII information separators.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`, and `None` for what is left empty.
fn strip(text: &str) -> Option<&str> {
    let t = text.trim_matches(is_space);
    (!t.is_empty()).then_some(t)
}

fn len(text: &str) -> usize {
    text.chars().count()
}

/// A separator: literal text, a regular expression, or `""` (between every character).
enum Pattern {
    Empty,
    Literal(String),
    Regex(Regex),
}

impl Pattern {
    /// Separators were validated when the vectorizer was created; a regex that no
    /// longer compiles is treated as literal text.
    fn new(separator: &str, is_regex: bool) -> Self {
        match (separator.is_empty(), is_regex) {
            (true, _) => Pattern::Empty,
            (false, true) => Regex::new(separator)
                .map(Pattern::Regex)
                .unwrap_or_else(|_| Pattern::Literal(separator.to_string())),
            (false, false) => Pattern::Literal(separator.to_string()),
        }
    }

    fn found_in(&self, text: &str) -> bool {
        match self {
            Pattern::Empty => true,
            Pattern::Literal(s) => text.contains(s.as_str()),
            Pattern::Regex(r) => r.is_match(text),
        }
    }

    /// The separator matches in `text`, as byte ranges.
    fn matches(&self, text: &str) -> Vec<(usize, usize)> {
        match self {
            Pattern::Empty => Vec::new(),
            Pattern::Literal(s) => text
                .match_indices(s.as_str())
                .map(|(i, m)| (i, i + m.len()))
                .collect(),
            Pattern::Regex(r) => r.find_iter(text).map(|m| (m.start(), m.end())).collect(),
        }
    }

    /// LangChain's `_split_text_with_regex`: the pieces between separators, each
    /// separator kept at the start of the piece after it when `keep`, empty pieces
    /// dropped. The empty separator splits into characters.
    fn split(&self, text: &str, keep: bool) -> Vec<String> {
        if let Pattern::Empty = self {
            return text.chars().map(String::from).collect();
        }
        let mut pieces = Vec::new();
        let mut start = 0; // where the current piece starts (with its separator when kept)
        for (m_start, m_end) in self.matches(text) {
            pieces.push(text[start..m_start].to_string());
            start = if keep { m_start } else { m_end };
        }
        pieces.push(text[start..].to_string());
        pieces.retain(|p| !p.is_empty());
        pieces
    }
}

struct Splitter {
    size: usize,
    overlap: usize,
}

impl Splitter {
    fn new(size: i32, overlap: i32) -> Self {
        Splitter {
            size: size.max(1) as usize,
            overlap: overlap.max(0) as usize,
        }
    }

    /// LangChain's `_merge_splits`: greedily joins pieces into chunks of at most `size`
    /// characters, starting each new chunk with the last pieces of the previous one
    /// that fit in `overlap`.
    fn merge(&self, pieces: &[String], separator: &str) -> Vec<String> {
        let sep_len = len(separator);
        let mut chunks = Vec::new();
        let mut current: std::collections::VecDeque<&str> = Default::default();
        let mut total = 0usize;
        let joined_len = |current_len: usize| if current_len > 0 { sep_len } else { 0 };
        for piece in pieces {
            let piece_len = len(piece);
            if total + piece_len + joined_len(current.len()) > self.size && !current.is_empty() {
                self.push_joined(&mut chunks, &current, separator);
                while total > self.overlap
                    || (total + piece_len + joined_len(current.len()) > self.size && total > 0)
                {
                    let first = current.pop_front().expect("total > 0 means a piece");
                    total -= len(first) + if current.is_empty() { 0 } else { sep_len };
                }
            }
            current.push_back(piece);
            total += piece_len + if current.len() > 1 { sep_len } else { 0 };
        }
        self.push_joined(&mut chunks, &current, separator);
        chunks
    }

    fn push_joined(
        &self,
        chunks: &mut Vec<String>,
        current: &std::collections::VecDeque<&str>,
        separator: &str,
    ) {
        let joined = current.iter().copied().collect::<Vec<_>>().join(separator);
        if let Some(chunk) = strip(&joined) {
            chunks.push(chunk.to_string());
        }
    }

    /// LangChain's `RecursiveCharacterTextSplitter._split_text`: split on the first
    /// separator found in the text; pieces still too long are split again with the
    /// separators after it.
    fn recursive(&self, text: &str, separators: &[Pattern]) -> Vec<String> {
        let mut chosen = separators.len().saturating_sub(1);
        for (i, sep) in separators.iter().enumerate() {
            if matches!(sep, Pattern::Empty) || sep.found_in(text) {
                chosen = i;
                break;
            }
        }
        let Some(separator) = separators.get(chosen) else {
            return strip(text).map(str::to_string).into_iter().collect();
        };
        let rest = if matches!(separator, Pattern::Empty) {
            &[][..]
        } else {
            &separators[chosen + 1..]
        };
        let mut chunks = Vec::new();
        let mut good: Vec<String> = Vec::new();
        for piece in separator.split(text, true) {
            if len(&piece) < self.size {
                good.push(piece);
                continue;
            }
            if !good.is_empty() {
                chunks.extend(self.merge(&good, ""));
                good.clear();
            }
            if rest.is_empty() {
                chunks.push(piece);
            } else {
                chunks.extend(self.recursive(&piece, rest));
            }
        }
        if !good.is_empty() {
            chunks.extend(self.merge(&good, ""));
        }
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_loader_config::chunking::default_separators;

    fn recursive(size: i32, overlap: i32) -> Chunking {
        Chunking::RecursiveCharacterTextSplitter {
            chunk_size: size,
            chunk_overlap: overlap,
            separators: default_separators(),
            is_separator_regex: false,
        }
    }

    fn character(size: i32, overlap: i32, sep: &str) -> Chunking {
        Chunking::CharacterTextSplitter {
            chunk_size: size,
            chunk_overlap: overlap,
            separator: sep.into(),
            is_separator_regex: false,
        }
    }

    // Expected outputs below were worked through by hand from LangChain's algorithm;
    // the end-to-end tests compare against LangChain itself.
    #[test]
    fn character_splitter_merges_with_overlap() {
        assert_eq!(
            split(&character(7, 3, " "), "foo bar baz 123"),
            vec!["foo bar", "bar baz", "baz 123"]
        );
        assert_eq!(
            split(&character(3, 0, " "), "foo  bar"),
            vec!["foo", "bar"],
            "empty pieces between doubled separators are dropped"
        );
    }

    #[test]
    fn recursive_splitter_keeps_separators() {
        // LangChain's own test case, with its default separators.
        let c = Chunking::RecursiveCharacterTextSplitter {
            chunk_size: 10,
            chunk_overlap: 1,
            separators: ["\n\n", "\n", " ", ""].map(String::from).to_vec(),
            is_separator_regex: false,
        };
        let text = "Hi.\n\nI'm Harrison.\n\nHow? Are? You?\nOkay then f f f f.\nThis is a weird text to write, but gotta test the splittingggg some how.\n\nBye!\n\n-H.";
        assert_eq!(
            split(&c, text),
            vec![
                "Hi.",
                "I'm",
                "Harrison.",
                "How? Are?",
                "You?",
                "Okay then",
                "f f f f.",
                "This is a",
                "weird",
                "text to",
                "write,",
                "but gotta",
                "test the",
                "splitting",
                "gggg",
                "some how.",
                "Bye!",
                "-H."
            ]
        );
    }

    #[test]
    fn none_is_the_stripped_document() {
        assert_eq!(split(&Chunking::None, "  hello \n"), vec!["hello"]);
        assert!(split(&Chunking::None, " \n\t").is_empty());
        assert!(split(&recursive(800, 400), "").is_empty());
    }

    #[test]
    fn sizes_are_characters_not_bytes() {
        // 11 characters, 21 bytes: pieces "ééééé" and " ééééé" fit a size of 6 characters.
        let text = "ééééé ééééé";
        assert_eq!(split(&recursive(6, 0), text), vec!["ééééé", "ééééé"]);
        // A piece as long as the size is split further, as LangChain does (`len < size`).
        assert_eq!(split(&recursive(5, 0), text), vec!["ééééé", "éééé", "é"]);
    }

    #[test]
    fn regex_separator() {
        let c = Chunking::CharacterTextSplitter {
            chunk_size: 6,
            chunk_overlap: 0,
            separator: r"\d".into(),
            is_separator_regex: true,
        };
        // pieces "ab", "cd", "ef" merged with the pattern text itself, as LangChain does
        assert_eq!(split(&c, "ab1cd2ef"), vec!["ab\\dcd", "ef"]);
    }

    #[test]
    fn no_chunk_exceeds_size_when_separators_allow() {
        let text = "lorem ipsum dolor sit amet ".repeat(200);
        for chunk in split(&recursive(100, 20), &text) {
            assert!(len(&chunk) <= 100, "{chunk}");
        }
    }
}
