//! The parser program (`ai_loader_parse`) as the worker starts it: documents of each
//! kind read through it, and a document that would take all memory costs itself only.

use std::time::{Duration, Instant};

use ai_loader_parser::isolate::{isolated, Limits, ParseError};

mod common;
use common::{limits, parsed, parsed_within, parsers};

fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let mut document = docx_rs::Docx::new();
    for text in paragraphs {
        document = document
            .add_paragraph(docx_rs::Paragraph::new().add_run(docx_rs::Run::new().add_text(*text)));
    }
    let mut stored = std::io::Cursor::new(Vec::new());
    document.build().pack(&mut stored).unwrap();
    // Packed again with each part compressed, as Word writes it.
    let mut parts = zip::ZipArchive::new(stored).unwrap();
    let mut packed = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..parts.len() {
        let mut part = parts.by_index(i).unwrap();
        packed
            .start_file(part.name().to_string(), deflated)
            .unwrap();
        std::io::copy(&mut part, &mut packed).unwrap();
    }
    packed.finish().unwrap().into_inner()
}

#[test]
fn each_kind_is_read_by_the_program() {
    let html = parsed(
        b"<html><body><h1>Tide pools</h1><p>Anemones close.</p></body></html>".to_vec(),
        "a.html",
    );
    assert_eq!(html.unwrap().trim(), "# Tide pools\n\nAnemones close.");
    assert_eq!(
        parsed(docx(&["Hello world.", "Second."]), "x.docx").unwrap(),
        "Hello world.\n\nSecond.\n\n"
    );
    assert_eq!(
        isolated(&limits(), &["spreadsheet"], b"").unwrap_err(),
        ParseError::passing("the parser knows no document kind \"spreadsheet\"")
    );
    assert_eq!(
        isolated::<&str>(&limits(), &[], b"").unwrap_err(),
        ParseError::passing("the parser knows no document kind \"\"")
    );
}

#[test]
fn a_document_that_inflates_past_the_memory_limit_costs_itself_only() {
    // 200 MB of text, a few hundred kB compressed: reading it takes more than the 64 MB
    // the program may use beyond the document.
    let bomb = docx(&[&"a".repeat(200 << 20)]);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let started = Instant::now();
    let e = parsed(bomb, "bomb.docx").unwrap_err();
    assert!(e.message.contains("ai_loader.parse_memory"), "{e}");
    assert!(e.lasting, "the same bytes take as much again");
    assert!(started.elapsed() < Duration::from_secs(15));
    // The next document is read as ever.
    assert_eq!(parsed(docx(&["After."]), "y.docx").unwrap(), "After.\n\n");
}

#[test]
fn a_parser_started_by_a_thread_that_blocks_signals_still_dies_of_them() {
    // The worker's threads block every signal, and a spawned program inherits the mask;
    // the postmaster's shutdown signals must still end a parser at once.
    let page = "<p>Anemones close when the water leaves the pool.</p>".repeat(400_000);
    let parsing = std::thread::spawn(move || {
        // SAFETY: this thread's own mask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        }
        let started = Instant::now();
        // Memory enough to parse it whole: only the signal stops it.
        let roomy = Limits {
            memory: 4 << 30,
            ..limits()
        };
        let result = parsed_within(&roomy, page.into_bytes(), "big.html");
        (result, started.elapsed())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(&pid) = parsers().first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no parser started");
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let (result, took) = parsing.join().unwrap();
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e == &ParseError::passing("the parser was stopped by signal 15")),
        "{result:?} after {took:?}"
    );
}
