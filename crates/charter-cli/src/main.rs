//! The `charter` binary: `serve` runs the server; `demo` (with the runtime issue) will run it
//! with demo data; client subcommands follow. Exit codes: 0 ok, 1 failure or refusal, 2 usage.

mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Charter: the control plane that keeps AI agents within bounds.
#[derive(Debug, Parser)]
#[command(name = "charter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory, or PostgreSQL with --database).
    Serve(serve::ServeArgs),
    /// Run the server with a demo workspace and recorded history (not available yet).
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Demo => {
            eprintln!(
                "charter demo: not available yet; it arrives with runs and checks (issue 5). \
                 `charter serve` runs the server today."
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("charter: {e:#}");
            ExitCode::from(1)
        }
    }
}
