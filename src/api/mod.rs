//! The SQL surface in schema `ai`.

mod builders;
mod catalog;
mod diagnostics;
mod embed;
mod memo;
mod search;
pub mod vectorizer;
