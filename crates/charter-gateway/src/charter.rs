//! The gateway's Charter client: start a run, check an action, end the run, and read the
//! run's pinned policies (for `tools/list`).

use std::time::Duration;

use serde_json::{Value, json};

/// Why Charter gave no usable answer; the gateway fails closed on any of them.
#[derive(Debug, thiserror::Error)]
pub enum CharterError {
    /// Charter could not be reached, or the answer could not be read.
    #[error("Charter is unreachable at {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// Why.
        message: String,
    },
    /// Charter answered with an error.
    #[error("Charter refused ({status} {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code (`forbidden`, `conflict`, ...).
        code: String,
        /// Its message.
        message: String,
    },
}

impl CharterError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            CharterError::Refused { status, .. } => Some(*status),
            CharterError::Unreachable { .. } => None,
        }
    }
}

/// A client of Charter's API v1 with one key.
#[derive(Debug, Clone)]
pub struct Charter {
    base: String,
    key: String,
    http: reqwest::Client,
}

/// How long one call to Charter may take before the gateway fails closed.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Charter {
    /// A client of the server at `base` with `key`.
    pub fn new(base: &str, key: String) -> Charter {
        Charter {
            base: base.trim_end_matches('/').to_owned(),
            key,
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CharterError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| CharterError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            if value.is_null() {
                return Err(CharterError::Unreachable {
                    url,
                    message: format!("answered {status} without JSON"),
                });
            }
            return Ok(value);
        }
        let error = &value["error"];
        Err(CharterError::Refused {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("error").to_owned(),
            message: error["message"].as_str().unwrap_or(&text).to_owned(),
        })
    }

    /// `POST /v1/runs`: the new run.
    pub async fn start_run(
        &self,
        agent: &str,
        tenant: Option<&str>,
        metadata: Value,
    ) -> Result<Value, CharterError> {
        let mut body = json!({"agent_id": agent, "metadata": metadata});
        if let Some(tenant) = tenant {
            body["tenant_id"] = json!(tenant);
        }
        self.call(reqwest::Method::POST, "/v1/runs", Some(&body))
            .await
    }

    /// `POST /v1/runs/{id}/check`: the decision on `action`.
    pub async fn check(&self, run: &str, action: &Value) -> Result<Value, CharterError> {
        let decision = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/runs/{run}/check"),
                Some(action),
            )
            .await?;
        match decision["decision"].as_str() {
            Some("allow" | "block" | "halt") => Ok(decision),
            _ => Err(CharterError::Unreachable {
                url: format!("{}/v1/runs/{run}/check", self.base),
                message: format!("answered no decision: {decision}"),
            }),
        }
    }

    /// `POST /v1/runs/{id}/end` with `completed` (a halted run stays halted).
    pub async fn end_run(&self, run: &str) -> Result<Value, CharterError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/runs/{run}/end"),
            Some(&json!({"status": "completed"})),
        )
        .await
    }

    /// `GET /v1/policies/{id}`.
    pub async fn policy(&self, id: &str) -> Result<Value, CharterError> {
        self.call(reqwest::Method::GET, &format!("/v1/policies/{id}"), None)
            .await
    }
}
