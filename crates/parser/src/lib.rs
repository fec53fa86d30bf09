//! Turning documents into text (`parsing`), and the program that does it for the
//! worker, one process per document (`isolate`, `src/bin/ai_loader_parse.rs`).

mod data;
mod email;
mod epub;
pub mod isolate;
mod markdown;
mod office;
pub mod pages;
pub mod parsing;
mod pdf;
mod rtf;
mod xml;
