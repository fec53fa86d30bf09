//! The catalog's error logs, `ai._vectorizer_errors` and `ai._s3_sync_errors`: what the
//! worker appends for a vectorizer or a sync, each log kept to its newest rows.

/// The most rows a log keeps for one vectorizer or sync: the newest; a provider down for
/// days or a flood of bad documents does not grow it without end.
pub const MAX_ROWS: i64 = 10_000;

/// One error log: its table and the column naming whose errors a row records.
pub struct ErrorLog {
    table: &'static str,
    id_column: &'static str,
}

pub const VECTORIZER_ERRORS: ErrorLog = ErrorLog {
    table: "ai._vectorizer_errors",
    id_column: "id",
};

pub const SYNC_ERRORS: ErrorLog = ErrorLog {
    table: "ai._s3_sync_errors",
    id_column: "sync_id",
};

impl ErrorLog {
    /// Appends errors: `$1` whose, `$2` the messages, `$3` their details (JSON text).
    /// (`unnest` of two arrays is syntax, made of pg_catalog's, and only written bare.)
    pub fn append(&self) -> String {
        format!(
            "INSERT INTO {} ({}, message, details)
             SELECT $1, u.m, u.d::pg_catalog.jsonb
               FROM unnest($2::pg_catalog.text[], $3::pg_catalog.text[]) AS u(m, d)",
            self.table, self.id_column
        )
    }

    /// Keeps `$1`'s newest `$2` rows.
    pub fn trim(&self) -> String {
        let (table, id) = (self.table, self.id_column);
        format!(
            "DELETE FROM {table} e
              WHERE e.{id} OPERATOR(pg_catalog.=) $1 AND e.recorded OPERATOR(pg_catalog.<) (
                    SELECT r.recorded FROM {table} r WHERE r.{id} OPERATOR(pg_catalog.=) $1
                     ORDER BY r.recorded DESC OFFSET $2 OPERATOR(pg_catalog.-) 1 LIMIT 1)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_log_is_written_by_its_own_id_column() {
        assert!(SYNC_ERRORS
            .append()
            .starts_with("INSERT INTO ai._s3_sync_errors (sync_id, message, details)"));
        assert!(VECTORIZER_ERRORS
            .append()
            .starts_with("INSERT INTO ai._vectorizer_errors (id, message, details)"));
        let trim = SYNC_ERRORS.trim();
        assert!(trim.contains("WHERE e.sync_id OPERATOR(pg_catalog.=) $1"));
        assert!(
            trim.contains("FROM ai._s3_sync_errors r WHERE r.sync_id OPERATOR(pg_catalog.=) $1")
        );
        crate::ident::assert_qualified(&trim);
        crate::ident::assert_qualified(&SYNC_ERRORS.append());
    }
}
