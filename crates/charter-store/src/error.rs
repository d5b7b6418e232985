//! What a store operation can answer besides success.

/// Why a store operation did not happen. Nothing changed in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such resource, or one the caller may not see (another tenant's answers the same).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `policy pol_123`.
        what: String,
    },
    /// The resource is not in a state that allows this (wrong lifecycle status, a duplicate
    /// id, a policy that changed while it was validated).
    #[error("{message}")]
    Conflict {
        /// For people.
        message: String,
        /// The current revision, when the policy changed under the operation.
        current_revision: Option<u32>,
    },
    /// The revision the caller required (`If-Match`) is no longer the policy's.
    #[error("{message}")]
    RevisionMismatch {
        /// For people.
        message: String,
        /// The policy's revision now.
        current_revision: u32,
    },
    /// Activation needs a validation of the current revision (or `force`).
    #[error("activating needs a validation of revision {revision} (or force)")]
    ValidationRequired {
        /// The draft's current revision.
        revision: u32,
    },
    /// The request names something invalid; `path` is the JSON path of the field.
    #[error("{path}: {message}")]
    Invalid {
        /// The offending field.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The caller may not do this (e.g. a tenant key writing a platform policy).
    #[error("{0}")]
    Forbidden(String),
    /// The database failed or holds data this version cannot read. The message is for logs,
    /// never for clients.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> StoreError {
        StoreError::NotFound { what: what.into() }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> StoreError {
        StoreError::Conflict {
            message: message.into(),
            current_revision: None,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl StoreError {
    /// What a database's refusal means, from its error code (PostgreSQL's SQLSTATE, SQLite's
    /// extended result code) and message: the one mapping of database errors, whichever
    /// driver reports them.
    pub(crate) fn database(code: Option<&str>, message: &str) -> StoreError {
        // A trigger refusing a change: the row's status forbids it.
        if let Some(start) = message.find("charter: ") {
            return StoreError::conflict(message[start + "charter: ".len()..].to_owned());
        }
        match code {
            // A unique or primary key violation (PostgreSQL; SQLite's UNIQUE, PRIMARYKEY).
            Some("23505" | "2067" | "1555") => StoreError::conflict("already exists"),
            // PostgreSQL deadlock or serialisation failure, SQLite still busy or locked after
            // its timeout: nothing was changed, and the caller may simply retry.
            Some("40P01" | "40001" | "5" | "6" | "261" | "262" | "517" | "773") => {
                StoreError::conflict("the change raced another one; retry")
            }
            _ => StoreError::Backend(match code {
                Some(code) => format!("database error {code}: {message}"),
                None => message.to_owned(),
            }),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            return StoreError::database(db.code().as_deref(), db.message());
        }
        StoreError::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::Backend(format!("stored JSON unreadable: {e}"))
    }
}
