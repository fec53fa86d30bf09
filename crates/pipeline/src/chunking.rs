//! The text splitters, with LangChain's semantics as pgai uses them: sizes and overlaps
//! in characters, separators kept at the start of the following piece by the recursive
//! splitter and dropped (then re-inserted when merging) by the character splitter, and
//! whitespace stripped from each chunk.
//!
//! No crate splits the way LangChain does (the text-splitter crate has its own, different
//! notion of overlap), and pgai users' chunks must not change when they move, so this is
//! a port of that algorithm.

use ai_loader_core::chunking::Chunking;
use regex::Regex;

/// Splits `text` as the vectorizer's chunking says: its chunks, empty when the text is
/// blank, or an error once they would hold more than `budget` bytes (a large overlap
/// repeats the text in chunk after chunk). Pieces are read from the text one at a time,
/// never all at once: memory is the chunks and one chunk's worth of pieces.
pub fn split(chunking: &Chunking, text: &str, budget: usize) -> Result<Vec<String>, String> {
    let mut out = Chunks {
        chunks: Vec::new(),
        bytes: 0,
        budget,
    };
    match chunking {
        Chunking::None => {
            if let Some(t) = strip(text) {
                out.push(t)?;
            }
        }
        Chunking::CharacterTextSplitter {
            chunk_size,
            chunk_overlap,
            separator,
            is_separator_regex,
        } => {
            let s = Splitter::new(*chunk_size, *chunk_overlap);
            let pattern = Pattern::new(separator, *is_separator_regex);
            let mut merge = Merge::new(&s, separator);
            for piece in pattern.split(text, false) {
                merge.push(piece, &mut out)?;
            }
            merge.flush(&mut out)?;
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
            s.recursive(text, &patterns, &mut out)?;
        }
    }
    Ok(out.chunks)
}

/// Each chunk's page (from 1): the page most of its text is on (the first of them on a
/// tie), the chunks found in the text in order (each begins after the one before it
/// begins). None for a text without pages, or for a chunk that is not a piece of the
/// text as it stands (a separator the character splitter put back otherwise).
pub fn pages(text: &str, chunks: &[String], page_ends: &[usize]) -> Vec<Option<i32>> {
    let mut from = 0;
    chunks
        .iter()
        .map(|chunk| {
            if page_ends.is_empty() {
                return None;
            }
            let start = from + text.get(from..)?.find(chunk.as_str())?;
            from = start + chunk.chars().next().map_or(1, char::len_utf8);
            let end = start + chunk.len();
            // The pages it spans, each with the bytes of it there (a page's end, the
            // line break where its form feed was, is its last byte).
            let first = page_ends.partition_point(|&e| e < start);
            let last = page_ends.partition_point(|&e| e < end).max(first);
            let on_page = |page: usize| {
                let page_start = if page == 0 {
                    0
                } else {
                    page_ends[page - 1] + 1
                };
                let page_end = page_ends.get(page).map_or(usize::MAX, |&e| e + 1);
                end.min(page_end).saturating_sub(start.max(page_start))
            };
            let most = (first..=last).max_by_key(|&p| (on_page(p), std::cmp::Reverse(p)))?;
            Some(most as i32 + 1)
        })
        .collect()
}

/// The chunks made so far, and the bytes they may hold.
struct Chunks {
    chunks: Vec<String>,
    bytes: usize,
    budget: usize,
}

impl Chunks {
    fn push(&mut self, chunk: &str) -> Result<(), String> {
        self.bytes += chunk.len();
        if self.bytes > self.budget {
            return Err(format!(
                "the document's chunks would hold more than {} bytes (three times ai_loader.max_document_text); \
                 a smaller chunk_overlap repeats less of the text",
                self.budget
            ));
        }
        self.chunks.push(chunk.to_string());
        Ok(())
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

    /// The separator's matches in `text`, as byte ranges, one at a time.
    fn matches<'a>(&'a self, text: &'a str) -> Box<dyn Iterator<Item = (usize, usize)> + 'a> {
        match self {
            Pattern::Empty => Box::new(std::iter::empty()),
            Pattern::Literal(s) => Box::new(
                text.match_indices(s.as_str())
                    .map(|(i, m)| (i, i + m.len())),
            ),
            Pattern::Regex(r) => Box::new(r.find_iter(text).map(|m| (m.start(), m.end()))),
        }
    }

    /// LangChain's `_split_text_with_regex`: the pieces between separators, each
    /// separator kept at the start of the piece after it when `keep`, empty pieces
    /// dropped. The empty separator splits into characters.
    fn split<'a>(&'a self, text: &'a str, keep: bool) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        if let Pattern::Empty = self {
            return Box::new(
                text.char_indices()
                    .map(move |(i, c)| &text[i..i + c.len_utf8()]),
            );
        }
        let mut matches = self.matches(text);
        let mut start = Some(0); // where the current piece starts (with its separator when kept)
        let pieces = std::iter::from_fn(move || {
            let from = start?;
            match matches.next() {
                Some((m_start, m_end)) => {
                    start = Some(if keep { m_start } else { m_end });
                    Some(&text[from..m_start])
                }
                None => {
                    start = None;
                    Some(&text[from..])
                }
            }
        });
        Box::new(pieces.filter(|p| !p.is_empty()))
    }
}

struct Splitter {
    size: usize,
    overlap: usize,
}

/// LangChain's `_merge_splits`, fed one piece at a time: greedily joins pieces into
/// chunks of at most `size` characters, starting each new chunk with the last pieces of
/// the previous one that fit in `overlap`.
struct Merge<'s, 'a> {
    splitter: &'s Splitter,
    separator: &'a str,
    sep_len: usize,
    current: std::collections::VecDeque<&'a str>,
    total: usize,
}

impl<'s, 'a> Merge<'s, 'a> {
    fn new(splitter: &'s Splitter, separator: &'a str) -> Self {
        Merge {
            splitter,
            separator,
            sep_len: len(separator),
            current: Default::default(),
            total: 0,
        }
    }

    fn joined_len(&self) -> usize {
        if self.current.is_empty() {
            0
        } else {
            self.sep_len
        }
    }

    fn push(&mut self, piece: &'a str, out: &mut Chunks) -> Result<(), String> {
        let (size, overlap) = (self.splitter.size, self.splitter.overlap);
        let piece_len = len(piece);
        if self.total + piece_len + self.joined_len() > size && !self.current.is_empty() {
            self.emit(out)?;
            while self.total > overlap
                || (self.total + piece_len + self.joined_len() > size && self.total > 0)
            {
                let first = self.current.pop_front().expect("total > 0 means a piece");
                self.total -= len(first)
                    + if self.current.is_empty() {
                        0
                    } else {
                        self.sep_len
                    };
            }
        }
        self.current.push_back(piece);
        self.total += piece_len
            + if self.current.len() > 1 {
                self.sep_len
            } else {
                0
            };
        Ok(())
    }

    fn emit(&self, out: &mut Chunks) -> Result<(), String> {
        let joined = self
            .current
            .iter()
            .copied()
            .collect::<Vec<_>>()
            .join(self.separator);
        match strip(&joined) {
            Some(chunk) => out.push(chunk),
            None => Ok(()),
        }
    }

    /// The last chunk of these pieces; the next piece starts afresh.
    fn flush(&mut self, out: &mut Chunks) -> Result<(), String> {
        self.emit(out)?;
        self.current.clear();
        self.total = 0;
        Ok(())
    }
}

impl Splitter {
    fn new(size: i32, overlap: i32) -> Self {
        Splitter {
            size: size.max(1) as usize,
            overlap: overlap.max(0) as usize,
        }
    }

    /// LangChain's `RecursiveCharacterTextSplitter._split_text`: split on the first
    /// separator found in the text; consecutive short pieces are merged, pieces still
    /// too long are split again with the separators after it.
    fn recursive(
        &self,
        text: &str,
        separators: &[Pattern],
        out: &mut Chunks,
    ) -> Result<(), String> {
        let mut chosen = separators.len().saturating_sub(1);
        for (i, sep) in separators.iter().enumerate() {
            if matches!(sep, Pattern::Empty) || sep.found_in(text) {
                chosen = i;
                break;
            }
        }
        let Some(separator) = separators.get(chosen) else {
            return match strip(text) {
                Some(t) => out.push(t),
                None => Ok(()),
            };
        };
        let rest = if matches!(separator, Pattern::Empty) {
            &[][..]
        } else {
            &separators[chosen + 1..]
        };
        let mut merge = Merge::new(self, "");
        for piece in separator.split(text, true) {
            if len(piece) < self.size {
                merge.push(piece, out)?;
                continue;
            }
            merge.flush(out)?;
            if rest.is_empty() {
                out.push(piece)?;
            } else {
                self.recursive(piece, rest, out)?;
            }
        }
        merge.flush(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_are_on_the_page_most_of_them_is_on() {
        // "one two" ends page 1 (at 8), "three four" page 2 (19), "five" page 3 (24).
        let text = "one two\n\nthree four\nfive\n";
        let ends = [8, 19, 24];
        let chunks = ["one two", "two\n\nthree four", "four\nfive", "five"].map(String::from);
        // "two\n\nthree four": 4 bytes on page 1, 12 on page 2.
        assert_eq!(
            pages(text, &chunks, &ends),
            [Some(1), Some(2), Some(2), Some(3)]
        );
        // Not a piece of the text: no page; the next one is still found.
        let chunks = ["one", "one|two", "three"].map(String::from);
        assert_eq!(pages(text, &chunks, &ends), [Some(1), None, Some(2)]);
        assert_eq!(pages("plain", &["plain".to_string()], &[]), [None]);
    }

    use super::*;

    fn chunks(chunking: &Chunking, text: &str) -> Vec<String> {
        split(chunking, text, usize::MAX).unwrap()
    }

    #[test]
    fn chunks_stay_within_their_budget() {
        // Overlap nearly as large as the chunk: each chunk starts one character later.
        let text = "abcdefghij".repeat(1000);
        let e = split(&recursive(100, 99), &text, 50_000).unwrap_err();
        assert!(e.contains("more than 50000 bytes"), "{e}");
        assert_eq!(split(&recursive(100, 0), &text, 50_000).unwrap().len(), 100);
    }
    use ai_loader_core::chunking::default_separators;

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
            chunks(&character(7, 3, " "), "foo bar baz 123"),
            vec!["foo bar", "bar baz", "baz 123"]
        );
        assert_eq!(
            chunks(&character(3, 0, " "), "foo  bar"),
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
            chunks(&c, text),
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
        assert_eq!(chunks(&Chunking::None, "  hello \n"), vec!["hello"]);
        assert!(chunks(&Chunking::None, " \n\t").is_empty());
        assert!(chunks(&recursive(800, 400), "").is_empty());
    }

    #[test]
    fn sizes_are_characters_not_bytes() {
        // 11 characters, 21 bytes: pieces "ééééé" and " ééééé" fit a size of 6 characters.
        let text = "ééééé ééééé";
        assert_eq!(chunks(&recursive(6, 0), text), vec!["ééééé", "ééééé"]);
        // A piece as long as the size is split further, as LangChain does (`len < size`).
        assert_eq!(chunks(&recursive(5, 0), text), vec!["ééééé", "éééé", "é"]);
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
        assert_eq!(chunks(&c, "ab1cd2ef"), vec!["ab\\dcd", "ef"]);
    }

    #[test]
    fn no_chunk_exceeds_size_when_separators_allow() {
        let text = "lorem ipsum dolor sit amet ".repeat(200);
        for chunk in chunks(&recursive(100, 20), &text) {
            assert!(len(&chunk) <= 100, "{chunk}");
        }
    }
}
