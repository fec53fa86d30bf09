//! Turning documents into text (`parsing`), and the program that does it for the
//! worker, one process per document (`isolate`, `src/bin/ai_loader_parse.rs`).

pub mod isolate;
pub mod parsing;
