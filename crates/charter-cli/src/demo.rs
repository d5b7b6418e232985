//! `charter demo [--listen ADDR] [--data-dir DIR]`: the server on SQLite with a demo workspace
//! (two tenants, agents, policies in every status), and a fresh admin key printed on every
//! start. The week of recorded run history arrives with runs and checks (issue 5).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use charter_server::{Shared, serve};
use charter_store::{Actor, Change, KeyScope, Principal, Store, Sync, new_key_secret};
use clap::Args;

/// Where to run the demo.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Directory of the demo's SQLite database.
    #[arg(long, default_value = "./charter-data")]
    data_dir: PathBuf,
    #[command(flatten)]
    pub(crate) logs: crate::logs::LogArgs,
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(start(args))
}

async fn start(args: &DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = Store::open_sqlite(&args.data_dir.join("charter.db"), Sync::Normal)
        .await
        .context("opening the SQLite database")?;
    let now = jiff::Timestamp::now();
    let admin = Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "demo".into(),
            name: "charter demo".into(),
        },
        at: now,
    };
    if store.list_tenants(&Principal::Platform).await?.is_empty() {
        charter_server::demo::seed(&store, &admin)
            .await
            .map_err(|e| anyhow::anyhow!(e))
            .context("seeding the demo workspace")?;
    }
    // Keys are stored only as hashes, so a fresh one is made on every start.
    let key = new_key_secret();
    store
        .create_key(
            &admin,
            "demo admin",
            None,
            &[KeyScope::Read, KeyScope::Write, KeyScope::Execute],
            &key,
        )
        .await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // The key rides in the fragment, which the browser never sends: it stays out of server
    // logs, proxies and `Referer`; the sign-in page's script removes it from the address bar
    // and history before signing in (docs/workspace.md). `listening on` comes last: whoever
    // waits for it has read everything, and may stop reading (a closed standard output must
    // not stop the server, so nothing is printed after it, and nothing here panics).
    let stop = crate::serve::shutdown_signal();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bootstrap key: {key}");
    let _ = writeln!(out, "workspace: http://{addr}/sign-in#key={key}");
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
    drop(out);
    let mut state = Shared::new(store);
    state.staging_dir.clone_from(&args.data_dir);
    serve(state.into(), listener, stop)
        .await
        .context("serving")?;
    Ok(())
}
