//! Patterns written in policies: globs over tool names and resource paths, and linear-time regexes.
//!
//! Each type here is parsed once, when a rule is read, so a rule that holds one is known to be
//! usable; the engine compiles them further into sets.

use std::borrow::Cow;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::glob::{Glob, GlobKind};

/// The longest regex source accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// The compiled-size limit of one regex: large enough for real patterns, small enough that no
/// tenant can make the engine slow or large (`\w{1000}\w{1000}` is refused).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A regex for the `regex` crate's linear-time engine: no lookaround, no backreferences, and a
/// bounded compiled size. Equality is by source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles a pattern, or explains why it cannot be run in linear time.
    pub fn new(source: &str) -> Result<Pattern, String> {
        if source.len() > MAX_REGEX_LEN {
            return Err(format!("a regex is at most {MAX_REGEX_LEN} bytes"));
        }
        let regex = build_regex(source)?;
        Ok(Pattern {
            source: source.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

/// Compiles a regex with Charter's limits, mapping the regex crate's error to a message.
pub(crate) fn build_regex(source: &str) -> Result<Regex, String> {
    RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => {
                format!(
                    "this regex is too large once compiled (at most {REGEX_SIZE_LIMIT} bytes); simplify it"
                )
            }
            other => format!(
                "not a regex Charter can run in linear time (no lookaround or backreferences): {}",
                other.to_string().lines().last().unwrap_or_default().trim()
            ),
        })
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Pattern::new(&source).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Pattern {
    fn schema_name() -> Cow<'static, str> {
        "Regex".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "regex",
            "maxLength": MAX_REGEX_LEN,
            "description": "A regex for a linear-time engine (Rust regex syntax): no lookaround, no backreferences"
        })
    }
}

macro_rules! glob_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $schema:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(Glob);

        impl $name {
            /// Parses a glob.
            pub fn new(pattern: &str) -> Result<Self, crate::glob::GlobError> {
                Glob::new(pattern, $kind).map(Self)
            }

            /// The compiled glob.
            pub fn glob(&self) -> &Glob {
                &self.0
            }

            /// The pattern as written.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.0.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(&text).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": crate::glob::MAX_GLOB_LEN,
                    "description": $schema
                })
            }
        }
    };
}

glob_type!(
    /// A glob over tool names, whose segments are split at `.` and `/`.
    ToolGlob,
    GlobKind::Name,
    "A glob over tool names: segments split at '.' and '/'; '*' stays within a segment, '**' spans whole segments (none included)"
);
glob_type!(
    /// A glob over resource paths, whose segments are split at `/`.
    ResourceGlob,
    GlobKind::Path,
    "A glob over resource paths: segments split at '/'; '*' stays within a segment, '**' spans whole segments (none included)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_backtracking_features() {
        assert!(Pattern::new("(?=x)").unwrap_err().contains("linear time"));
        assert!(Pattern::new(r"(a)\1").unwrap_err().contains("linear time"));
        assert!(
            Pattern::new(r"\w{1000}\w{1000}")
                .unwrap_err()
                .contains("too large")
        );
        assert!(Pattern::new(&"a".repeat(MAX_REGEX_LEN + 1)).is_err());
        assert!(Pattern::new("(?i)secret").is_ok());
    }
}
