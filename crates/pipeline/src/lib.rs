//! ai_loader's document pipeline, free of Postgres: a row's document is loaded, parsed
//! into text, split into chunks, each chunk formatted and embedded.

pub mod batch;
pub mod chunking;
pub mod embedding;
pub mod formatting;
pub mod loading;
pub mod local;
pub mod s3_sync;
pub mod signals;

// Parsing is its own crate, so that the parser program is built from it alone.
pub use ai_loader_parser::{isolate, parsing};
