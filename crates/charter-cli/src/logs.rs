//! The server's logs on standard error: text for people, or JSON lines for log pipelines
//! (`--log-format json`, or `CHARTER_LOG_FORMAT=json`). `RUST_LOG` filters both (default
//! `info`).

use clap::{Args, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text per event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`),
    /// and the spans it happened in.
    Json,
}

/// The log options of the server commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct LogArgs {
    /// Logs on standard error as text, or as JSON lines for log pipelines.
    #[arg(long, value_enum, env = "CHARTER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// Installs the process's log writer.
pub(crate) fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}
