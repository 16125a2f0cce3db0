//! Errors of the storage layer.
//!
//! Callers see meaning, not driver details: a missing record, a conflict on a unique
//! field, an input that a rule refused. Everything else is `Database` and becomes a
//! 500 whose detail goes only to the log.

use lianxin_domain::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{message}")]
    Conflict { field: String, message: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// The write ran but its transaction did not commit, so nothing of it exists.
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.is_unique_violation() {
                return StoreError::Conflict {
                    field: String::new(),
                    message: "a record with the same unique value already exists".into(),
                };
            }
        }
        StoreError::Database(e)
    }
}

impl StoreError {
    pub fn not_found(entity: &'static str) -> Self {
        StoreError::NotFound { entity }
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The same error, for row `row` of an import (1-based, counting the header).
    pub fn at_row(self, row: usize) -> ImportError {
        ImportError { row, error: self }
    }
}

/// The first problem of an import, with its row number. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("row {row}: {error}")]
pub struct ImportError {
    pub row: usize,
    pub error: StoreError,
}
