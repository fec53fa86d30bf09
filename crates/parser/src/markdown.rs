//! The Markdown the parsers write: headings, list items, tables and the blank lines
//! between blocks (the recursive splitter's first separator).

/// Starts a new block: a blank line after what was written (none at the very start).
pub fn end_block(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
}

/// A heading of `level` (1 to 6) on a line of its own.
pub fn heading(level: usize, text: &str, out: &mut String) {
    let text = one_line(text);
    if text.is_empty() {
        return;
    }
    end_block(out);
    out.push_str(&"#".repeat(level.clamp(1, 6)));
    out.push(' ');
    out.push_str(&text);
    out.push_str("\n\n");
}

/// A paragraph, then a blank line.
pub fn paragraph(text: &str, out: &mut String) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    end_block(out);
    out.push_str(&escaped(text));
    out.push_str("\n\n");
}

/// Text that is not a heading, its leading `#` escaped where Markdown would read one
/// (a shell prompt, a C preprocessor line).
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let hashes = text.chars().take_while(|&c| c == '#').count();
    match hashes > 0
        && hashes <= 6
        && text[hashes..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    {
        true => format!("\\{text}").into(),
        false => text.into(),
    }
}

/// A list item at `depth` (0: top level); consecutive items make one list.
pub fn list_item(depth: usize, text: &str, out: &mut String) {
    let text = one_line(text);
    if text.is_empty() {
        return;
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&"  ".repeat(depth));
    out.push_str("- ");
    out.push_str(&text);
    out.push('\n');
}

/// Rows of a table written whole; the rest are only counted.
pub const MAX_ROWS: usize = 50_000;

/// A table's rows: the first `MAX_ROWS` kept, the rest counted (so a sheet of a million
/// rows is never held whole).
#[derive(Debug, Default)]
pub struct Rows {
    kept: Vec<Vec<String>>,
    more: usize,
}

impl Rows {
    pub fn push(&mut self, row: Vec<String>) {
        match self.kept.len() < MAX_ROWS {
            true => self.kept.push(row),
            false => self.more += 1,
        }
    }
}

impl FromIterator<Vec<String>> for Rows {
    fn from_iter<I: IntoIterator<Item = Vec<String>>>(rows: I) -> Rows {
        let mut all = Rows::default();
        rows.into_iter().for_each(|row| all.push(row));
        all
    }
}

/// Rows as a Markdown table, the first row its header; empty rows and empty trailing
/// columns are left out. A line after it says how many rows were left out for
/// `MAX_ROWS`.
pub fn table(rows: &Rows, out: &mut String) {
    let kept: Vec<&Vec<String>> = (rows.kept.iter())
        .filter(|row| row.iter().any(|c| !c.trim().is_empty()))
        .collect();
    let width = kept
        .iter()
        .map(|row| {
            row.iter()
                .rposition(|c| !c.trim().is_empty())
                .map_or(0, |i| i + 1)
        })
        .max()
        .unwrap_or(0);
    if width == 0 {
        return;
    }
    end_block(out);
    for (i, row) in kept.iter().enumerate() {
        out.push('|');
        for c in 0..width {
            out.push(' ');
            out.push_str(&cell(row.get(c).map_or("", String::as_str)));
            out.push_str(" |");
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            out.push_str(&" --- |".repeat(width));
            out.push('\n');
        }
    }
    if rows.more > 0 {
        out.push_str(&format!("\n({} more rows)\n", rows.more));
    }
    out.push('\n');
}

/// A table cell's text on one line, its pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// Text on one line: its runs of whitespace, line breaks included, as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let mut out = String::new();
        heading(2, " Tide\npools ", &mut out);
        paragraph("Anemones close.", &mut out);
        paragraph("# lb build", &mut out);
        list_item(0, "crabs", &mut out);
        list_item(1, "hermit", &mut out);
        // Two rows kept (one of them empty), two more only counted.
        let rows = Rows {
            kept: vec![
                vec!["Species".into(), "Depth | m".into(), String::new()],
                vec![String::new(), String::new()],
            ],
            more: 2,
        };
        table(&rows, &mut out);
        assert_eq!(
            out,
            "## Tide pools\n\nAnemones close.\n\n\\# lb build\n\n- crabs\n  - hermit\n\n\
             | Species | Depth \\| m |\n| --- | --- |\n\n(2 more rows)\n\n"
        );
    }

    #[test]
    fn rows_past_the_bound_are_counted_once() {
        let rows: Rows = (0..MAX_ROWS + 3).map(|i| vec![i.to_string()]).collect();
        assert_eq!((rows.kept.len(), rows.more), (MAX_ROWS, 3));
        let mut out = String::new();
        table(&rows, &mut out);
        assert!(
            out.ends_with("| 49999 |\n\n(3 more rows)\n\n"),
            "{}",
            &out[out.len() - 40..]
        );
        assert_eq!(out.matches("more rows").count(), 1);
    }
}
