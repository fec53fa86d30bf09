//! Data files as text that keeps their structure: CSV and TSV as Markdown tables,
//! JSON pretty-printed.

use crate::markdown::{self, Rows};

/// A CSV (or, with `tab`, TSV) file as a Markdown table, its first row the header.
pub fn csv(bytes: &[u8], tab: bool) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let delimiter = match tab {
        true => b'\t',
        false => sniff_delimiter(bytes),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    let mut rows = Rows::default();
    for record in reader.records() {
        let record = record.map_err(|e| format!("CSV could not be read: {e}"))?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    let mut out = String::new();
    markdown::table(&rows, &mut out);
    Ok(out)
}

/// `,` unless the first line holds more `;` (as spreadsheets write CSV where the
/// decimal mark is a comma).
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |c: u8| line.iter().filter(|&&b| b == c).count();
    match count(b';') > count(b',') {
        true => b';',
        false => b',',
    }
}

/// A JSON document, pretty-printed (one member a line, indented by depth).
pub fn json(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("JSON could not be read: {e}"))?;
    serde_json::to_string_pretty(&value).map_err(|e| format!("JSON could not be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_a_table() {
        assert_eq!(
            csv(
                b"\xef\xbb\xbfspecies,depth\nanemone,\"2, at most\"\n",
                false
            )
            .unwrap(),
            "| species | depth |\n| --- | --- |\n| anemone | 2, at most |\n\n"
        );
        assert_eq!(
            csv(b"a;b\n1,5;2\n", false).unwrap(),
            "| a | b |\n| --- | --- |\n| 1,5 | 2 |\n\n"
        );
        assert_eq!(
            csv(b"a\tb\n1\t2\n", true).unwrap(),
            "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n"
        );
    }

    #[test]
    fn rows_past_the_bound_are_counted_once() {
        let rows = crate::markdown::MAX_ROWS + 3;
        let file: String = (0..rows).map(|i| format!("{i},x\n")).collect();
        let text = csv(file.as_bytes(), false).unwrap();
        assert!(text.ends_with("| 49999 | x |\n\n(3 more rows)\n\n"));
        assert_eq!(text.matches("more rows").count(), 1);
    }

    #[test]
    fn json_is_indented_and_bad_json_is_named() {
        assert_eq!(
            json(br#"{"a":[1,{"b":null}]}"#).unwrap(),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ]\n}"
        );
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(json(deep.as_bytes())
            .unwrap_err()
            .starts_with("JSON could not be read: recursion limit"));
    }
}
