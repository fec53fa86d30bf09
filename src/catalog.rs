//! Reading `ai.vectorizer` rows: every reader selects `ai_loader_core::catalog::COLUMNS`
//! (and what else it needs) and decodes them here, by column name.

use ai_loader_core::catalog::{Columns, Recorded};
use ai_loader_core::ConfigError;
use pgrx::spi::SpiHeapTupleData;
use pgrx::JsonB;
use serde_json::Value;

use crate::errors::raise;

pub use ai_loader_core::catalog::{COLUMNS, SYNCS, VECTORIZERS};

/// A text column of a row, by name; an error if it is NULL.
pub fn text(row: &SpiHeapTupleData<'_>, name: &str) -> Result<String, String> {
    row.get_by_name::<String, _>(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{name} is NULL"))
}

/// The vectorizer `vectorizer_id` a row selected with [`COLUMNS`] records, for a
/// function called from SQL: a row it cannot read raises.
pub fn decoded(row: &SpiHeapTupleData<'_>, vectorizer_id: i32) -> Recorded {
    decode(row).unwrap_or_else(|e| {
        raise(ConfigError::invalid(format!(
            "vectorizer {vectorizer_id} cannot be read from the catalog: {e}"
        )))
    })
}

/// The vectorizer a row selected with [`COLUMNS`] records.
pub fn decode(row: &SpiHeapTupleData<'_>) -> Result<Recorded, String> {
    let text = |name: &str| text(row, name);
    let json = |name: &str| -> Result<Value, String> {
        Ok(row
            .get_by_name::<JsonB, _>(name)
            .map_err(|e| e.to_string())?
            .map(|j| j.0)
            .unwrap_or(Value::Null))
    };
    Recorded::decode(Columns {
        id: row
            .get_by_name::<i32, _>("id")
            .map_err(|e| e.to_string())?
            .ok_or("id is NULL")?,
        name: text("name")?,
        source_schema: text("source_schema")?,
        source_table: text("source_table")?,
        source_pk: json("source_pk")?,
        trigger_name: text("trigger_name")?,
        queue_schema: text("queue_schema")?,
        queue_table: text("queue_table")?,
        failed_table: text("failed_table")?,
        config: json("config")?,
    })
}

/// Whether row `id` of the catalog table `table` is still there, locked against a
/// concurrent drop until the end of the transaction.
pub fn still_there(
    client: &mut pgrx::spi::SpiClient<'_>,
    table: &str,
    id: i32,
) -> Result<bool, pgrx::spi::Error> {
    let found = client.update(
        &ai_loader_core::catalog::hold_row(table),
        None,
        &[id.into()],
    )?;
    Ok(!found.is_empty())
}
