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

/// Rows as a Markdown table, the first row its header; empty rows and empty trailing
/// columns are left out. At most `max_rows` rows are written, then a line says how
/// many more there were.
pub fn table(rows: &[Vec<String>], max_rows: usize, out: &mut String) {
    let rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|row| row.iter().any(|c| !c.trim().is_empty()))
        .collect();
    let width = rows
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
    for (i, row) in rows.iter().take(max_rows).enumerate() {
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
    if rows.len() > max_rows {
        out.push_str(&format!("\n({} more rows)\n", rows.len() - max_rows));
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
        table(
            &[
                vec!["Species".into(), "Depth | m".into(), String::new()],
                vec![String::new(), String::new()],
                vec!["Anemone".into(), "2".into()],
                vec!["Crab".into(), "1".into()],
            ],
            1,
            &mut out,
        );
        assert_eq!(
            out,
            "## Tide pools\n\nAnemones close.\n\n\\# lb build\n\n- crabs\n  - hermit\n\n\
             | Species | Depth \\| m |\n| --- | --- |\n\n(2 more rows)\n\n"
        );
    }
}
