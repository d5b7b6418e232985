//! The `charter` binary: `serve` runs the server; the other subcommands are a client of its
//! HTTP API for people (tables) and scripts (`--json`). Exit codes: 0 ok, 1 refused by the
//! server (or unreachable), 2 usage error.

mod admin;
mod client;
mod demo;
mod output;
mod policy;
mod runs;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::client::{Client, Failure};

/// mimalloc instead of the system allocator: a check and a replayed action allocate many small
/// values (JSON trees, strings), and glibc's allocator spent a fifth of Validate's time in
/// malloc, free and their consolidation (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Charter: the control plane that keeps AI agents within bounds.
#[derive(Debug, Parser)]
#[command(name = "charter", version, about)]
struct Cli {
    /// The server's URL.
    #[arg(
        long,
        env = "CHARTER_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// The API key.
    #[arg(long, env = "CHARTER_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory, or PostgreSQL with --database).
    Serve(serve::ServeArgs),
    /// Run the server with a demo workspace (tenants, agents, policies in every status).
    Demo(demo::DemoArgs),
    /// Author policies and move them through their lifecycle.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: admin::KeyCommand,
    },
    /// Manage tenants (`charter tenants` lists them).
    Tenants {
        #[command(subcommand)]
        command: Option<admin::TenantCommand>,
    },
    /// Manage agents.
    Agents {
        #[command(subcommand)]
        command: admin::AgentCommand,
    },
    /// Import recorded runs.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
}

/// What a client command needs.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    json: bool,
}

impl Ctx {
    /// Prints an answer: its JSON with `--json`, else `human(answer)`.
    #[expect(
        clippy::print_stdout,
        reason = "a command's answer goes to standard output"
    )]
    pub(crate) fn print(&self, answer: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            self.print_json(answer);
        } else {
            print!("{}", human(answer));
        }
    }

    /// Prints JSON, pretty.
    #[expect(
        clippy::print_stdout,
        reason = "a command's answer goes to standard output"
    )]
    #[expect(
        clippy::unused_self,
        reason = "kept a method so every output goes through Ctx"
    )]
    pub(crate) fn print_json(&self, answer: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).unwrap_or_else(|_| answer.to_string())
        );
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client_command = match cli.command {
        Command::Serve(args) => {
            init_logs();
            return match serve::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("charter: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Demo(args) => {
            init_logs();
            return match demo::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("charter: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        other => other,
    };
    let ctx = Ctx {
        client: Client::new(&cli.server, cli.key),
        json: cli.json,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("charter: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match client_command {
            Command::Policy { command } => policy::run(&ctx, command).await,
            Command::Audit { command } => admin::audit(&ctx, command).await,
            Command::Keys { command } => admin::keys(&ctx, command).await,
            Command::Tenants { command } => {
                admin::tenants(&ctx, command.unwrap_or(admin::TenantCommand::List)).await
            }
            Command::Agents { command } => admin::agents(&ctx, command).await,
            Command::Runs { command } => runs::run(&ctx, command).await,
            Command::Serve(_) | Command::Demo(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("charter: {failure}");
            match failure {
                Failure::Usage(_) => ExitCode::from(2),
                Failure::Refused { .. } | Failure::Transport(_) => ExitCode::from(1),
            }
        }
    }
}

fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
