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

    /// Opens `GET path` as a stream of server-sent events; the response once its headers
    /// arrived (the server subscribes before it answers, so nothing committed later is
    /// missed), else the server's error.
    pub(crate) async fn stream(&self, path: &str) -> Result<reqwest::Response, Failure> {
        let request = self
            .request(Method::GET, path)?
            .header("accept", "text/event-stream");
        self.response(request).await
    }

    /// Sends `request`: the response of a 2xx, else the server's error.
    async fn response(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transport(format!("cannot reach {}: {e}", self.base)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let (value, text) = read_json(response).await?;
        let error = &value["error"];
        Err(Failure::Refused {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("error").to_owned(),
            message: error["message"].as_str().unwrap_or(&text).to_owned(),
            path: error["details"]["path"].as_str().map(str::to_owned),
        })
    }

    /// Sends `request`: the JSON answer of a 2xx, else the server's error.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = self.response(request).await?;
        Ok(read_json(response).await?.0)
    }
}

/// A response's body as JSON (`null` when empty), with its text for messages.
async fn read_json(response: reqwest::Response) -> Result<(Value, String), Failure> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?;
    if text.is_empty() {
        return Ok((Value::Null, text));
    }
    match serde_json::from_str(&text) {
        Ok(value) => Ok((value, text)),
        Err(_) => Err(Failure::Transport(format!(
            "the server answered {status} with no JSON: {text}"
        ))),
    }
}

/// A query string built from the parameters given (`?a=1&b=x%20y`, or nothing).
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<String>);

impl Query {
    /// Adds `name=value`.
    pub(crate) fn set(mut self, name: &str, value: impl std::fmt::Display) -> Query {
        self.0
            .push(format!("{name}={}", encode(&value.to_string())));
        self
    }

    /// Adds `name=value` when there is a value.
    pub(crate) fn some(self, name: &str, value: Option<impl std::fmt::Display>) -> Query {
        match value {
            Some(value) => self.set(name, value),
            None => self,
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "?{}", self.0.join("&"))
    }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn a_query_holds_the_parameters_given_encoded() {
        let none: Option<&str> = None;
        assert_eq!(Query::default().some("a", none).to_string(), "");
        let query = Query::default()
            .some("agent_id", Some("sup port"))
            .some("tenant_id", none)
            .set("since", "2026-12-05T09:00:00+01:00")
            .set("limit", 5);
        assert_eq!(
            query.to_string(),
            "?agent_id=sup%20port&since=2026-12-05T09%3A00%3A00%2B01%3A00&limit=5"
        );
    }
}
