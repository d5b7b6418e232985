//! The demo workspace `charter demo` seeds on an empty database: two tenants, agents, policies
//! in every status, a week of imported history and a few hundred live runs checked through the
//! engine (the Monitor's blocks and halts). Public so benches measure the same data.

use charter_core::policy::PolicyDefinition;
use charter_core::{AgentId, TenantId};
use charter_store::{Activation, Change, PolicyFilter, Principal, Store};
use serde_json::json;

/// Any failure while seeding.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Seeds the demo workspace into `store` (expected empty), acting as `admin`.
pub async fn seed(store: &Store, admin: &Change) -> Result<(), Error> {
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
    history(store, admin.at).await?;
    live(store, admin.at).await?;
    tracing::info!(policies = total, "demo workspace seeded");
    Ok(())
}

/// A small deterministic generator: the same demo every time.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items[i]
    }
}

/// One generated action of a given agent.
fn action(dice: &mut Dice, agent: &str) -> serde_json::Value {
    let people = [
        "ann@acme.com",
        "joe@acme.com",
        "bob@gmail.com",
        "li@partner.io",
        "eve@evil.io",
    ];
    match (agent, dice.below(10)) {
        ("support", 0..=3) => json!({"kind": "tool_call",
            "tool": dice.pick(&["gmail.send_email", "outlook.send_email"]),
            "args": {"to": dice.pick(&people), "subject": "Your ticket"}}),
        ("support", 4..=6) => {
            json!({"kind": "tool_call", "tool": "kb.search", "args": {"q": "refund policy"}})
        }
        ("support", 7..=8) => json!({"kind": "output", "channel": "chat", "text": dice.pick(&[
            "Thanks, your refund is on its way.",
            "Your card 4111 1111 1111 1111 was charged twice; we reversed one.",
            "Please confirm your SSN 123-45-6789 to continue.",
            "Happy to help!"])}),
        ("billing", 0..=4) => json!({"kind": "tool_call",
            "tool": dice.pick(&["billing.refund", "billing.invoice"]),
            "args": {"amount": dice.below(400)}, "cost_usd": "0.05"}),
        ("research", 0..=4) => json!({"kind": "data_access",
            "resource": dice.pick(&["crm/customers/42/ssn", "kb/articles/7", "hr/salaries", "crm/customers/9/name"]),
            "operation": "read"}),
        (_, 9) => {
            json!({"kind": "tool_call", "tool": dice.pick(&["shell.exec", "admin.exec"]), "args": {"cmd": "ls"}})
        }
        _ => json!({"kind": "model_call", "model": "openai/gpt-4o", "input_tokens": 900,
            "output_tokens": 200, "cost_usd": format!("0.0{}", 1 + dice.below(8))}),
    }
}

const AGENTS: [(&str, &str); 5] = [
    ("acme", "support"),
    ("acme", "billing"),
    ("acme", "research"),
    ("globex", "support"),
    ("globex", "research"),
];

/// A week of recorded history before now (imported, as from a system before Charter): what
/// Validate replays.
async fn history(store: &Store, now: jiff::Timestamp) -> Result<(), Error> {
    let mut dice = Dice(0x5eed_c4a7_7e11);
    let week_ms: u64 = 7 * 86_400_000;
    for (tenant, agent) in AGENTS {
        let mut runs = Vec::new();
        for _ in 0..600 {
            let offset = i64::try_from(week_ms - dice.below(week_ms)).unwrap_or(0);
            let start_ms = now.as_millisecond() - offset;
            let mut actions = Vec::new();
            let mut at = start_ms;
            for _ in 0..(2 + dice.below(6)) {
                at += 1_000 + i64::try_from(dice.below(20_000)).unwrap_or(0);
                actions.push(charter_store::ImportedAction {
                    at: jiff::Timestamp::from_millisecond(at)?,
                    action: charter_core::Action::parse(&action(&mut dice, agent))?,
                    decision: Some(charter_core::Outcome::Allow),
                });
            }
            runs.push(charter_store::ImportedRun {
                tenant_id: tenant.to_owned(),
                agent_id: agent.to_owned(),
                started_at: jiff::Timestamp::from_millisecond(start_ms)?,
                ended_at: None,
                status: charter_store::RunStatus::Completed,
                metadata: json!({"source": "demo history"}),
                actions,
            });
        }
        store
            .import_runs(&Principal::Platform, &mut runs.into_iter())
            .await?;
    }
    Ok(())
}

/// A few hundred runs checked now through the engine, as the server would: the Monitor's
/// blocks and halts.
async fn live(store: &Store, now: jiff::Timestamp) -> Result<(), Error> {
    let mut dice = Dice(0x11ce_f00d);
    let writer = charter_store::ActionWriter::spawn(store.clone(), 256);
    for (tenant, agent) in AGENTS {
        for _ in 0..60 {
            let (run, policies) = store
                .start_run(
                    &Principal::Platform,
                    tenant,
                    agent,
                    &json!({"source": "demo"}),
                    now,
                )
                .await?;
            let set = std::sync::Arc::new(charter_core::CompiledSet::compile(&policies)?);
            for step in 0..(2 + dice.below(5)) {
                let action = charter_core::Action::parse(&action(&mut dice, agent))?;
                let at = jiff::Timestamp::from_millisecond(
                    now.as_millisecond() + i64::try_from(step).unwrap_or(0) * 1_000,
                )?;
                let ctx = charter_core::RunContext {
                    tenant_id: tenant,
                    agent_id: agent,
                    run_id: &run.id,
                    run_started_at: run.started_at,
                    now: at,
                };
                let evaluation = set.evaluate(&action, &ctx);
                // Settled against the store's counters and recorded as the server would.
                let outcome = writer
                    .check(charter_store::PendingCheck {
                        id: format!("evt_{}", charter_store::new_id_suffix()),
                        run_id: run.id.clone(),
                        tenant_id: tenant.to_owned(),
                        agent_id: agent.to_owned(),
                        at,
                        action,
                        evaluation,
                        policy_set_hash: run.policy_set.hash.clone(),
                        set: std::sync::Arc::clone(&set),
                    })
                    .await?;
                let halted = !matches!(
                    outcome,
                    charter_store::CheckOutcome::Decided { ref decision, .. }
                        if decision.outcome != charter_core::Outcome::Halt
                );
                if halted {
                    break;
                }
            }
            store
                .end_run(
                    &Principal::Platform,
                    &run.id,
                    charter_store::RunStatus::Completed,
                    now,
                )
                .await?;
        }
    }
    Ok(())
}
