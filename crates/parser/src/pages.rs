//! Where the pages of a document that has them (a PDF) end in its text: the reader
//! ends each page with a form feed, which `parse` makes a line break (one byte for one,
//! so the offsets hold) and records. A chunk's page is the one most of it is on
//! (`ai_loader_pipeline::chunking::pages`).

/// What the PDF reader writes at the end of each page.
pub const PAGE_END: char = '\u{c}';

/// The text with its page ends made line breaks (and the last one, at the end, gone),
/// and the offsets where they were.
pub fn take_page_ends(text: String) -> (String, Vec<usize>) {
    if !text.contains(PAGE_END) {
        return (text, Vec::new());
    }
    let ends = text.match_indices(PAGE_END).map(|(i, _)| i).collect();
    let mut text = text.replace(PAGE_END, "\n");
    text.truncate(text.trim_end().len());
    (text, ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ends_become_line_breaks_where_they_were() {
        let (text, ends) = take_page_ends("one two\n\u{c}three four\u{c}five\u{c}".to_string());
        assert_eq!(text, "one two\n\nthree four\nfive");
        assert_eq!(ends, vec![8, 19, 24]);
        assert_eq!(
            take_page_ends("plain".into()),
            ("plain".to_string(), vec![])
        );
    }
}
