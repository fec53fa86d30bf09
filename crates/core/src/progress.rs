//! What the worker records of its work for each vectorizer and each S3 sync
//! (`ai.vectorizer_worker_progress`, `ai._s3_sync_progress`).

/// Adds a batch's outcome to a vectorizer's progress: `$1` the vectorizer, `$2`
/// successes, `$3` failures, `$4` the last error's message (or NULL).
pub const VECTORIZER: &str = "UPDATE ai.vectorizer_worker_progress SET
         success_count = success_count OPERATOR(pg_catalog.+) $2,
         error_count = error_count OPERATOR(pg_catalog.+) $3,
         last_success_at = CASE WHEN $2 OPERATOR(pg_catalog.>) 0 THEN pg_catalog.now() ELSE last_success_at END,
         last_error_at = CASE WHEN $3 OPERATOR(pg_catalog.>) 0 THEN pg_catalog.now() ELSE last_error_at END,
         last_error_message = coalesce($4, last_error_message)
     WHERE vectorizer_id OPERATOR(pg_catalog.=) $1";

/// Records that vectorizer `$1`'s vector index is built.
pub const INDEX_BUILT: &str =
    "UPDATE ai.vectorizer_worker_progress SET vector_index_built_at = pg_catalog.now()
  WHERE vectorizer_id OPERATOR(pg_catalog.=) $1";

/// Adds to sync `$1`'s progress: `$2` rows inserted, `$3` updated, `$4` deleted, `$5`
/// events applied, `$6` a listing's duration in seconds (or NULL).
pub const SYNC: &str = "UPDATE ai._s3_sync_progress SET
         rows_inserted = rows_inserted OPERATOR(pg_catalog.+) $2,
         rows_updated = rows_updated OPERATOR(pg_catalog.+) $3,
         rows_deleted = rows_deleted OPERATOR(pg_catalog.+) $4,
         events_processed = events_processed OPERATOR(pg_catalog.+) $5,
         last_event_at = CASE WHEN $5 OPERATOR(pg_catalog.>) 0 THEN pg_catalog.now() ELSE last_event_at END,
         last_listing_at = CASE WHEN $6::pg_catalog.float8 IS NOT NULL THEN pg_catalog.now()
                                ELSE last_listing_at END,
         last_listing_seconds = coalesce($6::pg_catalog.float8, last_listing_seconds)
      WHERE sync_id OPERATOR(pg_catalog.=) $1";

/// Sync `$1`'s queue holds `$2` messages.
pub const SYNC_PENDING: &str =
    "UPDATE ai._s3_sync_progress SET events_pending = $2 WHERE sync_id OPERATOR(pg_catalog.=) $1";

/// Sync `$1` failed, with the message `$2`.
pub const SYNC_ERROR: &str =
    "UPDATE ai._s3_sync_progress SET error_count = error_count OPERATOR(pg_catalog.+) 1,
        last_error_at = pg_catalog.now(), last_error = $2
  WHERE sync_id OPERATOR(pg_catalog.=) $1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::assert_qualified;

    #[test]
    fn every_operator_is_pg_catalogs() {
        for sql in [VECTORIZER, INDEX_BUILT, SYNC, SYNC_PENDING, SYNC_ERROR] {
            assert_qualified(sql);
        }
    }
}
