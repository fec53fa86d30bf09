//! Turning a loaded document into text: `parsing_auto` detects the type by magic bytes
//! (and a ZIP package by what it holds), then by the name's extension (query string
//! ignored); plain text and Markdown are read here, every other kind by the parser
//! program. `parsing_none` takes the bytes as UTF-8 text.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;

use ai_loader_core::parsing::Parsing;

use crate::isolate::{isolated, Limits, ParseError};
use crate::{data, office};

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
    /// A ZIP package: Word, PowerPoint, Excel, OpenDocument or EPUB, as the parser
    /// program finds when it opens it.
    Package,
    Xls,
    Rtf,
    Csv,
    Tsv,
    Json,
    Email,
}

impl Kind {
    /// The kind's name in messages, and how the parser program is told it.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Text => ("text", "text"),
            Kind::Html => ("HTML", "html"),
            Kind::Pdf => ("PDF", "pdf"),
            Kind::Package => ("ZIP package", "zip"),
            Kind::Xls => ("XLS", "xls"),
            Kind::Rtf => ("RTF", "rtf"),
            Kind::Csv => ("CSV", "csv"),
            Kind::Tsv => ("TSV", "tsv"),
            Kind::Json => ("JSON", "json"),
            Kind::Email => ("e-mail", "eml"),
        }
    }

    /// How the parser program is told the kind, and what it needs to read it.
    fn arguments(self, limits: &Limits) -> Vec<&OsStr> {
        match self {
            Kind::Pdf => vec!["pdf".as_ref(), limits.pdfium.as_os_str()],
            kind => vec![kind.names().1.as_ref()],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.names().0)
    }
}

/// What the parser program does with a document, given the arguments
/// [`Kind::arguments`] made.
pub fn parse_as(arguments: &[String], bytes: &[u8]) -> Result<String, ParseError> {
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let text = match arguments.as_slice() {
        ["pdf", library] => return crate::pdf::text(Path::new(library), bytes),
        ["html"] => html(bytes),
        ["zip"] => office::package(bytes, html),
        ["xls"] => office::sheets(bytes, "XLS"),
        ["rtf"] => crate::rtf::text(bytes),
        ["csv"] => data::csv(bytes, false),
        ["tsv"] => data::csv(bytes, true),
        ["json"] => data::json(bytes),
        ["eml"] => crate::email::text(bytes),
        ["text"] => utf8(bytes),
        _ => {
            return Err(ParseError::passing(format!(
                "the parser knows no document kind \"{}\"",
                arguments.join(" ")
            )))
        }
    };
    Ok(text?)
}

const LEGACY_OFFICE: &str = "legacy Office document (.doc/.ppt, or .xls not named so)";

/// Types recognised by their first bytes, readable or not.
const MAGIC: &[(&[u8], &str)] = &[
    (b"%PDF-", "PDF"),
    (b"{\\rtf", "RTF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\x1f\x8b", "gzip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", LEGACY_OFFICE),
    (b"\x7fELF", "ELF executable"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"BZh", "bzip2 archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x28\xb5\x2f\xfd", "Zstandard archive"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"fLaC", "FLAC audio"),
    (b"\x1a\x45\xdf\xa3", "Matroska or WebM video"),
    (b"RIFF", "RIFF media (WAV, AVI or WebP)"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\x00asm", "WebAssembly module"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"8BPS", "Photoshop image"),
    (b"wOF2", "WOFF2 font"),
    (b"wOFF", "WOFF font"),
    (b"\xca\xfe\xba\xbe", "Java class or Mach-O executable"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
];

/// What the first bytes say the content is, if they say (an ISO media file — MP4,
/// QuickTime, HEIC, AVIF — says so at its fifth byte).
fn magic(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(4..8) == Some(b"ftyp") {
        return Some("ISO media (MP4, QuickTime, HEIC or AVIF)");
    }
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
    let extension = doc.name.as_deref().and_then(extension);
    match magic(bytes) {
        Some("PDF") => return Ok(Kind::Pdf),
        Some("RTF") => return Ok(Kind::Rtf),
        // Of the legacy Office formats, Excel's is read (by its name: they share a magic).
        Some(LEGACY_OFFICE) if extension.as_deref() == Some("xls") => return Ok(Kind::Xls),
        Some("ZIP archive") => return Ok(Kind::Package),
        Some(other) => return Err(format!("unsupported document type: {other}")),
        None => {}
    }
    if looks_like_html(bytes) {
        return Ok(Kind::Html);
    }
    match extension.as_deref() {
        Some("html" | "htm" | "xhtml") => Ok(Kind::Html),
        Some("csv") => Ok(Kind::Csv),
        Some("tsv") => Ok(Kind::Tsv),
        Some("json") => Ok(Kind::Json),
        Some("eml") => Ok(Kind::Email),
        Some("pdf") => Err("file named .pdf is not a PDF (no %PDF- header)".into()),
        Some(ext @ ("docx" | "pptx" | "xlsx" | "odt" | "ods" | "odp" | "epub")) => Err(format!(
            "file named .{ext} is not a {} (not a ZIP package)",
            ext.to_ascii_uppercase()
        )),
        _ => Ok(Kind::Text),
    }
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

/// A document's text, and where its pages end in it (offsets; none for a kind without
/// pages).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub text: String,
    pub page_ends: Vec<usize>,
}

/// The document's text, or why it has none, within `limits`: every kind but plain text
/// is parsed by the parser program (see `isolate` and [`parse_as`]), and no document
/// yields more than `limits.text` bytes of text. NUL characters, which a Postgres text value cannot
/// hold, are removed. A PDF's page ends are taken out of its text (see `pages`).
pub fn parse(parsing: Parsing, doc: &Document, limits: &Limits) -> Result<Parsed, ParseError> {
    let (text, kind) = if doc.is_text || parsing == Parsing::None {
        (utf8(&doc.bytes)?, Kind::Text)
    } else {
        match detect(doc)? {
            Kind::Text => (utf8(&doc.bytes)?, Kind::Text),
            kind => (isolated(limits, &kind.arguments(limits), &doc.bytes)?, kind),
        }
    };
    if text.len() > limits.text {
        return Err(format!(
            "the document's text is larger than ai_loader.max_document_text ({} bytes)",
            limits.text
        )
        .into());
    }
    let text = match text.contains('\0') {
        true => text.replace('\0', ""),
        false => text,
    };
    let (text, page_ends) = match kind {
        Kind::Pdf => crate::pages::take_page_ends(text),
        _ => (text, Vec::new()),
    };
    Ok(Parsed { text, page_ends })
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
            pdfium: std::path::Path::new("/nonexistent/libpdfium.so"),
            parsers: 4,
        }
    }

    fn parsed_as(kind: &str, bytes: &[u8]) -> Result<String, String> {
        parse_as(&[kind.to_string()], bytes).map_err(|e| e.message)
    }

    /// Parsed in this process: documents the parser program is never started for.
    fn parsed(parsing: Parsing, d: &Document) -> Result<String, String> {
        parse(parsing, d, &limits()).map(|p| p.text).map_err(|e| {
            assert!(e.lasting, "{e}");
            e.message
        })
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
        assert_eq!(parsed(Parsing::Auto, &d).unwrap(), "# Title\n\nBody");
    }

    #[test]
    fn nul_characters_are_removed() {
        for parsing in [Parsing::Auto, Parsing::None] {
            let text = parsed(parsing, &doc(b"hello\0 world\0", None)).unwrap();
            assert_eq!(text, "hello world");
        }
    }

    #[test]
    fn undecodable_bytes_name_what_they_are() {
        let e = parsed(Parsing::Auto, &doc(b"\x89PNG\r\n\x1a\n....", Some("x.txt"))).unwrap_err();
        assert_eq!(e, "unsupported document type: PNG image");
        let e = parsed(Parsing::Auto, &doc(b"caf\xe9", None)).unwrap_err();
        assert_eq!(
            e,
            "content is not UTF-8 text: invalid byte sequence at byte 3"
        );
        let e = parsed(Parsing::None, &doc(b"\xff\xfeh\x00i\x00", None)).unwrap_err();
        assert!(e.contains("UTF-16"), "{e}");
        let e = parsed(Parsing::Auto, &doc(b"hello", Some("report.pdf"))).unwrap_err();
        assert!(e.contains("not a PDF"), "{e}");
    }

    #[test]
    fn kinds_by_magic_by_package_and_by_name() {
        let kind = |bytes: &[u8], name: &str| detect(&doc(bytes, Some(name)));
        assert_eq!(kind(b"PK\x03\x04....", "deck.bin"), Ok(Kind::Package));
        assert_eq!(kind(b"{\\rtf1\\ansi hello}", "a.txt"), Ok(Kind::Rtf));
        let ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1....";
        assert_eq!(kind(ole, "s3://b/Book.XLS?x=1"), Ok(Kind::Xls));
        assert!(kind(ole, "a.doc")
            .unwrap_err()
            .contains("legacy Office document"));
        assert_eq!(kind(b"a,b\n1,2\n", "a.csv"), Ok(Kind::Csv));
        assert_eq!(kind(b"a\tb\n", "a.tsv"), Ok(Kind::Tsv));
        assert_eq!(kind(b"{}", "a.json"), Ok(Kind::Json));
        assert_eq!(kind(b"Subject: x\n\nhi", "a.eml"), Ok(Kind::Email));
        assert_eq!(kind(b"{}", "a.md"), Ok(Kind::Text));
        assert_eq!(
            kind(b"7z\xbc\xaf\x27\x1c....", "a.txt"),
            Err("unsupported document type: 7-Zip archive".into())
        );
        assert_eq!(
            kind(b"\x00\x00\x00\x20ftypisom", "a"),
            Err("unsupported document type: ISO media (MP4, QuickTime, HEIC or AVIF)".into())
        );
        assert_eq!(
            kind(b"plain", "deck.pptx"),
            Err("file named .pptx is not a PPTX (not a ZIP package)".into())
        );
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
        let e = parsed_as("html", deep.as_bytes()).unwrap_err();
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
        let text = parsed_as("html", &d.bytes).unwrap();
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
}
