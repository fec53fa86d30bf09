//! ai_loader's configurations and the SQL built from them, free of Postgres: the
//! pgai-shaped JSON the `ai.*` builders return and its validation, the plan
//! `ai.create_vectorizer` carries out (`vectorizer`, `ddl`), a catalog row decoded
//! (`catalog`), and every statement the worker runs (`queue`, `s3_sync::sql`,
//! `progress`, `error_log`, `search`), each unit-tested here. The worker reads the same
//! types back from `ai.vectorizer.config`.

pub mod backoff;
pub mod catalog;
pub mod chunking;
pub mod ddl;
pub mod destination;
pub mod embedding;
pub mod error;
pub mod error_log;
pub mod formatting;
pub mod ident;
pub mod indexing;
pub mod loading;
pub mod model_calls;
pub mod parsing;
pub mod part;
pub mod progress;
pub mod queue;
pub mod s3_sync;
pub mod scheduling;
pub mod search;
pub mod text_indexing;
pub mod vectorizer;

pub use error::{ConfigError, Result, SqlState};
pub use part::ConfigPart;
