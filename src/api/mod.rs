//! The SQL surface in schema `ai`.

mod builders;
mod catalog;
mod diagnostics;
mod embed;
mod memo;
mod s3_sync;
mod search;
mod tables;
mod upgrade;
pub mod vectorizer;
