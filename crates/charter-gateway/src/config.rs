//! The gateway's configuration file (JSON): which Charter, as whom, which upstream MCP servers,
//! and which front to serve. See `docs/gateway.md` for the format.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The name of the environment variable holding the execute key when the file names none.
pub const DEFAULT_KEY_ENV: &str = "CHARTER_KEY";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where Charter is and which run to start for each session.
    pub charter: CharterConfig,
    /// The MCP servers behind the gateway, at least one.
    pub upstreams: Vec<Upstream>,
    /// What the gateway serves to the agent: `"stdio"` (the default) or
    /// `{"http": {"listen": "127.0.0.1:8931"}}`.
    #[serde(default)]
    pub front: Front,
}

/// Charter's URL, the key, and the run's tenant and agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharterConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The API key itself (prefer `key_env`: a file is easily shared).
    #[serde(default)]
    pub key: Option<String>,
    /// The environment variable holding the key (default `CHARTER_KEY`).
    #[serde(default)]
    pub key_env: Option<String>,
    /// The run's tenant (needed with a platform key; a tenant key implies its own).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The agent each session's run belongs to.
    pub agent: String,
}

/// One upstream MCP server: a name and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Names the server in Charter actions (`name.tool`) and, with several upstreams, prefixes
    /// its tools on the wire (`name__tool`).
    pub name: String,
    /// The program to start (stdio transport).
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A Streamable HTTP endpoint instead of a command (not served yet).
    #[serde(default)]
    pub url: Option<String>,
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A child process speaking MCP on its standard input and output.
    Stdio {
        /// The program.
        command: &'a str,
    },
    /// A Streamable HTTP endpoint.
    Http {
        /// Its URL.
        url: &'a str,
    },
}

impl Upstream {
    /// How this upstream is reached (validated by [`Config::parse`]).
    pub fn transport(&self) -> Transport<'_> {
        match (&self.command, &self.url) {
            (Some(command), _) => Transport::Stdio { command },
            (None, Some(url)) => Transport::Http { url },
            (None, None) => Transport::Stdio { command: "" },
        }
    }
}

/// The front the agent talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Front {
    /// MCP over the gateway's own standard input and output: one session, one run.
    #[default]
    Stdio,
    /// Streamable HTTP at `/mcp` on `listen` (sessions with `Mcp-Session-Id`, each a run).
    #[serde(rename_all = "snake_case")]
    Http {
        /// The address to listen on (`127.0.0.1:8931`; port 0 picks a free one).
        listen: String,
        /// How long a session may stay idle (no request, no open stream) before it is ended
        /// with its run and upstreams: a duration in Charter's syntax (`30m`, the default).
        #[serde(default)]
        idle_timeout: Option<String>,
    },
}

/// The idle timeout of HTTP sessions when the file names none.
pub const DEFAULT_IDLE_TIMEOUT: &str = "30m";

impl Front {
    /// The idle timeout of HTTP sessions (checked by [`Config::parse`]).
    pub fn idle_timeout(&self) -> std::time::Duration {
        let text = match self {
            Front::Http {
                idle_timeout: Some(text),
                ..
            } => text.as_str(),
            _ => DEFAULT_IDLE_TIMEOUT,
        };
        let millis =
            charter_core::calendar::Span::parse(text).map_or(30 * 60 * 1000, |s| s.as_millis());
        std::time::Duration::from_millis(millis)
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The JSON is malformed or has an unknown or wrongly typed field.
    #[error("{path}: {message}")]
    Invalid {
        /// The JSON path of the bad field (empty for the whole document).
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Config::parse(&text)
    }

    /// Parses and checks a configuration: known fields only, at least one upstream, each
    /// either a command or a URL, names that map tools without collisions.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error_free(deserializer)?;
        if config.charter.url.trim().is_empty() {
            return Err(invalid("charter.url", "must not be empty"));
        }
        if config.charter.agent.trim().is_empty() {
            return Err(invalid("charter.agent", "must not be empty"));
        }
        if config.charter.key.is_some() && config.charter.key_env.is_some() {
            return Err(invalid(
                "charter.key_env",
                "give either key or key_env, not both",
            ));
        }
        if let Front::Http {
            idle_timeout: Some(text),
            ..
        } = &config.front
            && charter_core::calendar::Span::parse(text).is_err()
        {
            return Err(invalid(
                "front.http.idle_timeout",
                format!("{text:?} is not a duration (a positive integer and s, m, h or d)"),
            ));
        }
        if config.upstreams.is_empty() {
            return Err(invalid("upstreams", "at least one upstream is needed"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, upstream) in config.upstreams.iter().enumerate() {
            let at = |field: &str| format!("upstreams[{i}].{field}");
            if let Err(message) = crate::names::check_server_name(&upstream.name) {
                return Err(invalid(at("name"), message));
            }
            if !seen.insert(upstream.name.as_str()) {
                return Err(invalid(
                    at("name"),
                    format!(
                        "two upstreams are named {:?}: their tools would collide",
                        upstream.name
                    ),
                ));
            }
            match (&upstream.command, &upstream.url) {
                (Some(_), Some(_)) => {
                    return Err(invalid(at("url"), "give either command or url, not both"));
                }
                (None, None) => return Err(invalid(at("command"), "give a command or a url")),
                (Some(command), None) if command.trim().is_empty() => {
                    return Err(invalid(at("command"), "must not be empty"));
                }
                (None, Some(_)) if !upstream.args.is_empty() || !upstream.env.is_empty() => {
                    return Err(invalid(at("args"), "args and env go with a command"));
                }
                _ => {}
            }
        }
        Ok(config)
    }

    /// The execute key: the file's `key`, else the variable `key_env` (default `CHARTER_KEY`)
    /// names.
    pub fn key(&self) -> Result<String, ConfigError> {
        if let Some(key) = &self.charter.key {
            return Ok(key.clone());
        }
        let name = self.charter.key_env.as_deref().unwrap_or(DEFAULT_KEY_ENV);
        match std::env::var(name) {
            Ok(key) if !key.is_empty() => Ok(key),
            _ => Err(invalid(
                "charter.key_env",
                format!("no key: set the environment variable {name} (or charter.key)"),
            )),
        }
    }
}

/// Deserializes with the JSON path of the first bad field in the error.
fn serde_path_to_error_free<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Config, ConfigError> {
    // A small path tracker would need another dependency; serde_json's own message names the
    // field and the line and column, which is enough for a file a person edits.
    Config::deserialize(deserializer).map_err(|e| invalid("", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "charter": {"url": "http://127.0.0.1:8080", "key_env": "MY_KEY", "tenant": "acme", "agent": "bot"},
        "upstreams": [
            {"name": "mail", "command": "python3", "args": ["server.py"], "env": {"A": "1"}},
            {"name": "docs", "url": "http://127.0.0.1:9000/mcp"}
        ]
    }"#;

    #[test]
    fn parses_a_full_file() {
        let config = Config::parse(GOOD).unwrap();
        assert_eq!(config.charter.agent, "bot");
        assert_eq!(config.charter.tenant.as_deref(), Some("acme"));
        assert_eq!(config.front, Front::Stdio);
        let http = Config::parse(&GOOD.replace(
            "\"upstreams\"",
            "\"front\": {\"http\": {\"listen\": \"127.0.0.1:0\"}}, \"upstreams\"",
        ))
        .unwrap();
        assert_eq!(
            http.front,
            Front::Http {
                listen: "127.0.0.1:0".into(),
                idle_timeout: None,
            }
        );
        assert_eq!(
            http.front.idle_timeout(),
            std::time::Duration::from_mins(30)
        );
        let short = Config::parse(&GOOD.replace(
            "\"upstreams\"",
            "\"front\": {\"http\": {\"listen\": \"127.0.0.1:0\", \"idle_timeout\": \"90s\"}}, \"upstreams\"",
        ))
        .unwrap();
        assert_eq!(
            short.front.idle_timeout(),
            std::time::Duration::from_secs(90)
        );
        assert!(
            Config::parse(&GOOD.replace(
                "\"upstreams\"",
                "\"front\": {\"http\": {\"listen\": \"x\", \"idle_timeout\": \"soon\"}}, \"upstreams\"",
            ))
            .unwrap_err()
            .to_string()
            .starts_with("front.http.idle_timeout:")
        );
        assert_eq!(
            config.upstreams[0].transport(),
            Transport::Stdio { command: "python3" }
        );
        assert_eq!(config.upstreams[0].args, ["server.py"]);
        assert_eq!(config.upstreams[0].env["A"], "1");
        assert_eq!(
            config.upstreams[1].transport(),
            Transport::Http {
                url: "http://127.0.0.1:9000/mcp"
            }
        );
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_cannot_work() {
        let charter = r#""charter": {"url": "http://x", "agent": "bot"}"#;
        assert!(error_of(&format!(r#"{{{charter}, "upstreams": []}}"#)).contains("at least one"));
        assert!(
            error_of(&format!(
                r#"{{{charter}, "upstreams": [{{"name": "a", "command": "x"}}, {{"name": "a", "command": "y"}}]}}"#
            ))
            .contains("upstreams[1].name: two upstreams are named \"a\"")
        );
        assert!(
            error_of(&format!(
                r#"{{{charter}, "upstreams": [{{"name": "a__b", "command": "x"}}]}}"#
            ))
            .starts_with("upstreams[0].name:")
        );
        assert!(
            error_of(&format!(
                r#"{{{charter}, "upstreams": [{{"name": "a", "command": "x", "url": "http://y"}}]}}"#
            ))
            .contains("either command or url")
        );
        assert!(
            error_of(&format!(r#"{{{charter}, "upstreams": [{{"name": "a"}}]}}"#))
                .contains("give a command or a url")
        );
        assert!(
            error_of(&format!(
                r#"{{{charter}, "upstreams": [{{"name": "a", "command": "x", "cmd": 1}}]}}"#
            ))
            .contains("unknown field `cmd`")
        );
        assert!(
            error_of(&format!(
                r#"{{{charter}, "upstreams": [{{"name": "a", "command": "x"}}], "front": "carrier-pigeon"}}"#
            ))
            .contains("unknown variant")
        );
        assert!(
            error_of(&format!(
                r#"{{{charter}, "upstreams": [{{"name": "a", "command": "x"}}], "front": {{"http": {{}}}}}}"#
            ))
            .contains("missing field `listen`")
        );
        assert!(
            error_of(r#"{"charter": {"url": "http://x", "agent": "bot", "key": "k", "key_env": "K"}, "upstreams": [{"name": "a", "command": "x"}]}"#)
                .contains("either key or key_env")
        );
    }

    #[test]
    fn reads_the_key_from_the_file_or_the_environment() {
        let with_key = Config::parse(
            r#"{"charter": {"url": "http://x", "agent": "bot", "key": "secret"}, "upstreams": [{"name": "a", "command": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(with_key.key().unwrap(), "secret");
        let from_env = Config::parse(
            r#"{"charter": {"url": "http://x", "agent": "bot", "key_env": "CHARTER_GATEWAY_TEST_SURELY_UNSET"}, "upstreams": [{"name": "a", "command": "x"}]}"#,
        )
        .unwrap();
        assert!(
            from_env
                .key()
                .unwrap_err()
                .to_string()
                .contains("CHARTER_GATEWAY_TEST_SURELY_UNSET")
        );
    }
}
