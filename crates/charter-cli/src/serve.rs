//! `charter serve --listen ADDR --data-dir DIR [--database URL] [--sync normal|full]` and the
//! operator's limits of outside input (`--max-body-bytes`, `--max-streams-per-key`,
//! `--import-reserve-bytes`).

use std::path::PathBuf;

use anyhow::Context as _;
use charter_server::{Shared, bootstrap, serve};
use charter_store::{Store, Sync};
use clap::{Args, ValueEnum};

/// What `serve` reads from its environment, for its help: the bootstrap key has no flag, so
/// that a key never shows in a process listing.
const ENVIRONMENT: &str = "\
Environment:
  CHARTER_BOOTSTRAP_KEY  The first platform key (all scopes), made on a database with no keys:
                         20 to 256 printable ASCII characters. Unset, a random key is made and
                         printed once as `bootstrap key: KEY`
  CHARTER_DATABASE_URL   The PostgreSQL URL, as --database
  CHARTER_MAX_BODY_BYTES, CHARTER_MAX_STREAMS_PER_KEY, CHARTER_IMPORT_RESERVE_BYTES
                         As the flags of those names (docs/operations.md, Limits)
  RUST_LOG               What to log on standard error (default `info`)

Prints `listening on http://HOST:PORT` (the real port) once it listens; stops cleanly on
SIGTERM or SIGINT.";

/// Where and how to serve.
#[derive(Debug, Args)]
#[command(after_help = ENVIRONMENT)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Directory of the embedded SQLite database.
    #[arg(long, default_value = "./charter-data")]
    data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://...`) to use instead of SQLite, for several nodes.
    #[arg(long, env = "CHARTER_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// SQLite durability: `normal` survives the process being killed; `full` also power loss.
    #[arg(long, value_enum, default_value_t = SyncMode::Normal)]
    sync: SyncMode,
    /// The largest request body, in bytes (and each line of an NDJSON run import).
    #[arg(long, env = "CHARTER_MAX_BODY_BYTES", default_value_t = charter_server::DEFAULT_BODY_LIMIT)]
    max_body_bytes: usize,
    /// The most violation streams one key holds open at once (API and workspace together).
    #[arg(long, env = "CHARTER_MAX_STREAMS_PER_KEY", default_value_t = charter_server::DEFAULT_STREAMS_PER_KEY)]
    max_streams_per_key: usize,
    /// Free disk space, in bytes, an NDJSON run import must leave where it is staged.
    #[arg(long, env = "CHARTER_IMPORT_RESERVE_BYTES", default_value_t = charter_server::DEFAULT_STAGING_RESERVE)]
    import_reserve_bytes: u64,
    #[command(flatten)]
    pub(crate) logs: crate::logs::LogArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyncMode {
    Normal,
    Full,
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let (store, staging_dir) = if let Some(url) = &args.database {
            let store = Store::connect_postgres(url)
                .await
                .context("connecting to PostgreSQL")?;
            // No data directory of ours with PostgreSQL: NDJSON imports are staged in the
            // system's temporary directory.
            (store, std::env::temp_dir())
        } else {
            std::fs::create_dir_all(&args.data_dir).with_context(|| {
                format!("creating the data directory {}", args.data_dir.display())
            })?;
            let sync = match args.sync {
                SyncMode::Normal => Sync::Normal,
                SyncMode::Full => Sync::Full,
            };
            let store = Store::open_sqlite(&args.data_dir.join("charter.db"), sync)
                .await
                .context("opening the SQLite database")?;
            (store, args.data_dir.clone())
        };
        start(store, args, staging_dir).await
    })
}

#[expect(
    clippy::print_stdout,
    reason = "scripts read the real port and the bootstrap key from standard output"
)]
async fn start(store: Store, args: &ServeArgs, staging_dir: PathBuf) -> anyhow::Result<()> {
    let preset = std::env::var("CHARTER_BOOTSTRAP_KEY").ok();
    if let Some(key) = bootstrap(&store, preset, jiff::Timestamp::now())
        .await
        .context("creating the bootstrap key")?
    {
        println!("bootstrap key: {key}");
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let stop = shutdown_signal();
    println!("listening on http://{addr}");
    tracing::info!(%addr, "serving");
    let mut state = Shared::new(store);
    state.staging_dir = staging_dir;
    state.body_limit = args.max_body_bytes;
    state.staging_reserve = args.import_reserve_bytes;
    state.streams = charter_server::Streams::new(args.max_streams_per_key);
    serve(state.into(), listener, stop)
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a server calls it before it prints `listening on`, so a signal sent
/// as soon as that line is read stops it gracefully instead of killing it.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
