//! The SQL surface in schema `ai`.

mod builders;
mod catalog;
mod diagnostics;
mod embed;
pub mod vectorizer;
