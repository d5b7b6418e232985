//! `charter mcp-gateway --config FILE`: the MCP gateway (crate `charter-gateway`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Where the gateway's configuration is.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// The configuration file (JSON; docs/gateway.md).
    #[arg(long)]
    config: PathBuf,
    /// Benchmark floor (scripts/bench-gateway): relay the first upstream with no logic.
    #[arg(long, hide = true, conflicts_with = "time_checks")]
    null_relay: bool,
    /// Benchmark (scripts/bench-gateway): time this many pairs of checks with the gateway's
    /// Charter client, as for a call of `--check-tool` returning `--check-text`.
    #[arg(long, hide = true)]
    time_checks: Option<usize>,
    /// Benchmark, with `--time-checks`: the tool the timed `tool_call` checks name.
    #[arg(long, hide = true, default_value = "test_simple_text")]
    check_tool: String,
    /// Benchmark, with `--time-checks`: the text the timed `output` checks carry.
    #[arg(long, hide = true, default_value = "")]
    check_text: String,
}

/// Runs the gateway until the agent closes its input. Logs go to standard error (standard
/// output carries only MCP messages); `RUST_LOG` sets their level (default `warn`).
pub(crate) fn run(args: &GatewayArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let config = match charter_gateway::Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("charter mcp-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("charter mcp-gateway: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let served = runtime.block_on(async {
        if args.null_relay {
            charter_gateway::bench::null_relay(&config).await
        } else if let Some(calls) = args.time_checks {
            charter_gateway::bench::time_checks(&config, calls, &args.check_tool, &args.check_text)
                .await
        } else {
            charter_gateway::run(&config).await
        }
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("charter mcp-gateway: {e}");
            ExitCode::from(1)
        }
    }
}
