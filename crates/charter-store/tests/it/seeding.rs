//! Rate and cost rules count what happened before they were activated (product.md §4): the
//! first check that claims a counter seeds it from the recorded allowed actions it counts, once,
//! under the counter's lock, on every backend, across restarts and nodes.

use std::sync::Arc;

use charter_core::engine::{CompiledSet, Outcome, RunContext};
use charter_core::policy::PolicyDefinition;
use charter_core::{Action, Policy};
use charter_store::{ActionWriter, Activation, CheckOutcome, PendingCheck, Principal, Run, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::harness::{Kind, at, both, seed, tenant};
use crate::limits::restarted;

both!(
    a_rate_rule_counts_the_window_before_it,
    a_cost_cap_counts_the_day_before_it_also_after_a_restart,
    runs_without_the_rule_still_count_once_it_is_seeded
);

/// A run of `agent` in acme started at `seconds`, with the compiled set it pinned.
pub(crate) async fn run(store: &Store, agent: &str, seconds: i64) -> (Run, Arc<CompiledSet>) {
    let (run, policies) = store
        .start_run(&Principal::Platform, "acme", agent, &json!({}), at(seconds))
        .await
        .unwrap();
    (run, Arc::new(CompiledSet::compile(&policies).unwrap()))
}

/// Checks `action` in `run` at `at`, as the server does; the decision (`None`: refused from the
/// run, which had halted).
pub(crate) async fn check(
    writer: &ActionWriter,
    (run, set): &(Run, Arc<CompiledSet>),
    action: &Value,
    at: Timestamp,
) -> Option<Outcome> {
    let action = Action::parse(action).unwrap();
    let ctx = RunContext {
        tenant_id: &run.tenant_id,
        agent_id: &run.agent_id,
        run_id: &run.id,
        run_started_at: run.started_at,
        now: at,
    };
    let outcome = writer
        .check(PendingCheck {
            id: format!("evt_{}", charter_store::new_id_suffix()),
            run_id: run.id.clone(),
            tenant_id: run.tenant_id.clone(),
            agent_id: run.agent_id.clone(),
            at,
            evaluation: set.evaluate(&action, &ctx),
            action,
            policy_set_hash: run.policy_set.hash.clone(),
            set: Arc::clone(set),
        })
        .await
        .unwrap();
    match outcome {
        CheckOutcome::Decided { decision, .. } => Some(decision.outcome),
        CheckOutcome::Halted { .. } => None,
        other => panic!("{other:?}"),
    }
}

/// Creates and activates (forced) a tenant policy of acme with `rules`.
pub(crate) async fn activate(store: &Store, rules: Value) -> Policy {
    let acme = tenant("acme");
    let body = json!({"name": "limits", "scope": {"type": "tenant", "tenant_id": "acme"},
                      "rules": rules});
    let draft = store
        .create_policy(&acme, PolicyDefinition::parse(&body).unwrap(), false)
        .await
        .unwrap();
    let force = Activation {
        force: true,
        supersede: false,
    };
    store
        .activate(&acme, draft.policy.id.as_str(), force, None)
        .await
        .unwrap()
        .policy
}

pub(crate) fn search() -> Value {
    json!({"kind": "tool_call", "tool": "web.search", "args": {"q": "refunds"}})
}

pub(crate) fn spend(usd: &str) -> Value {
    json!({"kind": "model_call", "model": "m", "cost_usd": usd})
}

/// "3 searches per hour per agent" activated after the agent made 2 searches in the last hour
/// (and 5 more two hours ago, and some that were blocked or of another agent): 1 more is allowed.
async fn a_rate_rule_counts_the_window_before_it(store: Store, _: Kind) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    let before = run(&store, "support", 0).await;
    let other = run(&store, "billing", 0).await;
    for minute in 0..5 {
        let at = at(minute * 60);
        assert_eq!(
            check(&writer, &before, &search(), at).await,
            Some(Outcome::Allow)
        );
    }
    for minute in [125, 150] {
        let at = at(minute * 60);
        assert_eq!(
            check(&writer, &before, &search(), at).await,
            Some(Outcome::Allow)
        );
        assert_eq!(
            check(&writer, &other, &search(), at).await,
            Some(Outcome::Allow)
        );
    }
    // Not a matching tool: never counted.
    let lookup = json!({"kind": "tool_call", "tool": "crm.lookup"});
    assert_eq!(
        check(&writer, &before, &lookup, at(151 * 60)).await,
        Some(Outcome::Allow)
    );

    activate(
        &store,
        json!([{"id": "searches", "type": "rate", "limit": 3, "window": "1h", "per": "agent",
                "match": {"tools": ["web.*"]}}]),
    )
    .await;
    let after = run(&store, "support", 160 * 60).await;
    assert_eq!(
        check(&writer, &after, &search(), at(170 * 60)).await,
        Some(Outcome::Allow),
        "2 of 3 were used in the hour before"
    );
    assert_eq!(
        check(&writer, &after, &search(), at(171 * 60)).await,
        Some(Outcome::Block),
        "the window is full"
    );
    // The other agent's own window holds its 2 searches: one more.
    let billing = run(&store, "billing", 160 * 60).await;
    for (minute, expected) in [(172, Outcome::Allow), (173, Outcome::Block)] {
        assert_eq!(
            check(&writer, &billing, &search(), at(minute * 60)).await,
            Some(expected),
            "billing at minute {minute}"
        );
    }
    // An hour after the last of those searches the window has room again.
    assert_eq!(
        check(&writer, &after, &search(), at(231 * 60)).await,
        Some(Outcome::Allow)
    );
}

/// A daily cap of 5.00 per tenant activated at noon, after 3.50 spent in the morning (and 9.00
/// the day before): 1.50 more is allowed, then the run halts; after a restart the counter is not
/// seeded again (nothing counted twice).
async fn a_cost_cap_counts_the_day_before_it_also_after_a_restart(store: Store, _: Kind) {
    seed(&store).await;
    // `at(0)` is 11:06:40 UTC: "the day" is the next one, from at(46_400).
    let day = 46_400;
    let writer = ActionWriter::spawn(store.clone(), 16);
    let morning = run(&store, "support", day - 20_000).await;
    assert_eq!(
        check(&writer, &morning, &spend("9.00"), at(day - 100)).await,
        Some(Outcome::Allow)
    );
    for (hour, usd) in [(8, "1.00"), (9, "2.00"), (10, "0.50")] {
        let at = at(day + hour * 3600);
        assert_eq!(
            check(&writer, &morning, &spend(usd), at).await,
            Some(Outcome::Allow)
        );
    }
    activate(
        &store,
        json!([{"id": "daily", "type": "cost", "max_usd": "5.00", "period": "day", "per": "tenant"}]),
    )
    .await;
    let noon = day + 12 * 3600;
    let first = run(&store, "support", noon).await;
    assert_eq!(
        check(&writer, &first, &spend("1.00"), at(noon + 60)).await,
        Some(Outcome::Allow),
        "3.50 + 1.00 is within 5.00"
    );
    drop(writer);
    let store = restarted(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    let second = run(&store, "billing", noon + 120).await;
    assert_eq!(
        check(&writer, &second, &spend("0.50"), at(noon + 180)).await,
        Some(Outcome::Allow),
        "exactly the cap, after a restart: the morning was not counted twice"
    );
    assert_eq!(
        check(&writer, &second, &spend("0.01"), at(noon + 240)).await,
        Some(Outcome::Halt)
    );
    assert_eq!(
        check(&writer, &second, &spend("0.01"), at(noon + 300)).await,
        None
    );
}

/// A run started before a rule was activated does not have it, yet its actions count on the
/// rule's counters: those recorded before the counter was seeded through the seed, those after
/// through the counter being watched, also after a restart.
async fn runs_without_the_rule_still_count_once_it_is_seeded(store: Store, _: Kind) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    let old = run(&store, "support", 0).await;
    let billing = run(&store, "billing", 0).await;
    assert_eq!(
        check(&writer, &old, &search(), at(60)).await,
        Some(Outcome::Allow)
    );
    activate(
        &store,
        json!([{"id": "searches", "type": "rate", "limit": 4, "window": "1h", "per": "agent",
                "match": {"tools": ["web.*"]}},
               {"id": "daily", "type": "cost", "max_usd": "3.00", "period": "day", "per": "tenant"}]),
    )
    .await;
    let new = run(&store, "support", 120).await;
    // Seeds both counters: 1 search, no spend.
    assert_eq!(
        check(&writer, &new, &search(), at(180)).await,
        Some(Outcome::Allow)
    );
    // The old run, unbounded itself, still counts: 2 searches and 2.50 spent by the billing
    // agent's old run (the tenant's spend).
    assert_eq!(
        check(&writer, &old, &search(), at(240)).await,
        Some(Outcome::Allow)
    );
    drop(writer);
    let store = restarted(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    assert_eq!(
        check(&writer, &old, &search(), at(300)).await,
        Some(Outcome::Allow)
    );
    assert_eq!(
        check(&writer, &billing, &spend("2.50"), at(310)).await,
        Some(Outcome::Allow),
        "the billing run pinned nothing: no cap of its own"
    );
    assert_eq!(
        check(&writer, &new, &search(), at(360)).await,
        Some(Outcome::Block),
        "4 searches in the hour: 1 before the rule, 1 under it, 2 of the old run after it"
    );
    assert_eq!(
        check(&writer, &new, &spend("0.50"), at(420)).await,
        Some(Outcome::Allow),
        "2.50 + 0.50 is the cap"
    );
    assert_eq!(
        check(&writer, &new, &spend("0.01"), at(480)).await,
        Some(Outcome::Halt)
    );
}

/// Two nodes on one PostgreSQL database seed a tenant's daily cap and spend against it at
/// once: together they never pass the cap, and they reach it exactly (no count lost or
/// doubled).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_seeding_and_spending_at_once_reach_the_cap_exactly() {
    let Some((one, schema)) = crate::harness::postgres().await else {
        return;
    };
    seed(&one).await;
    let two = one.reopen().await.unwrap();
    let day = 46_400;
    let writer = ActionWriter::spawn(one.clone(), 16);
    let morning = run(&one, "support", day).await;
    // 2.00 spent before the cap exists.
    for i in 0..4 {
        assert_eq!(
            check(&writer, &morning, &spend("0.50"), at(day + 60 + i)).await,
            Some(Outcome::Allow)
        );
    }
    activate(
        &one,
        json!([{"id": "daily", "type": "cost", "max_usd": "10.00", "period": "day", "per": "tenant"}]),
    )
    .await;
    let mut tasks = Vec::new();
    for (node, store) in [(0, one.clone()), (1, two.clone())] {
        for task in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let writer = ActionWriter::spawn(store.clone(), 4);
                let agent = if task % 2 == 0 { "support" } else { "billing" };
                let run = run(&store, agent, day + 600 + node).await;
                let mut allowed = 0u32;
                for i in 0..10 {
                    let at = at(day + 700 + i64::from(task) * 10 + i);
                    match check(&writer, &run, &spend("0.25"), at).await {
                        Some(Outcome::Allow) => allowed += 1,
                        Some(Outcome::Halt) | None => break,
                        Some(Outcome::Block) => panic!("a cost cap halts"),
                    }
                }
                allowed
            }));
        }
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    // 8.00 left of 10.00, in steps of 0.25.
    assert_eq!(allowed, 32, "the cap is reached exactly");
    drop(two);
    crate::harness::drop_schema(&schema).await;
}

/// On two PostgreSQL nodes, runs without a tenant's new daily cap spend on one node while the
/// other seeds the cap's counter: every one of their spends is counted exactly once, through
/// the seed or through the counter being watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seed_on_one_node_misses_nothing_another_node_commits() {
    let Some((one, schema)) = crate::harness::postgres().await else {
        return;
    };
    seed(&one).await;
    let two = one.reopen().await.unwrap();
    let day = 46_400;
    let mut old = Vec::new();
    for i in 0..8 {
        old.push(run(&two, if i % 2 == 0 { "support" } else { "billing" }, day).await);
    }
    activate(
        &one,
        json!([{"id": "daily", "type": "cost", "max_usd": "100.00", "period": "day", "per": "tenant"}]),
    )
    .await;
    let new = run(&one, "support", day + 10).await;
    let mut tasks = Vec::new();
    for run in old {
        let two = two.clone();
        tasks.push(tokio::spawn(async move {
            let writer = ActionWriter::spawn(two, 4);
            for i in 0..5 {
                let at = at(day + 20 + i);
                assert_eq!(
                    check(&writer, &run, &spend("0.50"), at).await,
                    Some(Outcome::Allow)
                );
            }
        }));
    }
    // The first claim on the cap, made while the old runs spend: the seed.
    let writer = ActionWriter::spawn(one.clone(), 4);
    assert_eq!(
        check(&writer, &new, &spend("0.00"), at(day + 22)).await,
        Some(Outcome::Allow)
    );
    for task in tasks {
        task.await.unwrap();
    }
    // 8 runs × 5 × 0.50 = 20.00 spent by runs without the cap: 80.00 are left, exactly.
    assert_eq!(
        check(&writer, &new, &spend("80.00"), at(day + 100)).await,
        Some(Outcome::Allow)
    );
    assert_eq!(
        check(&writer, &new, &spend("0.01"), at(day + 101)).await,
        Some(Outcome::Halt)
    );
    drop(two);
    crate::harness::drop_schema(&schema).await;
}
