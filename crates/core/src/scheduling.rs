//! `ai.scheduling_default`/`ai.scheduling_none`/`ai.scheduling_timescaledb` and
//! `ai.processing_default`.
//!
//! ai_loader's worker runs inside Postgres and serves every enabled vectorizer within
//! about a second of a change, so scheduling is recorded for pgai compatibility only (a
//! TimescaleDB job's interval included: no job is made);
//! `ai.disable_vectorizer_schedule` is what pauses a vectorizer.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::part::{in_range, ConfigPart};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scheduling {
    Default,
    None,
    /// pgai's TimescaleDB job, as its builder writes it (the interval and start as
    /// Postgres prints them); `job_id` where a configuration made by pgai has one.
    Timescaledb {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule_interval: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_start: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fixed_schedule: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_id: Option<i64>,
    },
}

impl ConfigPart for Scheduling {
    const CONFIG_TYPE: &'static str = "scheduling";
    const BUILDERS: &'static str =
        "ai.scheduling_default(), ai.scheduling_none() or ai.scheduling_timescaledb(…)";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Processing {
    Default {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch_size: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        concurrency: Option<i32>,
    },
}

/// Rows a worker claims at once when `batch_size` is not set.
pub const DEFAULT_BATCH_SIZE: i32 = 50;
/// Documents a worker loads and prepares at once when `concurrency` is not set: enough
/// requests in flight to hide an object store's latency (S3 answers in tens of ms).
pub const DEFAULT_CONCURRENCY: i32 = 16;

impl Processing {
    pub fn batch_size(&self) -> i32 {
        let Processing::Default { batch_size, .. } = self;
        batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    pub fn concurrency(&self) -> i32 {
        let Processing::Default { concurrency, .. } = self;
        concurrency.unwrap_or(DEFAULT_CONCURRENCY)
    }
}

impl ConfigPart for Processing {
    const CONFIG_TYPE: &'static str = "processing";
    const BUILDERS: &'static str = "ai.processing_default(…)";

    fn validate(&self) -> Result<()> {
        let Processing::Default {
            batch_size,
            concurrency,
        } = self;
        if let Some(b) = batch_size {
            in_range("processing batch_size", *b, 1..=2048)?;
        }
        if let Some(c) = concurrency {
            in_range("processing concurrency", *c, 1..=50)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn processing() {
        let p = Processing::Default {
            batch_size: None,
            concurrency: Some(8),
        };
        assert_eq!(
            p.build().unwrap(),
            json!({"implementation": "default", "config_type": "processing", "concurrency": 8})
        );
        assert_eq!((p.batch_size(), p.concurrency()), (50, 8));
        let bad = Processing::Default {
            batch_size: Some(0),
            concurrency: None,
        };
        assert_eq!(
            bad.validate().unwrap_err().message,
            "processing batch_size must be between 1 and 2048, got 0"
        );
    }
}
