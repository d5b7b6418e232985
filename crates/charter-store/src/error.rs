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
    /// The database cannot do the work now: it cannot be reached (refused, lost, restarting,
    /// every connection busy past the pool's wait) or it lacks room (a full disk). Nothing was
    /// acknowledged; the same request may succeed once the database is back. The message is for
    /// logs, never for clients.
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
            Some(code) if unavailable(code) => {
                StoreError::Unavailable(format!("database error {code}: {message}"))
            }
            _ => StoreError::Backend(match code {
                Some(code) => format!("database error {code}: {message}"),
                None => message.to_owned(),
            }),
        }
    }
}

/// Whether a database's error code says it cannot do the work now rather than that the work
/// is wrong. PostgreSQL's SQLSTATEs (five characters): class 08 (the connection failed), class
/// 53 (insufficient resources: disk full, out of memory, too many connections) and 57P01–57P03
/// (shutting down, restarting, not yet accepting). SQLite's extended result codes (decimal,
/// at most four digits; the primary code is the low byte): `SQLITE_IOERR` (10), `SQLITE_FULL`
/// (13) and `SQLITE_CANTOPEN` (14).
fn unavailable(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0");
    }
    code.parse::<u32>()
        .is_ok_and(|extended| matches!(extended & 0xff, 10 | 13 | 14))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(db) => StoreError::database(db.code().as_deref(), db.message()),
            // The connection failed or none could be had: the database's state is unknown to
            // this request, never the request's fault.
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::Backend(format!("stored JSON unreadable: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    fn unavailable(code: &str) -> bool {
        matches!(
            StoreError::database(Some(code), "m"),
            StoreError::Unavailable(_)
        )
    }

    #[test]
    fn a_database_out_of_reach_or_of_room_is_unavailable_not_a_failure() {
        // PostgreSQL: connection failures, insufficient resources, shutting down.
        for code in ["08006", "08001", "53100", "53300", "57P01", "57P03"] {
            assert!(unavailable(code), "{code}");
        }
        // SQLite: SQLITE_FULL, SQLITE_IOERR and its extended codes, SQLITE_CANTOPEN.
        for code in ["13", "10", "778", "3338", "14"] {
            assert!(unavailable(code), "{code}");
        }
        // The request's own fault, or a race to retry: never unavailable.
        for code in ["23505", "22001", "42P01", "40001", "1555", "19", "5", "275"] {
            assert!(!unavailable(code), "{code}");
        }
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset
            ))),
            StoreError::Unavailable(_)
        ));
    }
}
