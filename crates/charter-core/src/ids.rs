//! Identifiers: newtypes so a tenant id can never be passed where a rule id is expected.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest identifier accepted.
pub const MAX_ID_LEN: usize = 128;

/// Why a text is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty text.
    #[error("an id cannot be empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("an id is at most {MAX_ID_LEN} characters")]
    TooLong,
    /// A character outside the allowed set.
    #[error("{0:?} is not allowed in an id (use letters, digits, '-', '_', '.', ':')")]
    BadChar(char),
}

/// Checks the shape shared by every id: 1–128 of `[A-Za-z0-9_.:-]`, so ids are safe in URL paths,
/// log lines and file names without escaping.
fn check(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps an id.
            pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                check(&text)?;
                Ok(Self(text))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(text).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_ID_LEN,
                    "pattern": "^[A-Za-z0-9_.:-]+$"
                })
            }
        }
    };
}

id_type!(
    /// A policy version's id (`pol_...`).
    PolicyId
);
id_type!(
    /// A lineage's id (`lin_...`): the chain of versions of one policy.
    LineageId
);
id_type!(
    /// A tenant's id (a workspace).
    TenantId
);
id_type!(
    /// An agent's id, unique within its tenant.
    AgentId
);
id_type!(
    /// A run's id (`run_...`).
    RunId
);
id_type!(
    /// A rule's id, unique within its policy.
    RuleId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(RuleId::new("r1").is_ok());
        assert!(TenantId::new("acme-corp_1.eu:west").is_ok());
        assert_eq!(RuleId::new(""), Err(IdError::Empty));
        assert_eq!(AgentId::new("a b"), Err(IdError::BadChar(' ')));
        assert_eq!(AgentId::new("a/b"), Err(IdError::BadChar('/')));
        assert_eq!(AgentId::new("x".repeat(129)), Err(IdError::TooLong));
        assert!(serde_json::from_str::<RuleId>("\"é\"").is_err());
        assert_eq!(
            serde_json::from_str::<RuleId>("\"r9\"").unwrap().as_str(),
            "r9"
        );
    }
}
