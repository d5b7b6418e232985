//! Replay equals live: the checks a server decided (through its runtime, the group commit and
//! the store's counters) are replayed from the recorded history through charter-core's
//! `Replay`, and every decision must come out the same.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::StatusCode;
use charter_core::engine::{ArgsRead, CompiledSet, Outcome};
use charter_core::replay::{RecordedAction, Replay};
use charter_server::{Clock, Shared};
use charter_store::{HistoryPage, Principal};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::app::App;

/// A clock that moves 2.5 s each time it is read: rolling windows fill and slide, and a day's
/// spend crosses midnight, within one test.
struct Stepping(AtomicI64);

/// 23:55 UTC: the daily cap starts over a few minutes in.
const START_MS: i64 = 1_795_132_500_000;

impl Clock for Stepping {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.0.fetch_add(2_500, Ordering::Relaxed)).unwrap()
    }
}

fn stepping(state: &mut Shared) {
    state.clock = Arc::new(Stepping(AtomicI64::new(START_MS)));
}

/// A small deterministic generator, so a failure can be run again.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn action(rng: &mut Lcg) -> Value {
    match rng.below(6) {
        0 => json!({"kind": "tool_call", "tool": "gmail.send_email",
                    "args": {"to": if rng.below(2) == 0 { "ann@acme.com" } else { "bob@gmail.com" }}}),
        1 | 2 => json!({"kind": "tool_call", "tool": "web.search", "args": {"q": "refund policy"}}),
        3 => json!({"kind": "model_call", "model": "openai/gpt-4o", "input_tokens": 100,
                    "output_tokens": 50, "cost_usd": format!("0.{:02}", 10 + rng.below(60))}),
        4 => {
            json!({"kind": "output", "text": if rng.below(3) == 0 { "write to ann@example.com" } else { "done" }})
        }
        _ => json!({"kind": "data_access", "resource": format!("crm/customers/{}", rng.below(9)),
                    "operation": "read", "labels": if rng.below(4) == 0 { json!(["pii"]) } else { json!([]) }}),
    }
}

#[tokio::test]
async fn every_live_decision_is_what_replay_decides() {
    let (app, acme, _) = App::seeded_with(stepping).await;
    let key = Some(acme.as_str());
    let policies = [
        json!({"name": "Tenant guard", "scope": {"type": "tenant", "tenant_id": "acme"}, "rules": [
            {"id": "ext-mail", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
             "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
            {"id": "pii-out", "type": "output", "pii": ["email"]},
            {"id": "searches", "type": "rate", "limit": 4, "window": "1m", "per": "agent",
             "match": {"kinds": ["tool_call"], "tools": ["web.*"]}},
            {"id": "daily", "type": "cost", "max_usd": "6.00", "period": "day", "per": "tenant"}]}),
        json!({"name": "Support limits", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"}, "rules": [
            {"id": "per-run", "type": "cost", "max_usd": "1.50", "period": "run", "per": "run"},
            {"id": "no-pii-data", "type": "data_access", "effect": "deny", "resources": ["crm/**"],
             "labels": ["pii"]},
            {"id": "calls", "type": "rate", "limit": 9, "window": "30s", "per": "run"}]}),
    ];
    for body in policies {
        let created = app.call("POST", "/v1/policies", key, Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let id = created.body["id"].as_str().unwrap();
        let activated = app
            .call(
                "POST",
                &format!("/v1/policies/{id}/activate"),
                key,
                Some(json!({"force": true})),
            )
            .await;
        assert_eq!(activated.status, StatusCode::OK, "{:?}", activated.body);
    }

    let mut rng = Lcg(17);
    let mut runs: Vec<String> = Vec::new();
    let mut live: HashMap<String, Outcome> = HashMap::new();
    let mut counts: HashMap<Outcome, usize> = HashMap::new();
    for step in 0..240 {
        // A new run now and then, of either agent; checks go to any of the last few.
        if runs.is_empty() || rng.below(8) == 0 {
            let agent = if rng.below(3) == 0 {
                "billing"
            } else {
                "support"
            };
            let run = app
                .call("POST", "/v1/runs", key, Some(json!({"agent_id": agent})))
                .await;
            assert_eq!(run.status, StatusCode::CREATED, "{:?}", run.body);
            runs.push(run.body["id"].as_str().unwrap().to_owned());
        }
        let pick = runs.len() - 1 - usize::try_from(rng.below(3)).unwrap() % runs.len();
        let run = &runs[pick];
        let r = app
            .call(
                "POST",
                &format!("/v1/runs/{run}/check"),
                key,
                Some(action(&mut rng)),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "step {step}: {:?}", r.body);
        let outcome: Outcome = serde_json::from_value(r.body["decision"].clone()).unwrap();
        *counts.entry(outcome).or_default() += 1;
        // A halted run's later checks are answered from the run, not recorded.
        if let Some(id) = r.body["action_id"].as_str() {
            live.insert(id.to_owned(), outcome);
        }
    }
    // Every kind of decision happened, or the comparison proves little.
    for outcome in [Outcome::Allow, Outcome::Block, Outcome::Halt] {
        assert!(
            counts.get(&outcome).copied().unwrap_or(0) >= 5,
            "{counts:?}"
        );
    }

    // The same set, replayed over what was recorded, in replay order.
    let active = app
        .store
        .list_policies(
            &Principal::Platform,
            &charter_store::PolicyFilter {
                status: Some(charter_core::policy::Status::Active),
                ..charter_store::PolicyFilter::default()
            },
        )
        .await
        .unwrap();
    let active: Vec<_> = active.into_iter().map(|p| p.policy).collect();
    let set = CompiledSet::compile(&active).unwrap();
    let mut replay = Replay::new(&set, []);
    let mut page = HistoryPage {
        tenant: Some("acme".into()),
        agent: None,
        since: Timestamp::from_millisecond(START_MS - 1).unwrap(),
        until: Timestamp::from_millisecond(START_MS + 86_400_000 * 2).unwrap(),
        after: None,
        limit: 50,
        // What Validate reads: the arguments the policies read, and no others.
        args: ArgsRead::of(&active),
    };
    let mut compared = 0;
    loop {
        let rows = app
            .store
            .actions_page(&Principal::Platform, &page)
            .await
            .unwrap();
        let Some(last) = rows.last() else { break };
        page = page.following(last);
        for row in &rows {
            let replayed = replay
                .push(&RecordedAction {
                    run_id: row.run_id.clone(),
                    tenant_id: row.tenant_id.clone(),
                    agent_id: row.agent_id.clone(),
                    run_started_at: row.run_started_at,
                    at: Timestamp::from_millisecond(row.at_ms).unwrap(),
                    action: row.action.clone(),
                    recorded: row.decision,
                })
                .unwrap();
            assert_eq!(
                Some(replayed),
                live.get(&row.id).copied(),
                "action {} at {}",
                row.id,
                row.at_ms
            );
            assert_eq!(Some(replayed), row.decision, "action {}", row.id);
            compared += 1;
        }
    }
    assert_eq!(compared, live.len(), "every recorded check was replayed");
}
