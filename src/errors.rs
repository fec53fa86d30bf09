//! Turning configuration errors into Postgres errors with their SQLSTATE and hint.

use ai_loader_core::{ConfigError, SqlState};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

fn errcode(state: SqlState) -> PgSqlErrorCode {
    use PgSqlErrorCode::*;
    match state {
        SqlState::InvalidParameterValue => ERRCODE_INVALID_PARAMETER_VALUE,
        SqlState::NullValueNotAllowed => ERRCODE_NULL_VALUE_NOT_ALLOWED,
        SqlState::InvalidRegularExpression => ERRCODE_INVALID_REGULAR_EXPRESSION,
        SqlState::UndefinedColumn => ERRCODE_UNDEFINED_COLUMN,
        SqlState::UndefinedObject => ERRCODE_UNDEFINED_OBJECT,
        SqlState::DatatypeMismatch => ERRCODE_DATATYPE_MISMATCH,
        SqlState::WrongObjectType => ERRCODE_WRONG_OBJECT_TYPE,
        SqlState::DuplicateObject => ERRCODE_DUPLICATE_OBJECT,
        SqlState::DuplicateColumn => ERRCODE_DUPLICATE_COLUMN,
        SqlState::DuplicateTable => ERRCODE_DUPLICATE_TABLE,
        SqlState::InsufficientPrivilege => ERRCODE_INSUFFICIENT_PRIVILEGE,
        SqlState::FeatureNotSupported => ERRCODE_FEATURE_NOT_SUPPORTED,
        SqlState::ObjectNotInPrerequisiteState => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        SqlState::UndefinedFile => ERRCODE_UNDEFINED_FILE,
    }
}

/// Raises `error` as an ERROR; does not return.
pub fn raise(error: ConfigError) -> ! {
    let mut report = ErrorReport::new(errcode(error.state), error.message, "ai_loader");
    if let Some(detail) = error.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Raises an ERROR with `code` and `message`; does not return.
pub fn fail(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "ai_loader").report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// `result?`, for functions Postgres calls: an error becomes an ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, ConfigError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::Error> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("SPI: {e}"),
                "ai_loader",
            )
            .report(PgLogLevel::ERROR);
            unreachable!("an ERROR does not return")
        })
    }
}
