//! Turning a loaded document into text: `parsing_auto` detects the type by magic bytes,
//! then by the name's extension (query string ignored), and extracts text from plain
//! text and Markdown, HTML, PDF and DOCX; `parsing_none` takes the bytes as UTF-8 text.

use std::fmt;

use ai_loader_core::parsing::Parsing;

use crate::isolate::{isolated, Limits};

/// A loaded document: its bytes and, where it has one, the name it was loaded by.
#[derive(Debug, Clone)]
pub struct Document {
    pub bytes: Vec<u8>,
    /// A URI or file name, for its extension.
    pub name: Option<String>,
    /// The bytes are already text (a text column): no type detection.
    pub is_text: bool,
}

/// The document types ai_loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Html,
    Pdf,
    Docx,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Text => "text",
            Kind::Html => "HTML",
            Kind::Pdf => "PDF",
            Kind::Docx => "DOCX",
        })
    }
}

impl Kind {
    /// How the parser program is told the kind.
    fn argument(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Html => "html",
            Kind::Pdf => "pdf",
            Kind::Docx => "docx",
        }
    }
}

/// What the parser program does with a document of the kind `argument` names.
pub fn parse_as(argument: &str, bytes: &[u8]) -> Result<String, String> {
    match argument {
        "html" => html(bytes),
        "pdf" => pdf(bytes),
        "docx" => docx(bytes),
        "text" => utf8(bytes),
        other => Err(format!("the parser knows no document kind \"{other}\"")),
    }
}

/// Types recognised by their first bytes, readable or not.
const MAGIC: &[(&[u8], &str)] = &[
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\x1f\x8b", "gzip archive"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "legacy Office document (.doc/.xls/.ppt)",
    ),
    (b"\x7fELF", "ELF executable"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
];

/// What the first bytes say the content is, if they say.
fn magic(bytes: &[u8]) -> Option<&'static str> {
    MAGIC
        .iter()
        .find(|(m, _)| bytes.starts_with(m))
        .map(|(_, name)| *name)
}

/// The lower-case extension of a URI or file name, query string and fragment ignored.
fn extension(name: &str) -> Option<String> {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (stem, ext) = file.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// Detects the type of a document, or says what it saw instead.
pub fn detect(doc: &Document) -> Result<Kind, String> {
    let bytes = &doc.bytes;
    match magic(bytes) {
        Some("PDF") => return Ok(Kind::Pdf),
        Some("ZIP archive") if contains(bytes, b"word/document.xml") => return Ok(Kind::Docx),
        Some(other) => return Err(format!("unsupported document type: {other}")),
        None => {}
    }
    if looks_like_html(bytes) {
        return Ok(Kind::Html);
    }
    match doc.name.as_deref().and_then(extension).as_deref() {
        Some("html" | "htm" | "xhtml") => Ok(Kind::Html),
        Some("pdf") => Err("file named .pdf is not a PDF (no %PDF- header)".into()),
        Some("docx") => Err("file named .docx is not a DOCX (not a Word ZIP package)".into()),
        _ => Ok(Kind::Text),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// UTF-8 text with a leading byte-order mark removed.
fn utf8(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => Err(format!(
            "content is not UTF-8 text: {} at byte {}",
            magic(bytes).unwrap_or("invalid byte sequence"),
            e.valid_up_to()
        )),
    }
}

/// The document's text, or why it has none, within `limits`: HTML, PDF and DOCX are
/// parsed by the parser program (see `isolate` and [`parse_as`]), and no document yields more than
/// `limits.text` bytes of text. NUL characters, which a Postgres text value cannot
/// hold, are removed.
pub fn parse(parsing: Parsing, doc: &Document, limits: &Limits) -> Result<String, String> {
    let text = if doc.is_text || parsing == Parsing::None {
        utf8(&doc.bytes)?
    } else {
        match detect(doc)? {
            Kind::Text => utf8(&doc.bytes)?,
            kind @ (Kind::Html | Kind::Pdf | Kind::Docx) => {
                isolated(limits, &[kind.argument()], &doc.bytes)?
            }
        }
    };
    if text.len() > limits.text {
        return Err(format!(
            "the document's text is larger than ai_loader.max_document_text ({} bytes)",
            limits.text
        ));
    }
    Ok(match text.contains('\0') {
        true => text.replace('\0', ""),
        false => text,
    })
}

/// How deep elements may nest in an HTML document. Browsers give up a little past 500;
/// the parser's time grows with the square of the depth (100,000 levels: most of a
/// minute), so deeper documents are refused before it runs.
const MAX_HTML_DEPTH: usize = 5_000;

/// Elements that end without an end tag: void ones, and those an opening sibling or
/// parent's end closes implicitly. They are not counted as nesting.
const UNNESTED: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb",
    "rt", "rp", "tbody", "thead", "tfoot", "colgroup", "caption", "head", "body", "html",
];

/// An upper estimate of how deep the elements of `bytes` nest: start tags minus end
/// tags, leaving out those in `UNNESTED` and self-closed ones.
fn html_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'<') {
        i += at + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let name_start = i + usize::from(closing);
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name =
            String::from_utf8_lossy(&bytes[name_start..name_start + name_len]).to_ascii_lowercase();
        if UNNESTED.contains(&name.as_str()) {
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(bytes.len(), |e| i + e);
        if closing {
            depth = depth.saturating_sub(1);
        } else if bytes[..end].last() != Some(&b'/') {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

fn html(bytes: &[u8]) -> Result<String, String> {
    if html_depth(bytes) > MAX_HTML_DEPTH {
        return Err(format!(
            "HTML could not be read: its elements nest more than {MAX_HTML_DEPTH} deep"
        ));
    }
    html2text::config::plain_no_decorate()
        .no_table_borders()
        .allow_width_overflow()
        .string_from_read(bytes, 10_000)
        .map_err(|e| format!("HTML could not be read: {e}"))
}

fn pdf(bytes: &[u8]) -> Result<String, String> {
    // A malformed PDF can make the extractor panic; that is this document's error.
    std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes))
        .map_err(|_| "PDF could not be read: the file is malformed".to_string())?
        .map_err(|e| format!("PDF could not be read: {e}"))
}

fn docx(bytes: &[u8]) -> Result<String, String> {
    use docx_rs::{DocumentChild, TableCellContent, TableChild, TableRowChild};
    let doc = docx_rs::read_docx(bytes).map_err(|e| format!("DOCX could not be read: {e}"))?;
    let mut out = String::new();
    for child in &doc.document.children {
        match child {
            DocumentChild::Paragraph(p) => paragraph(p, &mut out),
            DocumentChild::Table(t) => {
                for TableChild::TableRow(row) in &t.rows {
                    let mut cells = Vec::new();
                    for TableRowChild::TableCell(cell) in &row.cells {
                        let mut text = String::new();
                        for content in &cell.children {
                            if let TableCellContent::Paragraph(p) = content {
                                paragraph(p, &mut text);
                            }
                        }
                        cells.push(text.trim().replace('\n', " "));
                    }
                    out.push_str(&cells.join("\t"));
                    out.push('\n');
                }
                out.push('\n');
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A paragraph's text, then a blank line (paragraphs are the splitter's first separator).
fn paragraph(p: &docx_rs::Paragraph, out: &mut String) {
    use docx_rs::ParagraphChild;
    fn run(r: &docx_rs::Run, out: &mut String) {
        use docx_rs::RunChild;
        for c in &r.children {
            match c {
                RunChild::Text(t) => out.push_str(&t.text),
                RunChild::Tab(_) => out.push('\t'),
                RunChild::Break(_) | RunChild::CarriageReturn(_) => out.push('\n'),
                _ => {}
            }
        }
    }
    fn children(items: &[ParagraphChild], out: &mut String) {
        for c in items {
            match c {
                ParagraphChild::Run(r) => run(r, out),
                ParagraphChild::Hyperlink(h) => children(&h.children, out),
                ParagraphChild::Insert(i) => {
                    for c in &i.children {
                        if let docx_rs::InsertChild::Run(r) = c {
                            run(r, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    children(&p.children, out);
    out.push_str("\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For documents parsed in this process: the parser program is never started
    /// (`tests/parser.rs` starts it).
    fn limits() -> Limits {
        Limits {
            memory: 512 << 20,
            time: std::time::Duration::from_secs(30),
            text: 1 << 20,
            program: std::path::Path::new("/nonexistent/ai_loader_parse"),
        }
    }

    fn doc(bytes: &[u8], name: Option<&str>) -> Document {
        Document {
            bytes: bytes.to_vec(),
            name: name.map(str::to_string),
            is_text: false,
        }
    }

    #[test]
    fn text_and_markdown() {
        let d = doc(
            b"\xef\xbb\xbf# Title\n\nBody",
            Some("s3://b/readme.md?versionId=3"),
        );
        assert_eq!(detect(&d), Ok(Kind::Text));
        assert_eq!(
            parse(Parsing::Auto, &d, &limits()).unwrap(),
            "# Title\n\nBody"
        );
    }

    #[test]
    fn nul_characters_are_removed() {
        for parsing in [Parsing::Auto, Parsing::None] {
            let text = parse(parsing, &doc(b"hello\0 world\0", None), &limits()).unwrap();
            assert_eq!(text, "hello world");
        }
    }

    #[test]
    fn undecodable_bytes_name_what_they_are() {
        let e = parse(
            Parsing::Auto,
            &doc(b"\x89PNG\r\n\x1a\n....", Some("x.txt")),
            &limits(),
        )
        .unwrap_err();
        assert_eq!(e, "unsupported document type: PNG image");
        let e = parse(Parsing::Auto, &doc(b"caf\xe9", None), &limits()).unwrap_err();
        assert_eq!(
            e,
            "content is not UTF-8 text: invalid byte sequence at byte 3"
        );
        let e = parse(Parsing::None, &doc(b"\xff\xfeh\x00i\x00", None), &limits()).unwrap_err();
        assert!(e.contains("UTF-16"), "{e}");
        let e = parse(Parsing::Auto, &doc(b"hello", Some("report.pdf")), &limits()).unwrap_err();
        assert!(e.contains("not a PDF"), "{e}");
    }

    #[test]
    fn deep_html_is_refused_before_it_is_parsed() {
        let deep = format!(
            "<html><body>{}deep{}",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let started = std::time::Instant::now();
        assert_eq!(detect(&doc(deep.as_bytes(), None)), Ok(Kind::Html));
        let e = parse_as("html", deep.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "HTML could not be read: its elements nest more than 5000 deep"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Unclosed paragraphs and list items, void and self-closed elements do not nest.
        let flat = format!(
            "<!DOCTYPE html><html><body><ul>{}</ul>{}</body></html>",
            "<li>item<br><img src=x>".repeat(20_000),
            "<p>para<span/>".repeat(20_000)
        );
        assert_eq!(html_depth(flat.as_bytes()), 1);
        assert_eq!(
            html_depth(b"<div><div><span>x</span></div><div>y</div></div>"),
            3
        );
    }

    #[test]
    fn html_to_text() {
        let d = doc(
            b"<!DOCTYPE html><html><head><title>t</title><style>p{}</style></head><body><h1>Heading</h1><p>First <b>bold</b> para.</p><script>var x;</script></body></html>",
            None,
        );
        assert_eq!(detect(&d), Ok(Kind::Html));
        let text = parse_as("html", &d.bytes).unwrap();
        assert!(text.contains("Heading"), "{text}");
        assert!(text.contains("First bold para."), "{text}");
        assert!(!text.contains("var x"), "{text}");
        assert!(!text.contains('<'), "{text}");
    }

    #[test]
    fn extension_ignores_query() {
        assert_eq!(
            extension("s3://b/a.b/doc.HTML?x=1.pdf").as_deref(),
            Some("html")
        );
        assert_eq!(extension("s3://b/.hidden"), None);
        assert_eq!(extension("noext"), None);
    }

    /// A one-page PDF showing `text` in Helvetica, with a correct cross-reference table.
    fn pdf_with(text: &str) -> Vec<u8> {
        let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for off in offsets {
            out.extend(format!("{off:010} 00000 n \n").bytes());
        }
        out.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .bytes(),
        );
        out
    }

    #[test]
    fn pdf_to_text() {
        let d = doc(&pdf_with("Embeddings from a PDF page"), Some("s3://b/doc"));
        assert_eq!(detect(&d), Ok(Kind::Pdf));
        let text = parse_as("pdf", &d.bytes).unwrap();
        assert_eq!(text.trim(), "Embeddings from a PDF page");
    }

    #[test]
    fn malformed_pdf_is_an_item_error() {
        let e = parse_as("pdf", b"%PDF-1.7\n garbage").unwrap_err();
        assert!(e.starts_with("PDF could not be read"), "{e}");
    }

    #[test]
    fn docx_paragraphs() {
        let mut buf = std::io::Cursor::new(Vec::new());
        docx_rs::Docx::new()
            .add_paragraph(
                docx_rs::Paragraph::new().add_run(docx_rs::Run::new().add_text("Hello world.")),
            )
            .add_paragraph(
                docx_rs::Paragraph::new()
                    .add_run(docx_rs::Run::new().add_text("Second paragraph.")),
            )
            .build()
            .pack(&mut buf)
            .unwrap();
        let d = doc(&buf.into_inner(), Some("s3://b/x.docx"));
        assert_eq!(detect(&d), Ok(Kind::Docx));
        assert_eq!(
            parse_as("docx", &d.bytes).unwrap(),
            "Hello world.\n\nSecond paragraph.\n\n"
        );
    }
}
