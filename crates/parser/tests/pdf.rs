//! PDFs read through the parser program as the worker reads them, with PDFium: text,
//! headings from font sizes, paragraphs from gaps, table cells kept apart, tables.

use std::path::Path;

use ai_loader_parser::isolate::Limits;

mod common;
use common::{limits, parsed, parsed_within};

/// A one-page PDF showing each `(size, x, y, text)` in Helvetica, with a correct
/// cross-reference table.
fn pdf_with(runs: &[(u32, u32, u32, &str)]) -> Vec<u8> {
    let content: String = runs
        .iter()
        .map(|(size, x, y, text)| format!("BT /F1 {size} Tf {x} {y} Td ({text}) Tj ET\n"))
        .collect();
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
fn a_page_of_text() {
    let pdf = pdf_with(&[(12, 72, 720, "Embeddings from a PDF page")]);
    assert_eq!(
        parsed(pdf, "doc.pdf").unwrap(),
        "Embeddings from a PDF page"
    );
}

#[test]
fn larger_lines_are_headings_and_gaps_are_paragraphs() {
    let pdf = pdf_with(&[
        (20, 72, 740, "Tide pools"),
        (10, 72, 710, "Anemones close when the water leaves."),
        (10, 72, 698, "They open again with the tide."),
        (14, 72, 660, "Animals of the pool"),
        (10, 72, 640, "Crabs hide under stones."),
        (10, 72, 610, "Starfish eat mussels."),
    ]);
    assert_eq!(
        parsed(pdf, "doc.pdf").unwrap(),
        "# Tide pools\n\n\
         Anemones close when the water leaves.\nThey open again with the tide.\n\n\
         ## Animals of the pool\n\n\
         Crabs hide under stones.\n\n\
         Starfish eat mussels."
    );
}

#[test]
fn columns_set_apart_without_spaces_stay_apart() {
    // Table cells: each placed on the same baseline, no space character between.
    let pdf = pdf_with(&[
        (10, 72, 700, "Species"),
        (10, 200, 700, "Depth"),
        (10, 72, 688, "Anemone"),
        (10, 200, 688, "2"),
    ]);
    assert_eq!(parsed(pdf, "doc.pdf").unwrap(), "Species Depth\nAnemone 2");
}

#[test]
fn lines_in_the_same_columns_are_a_table() {
    // Three columns: left-aligned names, right-aligned numbers, a centred mark; then a
    // line of body text, set apart from the table.
    let pdf = pdf_with(&[
        (10, 72, 700, "Species"),
        (10, 200, 700, "Depth"),
        (10, 280, 700, "Seen"),
        (10, 72, 688, "Anemone"),
        (10, 206, 688, "2"),
        (10, 284, 688, "yes"),
        (10, 72, 676, "Crab"),
        (10, 200, 676, "12"),
        (10, 286, 676, "no"),
        (10, 72, 650, "Counted at low tide."),
    ]);
    assert_eq!(
        parsed(pdf, "doc.pdf").unwrap(),
        "| Species | Depth | Seen |\n| --- | --- | --- |\n| Anemone | 2 | yes |\n| Crab | 12 | no |\n\n\
         Counted at low tide."
    );
}

#[test]
fn a_numbered_listing_is_not_a_table() {
    let lines = [
        "let tide = low;",
        "open(pool);",
        "count(crabs);",
        "close(pool);",
    ];
    let runs: Vec<(u32, u32, u32, String)> = (lines.iter().enumerate())
        .flat_map(|(i, code)| {
            let y = 700 - 12 * i as u32;
            [
                (8, 60, y, format!("{}", 41 + i)),
                (10, 90, y, code.to_string()),
            ]
        })
        .collect();
    let runs: Vec<(u32, u32, u32, &str)> = runs
        .iter()
        .map(|(s, x, y, t)| (*s, *x, *y, t.as_str()))
        .collect();
    assert_eq!(
        parsed(pdf_with(&runs), "doc.pdf").unwrap(),
        "41 let tide = low;\n42 open(pool);\n43 count(crabs);\n44 close(pool);"
    );
}

#[test]
fn what_pdfium_cannot_read_is_the_documents_error_and_a_missing_engine_is_not() {
    let e = parsed(b"%PDF-1.7\n garbage".to_vec(), "doc.pdf").unwrap_err();
    assert!(e.message.starts_with("PDF could not be read: "), "{e}");
    assert!(e.lasting, "the same bytes fail the same way");
    let no_engine = Limits {
        pdfium: Path::new("/nonexistent/libpdfium.so"),
        ..limits()
    };
    let e = parsed_within(&no_engine, b"%PDF-1.7".to_vec(), "doc.pdf").unwrap_err();
    assert!(
        e.message
            .starts_with("PDFium's library could not be loaded from /nonexistent/libpdfium.so"),
        "{e}"
    );
    assert!(!e.lasting, "not the document's doing");
}
