//! `charter demo [--listen ADDR] [--data-dir DIR]`: the server on SQLite with a demo workspace
//! (two tenants, agents, policies in every status), and a fresh admin key printed on every
//! start. The week of recorded run history arrives with runs and checks (issue 5).

use std::path::PathBuf;

use anyhow::Context as _;
use charter_core::policy::PolicyDefinition;
use charter_core::{AgentId, TenantId};
use charter_server::{AppState, serve};
use charter_store::{
    Activation, Actor, Change, KeyScope, PolicyFilter, Principal, SqliteStore, Store, Sync,
    new_key_secret,
};
use clap::Args;
use serde_json::json;

/// Where to run the demo.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Directory of the demo's SQLite database.
    #[arg(long, default_value = "./charter-data")]
    data_dir: PathBuf,
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(start(args))
}

#[expect(
    clippy::print_stdout,
    reason = "scripts read the real port and the key from standard output"
)]
async fn start(args: &DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = SqliteStore::open(&args.data_dir.join("charter.db"), Sync::Normal)
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
        seed(&store, &admin)
            .await
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
    println!("bootstrap key: {key}");
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    serve(
        AppState::new(store),
        listener,
        crate::serve::shutdown_signal(),
    )
    .await
    .context("serving")?;
    Ok(())
}

async fn seed<S: Store>(store: &S, admin: &Change) -> anyhow::Result<()> {
    for (tenant, name, agents) in [
        ("acme", "Acme Corp", &["support", "billing", "research"][..]),
        ("globex", "Globex", &["support", "research"][..]),
    ] {
        let id = TenantId::new(tenant)?;
        store.create_tenant(admin, &id, name).await?;
        for agent in agents {
            store
                .create_agent(
                    admin,
                    &id,
                    &AgentId::new(*agent)?,
                    &format!("{agent} agent"),
                    None,
                )
                .await?;
        }
    }
    let force = Activation {
        force: true,
        supersede: false,
    };
    let definition = |body: serde_json::Value| PolicyDefinition::parse(&body);
    // Platform: no shell, ever.
    let platform = store
        .create_policy(
            admin,
            definition(json!({"name": "No shell access", "description": "Agents never run shell commands.",
                "scope": {"type": "platform"},
                "rules": [{"id": "no-shell", "type": "tool", "effect": "deny", "tools": ["shell.**", "**.exec"]}]}))?,
            false,
        )
        .await?;
    store
        .activate(admin, platform.policy.id.as_str(), force, None)
        .await?;
    // Acme support: block external email (active), v1 deprecated by v2.
    let v1 = store
        .create_policy(
            admin,
            definition(json!({"name": "Block external email", "description": "Support may email colleagues only.",
                "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
                "rules": [{"id": "external-email", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                           "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]}))?,
            false,
        )
        .await?;
    store
        .activate(admin, v1.policy.id.as_str(), force, None)
        .await?;
    let v2 = store
        .clone_policy(admin, v1.policy.id.as_str(), None, None)
        .await?;
    let pii = charter_core::Rule::parse(
        &json!({"id": "no-card-numbers", "type": "output", "pii": ["credit_card", "ssn"]}),
    )?;
    store
        .add_rule(admin, v2.policy.id.as_str(), pii, None)
        .await?;
    store
        .activate(
            admin,
            v2.policy.id.as_str(),
            Activation {
                force: true,
                supersede: true,
            },
            None,
        )
        .await?;
    // Acme billing: a daily spend cap (active) and a draft rate limit awaiting validation.
    let cap = store
        .create_policy(
            admin,
            definition(json!({"name": "Billing spend cap", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "billing"},
                "rules": [{"id": "daily-cap", "type": "cost", "max_usd": "25.00", "period": "day", "per": "agent", "timezone": "America/New_York"}]}))?,
            false,
        )
        .await?;
    store
        .activate(admin, cap.policy.id.as_str(), force, None)
        .await?;
    store
        .create_policy(
            admin,
            definition(json!({"name": "Throttle refunds", "description": "Draft: validate before activating.",
                "scope": {"type": "tenant", "tenant_id": "acme"},
                "rules": [{"id": "refund-rate", "type": "rate", "limit": 5, "window": "1h", "per": "tenant",
                           "match": {"tools": ["billing.refund"]}},
                          {"id": "office-hours", "type": "time", "timezone": "America/New_York",
                           "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"}]}]}))?,
            false,
        )
        .await?;
    // Globex research: data access guard.
    let research = store
        .create_policy(
            admin,
            definition(json!({"name": "Research data boundaries", "scope": {"type": "agent", "tenant_id": "globex", "agent_id": "research"},
                "rules": [{"id": "no-hr", "type": "data_access", "effect": "deny", "resources": ["hr/**"]},
                          {"id": "no-ssn", "type": "data_access", "effect": "deny", "resources": ["crm/customers/*/ssn"], "operations": ["read"]}]}))?,
            false,
        )
        .await?;
    store
        .activate(admin, research.policy.id.as_str(), force, None)
        .await?;
    let total = store
        .list_policies(&Principal::Platform, &PolicyFilter::default())
        .await?
        .len();
    tracing::info!(policies = total, "demo workspace seeded");
    Ok(())
}
