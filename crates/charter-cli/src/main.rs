//! The `charter` binary: `serve` runs the server; the other subcommands are a client of its
//! HTTP API for people (tables) and scripts (`--json`). Exit codes: 0 ok, 1 refused by the
//! server (or unreachable), 2 usage error.

mod admin;
mod client;
mod demo;
mod gateway;
mod logs;
mod output;
mod pages;
mod policy;
mod render;
mod runs;
mod serve;
mod violations;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::client::{Client, ClientArgs, Failure};

/// mimalloc instead of the system allocator: a check and a replayed action allocate many small
/// values (JSON trees, strings), and glibc's allocator spent a fifth of Validate's time in
/// malloc, free and their consolidation (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Charter: the control plane that keeps AI agents within bounds.
///
/// `serve` and `demo` run the server; the other commands are clients of its HTTP API (they
/// take --server, --key and --json, or `CHARTER_URL` and `CHARTER_KEY`). Exit codes: 0 ok,
/// 1 refused by the server or unreachable, 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "charter", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory, or PostgreSQL with --database).
    Serve(serve::ServeArgs),
    /// Run the server with a demo workspace (tenants, agents, policies in every status).
    Demo(demo::DemoArgs),
    /// Proxy MCP servers, checking every tool call and tool result with Charter
    /// (docs/gateway.md). Speaks MCP on standard input and output.
    McpGateway(gateway::GatewayArgs),
    /// Copy the SQLite database of a data directory into a new file, consistently, while a
    /// server keeps running on it (restore: docs/operations.md).
    Backup(BackupArgs),
    /// Author policies and move them through their lifecycle.
    Policy {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// The Monitor: list violations (every block and halt), count them per time bucket, or
    /// tail them live.
    Violations(violations::ViolationsArgs),
    /// List and inspect runs; import recorded runs.
    Runs {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: admin::KeyCommand,
    },
    /// Manage tenants (`charter tenants` lists them).
    Tenants {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: Option<admin::TenantCommand>,
    },
    /// Manage agents.
    Agents {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: admin::AgentCommand,
    },
}

/// What a client command needs.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    json: bool,
}

impl Ctx {
    /// Prints an answer: its JSON with `--json`, else `human(answer)`.
    pub(crate) fn print(&self, answer: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            self.print_json(answer);
        } else {
            out(&human(answer));
        }
    }

    /// Prints JSON, pretty.
    #[expect(
        clippy::unused_self,
        reason = "kept a method so every output goes through Ctx"
    )]
    pub(crate) fn print_json(&self, answer: &Value) {
        let text = serde_json::to_string_pretty(answer).unwrap_or_else(|_| answer.to_string());
        out(&format!("{text}\n"));
    }
}

/// Writes to standard output; false once nobody reads it. `print!` would panic on a closed
/// pipe (`charter violations --all | head`), since Rust ignores SIGPIPE.
pub(crate) fn out(text: &str) -> bool {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).is_ok() && stdout.flush().is_ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (client, command) = match cli.command {
        Command::Serve(args) => return server(args.logs.log_format, || serve::run(&args)),
        Command::Demo(args) => return server(args.logs.log_format, || demo::run(&args)),
        Command::McpGateway(args) => return gateway::run(&args),
        Command::Backup(args) => return backup(&args),
        Command::Policy { client, command } => (client, ClientCommand::Policy(command)),
        Command::Audit { client, command } => (client, ClientCommand::Audit(command)),
        Command::Keys { client, command } => (client, ClientCommand::Keys(command)),
        Command::Tenants { client, command } => (
            client,
            ClientCommand::Tenants(command.unwrap_or(admin::TenantCommand::List)),
        ),
        Command::Agents { client, command } => (client, ClientCommand::Agents(command)),
        Command::Runs { client, command } => (client, ClientCommand::Runs(command)),
        Command::Violations(args) => (args.client.clone(), ClientCommand::Violations(args)),
    };
    let ctx = Ctx {
        client: Client::new(&client.server, client.key),
        json: client.json,
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
        match command {
            ClientCommand::Policy(command) => policy::run(&ctx, command).await,
            ClientCommand::Audit(command) => admin::audit(&ctx, command).await,
            ClientCommand::Keys(command) => admin::keys(&ctx, command).await,
            ClientCommand::Tenants(command) => admin::tenants(&ctx, command).await,
            ClientCommand::Agents(command) => admin::agents(&ctx, command).await,
            ClientCommand::Runs(command) => runs::run(&ctx, command).await,
            ClientCommand::Violations(args) => violations::run(&ctx, args).await,
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

/// A client command once its connection flags are taken out.
enum ClientCommand {
    Policy(policy::PolicyCommand),
    Audit(admin::AuditCommand),
    Keys(admin::KeyCommand),
    Tenants(admin::TenantCommand),
    Agents(admin::AgentCommand),
    Runs(runs::RunsCommand),
    Violations(violations::ViolationsArgs),
}

/// Reads an instant argument: RFC 3339 (`2026-12-05T09:00:00Z`), or a duration ago in
/// Charter's own syntax (`30m`, `2h`, `7d`), which is what one usually means by `--since`.
fn instant_or_ago(text: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    let span = charter_core::calendar::Span::parse(text).map_err(|_| {
        format!("`{text}` is neither an RFC 3339 instant nor a duration like 30m, 2h or 7d")
    })?;
    jiff::Timestamp::now()
        .checked_sub(span.as_signed_duration())
        .map_err(|e| format!("`{text}` ago: {e}"))
}

/// `charter backup`'s arguments.
#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// The data directory of the server (its `charter.db`).
    #[arg(long, default_value = "./charter-data")]
    data_dir: std::path::PathBuf,
    /// The backup file to write; it must not exist yet.
    out: std::path::PathBuf,
}

/// Writes the backup: exit 0 once written and checked, 1 on failure (nothing left behind).
fn backup(args: &BackupArgs) -> ExitCode {
    let db = args.data_dir.join("charter.db");
    let started = std::time::Instant::now();
    match charter_store::backup_sqlite(&db, &args.out) {
        Ok(()) => {
            let size = std::fs::metadata(&args.out).map_or(0, |m| m.len());
            out(&format!(
                "backed up {} to {} ({size} bytes, {} ms)\n",
                db.display(),
                args.out.display(),
                started.elapsed().as_millis()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            if !matches!(e, charter_store::StoreError::Invalid { .. }) {
                let _ = std::fs::remove_file(&args.out);
            }
            eprintln!("charter: backup failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `serve` or `demo` with logs on standard error: exit 0 once stopped, 1 on failure.
fn server(format: logs::LogFormat, run: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    logs::init(format);
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("charter: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::{CommandFactory as _, Parser as _};

    use super::Cli;

    /// Every command of the tree with its full name (`charter policy show`), globals
    /// propagated as the user sees them.
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(command: &clap::Command, name: &str, out: &mut Vec<(String, clap::Command)>) {
            out.push((name.to_owned(), command.clone()));
            for sub in command.get_subcommands() {
                walk(sub, &format!("{name} {}", sub.get_name()), out);
            }
        }
        let mut root = Cli::command();
        root.build();
        let mut out = Vec::new();
        walk(&root, "charter", &mut out);
        out
    }

    /// What `charter ARGS --help` prints.
    fn help(args: &[&str]) -> String {
        let argv = ["charter"].iter().chain(args).chain(&["--help"]);
        match Cli::try_parse_from(argv) {
            Err(e) if e.kind() == ErrorKind::DisplayHelp => e.render().to_string(),
            other => panic!("{args:?} --help: {other:?}"),
        }
    }

    #[test]
    fn the_command_tree_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_positional_argument_has_help() {
        let mut missing = Vec::new();
        for (name, command) in commands() {
            for arg in command.get_positionals() {
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{name} <{}>", arg.get_id()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "positional arguments without help: {missing:?}"
        );
        // The walk does reach positional arguments.
        assert!(help(&["policy", "show"]).contains("<ID>  The policy version's id"));
    }

    #[test]
    fn every_flag_has_help() {
        let mut missing = Vec::new();
        for (name, command) in commands() {
            for arg in command.get_arguments().filter(|a| !a.is_positional()) {
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{name} --{}", arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    #[test]
    fn serve_and_demo_show_and_take_only_their_own_flags() {
        for command in ["serve", "demo"] {
            let text = help(&[command]);
            for client_flag in ["--server", "--key", "--json", "CHARTER_URL", "CHARTER_KEY"] {
                assert!(
                    !text.contains(client_flag),
                    "{command}: {client_flag}\n{text}"
                );
            }
            assert!(
                text.contains("--listen") && text.contains("--data-dir"),
                "{text}"
            );
            let refused = Cli::try_parse_from(["charter", command, "--json"]).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::UnknownArgument);
        }
        let serve = help(&["serve"]);
        for name in ["CHARTER_BOOTSTRAP_KEY", "CHARTER_DATABASE_URL", "RUST_LOG"] {
            assert!(serve.contains(name), "{name}\n{serve}");
        }
    }

    #[test]
    fn client_commands_take_their_flags_after_any_subcommand() {
        let text = help(&["policy", "show"]);
        for flag in ["--server", "--key", "--json", "CHARTER_URL", "CHARTER_KEY"] {
            assert!(text.contains(flag), "{flag}\n{text}");
        }
        for argv in [
            &["charter", "policy", "show", "pol_1", "--json"][..],
            &["charter", "policy", "--json", "show", "pol_1"][..],
            &["charter", "tenants", "--json"][..],
            &["charter", "runs", "list", "--json"][..],
            &["charter", "violations", "--json"][..],
            &["charter", "violations", "--agent", "a", "stats", "--json"][..],
            &["charter", "violations", "stats", "--agent", "a", "--json"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            let json = match cli.command {
                super::Command::Policy { client, .. }
                | super::Command::Tenants { client, .. }
                | super::Command::Runs { client, .. } => client.json,
                super::Command::Violations(args) => args.client.json,
                other => panic!("{other:?}"),
            };
            assert!(json, "{argv:?}");
        }
    }

    #[test]
    fn instants_are_rfc_3339_or_a_duration_ago() {
        assert_eq!(
            super::instant_or_ago("2026-12-05T09:00:00Z")
                .unwrap()
                .to_string(),
            "2026-12-05T09:00:00Z"
        );
        let before = jiff::Timestamp::now();
        let ago = super::instant_or_ago("2h").unwrap();
        let after = jiff::Timestamp::now();
        let two_hours = jiff::SignedDuration::from_hours(2);
        assert!(
            before - two_hours <= ago && ago <= after - two_hours,
            "{ago}"
        );
        for bad in ["yesterday", "-2h", "2w", ""] {
            assert!(super::instant_or_ago(bad).is_err(), "{bad}");
        }
    }
}
