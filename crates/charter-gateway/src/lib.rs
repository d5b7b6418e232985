//! `charter mcp-gateway`: an MCP proxy that governs tool calls with Charter.
//!
//! The agent talks MCP to the gateway as to any MCP server; the gateway relays to the upstream
//! MCP servers of its configuration. Each session is a Charter run; every `tools/call` is
//! checked as a `tool_call` action before it is forwarded, and its result as `output` actions
//! before the agent sees it; `tools/list` leaves out what Charter blocks whatever the
//! arguments. Everything else passes through as it is. See `docs/gateway.md`.

pub mod bench;
pub mod charter;
pub mod config;
pub mod filter;
pub mod http;
pub mod names;
pub mod outlet;
pub mod output;
pub mod refusal;
pub mod routing;
pub mod session;
pub mod sse;
pub mod stdio;
pub mod timing;
pub mod upstream_http;

pub use config::Config;

/// Locks `mutex`, also after a thread panicked holding it: what the gateway keeps under its
/// locks (routes, pending answers, a pipe's queue) stays usable, and the relay must go on.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the gateway could not serve.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// An upstream could not be started.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The configuration asks for something not built yet.
    #[error("{0}")]
    Unsupported(String),
    /// The HTTP front could not listen.
    #[error("listening on {0}")]
    Listen(String),
}

/// Serves the configured front until the agent leaves.
pub async fn run(config: &Config) -> Result<(), GatewayError> {
    match &config.front {
        config::Front::Stdio => stdio::serve(config).await,
        config::Front::Http { listen, .. } => http::serve(config, listen).await,
    }
}

#[cfg(test)]
mod tests;
