//! The SQL surface in schema `ai`.

mod builders;
mod diagnostics;
mod embed;
mod memo;
mod model_calls;
mod s3_sync;
mod search;
mod sql;
mod tables;
mod upgrade;
pub mod vectorizer;
pub mod wake;
