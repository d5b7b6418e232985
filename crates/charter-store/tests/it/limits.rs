//! Rate and cost state in the store: exact under concurrency, surviving restarts.

use charter_core::action::Action;
use charter_core::engine::{CompiledSet, RunContext};
use charter_core::limits::{Claim, Settle};
use charter_core::policy::{Policy, PolicyDefinition};
use charter_core::{LineageId, PolicyId};
use charter_store::Store;
use serde_json::{Value, json};

use crate::harness::{Kind, at, both};

both!(
    concurrent_spends_never_exceed_the_cap,
    concurrent_rate_checks_never_exceed_the_limit,
    limit_state_survives_a_restart
);

/// The same database opened anew after `store` closed, as a restarted process would.
pub(crate) async fn restarted(store: &Store) -> Store {
    store.close().await;
    store.reopen().await.unwrap()
}

fn set(rules: Value) -> CompiledSet {
    let mut body = json!({"name": "limits", "scope": {"type": "tenant", "tenant_id": "acme"}});
    body["rules"] = rules;
    let definition = PolicyDefinition::parse(&body).unwrap();
    let policy = Policy::draft(
        PolicyId::new("pol_1").unwrap(),
        LineageId::new("lin_1").unwrap(),
        definition,
        at(0),
    );
    CompiledSet::compile([&policy]).unwrap()
}

fn claims(set: &CompiledSet, action: &Value, run: &str, seconds: i64) -> Vec<Claim> {
    let action = Action::parse(action).unwrap();
    let ctx = RunContext {
        tenant_id: "acme",
        agent_id: "support",
        run_id: run,
        run_started_at: at(0),
        now: at(seconds),
    };
    let evaluation = set.evaluate(&action, &ctx);
    assert!(evaluation.violations.is_empty());
    evaluation.claims
}

/// 16 tasks, 3 attempts each, spending 1.00 against a 10.00 daily cap of the tenant.
async fn concurrent_spends_never_exceed_the_cap(store: Store, _: Kind) {
    let set = set(
        json!([{"id": "cap", "type": "cost", "max_usd": "10.00", "period": "day", "per": "tenant"}]),
    );
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = store.clone();
        let claims = claims(
            &set,
            &json!({"kind": "model_call", "model": "m", "cost_usd": "1.00"}),
            &format!("run_{task}"),
            60,
        );
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..3 {
                if store
                    .settle(&claims, at(60), Settle::CommitIfWithin)
                    .await
                    .unwrap()
                    .is_empty()
                {
                    allowed += 1;
                }
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap();
    }
    assert_eq!(allowed, 10, "exactly the cap's worth of spend is allowed");
    // What is recorded is what was allowed: a zero-cost check sees the cap reached.
    let probe = claims(
        &set,
        &json!({"kind": "model_call", "model": "m", "cost_usd": "0.01"}),
        "run_x",
        61,
    );
    let exceeded = store
        .settle(&probe, at(61), Settle::CheckOnly)
        .await
        .unwrap();
    assert_eq!(exceeded.len(), 1);
    assert_eq!(exceeded[0].used, 10_000_000);
}

async fn concurrent_rate_checks_never_exceed_the_limit(store: Store, _: Kind) {
    let set = set(json!([
        {"id": "r5", "type": "rate", "limit": 5, "window": "1m", "per": "agent"},
        {"id": "r7", "type": "rate", "limit": 7, "window": "1m", "per": "agent"}
    ]));
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = store.clone();
        let claims = claims(
            &set,
            &json!({"kind": "tool_call", "tool": "kb.search"}),
            &format!("run_{task}"),
            10,
        );
        tasks.push(tokio::spawn(async move {
            store
                .settle(&claims, at(10), Settle::CommitIfWithin)
                .await
                .unwrap()
                .is_empty()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    // Two rules with the same filter, window and key share one counter: the lower cap wins,
    // and each allowed action counts once.
    assert_eq!(allowed, 5);
    // Once the window has rolled (plus 1/60), the budget is back.
    let later = claims(
        &set,
        &json!({"kind": "tool_call", "tool": "kb.search"}),
        "run_z",
        72,
    );
    assert!(
        store
            .settle(&later, at(72), Settle::CommitIfWithin)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn limit_state_survives_a_restart(store: Store, _: Kind) {
    let set =
        set(json!([{"id": "r", "type": "rate", "limit": 5, "window": "1h", "per": "tenant"}]));
    let claim = claims(
        &set,
        &json!({"kind": "model_call", "model": "m"}),
        "run_1",
        100,
    );
    for _ in 0..3 {
        assert!(
            store
                .settle(&claim, at(100), Settle::CommitIfWithin)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // Refused and check-only settlements consume nothing.
    store
        .settle(&claim, at(100), Settle::CheckOnly)
        .await
        .unwrap();
    let store = restarted(&store).await;
    let mut allowed = 0;
    for _ in 0..5 {
        if store
            .settle(&claim, at(200), Settle::CommitIfWithin)
            .await
            .unwrap()
            .is_empty()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 2, "three of five were used before the restart");
    // Rebuilding by recording counts without checking.
    store.settle(&claim, at(200), Settle::Record).await.unwrap();
    let exceeded = store
        .settle(&claim, at(201), Settle::CheckOnly)
        .await
        .unwrap();
    assert_eq!(exceeded[0].used, 6);
}

both!(a_claim_older_than_the_kept_history_fails_closed);

async fn a_claim_older_than_the_kept_history_fails_closed(store: Store, _: Kind) {
    let set =
        set(json!([{"id": "r", "type": "rate", "limit": 100, "window": "1m", "per": "tenant"}]));
    let now = claims(
        &set,
        &json!({"kind": "model_call", "model": "m"}),
        "run_1",
        600,
    );
    assert!(
        store
            .settle(&now, at(600), Settle::CommitIfWithin)
            .await
            .unwrap()
            .is_empty()
    );
    // A node whose clock lags by more than the two windows kept cannot be counted honestly.
    let lagging = claims(
        &set,
        &json!({"kind": "model_call", "model": "m"}),
        "run_1",
        400,
    );
    let exceeded = store
        .settle(&lagging, at(400), Settle::CommitIfWithin)
        .await
        .unwrap();
    assert_eq!(exceeded.len(), 1);
    // Within the kept history it is counted as usual.
    let recent = claims(
        &set,
        &json!({"kind": "model_call", "model": "m"}),
        "run_1",
        590,
    );
    assert!(
        store
            .settle(&recent, at(590), Settle::CommitIfWithin)
            .await
            .unwrap()
            .is_empty()
    );
}
