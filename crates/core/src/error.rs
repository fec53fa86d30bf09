//! The one error type of configuration: a SQLSTATE, a message naming the bad value, a hint.

/// The SQLSTATEs configuration errors use. The extension maps each to Postgres' own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    /// 22023 invalid_parameter_value
    InvalidParameterValue,
    /// 22004 null_value_not_allowed
    NullValueNotAllowed,
    /// 2201B invalid_regular_expression
    InvalidRegularExpression,
    /// 42703 undefined_column
    UndefinedColumn,
    /// 42704 undefined_object
    UndefinedObject,
    /// 42804 datatype_mismatch
    DatatypeMismatch,
    /// 42809 wrong_object_type
    WrongObjectType,
    /// 42710 duplicate_object
    DuplicateObject,
    /// 42701 duplicate_column
    DuplicateColumn,
    /// 42P07 duplicate_table
    DuplicateTable,
    /// 42501 insufficient_privilege
    InsufficientPrivilege,
    /// 0A000 feature_not_supported
    FeatureNotSupported,
    /// 55000 object_not_in_prerequisite_state
    ObjectNotInPrerequisiteState,
    /// 58P01 undefined_file
    UndefinedFile,
}

impl SqlState {
    /// The five-character code, as Postgres prints it.
    pub fn code(self) -> &'static str {
        match self {
            SqlState::InvalidParameterValue => "22023",
            SqlState::NullValueNotAllowed => "22004",
            SqlState::InvalidRegularExpression => "2201B",
            SqlState::UndefinedColumn => "42703",
            SqlState::UndefinedObject => "42704",
            SqlState::DatatypeMismatch => "42804",
            SqlState::WrongObjectType => "42809",
            SqlState::DuplicateObject => "42710",
            SqlState::DuplicateColumn => "42701",
            SqlState::DuplicateTable => "42P07",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::UndefinedFile => "58P01",
        }
    }
}

/// A configuration a user gave that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub state: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(state: SqlState, message: impl Into<String>) -> Self {
        ConfigError {
            state,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// 22023: the most common case, a parameter outside what is allowed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(SqlState::InvalidParameterValue, message)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
