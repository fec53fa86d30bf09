//! What parsing one small document with the parser program costs, in a process the
//! size of a worker with the local model loaded: `cargo build --release -p
//! ai-loader-parser --bins --examples && target/release/examples/parse_cost [MB]
//! [documents]` (the program is found beside this one's directory).

use std::time::Instant;

use ai_loader_core::parsing::Parsing;
use ai_loader_parser::isolate::Limits;
use ai_loader_parser::parsing::{parse, Document};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let megabytes = args.next().unwrap_or(400);
    let documents = args.next().unwrap_or(500);
    // The worker's memory: touched, so that a fork has its pages to map.
    let resident: Vec<u8> = (0..megabytes << 20).map(|i| i as u8).collect();
    std::hint::black_box(&resident);
    let limits = Limits {
        memory: 256 << 20,
        time: std::time::Duration::from_secs(30),
        text: 1 << 20,
        program: Box::leak(
            std::env::current_exe()
                .expect("this program's path")
                .with_file_name("../ai_loader_parse")
                .into_boxed_path(),
        ),
        pdfium: std::path::Path::new("/nonexistent/libpdfium.so"),
        parsers: 1,
    };
    let doc = Document {
        bytes: b"<html><body><h1>Tide pools</h1><p>Anemones close when the water leaves.</p></body></html>".to_vec(),
        name: Some("page.html".into()),
        is_text: false,
    };
    let started = Instant::now();
    for _ in 0..documents {
        parse(Parsing::Auto, &doc, &limits).expect("parsed");
    }
    let each = started.elapsed().as_secs_f64() * 1000.0 / documents as f64;
    println!("{documents} documents, process of {megabytes} MB: {each:.2} ms each");
}
