//! What the parser's tests share: the limits the worker gives the parser program, with
//! PDFium's library as make setup leaves it in `.venv` (the wheel it ships in).

#![allow(dead_code)] // each test program uses its part

use std::path::Path;
use std::time::Duration;

use ai_loader_core::parsing::Parsing;
use ai_loader_parser::isolate::{Limits, ParseError};
use ai_loader_parser::parsing::{parse, Document};

pub fn limits() -> Limits {
    Limits {
        memory: 64 << 20,
        time: Duration::from_secs(20),
        text: 1 << 20,
        program: Path::new(env!("CARGO_BIN_EXE_ai_loader_parse")),
        pdfium: pdfium(),
        parsers: 8,
    }
}

fn pdfium() -> &'static Path {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/lib");
    let found = std::fs::read_dir(&venv).ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("site-packages/pypdfium2_raw/libpdfium.so"))
            .find(|p| p.exists())
    });
    let found = found
        .unwrap_or_else(|| panic!("no PDFium library under {}: run make setup", venv.display()));
    Box::leak(found.into_boxed_path())
}

/// `bytes` parsed as the worker parses a document named `name`, within `limits`.
pub fn parsed_within(limits: &Limits, bytes: Vec<u8>, name: &str) -> Result<String, ParseError> {
    let doc = Document {
        bytes,
        name: Some(name.into()),
        is_text: false,
    };
    parse(Parsing::Auto, &doc, limits).map(|parsed| parsed.text)
}

pub fn parsed(bytes: Vec<u8>, name: &str) -> Result<String, ParseError> {
    parsed_within(&limits(), bytes, name)
}

/// The children of this process running the parser program.
pub fn parsers() -> Vec<libc::pid_t> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
            stat.contains("(ai_loader_parse)") && fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

/// A process's nice value (the 19th field of /proc/<pid>/stat), while it lives.
pub fn niceness(pid: libc::pid_t) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(") ").next()?.split(' ').nth(16)?.parse().ok()
}
