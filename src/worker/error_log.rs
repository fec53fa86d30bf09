//! Appending to the catalog's error logs (`ai_loader_core::error_log`), as the worker.

use ai_loader_core::error_log::{ErrorLog, MAX_ROWS};
use pgrx::spi::SpiClient;

/// Appends `errors` (message, details as JSON text) to `log` for `id`, and trims the log
/// to its newest rows.
pub fn append(
    client: &mut SpiClient<'_>,
    log: &ErrorLog,
    id: i32,
    errors: Vec<(String, String)>,
) -> Result<(), pgrx::spi::Error> {
    if errors.is_empty() {
        return Ok(());
    }
    let (messages, details): (Vec<String>, Vec<String>) = errors.into_iter().unzip();
    client.update(
        &log.append(),
        None,
        &[id.into(), messages.into(), details.into()],
    )?;
    client.update(&log.trim(), None, &[id.into(), MAX_ROWS.into()])?;
    Ok(())
}
