//! PDF documents, read by PDFium (the PDF engine of Chromium), whose library the parser
//! program loads at run time. Its text comes out as Markdown: PDFium gives each
//! character with its box and font size; the characters make lines, a line set in a
//! larger size than the body's becomes a heading (`#` for the largest such size, `##`
//! for the next, and so on), and a gap before a line of more than 1.6 times its size
//! (wider than the line spacing) starts a paragraph. Lines whose text stands in the same
//! columns, set apart by wide gaps, make a Markdown table.

use std::path::Path;

use pdfium_render::prelude::*;

use crate::isolate::ParseError;
use crate::markdown;
use crate::pages::PAGE_END;

/// Sizes are compared in half points.
type Size = u16;

/// A heading is set at least this much larger than the body text.
const HEADING_RATIO: f32 = 1.15;
/// A heading holds at most this many characters, however many lines it is set on.
const HEADING_CHARS: usize = 150;
/// Levels of heading kept apart; smaller sizes share the deepest.
const HEADING_LEVELS: usize = 6;
/// A gap wider than this many times the text's size sets two cells of a line apart (a
/// word space is about a quarter of it, LaTeX's column gap more than it).
const CELL_GAP: f32 = 1.0;
/// A table has at least this many lines.
const TABLE_ROWS: usize = 3;

/// The text of the PDF `bytes`, as Markdown.
pub fn text(library: &Path, bytes: &[u8]) -> Result<String, ParseError> {
    let bindings = Pdfium::bind_to_library(library).map_err(|e| {
        ParseError::passing(format!(
            "PDFium's library could not be loaded from {} ({e}); make setup installs it",
            library.display()
        ))
    })?;
    let pdfium = Pdfium::new(bindings);
    let document = pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(|e| format!("PDF could not be read: {}", reason(e)))?;
    let mut lines = Vec::new();
    for (number, page) in document.pages().iter().enumerate() {
        let text = page
            .text()
            .map_err(|e| format!("PDF could not be read: page {}: {}", number + 1, reason(e)))?;
        page_lines(&text, &mut lines);
        lines.push(Line::page_end());
    }
    Ok(markdown(&lines))
}

/// What PDFium's error says, in words.
fn reason(e: PdfiumError) -> String {
    use PdfiumInternalError::*;
    match e {
        PdfiumError::PdfiumLibraryInternalError(internal) => match internal {
            FormatError => "it is not a PDF, or it is damaged".into(),
            PasswordError => "it is encrypted with a password".into(),
            SecurityError => "its encryption is of a kind PDFium does not read".into(),
            PageError => "a page could not be read".into(),
            FileError | Unknown => "PDFium could not read it".into(),
        },
        other => format!("{other:?}"),
    }
}

/// A line of a page: its text, its cells, the size most of its letters are set in, how
/// many letters it has and how many of them are in that size, and whether a wider gap
/// than its line spacing comes before it.
#[derive(Debug, Default)]
struct Line {
    text: String,
    cells: Vec<Cell>,
    size: Size,
    letters: usize,
    sized: usize,
    gap_before: bool,
    page_end: bool,
}

/// Text of a line set apart from the rest by wide gaps: where it starts in the line's
/// text, and where it stands on the page.
#[derive(Debug, Clone, Copy)]
struct Cell {
    start: usize,
    left: f32,
    right: f32,
}

impl Line {
    /// The texts of its cells.
    fn cell_texts(&self) -> Vec<String> {
        let ends = self
            .cells
            .iter()
            .skip(1)
            .map(|c| c.start)
            .chain([self.text.len()]);
        (self.cells.iter().zip(ends))
            .map(|(cell, end)| self.text[cell.start..end].trim().to_string())
            .collect()
    }

    /// Whether this line and the next stand in the same columns: as many cells, at
    /// least two, each beside (overlapping) the one above it, whether the column is
    /// set left, right or centred.
    fn in_columns_with(&self, next: &Line) -> bool {
        self.cells.len() >= 2
            && self.cells.len() == next.cells.len()
            && (self.cells.iter().zip(&next.cells))
                .all(|(a, b)| a.left <= b.right && b.left <= a.right)
    }
}

impl Line {
    fn page_end() -> Line {
        Line {
            page_end: true,
            ..Line::default()
        }
    }
}

/// Reads the page's characters into lines. PDFium ends its lines with a generated
/// line break and puts generated spaces where it sees a gap between words; a gap it
/// did not mark (columns of a table set without spaces) is given a space here, a line
/// break between characters on one baseline is a space, and a character on another
/// baseline without a line break starts a new line.
fn page_lines(text: &PdfPageText, lines: &mut Vec<Line>) {
    let mut reader = LineReader::default();
    let mut units = Utf16::default();
    for ch in text.chars().iter() {
        let Some(c) = units.push(ch.unicode_value()) else {
            continue;
        };
        match c {
            '\r' => {}
            '\n' => reader.pending_break = true,
            // PDFium's mark for a hyphen that ends a line.
            '\u{2}' => reader.line.text.push('-'),
            c if c.is_whitespace() => reader.spaced = true,
            c if c.is_control() => {}
            c => match ch.loose_bounds() {
                Ok(bounds) => {
                    let mark = Mark {
                        left: bounds.left().value,
                        right: bounds.right().value,
                        baseline: bounds.bottom().value,
                        size: ch.scaled_font_size().value.max(1.0),
                    };
                    reader.visible(c, mark, lines);
                }
                Err(_) => reader.line.text.push(c),
            },
        }
    }
    reader.finish(lines);
}

/// PDFium's characters are UTF-16 units: one beyond the Basic Multilingual Plane (a
/// mathematical letter, an emoji) comes as two halves, joined here.
#[derive(Default)]
struct Utf16 {
    high_half: Option<u32>,
}

impl Utf16 {
    /// The character `unit` completes, if any.
    fn push(&mut self, unit: u32) -> Option<char> {
        let code = match (self.high_half.take(), unit) {
            (_, 0xD800..=0xDBFF) => {
                self.high_half = Some(unit);
                return None;
            }
            (Some(high), 0xDC00..=0xDFFF) => 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00),
            (_, unit) => unit,
        };
        char::from_u32(code)
    }
}

/// Where a visible character stands.
#[derive(Clone, Copy)]
struct Mark {
    left: f32,
    right: f32,
    baseline: f32,
    size: f32,
}

/// The line being read, the sizes of its letters, and what came since its last
/// visible character.
#[derive(Default)]
struct LineReader {
    line: Line,
    sizes: Tally,
    last: Option<Mark>,
    /// The baseline and size of the previous line's first character.
    previous_line: Option<(f32, f32)>,
    spaced: bool,
    pending_break: bool,
}

impl LineReader {
    fn visible(&mut self, c: char, mark: Mark, lines: &mut Vec<Line>) {
        if let Some(last) = self.last {
            let same_baseline =
                (mark.baseline - last.baseline).abs() < 0.2 * last.size.min(mark.size);
            let gap = mark.left - last.right;
            if !same_baseline
                && (self.pending_break
                    || (mark.baseline - last.baseline).abs() > last.size.max(mark.size))
            {
                self.finish(lines);
            } else {
                if self.spaced || self.pending_break || gap > 0.25 * last.size.min(mark.size) {
                    self.line.text.push(' ');
                }
                if gap > CELL_GAP * last.size.min(mark.size) {
                    self.line.cells.push(Cell {
                        start: self.line.text.len(),
                        left: mark.left,
                        right: mark.right,
                    });
                }
            }
        }
        self.spaced = false;
        self.pending_break = false;
        if self.line.text.is_empty() {
            if let Some((baseline, size)) = self.previous_line {
                self.line.gap_before = baseline - mark.baseline > 1.6 * size.max(mark.size);
            }
            self.previous_line = Some((mark.baseline, mark.size));
            self.line.cells.push(Cell {
                start: 0,
                left: mark.left,
                right: mark.right,
            });
        }
        if let Some(cell) = self.line.cells.last_mut() {
            cell.right = cell.right.max(mark.right);
        }
        if c.is_alphanumeric() {
            let size = (mark.size * 2.0).round().min(Size::MAX as f32) as Size;
            self.sizes.add(size, 1);
            self.line.letters += 1;
        }
        self.line.text.push(c);
        self.last = Some(mark);
    }

    /// Ends the line being read: kept if it has text.
    fn finish(&mut self, lines: &mut Vec<Line>) {
        if let Some((size, count)) = std::mem::take(&mut self.sizes).most() {
            self.line.size = size;
            self.line.sized = count;
        }
        let line = std::mem::take(&mut self.line);
        if !line.text.trim().is_empty() {
            lines.push(line);
        }
    }
}

/// Letters counted by the size they are set in.
#[derive(Default)]
struct Tally(Vec<(Size, usize)>);

impl Tally {
    fn add(&mut self, size: Size, letters: usize) {
        match self.0.iter_mut().find(|(s, _)| *s == size) {
            Some((_, count)) => *count += letters,
            None => self.0.push((size, letters)),
        }
    }

    /// The size most letters are set in, and how many are.
    fn most(&self) -> Option<(Size, usize)> {
        self.0.iter().copied().max_by_key(|&(_, count)| count)
    }
}

/// The body's size: the one most letters of the document are set in.
fn body_size(lines: &[Line]) -> Size {
    let mut tally = Tally::default();
    for line in lines.iter().filter(|l| l.sized > 0) {
        tally.add(line.size, line.sized);
    }
    tally.most().map_or(0, |(size, _)| size)
}

/// Whether a line may be (part of) a heading: set larger than the body, most of its
/// letters in that size, a letter in it, and not a table of contents' entry (dot
/// leaders).
fn may_head(line: &Line, body: Size) -> bool {
    let text = line.text.trim();
    body > 0
        && line.size as f32 >= body as f32 * HEADING_RATIO
        && line.sized * 5 >= line.letters * 4
        && text.chars().any(char::is_alphabetic)
        && !has_leaders(text)
}

/// Whether a line has dot leaders, as a table of contents' entries have.
fn has_leaders(text: &str) -> bool {
    text.contains(". . .") || text.contains("....")
}

/// What a line is in the Markdown: text, a heading, the next line of the heading above,
/// the first row of a table, or its next row.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Text,
    Heading,
    More,
    Table,
    Row,
}

/// Each line's role. A heading is a run of lines that may head, of one size with no gap
/// between them, and short enough together.
fn roles(lines: &[Line]) -> Vec<Role> {
    let body = body_size(lines);
    let may: Vec<bool> = lines.iter().map(|l| may_head(l, body)).collect();
    let mut roles = vec![Role::Text; lines.len()];
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        if may[start] {
            while end < lines.len()
                && may[end]
                && lines[end].size == lines[start].size
                && !lines[end].gap_before
            {
                end += 1;
            }
            let chars: usize = lines[start..end]
                .iter()
                .map(|l| l.text.trim().chars().count())
                .sum();
            if chars <= HEADING_CHARS {
                roles[start] = Role::Heading;
                roles[start + 1..end].fill(Role::More);
            }
        }
        start = end;
    }
    tables(lines, &mut roles);
    roles
}

/// Marks the tables among the text lines: runs of at least `TABLE_ROWS` lines, each in
/// the columns of the one before; not a table of contents (dot leaders), nor a listing
/// whose lines are numbered.
fn tables(lines: &[Line], roles: &mut [Role]) {
    let row: Vec<bool> = (lines.iter().zip(roles.iter()))
        .map(|(l, &r)| r == Role::Text && !has_leaders(&l.text))
        .collect();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        while end < lines.len()
            && row[end - 1]
            && row[end]
            && lines[end - 1].in_columns_with(&lines[end])
        {
            end += 1;
        }
        if end - start >= TABLE_ROWS && !numbered(&lines[start..end]) {
            roles[start] = Role::Table;
            roles[start + 1..end].fill(Role::Row);
        }
        start = end;
    }
}

/// Whether the lines are a numbered listing: at least half of them begin with a number,
/// most of those one more than the number before (a line wrapped in the listing has
/// none; listings one after another start again).
fn numbered(lines: &[Line]) -> bool {
    let number = |l: &Line| l.text.split_whitespace().next()?.parse::<u64>().ok();
    let numbers: Vec<u64> = lines.iter().filter_map(number).collect();
    let counting = numbers.windows(2).filter(|w| w[1] == w[0] + 1).count();
    numbers.len() * 2 >= lines.len() && counting * 3 >= (numbers.len() - 1) * 2
}

/// What a run of lines is being gathered into: a heading set on several lines, or a
/// table's rows.
#[derive(Default)]
struct Gathered {
    heading: Option<(Size, String)>,
    table: markdown::Rows,
}

impl Gathered {
    /// Writes what was gathered, if anything, and starts again.
    fn write(&mut self, level: &impl Fn(Size) -> usize, out: &mut String) {
        if let Some((size, words)) = self.heading.take() {
            markdown::heading(level(size), &words, out);
        }
        markdown::table(&std::mem::take(&mut self.table), out);
    }
}

/// The lines as Markdown: headings by size (a heading set on several lines is one),
/// paragraphs apart, pages apart.
fn markdown(lines: &[Line]) -> String {
    let roles = roles(lines);
    let mut heading_sizes: Vec<Size> = (lines.iter().zip(&roles))
        .filter(|(_, &role)| role == Role::Heading)
        .map(|(l, _)| l.size)
        .collect();
    heading_sizes.sort_unstable_by(|a, b| b.cmp(a));
    heading_sizes.dedup();
    let level = |size: Size| {
        heading_sizes
            .iter()
            .position(|&s| s == size)
            .map_or(HEADING_LEVELS, |i| i + 1)
            .min(HEADING_LEVELS)
    };
    let mut out = String::new();
    let mut gathered = Gathered::default();
    for (line, &role) in lines.iter().zip(&roles) {
        let text = line.text.trim();
        match role {
            Role::More => {
                if let Some((_, words)) = &mut gathered.heading {
                    words.push(' ');
                    words.push_str(text);
                }
                continue;
            }
            Role::Row => {
                gathered.table.push(line.cell_texts());
                continue;
            }
            _ => {}
        }
        gathered.write(&level, &mut out);
        match role {
            Role::Heading => gathered.heading = Some((line.size, text.to_string())),
            Role::Table => gathered.table.push(line.cell_texts()),
            _ if line.page_end => {
                markdown::end_block(&mut out);
                out.push(PAGE_END);
            }
            _ => {
                if line.gap_before {
                    markdown::end_block(&mut out);
                }
                out.push_str(&markdown::escaped(text));
                out.push('\n');
            }
        }
    }
    gathered.write(&level, &mut out);
    // The last page's end stays: every page ends with one.
    let trimmed = out.trim_end().len();
    let last_page_end = out.ends_with(PAGE_END);
    out.truncate(trimmed);
    if last_page_end {
        out.push(PAGE_END);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_beyond_the_basic_plane_are_joined_from_their_halves() {
        let mut units = Utf16::default();
        let text: String = "a\u{1D44E}b\u{1F600}"
            .encode_utf16()
            .filter_map(|u| units.push(u as u32))
            .collect();
        assert_eq!(text, "a𝑎b😀");
        // A half without its other half is dropped, not the character after it.
        let lone: String = [0xD835, 'x' as u32, 0xDC4E, 'y' as u32]
            .into_iter()
            .filter_map(|u| units.push(u))
            .collect();
        assert_eq!(lone, "xy");
    }
}
