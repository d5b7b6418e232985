//! The benchmark scenarios (S1–S4 and the scaling family) with deterministic request streams.

use serde_json::{Value, json};

use crate::model::{
    Action, Agent, CondOp, Condition, Effect, Operation, Policy, Request, Rule, Scenario, Workload,
};

/// SplitMix64: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn tool_call(tenant: &str, agent: &str, tool: &str, args: Value) -> Request {
    Request {
        tenant: tenant.to_owned(),
        agent: agent.to_owned(),
        action: Action::ToolCall {
            tool: tool.to_owned(),
            args,
        },
    }
}

fn data_access(tenant: &str, agent: &str, resource: String, operation: Operation) -> Request {
    Request {
        tenant: tenant.to_owned(),
        agent: agent.to_owned(),
        action: Action::DataAccess {
            resource,
            operation,
        },
    }
}

/// One tenant `t1` with agents `a1`..`a5`; the scenario's policy governs `t1/a1`.
fn single_agent_scenario(key: &str, title: &str, policy_name: &str, rules: Vec<Rule>) -> Scenario {
    Scenario {
        key: key.to_owned(),
        title: title.to_owned(),
        tenants: vec!["t1".to_owned()],
        agents: (1..=5)
            .map(|i| Agent {
                tenant: "t1".to_owned(),
                agent: format!("a{i}"),
            })
            .collect(),
        policies: vec![Policy {
            name: policy_name.to_owned(),
            tenant: "t1".to_owned(),
            agent: "a1".to_owned(),
            rules,
        }],
    }
}

pub const S1_ALLOWED: [&str; 20] = [
    "crm.lookup_customer",
    "crm.update_customer",
    "crm.list_orders",
    "kb.search",
    "kb.get_article",
    "tickets.create",
    "tickets.update",
    "tickets.comment",
    "tickets.close",
    "tickets.search",
    "calendar.list_events",
    "calendar.create_event",
    "slack.post_message",
    "slack.read_channel",
    "jira.create_issue",
    "jira.search",
    "docs.read",
    "docs.search",
    "billing.get_invoice",
    "billing.list_invoices",
];

/// Not on the list; includes near misses (case, suffix, extra segment).
const S1_OTHERS: [&str; 20] = [
    "crm.delete_customer",
    "crm.export_all",
    "kb.delete_article",
    "tickets.delete",
    "gmail.send_email",
    "outlook.send_email",
    "shell.exec",
    "files.delete",
    "db.query",
    "db.drop_table",
    "billing.refund",
    "payments.transfer",
    "admin.create_user",
    "admin.grant_role",
    "browser.open",
    "kb.search_v2",
    "kb.searc",
    "KB.search",
    "crm.lookup_customer.raw",
    "tickets.create/batch",
];

/// S1: one agent-scoped allow-list of 20 tools; 50/50 allowed and not-allowed calls.
pub fn s1(n: usize) -> Workload {
    let scenario = single_agent_scenario(
        "S1",
        "S1 tool allow-list (1 policy, 20 tools)",
        "support-bot tool allow-list",
        vec![Rule::Tool {
            id: "r1".to_owned(),
            effect: Effect::Allow,
            tools: strings(&S1_ALLOWED),
            when: vec![],
        }],
    );
    let mut rng = Rng::new(1);
    let requests = (0..n)
        .map(|i| {
            let tool = if i % 2 == 0 {
                rng.pick(&S1_ALLOWED)
            } else {
                rng.pick(&S1_OTHERS)
            };
            tool_call(
                "t1",
                "a1",
                tool,
                json!({"query": format!("order {i}"), "limit": 10}),
            )
        })
        .collect();
    Workload { scenario, requests }
}

/// S2: deny `*.send_email` when `to` does not end with `@acme.com`.
pub fn s2(n: usize) -> Workload {
    let scenario = single_agent_scenario(
        "S2",
        "S2 block external email (1 policy, glob + argument condition)",
        "block external email",
        vec![Rule::Tool {
            id: "r1".to_owned(),
            effect: Effect::Deny,
            tools: vec!["*.send_email".to_owned()],
            when: vec![Condition {
                arg: "to".to_owned(),
                op: CondOp::NotEndsWith,
                value: json!("@acme.com"),
            }],
        }],
    );
    let mut rng = Rng::new(2);
    let internal = ["alice@acme.com", "bob.smith@acme.com", "support@acme.com"];
    let external = [
        "carol@gmail.com",
        "dave@acme.com.evil.io",
        "erin@acme.co",
        "frank@sub.acme.com",
        "grace@ACME.COM",
    ];
    // Tools that a sloppy encoding would get wrong: `*` must not span segments.
    let near_misses = [
        "corp.gmail.send_email",
        "gmail.send_email_draft",
        "gmail/send_email",
    ];
    let others = ["kb.search", "crm.lookup_customer", "tickets.create"];
    let requests = (0..n)
        .map(|i| {
            let roll = rng.below(100);
            let subject = format!("re: ticket {i}");
            if roll < 60 {
                let tool = rng.pick(&["gmail.send_email", "outlook.send_email"]);
                let to = if rng.chance(50) {
                    rng.pick(&internal)
                } else {
                    rng.pick(&external)
                };
                tool_call(
                    "t1",
                    "a1",
                    tool,
                    json!({"to": to, "subject": subject, "body": "hi"}),
                )
            } else if roll < 65 {
                // No `to`: the condition is false (missing argument), so the rule does not fire.
                tool_call("t1", "a1", "gmail.send_email", json!({"subject": subject}))
            } else if roll < 80 {
                let to = rng.pick(&external);
                tool_call(
                    "t1",
                    "a1",
                    rng.pick::<&str>(&near_misses),
                    json!({"to": to, "subject": subject}),
                )
            } else {
                tool_call(
                    "t1",
                    "a1",
                    rng.pick::<&str>(&others),
                    json!({"query": subject}),
                )
            }
        })
        .collect();
    Workload { scenario, requests }
}

/// S3: deny reads of `crm/customers/*/ssn` and `hr/**`; allow-list `crm/**` and `kb/**`.
pub fn s3(n: usize) -> Workload {
    let scenario = single_agent_scenario(
        "S3",
        "S3 data-access globs (1 policy, 2 rules, 4 globs)",
        "customer data access",
        vec![
            Rule::DataAccess {
                id: "r1".to_owned(),
                effect: Effect::Deny,
                resources: strings(&["crm/customers/*/ssn", "hr/**"]),
                operations: vec![Operation::Read],
            },
            Rule::DataAccess {
                id: "r2".to_owned(),
                effect: Effect::Allow,
                resources: strings(&["crm/**", "kb/**"]),
                operations: Operation::ALL.to_vec(),
            },
        ],
    );
    let mut rng = Rng::new(3);
    let requests = (0..n)
        .map(|_| {
            let id = rng.below(100_000);
            let resource = match rng.below(14) {
                0 | 1 => format!("crm/customers/{id}/ssn"),
                2 => format!("crm/customers/{id}/name"),
                // `*` stays within one segment: these are not `crm/customers/*/ssn`.
                3 => format!("crm/customers/{id}/notes/ssn"),
                4 => "crm/customers/ssn".to_owned(),
                5 => format!("crm/orders/{id}"),
                6 => "hr".to_owned(),
                7 => format!("hr/payroll/{id}"),
                8 => format!("hr/reviews/{id}/text"),
                9 => format!("hrx/notes/{id}"),
                10 => format!("kb/articles/{id}"),
                11 => "kb".to_owned(),
                12 => format!("finance/ledger/{id}"),
                _ => "crm".to_owned(),
            };
            let op = *rng.pick(&Operation::ALL);
            data_access("t1", "a1", resource, op)
        })
        .collect();
    Workload { scenario, requests }
}

const S4_TOOLS: [&str; 30] = [
    "crm.lookup_customer",
    "crm.update_customer",
    "crm.delete_customer",
    "crm.export_all",
    "kb.search",
    "kb.get_article",
    "kb.delete_article",
    "tickets.create",
    "tickets.update",
    "tickets.close",
    "tickets.delete",
    "calendar.create_event",
    "calendar.delete_event",
    "slack.post_message",
    "slack.delete_message",
    "jira.create_issue",
    "jira.delete_issue",
    "docs.read",
    "docs.share_public",
    "billing.refund",
    "billing.get_invoice",
    "gmail.send_email",
    "outlook.send_email",
    "github.merge_pr",
    "github.push",
    "github.delete_repo",
    "admin.create_user",
    "admin.grant_role",
    "hr.view_salary",
    "analytics.export",
];

/// One glob per policy, drawn from these (all three supported shapes occur).
const S4_GLOBS: [&str; 8] = [
    "shell.*",
    "files.*",
    "db.*",
    "browser.*",
    "*.delete",
    "*.export",
    "admin.**",
    "**.purge",
];

/// Tool names that hit (or nearly miss) the globs above.
const S4_GLOB_TARGETS: [&str; 16] = [
    "shell.exec",
    "shell.run_script",
    "files.read",
    "files.delete",
    "files.tmp.delete",
    "db.query",
    "db.x.y",
    "browser.open",
    "crm.delete",
    "kb.export",
    "admin",
    "admin.users.create",
    "purge",
    "kb.cache.purge",
    "x.purge",
    "shellx.exec",
];

/// S4 and the scaling family: `tenants` × `agents_per_tenant` agents, one policy each: a deny
/// list of 4 tools + 1 glob, and `payments.transfer` denied above a per-agent amount.
pub fn s4(key: &str, tenants: usize, agents_per_tenant: usize, n: usize) -> Workload {
    let mut rng = Rng::new(4 + (tenants * agents_per_tenant) as u64);
    let tenant_ids: Vec<String> = (1..=tenants).map(|t| format!("t{t}")).collect();
    let mut agents = Vec::with_capacity(tenants * agents_per_tenant);
    let mut policies = Vec::with_capacity(tenants * agents_per_tenant);
    for t in &tenant_ids {
        for a in 1..=agents_per_tenant {
            let agent = format!("a{a}");
            let mut tools: Vec<String> = Vec::with_capacity(5);
            while tools.len() < 4 {
                let tool = rng.pick(&S4_TOOLS).to_string();
                if !tools.contains(&tool) {
                    tools.push(tool);
                }
            }
            tools.push(rng.pick(&S4_GLOBS).to_string());
            let limit = 500 * (1 + rng.below(20));
            policies.push(Policy {
                name: format!("{t}/{agent} guardrails"),
                tenant: t.clone(),
                agent: agent.clone(),
                rules: vec![
                    Rule::Tool {
                        id: "r1".to_owned(),
                        effect: Effect::Deny,
                        tools,
                        when: vec![],
                    },
                    Rule::Tool {
                        id: "r2".to_owned(),
                        effect: Effect::Deny,
                        tools: vec!["payments.transfer".to_owned()],
                        when: vec![Condition {
                            arg: "amount".to_owned(),
                            op: CondOp::Gt,
                            value: json!(limit),
                        }],
                    },
                ],
            });
            agents.push(Agent {
                tenant: t.clone(),
                agent,
            });
        }
    }
    let count = policies.len();
    let scenario = Scenario {
        key: key.to_owned(),
        title: format!(
            "{key} {count} agent-scoped policies ({tenants} tenants × {agents_per_tenant} agents)"
        ),
        tenants: tenant_ids,
        agents,
        policies,
    };
    let requests = (0..n)
        .map(|_| {
            let who = rng.pick(&scenario.agents).clone();
            let roll = rng.below(100);
            let (tool, args) = if roll < 50 {
                (
                    rng.pick(&S4_TOOLS).to_string(),
                    json!({"id": rng.below(1000)}),
                )
            } else if roll < 80 {
                (
                    rng.pick(&S4_GLOB_TARGETS).to_string(),
                    json!({"path": "/tmp/x"}),
                )
            } else {
                let amount = rng.below(10_001);
                (
                    "payments.transfer".to_owned(),
                    json!({"amount": amount, "currency": "USD"}),
                )
            };
            tool_call(&who.tenant, &who.agent, &tool, args)
        })
        .collect();
    Workload { scenario, requests }
}
