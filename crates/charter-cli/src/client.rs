//! The HTTP client of the command line: one call per command, the server's error format
//! turned into a message and exit code 1.

use std::fmt;

use clap::Args;
use reqwest::Method;
use serde_json::Value;

/// The flags of every client command: which server, as whom, and how to print. They sit on
/// the client commands rather than on `charter` itself, so `serve` and `demo` (which talk to
/// no server) neither show nor take them; `global` lets them follow any subcommand
/// (`charter policy show ID --json`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct ClientArgs {
    /// The server's URL.
    #[arg(
        long,
        env = "CHARTER_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub(crate) server: String,
    /// The API key.
    #[arg(long, env = "CHARTER_KEY", global = true, hide_env_values = true)]
    pub(crate) key: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// Where and as whom to talk to the server.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server refused (a non-2xx answer): exit 1.
    Refused {
        status: u16,
        code: String,
        message: String,
        path: Option<String>,
    },
    /// The server could not be reached, or answered something unreadable: exit 1.
    Transport(String),
    /// The command itself was wrong (a missing key, an unreadable file): exit 2.
    Usage(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused {
                status,
                code,
                message,
                path: Some(path),
            } if !path.is_empty() => write!(f, "{status} {code}: {path}: {message}"),
            Failure::Refused {
                status,
                code,
                message,
                ..
            } => write!(f, "{status} {code}: {message}"),
            Failure::Transport(m) | Failure::Usage(m) => f.write_str(m),
        }
    }
}

impl Client {
    pub(crate) fn new(base: &str, key: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            key,
            http: reqwest::Client::new(),
        }
    }

    /// Sends one request with an `If-Match` revision precondition.
    pub(crate) async fn call_if_match(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        revision: u32,
    ) -> Result<Value, Failure> {
        self.send(method, path, Some(body), Some(revision)).await
    }

    /// Sends one request; returns the JSON answer of a 2xx.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        self.send(method, path, body, None).await
    }

    /// Sends one request whose body is `body` of `content_type` (a file, streamed); returns
    /// the JSON answer of a 2xx.
    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: reqwest::Body,
    ) -> Result<Value, Failure> {
        let request = self
            .request(method, path)?
            .header("content-type", content_type)
            .body(body);
        self.answer(request).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        revision: Option<u32>,
    ) -> Result<Value, Failure> {
        let mut request = self.request(method, path)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(revision) = revision {
            request = request.header("if-match", format!("\"{revision}\""));
        }
        self.answer(request).await
    }

    fn request(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, Failure> {
        let Some(key) = &self.key else {
            return Err(Failure::Usage(
                "no key: pass --key or set CHARTER_KEY".to_owned(),
            ));
        };
        Ok(self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key))
    }

    /// Sends `request`: the JSON answer of a 2xx, else the server's error.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transport(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                Failure::Transport(format!("the server answered {status} with no JSON: {text}"))
            })?
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(Failure::Refused {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("error").to_owned(),
            message: error["message"].as_str().unwrap_or(&text).to_owned(),
            path: error["details"]["path"].as_str().map(str::to_owned),
        })
    }
}
