//! Office documents as Markdown: Word (DOCX), PowerPoint (PPTX), OpenDocument text and
//! presentations (ODT, ODP), and spreadsheets (XLSX, XLS, ODS: each sheet a table).

use std::io::{Cursor, Read};

use crate::markdown::{self, Rows};
use crate::xml::{walk, Node};

/// The most bytes one member of a package may inflate to.
const MAX_MEMBER: u64 = 256 << 20;

/// A ZIP package (OOXML, OpenDocument, EPUB) and the name of its format, for messages.
pub struct Package<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    format: &'static str,
}

impl<'a> Package<'a> {
    pub fn open(bytes: &'a [u8], format: &'static str) -> Result<Package<'a>, String> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("{format} could not be read: {e}"))?;
        Ok(Package { zip, format })
    }

    /// The package, its format now known (for messages).
    fn known_as(self, format: &'static str) -> Package<'a> {
        Package { format, ..self }
    }

    fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    /// A member's text (UTF-8), or why there is none.
    pub fn text(&mut self, name: &str) -> Result<String, String> {
        let format = self.format;
        let member = self
            .zip
            .by_name(name)
            .map_err(|e| format!("{format} could not be read: {name}: {e}"))?;
        let mut bytes = Vec::new();
        member
            .take(MAX_MEMBER + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{format} could not be read: {name}: {e}"))?;
        if bytes.len() as u64 > MAX_MEMBER {
            return Err(format!(
                "{format} could not be read: {name} inflates past {MAX_MEMBER} bytes"
            ));
        }
        String::from_utf8(bytes)
            .map_err(|_| format!("{format} could not be read: {name} is not UTF-8"))
    }

    /// Reads a member's XML with `read`.
    pub fn xml(&mut self, name: &str, read: impl FnMut(Node<'_>)) -> Result<(), String> {
        let text = self.text(name)?;
        walk(&text, read).map_err(|e| format!("{} could not be read: {name}: {e}", self.format))
    }
}

/// What a ZIP package holds, read by its format: OpenDocument and EPUB files name
/// their media type (in `mimetype`, or in the manifest's entry for the whole package),
/// Office files are known by their main part.
pub fn package(
    bytes: &[u8],
    html: impl Fn(&[u8]) -> Result<String, String>,
) -> Result<String, String> {
    let mut package = Package::open(bytes, "ZIP package")?;
    let media_type = if package.has("mimetype") {
        Some(package.text("mimetype")?.trim().to_string())
    } else if package.has("META-INF/manifest.xml") {
        let mut media_type = None;
        package.xml("META-INF/manifest.xml", |node| {
            if let Node::Open(tag) = node {
                if tag.name == "file-entry" && tag.attribute("full-path") == Some("/") {
                    media_type = tag.attribute("media-type").map(str::to_string);
                }
            }
        })?;
        media_type
    } else {
        None
    };
    const ODF: &str = "application/vnd.oasis.opendocument.";
    match media_type.as_deref() {
        Some(t) if t.starts_with(&format!("{ODF}text")) => odf(package.known_as("ODT")),
        Some(t) if t.starts_with(&format!("{ODF}presentation")) => odf(package.known_as("ODP")),
        Some(t) if t.starts_with(&format!("{ODF}spreadsheet")) => sheets(bytes, "ODS"),
        Some("application/epub+zip") => crate::epub::text(package.known_as("EPUB"), html),
        _ if package.has("word/document.xml") => docx(bytes),
        _ if package.has("ppt/presentation.xml") => pptx(package.known_as("PPTX")),
        _ if package.has("xl/workbook.xml") => sheets(bytes, "XLSX"),
        _ if package.has("META-INF/container.xml") => {
            crate::epub::text(package.known_as("EPUB"), html)
        }
        Some(other) => Err(format!("unsupported document type: ZIP package of {other}")),
        None => Err(
            "unsupported document type: ZIP archive (not a Word, PowerPoint, Excel, \
                     OpenDocument or EPUB package)"
                .into(),
        ),
    }
}

/// A Word document: headings by their style or outline level, list items by their
/// numbering level, tables as Markdown tables.
fn docx(bytes: &[u8]) -> Result<String, String> {
    use docx_rs::{DocumentChild, TableCellContent, TableChild, TableRowChild};
    let doc = docx_rs::read_docx(bytes).map_err(|e| format!("DOCX could not be read: {e}"))?;
    let mut out = String::new();
    for child in &doc.document.children {
        match child {
            DocumentChild::Paragraph(p) => {
                let text = docx_text(p);
                let property = &p.property;
                let style = property.style.as_ref().map_or("", |s| s.val.as_str());
                if let Some(level) =
                    heading_level(style, property.outline_lvl.as_ref().map(|o| o.v))
                {
                    markdown::heading(level, &text, &mut out);
                } else if let Some(numbering) = &property.numbering_property {
                    let depth = numbering.level.as_ref().map_or(0, |l| l.val);
                    markdown::list_item(depth, &text, &mut out);
                } else {
                    markdown::paragraph(&text, &mut out);
                }
            }
            DocumentChild::Table(t) => {
                let rows: Rows = (t.rows.iter())
                    .map(|TableChild::TableRow(row)| {
                        (row.cells.iter())
                            .map(|TableRowChild::TableCell(cell)| {
                                let texts: Vec<String> = (cell.children.iter())
                                    .filter_map(|c| match c {
                                        TableCellContent::Paragraph(p) => Some(docx_text(p)),
                                        _ => None,
                                    })
                                    .collect();
                                texts.join(" ")
                            })
                            .collect()
                    })
                    .collect();
                markdown::table(&rows, &mut out);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The heading level a Word paragraph style (`Title`, `Heading1` …) or outline level
/// (0-based) gives, if any.
fn heading_level(style: &str, outline: Option<usize>) -> Option<usize> {
    let style = style.to_ascii_lowercase();
    if style == "title" {
        return Some(1);
    }
    if let Some(n) = style
        .strip_prefix("heading")
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        return Some(n.clamp(1, 6));
    }
    outline.filter(|&o| o < 9).map(|o| (o + 1).min(6))
}

/// A Word paragraph's text.
fn docx_text(p: &docx_rs::Paragraph) -> String {
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
    let mut out = String::new();
    children(&p.children, &mut out);
    out
}

/// A PowerPoint presentation, slide by slide in the presentation's order: each slide
/// a `##` heading (its title, or its number), then its text, tables as Markdown tables.
fn pptx(mut package: Package<'_>) -> Result<String, String> {
    let mut order = Vec::new();
    package.xml("ppt/presentation.xml", |node| {
        if let Node::Open(tag) = node {
            if tag.name == "sldId" {
                // The slide's relationship (`r:id`), beside its number (`id`).
                order.extend(tag.prefixed("id").map(str::to_string));
            }
        }
    })?;
    let mut targets = Vec::new();
    package.xml("ppt/_rels/presentation.xml.rels", |node| {
        if let Node::Open(tag) = node {
            if let (Some(id), Some(target)) = (tag.attribute("Id"), tag.attribute("Target")) {
                targets.push((id.to_string(), target.trim_start_matches('/').to_string()));
            }
        }
    })?;
    let mut out = String::new();
    for (number, id) in order.iter().enumerate() {
        let Some((_, target)) = targets.iter().find(|(i, _)| i == id) else {
            continue;
        };
        let path = match target.strip_prefix("ppt/") {
            Some(_) => target.clone(),
            None => format!("ppt/{target}"),
        };
        let mut slide = Slide::default();
        package.xml(&path, |node| slide.read(node))?;
        slide.write(number + 1, &mut out);
    }
    Ok(out)
}

/// What a slide says: its title, its paragraphs (body placeholders' as list items),
/// and its tables.
#[derive(Default)]
struct Slide {
    title: String,
    blocks: Vec<Block>,
    /// The shape being read: its placeholder type, if any, and its paragraph.
    placeholder: Option<String>,
    paragraph: Option<String>,
    tables: Tables,
}

enum Block {
    Paragraph(String),
    Item(usize, String),
    Table(Vec<Vec<String>>),
}

impl Slide {
    fn read(&mut self, node: Node<'_>) {
        match node {
            Node::Open(tag) => match tag.name.as_str() {
                "sp" => self.placeholder = None,
                "ph" => {
                    self.placeholder = Some(tag.attribute("type").unwrap_or("body").to_string())
                }
                "tbl" => self.tables.open(),
                "tr" => self.tables.row(),
                "tc" => self.tables.cell(),
                "p" => self.paragraph = Some(String::new()),
                "br" => self.paragraph.iter_mut().for_each(|p| p.push('\n')),
                _ => {}
            },
            Node::Text(text) => {
                if let Some(p) = &mut self.paragraph {
                    p.push_str(&text);
                }
            }
            Node::Close(name) => match name.as_str() {
                "p" => {
                    let text = self.paragraph.take().unwrap_or_default();
                    if !self.tables.text(&text) {
                        match self.placeholder.as_deref() {
                            Some("title" | "ctrTitle") => {
                                if !self.title.is_empty() {
                                    self.title.push(' ');
                                }
                                self.title.push_str(text.trim());
                            }
                            Some("body" | "obj") => self.blocks.push(Block::Item(0, text)),
                            _ => self.blocks.push(Block::Paragraph(text)),
                        }
                    }
                }
                "tbl" => {
                    if let Some(table) = self.tables.close() {
                        self.blocks.push(Block::Table(table));
                    }
                }
                "sp" => self.placeholder = None,
                _ => {}
            },
        }
    }

    fn write(self, number: usize, out: &mut String) {
        let title = match self.title.trim() {
            "" => format!("Slide {number}"),
            title => title.to_string(),
        };
        markdown::heading(2, &title, out);
        write_blocks(self.blocks, out);
    }
}

/// The tables being read, innermost last (a table may sit in a cell of another): each
/// a list of rows of cells.
#[derive(Default)]
struct Tables(Vec<Vec<Vec<String>>>);

impl Tables {
    fn open(&mut self) {
        self.0.push(Vec::new());
    }

    fn row(&mut self) {
        if let Some(table) = self.0.last_mut() {
            table.push(Vec::new());
        }
    }

    fn cell(&mut self) {
        if let Some(row) = self.0.last_mut().and_then(|t| t.last_mut()) {
            row.push(String::new());
        }
    }

    /// Adds a paragraph's text to the cell being read, if one is; whether it did.
    fn text(&mut self, text: &str) -> bool {
        let Some(cell) = (self.0.last_mut())
            .and_then(|t| t.last_mut())
            .and_then(|r| r.last_mut())
        else {
            return false;
        };
        if !cell.is_empty() {
            cell.push(' ');
        }
        cell.push_str(text);
        true
    }

    /// Ends the innermost table: it, unless it sat in a cell, whose text it joins.
    fn close(&mut self) -> Option<Vec<Vec<String>>> {
        let table = self.0.pop()?;
        match !self.0.is_empty() && self.text(&table.concat().join(" ")) {
            true => None,
            false => Some(table),
        }
    }
}

fn write_blocks(blocks: Vec<Block>, out: &mut String) {
    let mut in_list = false;
    for block in blocks {
        match block {
            Block::Item(depth, text) => {
                if !in_list {
                    markdown::end_block(out);
                }
                markdown::list_item(depth, &text, out);
                in_list = !text.trim().is_empty() || in_list;
            }
            Block::Paragraph(text) => {
                markdown::paragraph(&text, out);
                in_list = false;
            }
            Block::Table(rows) => {
                markdown::table(&rows.into_iter().collect(), out);
                in_list = false;
            }
        }
    }
    markdown::end_block(out);
}

/// An OpenDocument text or presentation (`content.xml`): headings by outline level,
/// lists, tables as Markdown tables; a presentation's slides apart, their title frames
/// as `##` headings.
fn odf(mut package: Package<'_>) -> Result<String, String> {
    let mut reader = OdfReader::default();
    package.xml("content.xml", |node| reader.read(node))?;
    write_blocks(reader.blocks, &mut reader.out);
    Ok(reader.out)
}

#[derive(Default)]
struct OdfReader {
    out: String,
    blocks: Vec<Block>,
    /// The paragraph or heading being read, and its heading level.
    text: Option<(String, Option<usize>)>,
    lists: usize,
    tables: Tables,
    /// Inside a presentation's title frame.
    title_frame: bool,
}

impl OdfReader {
    fn read(&mut self, node: Node<'_>) {
        match node {
            Node::Open(tag) => match tag.name.as_str() {
                "h" => {
                    let level = tag.attribute("outline-level").and_then(|l| l.parse().ok());
                    self.text = Some((String::new(), Some(level.unwrap_or(1))));
                }
                "p" if self.text.is_none() => {
                    self.text = Some((String::new(), self.title_frame.then_some(2)));
                }
                "list" => self.lists += 1,
                "table" => self.tables.open(),
                "table-row" => self.tables.row(),
                "table-cell" | "covered-table-cell" => self.tables.cell(),
                "s" => self.push(
                    &" ".repeat(
                        tag.attribute("c")
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(1)
                            .min(100),
                    ),
                ),
                "tab" => self.push("\t"),
                "line-break" => self.push("\n"),
                "page" => {
                    write_blocks(std::mem::take(&mut self.blocks), &mut self.out);
                }
                "frame" => {
                    self.title_frame = matches!(tag.attribute("class"), Some("title" | "subtitle"))
                }
                _ => {}
            },
            Node::Text(text) => self.push(&text),
            Node::Close(name) => match name.as_str() {
                "h" | "p" => {
                    let Some((text, level)) = self.text.take() else {
                        return;
                    };
                    if self.tables.text(&text) {
                        return;
                    }
                    if let Some(level) = level {
                        write_blocks(std::mem::take(&mut self.blocks), &mut self.out);
                        markdown::heading(level, &text, &mut self.out);
                    } else if self.lists > 0 {
                        self.blocks.push(Block::Item(self.lists - 1, text));
                    } else {
                        self.blocks.push(Block::Paragraph(text));
                    }
                }
                "list" => self.lists = self.lists.saturating_sub(1),
                "table" => {
                    if let Some(table) = self.tables.close() {
                        self.blocks.push(Block::Table(table));
                    }
                }
                "frame" => self.title_frame = false,
                _ => {}
            },
        }
    }

    fn push(&mut self, text: &str) {
        if let Some((t, _)) = &mut self.text {
            t.push_str(text);
        }
    }
}

/// A spreadsheet (XLSX, XLS or ODS): each sheet a `##` heading and a Markdown table of
/// its used cells, its first row the header, at most `markdown::MAX_ROWS` rows. A sheet that
/// cannot be read says so in its place, unless none can be.
pub fn sheets(bytes: &[u8], format: &'static str) -> Result<String, String> {
    use calamine::Reader;
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| format!("{format} could not be read: {e}"))?;
    let mut out = String::new();
    let mut unread = Vec::new();
    let names = workbook.sheet_names();
    for name in &names {
        markdown::heading(2, name, &mut out);
        let range = match workbook.worksheet_range(name) {
            Ok(range) => range,
            Err(e) => {
                markdown::paragraph(&format!("(this sheet could not be read: {e})"), &mut out);
                unread.push(format!("sheet \"{name}\": {e}"));
                continue;
            }
        };
        let rows: Rows = range
            .rows()
            .map(|row| row.iter().map(cell).collect())
            .collect();
        markdown::table(&rows, &mut out);
    }
    if !names.is_empty() && unread.len() == names.len() {
        return Err(format!("{format} could not be read: {}", unread.join("; ")));
    }
    Ok(out)
}

/// A cell's text: a date as a date, a time of day as a time.
fn cell(value: &calamine::Data) -> String {
    match value {
        calamine::Data::DateTime(d) if !d.is_duration() => match d.as_datetime() {
            Some(t)
                if t.date() <= chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default() =>
            {
                t.time().to_string()
            }
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
            Some(t) => t.to_string(),
            None => value.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn html(bytes: &[u8]) -> Result<String, String> {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// A ZIP package of these members, each deflated.
    fn zipped(members: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn word_headings_lists_and_tables() {
        use docx_rs::{Docx, IndentLevel, NumberingId, Paragraph, Run, Table, TableCell, TableRow};
        let p = |text: &str| Paragraph::new().add_run(Run::new().add_text(text));
        let cell = |text: &str| TableCell::new().add_paragraph(p(text));
        let mut packed = Cursor::new(Vec::new());
        Docx::new()
            .add_paragraph(p("Tide pools").style("Title"))
            .add_paragraph(p("Animals").style("Heading2"))
            .add_paragraph(p("Anemones close.").style("Normal"))
            .add_paragraph(p("crabs").numbering(NumberingId::new(1), IndentLevel::new(0)))
            .add_paragraph(p("hermit").numbering(NumberingId::new(1), IndentLevel::new(1)))
            .add_table(Table::new(vec![
                TableRow::new(vec![cell("Species"), cell("Depth")]),
                TableRow::new(vec![cell("Anemone"), cell("2")]),
            ]))
            .build()
            .pack(&mut packed)
            .unwrap();
        assert_eq!(
            package(&packed.into_inner(), html).unwrap(),
            "# Tide pools\n\n## Animals\n\nAnemones close.\n\n- crabs\n  - hermit\n\n\
             | Species | Depth |\n| --- | --- |\n| Anemone | 2 |\n\n"
        );
    }

    #[test]
    fn powerpoint_slides_in_the_presentations_order() {
        let slide = |title: &str, body: &str| {
            format!(
                r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree>
                <p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>{title}</a:t></a:r></a:p></p:txBody></p:sp>
                <p:sp><p:nvSpPr><p:nvPr><p:ph idx="1"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>{body}</a:t></a:r></a:p></p:txBody></p:sp>
                <p:graphicFrame><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>k</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>v</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></p:graphicFrame>
                </p:spTree></p:cSld></p:sld>"#
            )
        };
        let deck = zipped(&[
            (
                "ppt/presentation.xml",
                r#"<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId2"/></p:sldIdLst></p:presentation>"#,
            ),
            (
                "ppt/_rels/presentation.xml.rels",
                r#"<Relationships><Relationship Id="rId2" Target="slides/slide1.xml"/><Relationship Id="rId3" Target="slides/slide2.xml"/></Relationships>"#,
            ),
            ("ppt/slides/slide1.xml", &slide("Second", "later")),
            ("ppt/slides/slide2.xml", &slide("First", "sooner")),
        ]);
        assert_eq!(
            package(&deck, html).unwrap(),
            "## First\n\n- sooner\n\n| k | v |\n| --- |\n\n## Second\n\n- later\n\n| k | v |\n| --- |\n\n"
                .replace("| --- |\n", "| --- | --- |\n")
        );
    }

    #[test]
    fn opendocument_by_its_manifest_when_mimetype_is_missing() {
        let content = r#"<office:document-content xmlns:office="o" xmlns:text="t" xmlns:table="b"><office:body><office:text>
            <text:h text:outline-level="1">Tide pools</text:h><text:p>Anemones<text:s text:c="2"/>close.</text:p>
            <text:list><text:list-item><text:p>crabs</text:p></text:list-item></text:list>
            <table:table><table:table-row><table:table-cell><text:p>a</text:p></table:table-cell><table:table-cell><text:p>b</text:p></table:table-cell></table:table-row></table:table>
            </office:text></office:body></office:document-content>"#;
        let odt = zipped(&[
            (
                "META-INF/manifest.xml",
                r#"<manifest:manifest xmlns:manifest="m"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/></manifest:manifest>"#,
            ),
            ("content.xml", content),
        ]);
        assert_eq!(
            package(&odt, html).unwrap(),
            "# Tide pools\n\nAnemones  close.\n\n- crabs\n\n| a | b |\n| --- | --- |\n\n"
        );
        let unknown = zipped(&[("data.bin", "x")]);
        assert!(package(&unknown, html)
            .unwrap_err()
            .contains("ZIP archive (not a Word"));
        let other = zipped(&[("mimetype", "application/vnd.oasis.opendocument.graphics")]);
        assert_eq!(
            package(&other, html).unwrap_err(),
            "unsupported document type: ZIP package of application/vnd.oasis.opendocument.graphics"
        );
    }
}
