//! Imported history, run lists, a run's actions, key usage, and limits shared by two nodes.

use charter_core::engine::{ArgsRead, CompiledSet, Outcome, RunContext};
use charter_core::limits::Settle;
use charter_core::policy::{Policy, PolicyDefinition};
use charter_core::{Action, LineageId, PolicyId};
use charter_store::{
    ActionWriter, CheckOutcome, HistoryPage, ImportedAction, ImportedRun, KeyScope, PendingCheck,
    Principal, RunFilter, RunStatus, Store, StoreError, ViolationFilter, new_key_secret,
};
use serde_json::json;

use crate::harness::{Kind, at, both, platform, seed, tenant};

both!(
    imported_history_is_listed_and_replayable,
    key_usage_is_flushed,
    two_nodes_share_one_budget,
    checks_through_two_nodes_share_one_budget,
    blocks_of_two_tenants_through_two_nodes_are_counted_once,
    checks_racing_the_end_of_their_run
);

/// The first page of every agent's recorded actions in `[0, until)` (of one tenant, or all).
fn first_page(tenant: Option<&str>, until: i64, limit: u32) -> HistoryPage {
    HistoryPage {
        tenant: tenant.map(str::to_owned),
        agent: None,
        since: at(0),
        until: at(until),
        after: None,
        limit,
        args: ArgsRead::all(),
    }
}

fn imported(agent: &str, start: i64, actions: usize) -> ImportedRun {
    ImportedRun {
        tenant_id: "acme".into(),
        agent_id: agent.into(),
        started_at: at(start),
        ended_at: None,
        status: RunStatus::Completed,
        metadata: json!({"source": "test"}),
        actions: (0..actions)
            .map(|i| ImportedAction {
                at: at(start + i64::try_from(i).unwrap()),
                action: Action::parse(&json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "x@y.z"}})).unwrap(),
                decision: Some(if i == 0 { Outcome::Block } else { Outcome::Allow }),
            })
            .collect(),
    }
}

async fn imported_history_is_listed_and_replayable(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let (runs, actions) = store
        .import_runs(
            &acme.principal,
            &mut [imported("support", 100, 3), imported("billing", 200, 2)].iter(),
        )
        .await
        .unwrap();
    assert_eq!((runs, actions), (2, 5));
    // All or nothing: a bad second run imports nothing.
    let mut bad = imported("support", 300, 2);
    bad.actions[1].at = at(250);
    let e = store
        .import_runs(
            &acme.principal,
            &mut [imported("support", 300, 1), bad].iter(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        StoreError::Invalid {
            path: "runs[1].actions[1].at".into(),
            message: "actions are in time order, none before the run's start".into()
        }
    );
    let e = store
        .import_runs(
            &tenant("globex").principal,
            &mut [imported("support", 300, 1)].iter(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { ref path, .. } if path == "runs[0].tenant_id"),
        "{e:?}"
    );
    // A tenant that exists nowhere is named the same way, also for the platform.
    let mut nowhere = imported("support", 300, 1);
    nowhere.tenant_id = "nowhere".into();
    for principal in [&acme.principal, &Principal::Platform] {
        let e = store
            .import_runs(
                principal,
                &mut [imported("support", 300, 1), nowhere.clone()].iter(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e,
            StoreError::Invalid {
                path: "runs[1].tenant_id".into(),
                message: "no tenant `nowhere`".into()
            }
        );
    }
    let page = store
        .runs(&acme.principal, &RunFilter::default(), None, 1)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].agent_id, "billing", "newest first");
    let rest = store
        .runs(
            &acme.principal,
            &RunFilter::default(),
            page.next_cursor.as_deref(),
            10,
        )
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.next_cursor), (1, None));
    let support = store
        .runs(
            &acme.principal,
            &RunFilter {
                agent_id: Some("support".into()),
                ..RunFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(support.items[0].imported && support.items[0].ended_at == Some(at(102)));
    let actions = store
        .run_actions(&acme.principal, &support.items[0].id)
        .await
        .unwrap();
    assert_eq!(actions.len(), 3);
    assert_eq!(actions[0].decision.as_deref(), Some("block"));
    assert!(
        store
            .runs(&tenant("globex").principal, &RunFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store
            .run_actions(&tenant("globex").principal, &support.items[0].id)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let rows = store
        .actions_page(&Principal::Platform, &first_page(Some("acme"), 1000, 100))
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].decision, Some(Outcome::Block));
    assert_eq!(rows[0].run_started_at, at(100));
}

async fn key_usage_is_flushed(store: Store, _: Kind) {
    seed(&store).await;
    let key = store
        .create_key(
            &platform(),
            "ops",
            None,
            &[KeyScope::Read],
            &new_key_secret(),
        )
        .await
        .unwrap();
    store
        .record_key_usage(&[(key.id.clone(), 3, at(50))])
        .await
        .unwrap();
    store
        .record_key_usage(&[(key.id.clone(), 2, at(40))])
        .await
        .unwrap();
    let listed = store.list_keys(&Principal::Platform).await.unwrap();
    assert_eq!((listed[0].calls, listed[0].last_used_at), (5, Some(at(50))));
}

/// Two processes on one database (a second pool, as another node would open) spend against
/// one cap concurrently: together they never pass it.
async fn two_nodes_share_one_budget(store: Store, _: Kind) {
    let other = store.reopen().await.unwrap();
    let definition = PolicyDefinition::parse(&json!({"name": "cap", "scope": {"type": "platform"},
        "rules": [{"id": "c", "type": "cost", "max_usd": "5.00", "period": "day", "per": "tenant"}]})).unwrap();
    let policy = Policy::draft(
        PolicyId::new("pol_c").unwrap(),
        LineageId::new("lin_c").unwrap(),
        definition,
        at(0),
    );
    let set = CompiledSet::compile([&policy]).unwrap();
    let action =
        Action::parse(&json!({"kind": "model_call", "model": "m", "cost_usd": "0.50"})).unwrap();
    let ctx = RunContext {
        tenant_id: "acme",
        agent_id: "a",
        run_id: "r",
        run_started_at: at(0),
        now: at(10),
    };
    let claims = set.evaluate(&action, &ctx).claims;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let claims = claims.clone();
        let (a, b) = (store.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            let node = if i % 2 == 0 {
                a.settle(&claims, at(10), Settle::CommitIfWithin).await
            } else {
                b.settle(&claims, at(10), Settle::CommitIfWithin).await
            };
            usize::from(node.unwrap().is_empty())
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap();
    }
    assert_eq!(allowed, 10);
}

/// A tenant-wide cap of 5.00 a day and a check spending 0.50 in `run` at `seconds`.
fn capped_spend(run: &charter_store::Run, seconds: i64) -> PendingCheck {
    let definition = PolicyDefinition::parse(&json!({"name": "cap", "scope": {"type": "platform"},
        "rules": [{"id": "c", "type": "cost", "max_usd": "5.00", "period": "day", "per": "tenant"}]})).unwrap();
    let policy = Policy::draft(
        PolicyId::new("pol_c").unwrap(),
        LineageId::new("lin_c").unwrap(),
        definition,
        at(0),
    );
    let set = CompiledSet::compile([&policy]).unwrap();
    let action =
        Action::parse(&json!({"kind": "model_call", "model": "m", "cost_usd": "0.50"})).unwrap();
    let ctx = RunContext {
        tenant_id: "acme",
        agent_id: "support",
        run_id: &run.id,
        run_started_at: run.started_at,
        now: at(seconds),
    };
    PendingCheck {
        id: format!("evt_{}", charter_store::new_id_suffix()),
        run_id: run.id.clone(),
        tenant_id: "acme".into(),
        agent_id: "support".into(),
        at: at(seconds),
        evaluation: set.evaluate(&action, &ctx),
        action,
        policy_set_hash: run.policy_set.hash.clone(),
        set: std::sync::Arc::new(set),
    }
}

/// 64 checks from 8 runs through two nodes' group-commit writers, each spending 0.50 against a
/// 5.00 tenant cap: exactly 10 are allowed (the rest halt their runs), and the counters hold
/// exactly what was allowed.
async fn checks_through_two_nodes_share_one_budget(store: Store, _: Kind) {
    seed(&store).await;
    let other = store.reopen().await.unwrap();
    let writers = [
        ActionWriter::spawn(store.clone(), 16),
        ActionWriter::spawn(other.clone(), 16),
    ];
    let mut tasks = Vec::new();
    for r in 0..8 {
        let (run, _) = store
            .start_run(&Principal::Platform, "acme", "support", &json!({}), at(5))
            .await
            .unwrap();
        for i in 0..8 {
            let writer = writers[(r + i) % 2].clone();
            let check = capped_spend(&run, 10);
            tasks.push(tokio::spawn(async move { writer.check(check).await }));
        }
    }
    let mut allowed = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            CheckOutcome::Decided { decision, .. } if decision.outcome == Outcome::Allow => {
                allowed += 1;
            }
            // A cost cap reached halts the run: its later checks are refused as halted.
            CheckOutcome::Decided { decision, .. } => {
                assert_eq!(decision.outcome, Outcome::Halt);
                assert_eq!(decision.violations[0].source.rule_id.as_str(), "c");
            }
            CheckOutcome::Halted { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(allowed, 10);
    // The budget is spent: one more settlement finds it exhausted.
    let probe = capped_spend(
        &store
            .start_run(&Principal::Platform, "acme", "support", &json!({}), at(5))
            .await
            .unwrap()
            .0,
        20,
    );
    let exceeded = store
        .settle(&probe.evaluation.claims, at(20), Settle::CheckOnly)
        .await
        .unwrap();
    assert_eq!(exceeded.len(), 1);
    assert_eq!(exceeded[0].used, 5_000_000);
}

/// An email to outside acme in `run` (of `tenant`) at `seconds`, which a platform policy
/// blocks.
fn blocked_email(run: &charter_store::Run, tenant: &str, seconds: i64) -> PendingCheck {
    let definition =
        PolicyDefinition::parse(&json!({"name": "mail", "scope": {"type": "platform"},
        "rules": [{"id": "m", "type": "tool", "effect": "deny", "tools": ["*.send_email"]}]}))
        .unwrap();
    let policy = Policy::draft(
        PolicyId::new("pol_m").unwrap(),
        LineageId::new("lin_m").unwrap(),
        definition,
        at(0),
    );
    let set = CompiledSet::compile([&policy]).unwrap();
    let action = Action::parse(
        &json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "x@y.z"}}),
    )
    .unwrap();
    let ctx = RunContext {
        tenant_id: tenant,
        agent_id: "support",
        run_id: &run.id,
        run_started_at: run.started_at,
        now: at(seconds),
    };
    PendingCheck {
        id: format!("evt_{}", charter_store::new_id_suffix()),
        run_id: run.id.clone(),
        tenant_id: tenant.into(),
        agent_id: "support".into(),
        at: at(seconds),
        evaluation: set.evaluate(&action, &ctx),
        action,
        policy_set_hash: run.policy_set.hash.clone(),
        set: std::sync::Arc::new(set),
    }
}

/// Blocks of two tenants over several Monitor slots, interleaved in opposite orders in the
/// batches of two nodes' writers: every check is decided (the batches add to the rows of the
/// Monitor's counts they share in key order, `commit::SlotCounts`), and the counts per slot add
/// up to the events, per tenant and in all.
async fn blocks_of_two_tenants_through_two_nodes_are_counted_once(store: Store, _: Kind) {
    seed(&store).await;
    let other = store.reopen().await.unwrap();
    let writers = [
        ActionWriter::spawn(store.clone(), 32),
        ActionWriter::spawn(other.clone(), 32),
    ];
    // A run per two checks, so the two nodes' batches seldom share a run (whose lock would
    // order them anyway).
    let mut runs = Vec::new();
    for tenant in ["acme", "globex"].into_iter().cycle().take(160) {
        let (run, _) = store
            .start_run(&Principal::Platform, tenant, "support", &json!({}), at(5))
            .await
            .unwrap();
        runs.push((tenant, run));
    }
    let mut tasks = Vec::new();
    for i in 0..320_i64 {
        let (tenant, run) = &runs[usize::try_from(i).unwrap() % runs.len()];
        // 20 s apart: the events span 8 slots of 15 minutes.
        let check = blocked_email(run, tenant, 10 + i * 20);
        let writer = writers[usize::try_from(i / 3).unwrap() % 2].clone();
        tasks.push(tokio::spawn(async move { writer.check(check).await }));
    }
    for t in tasks {
        match t.await.unwrap().unwrap() {
            CheckOutcome::Decided { decision, .. } => assert_eq!(decision.outcome, Outcome::Block),
            other => panic!("{other:?}"),
        }
    }
    for (principal, events) in [
        (Principal::Platform, 320),
        (tenant("acme").principal, 160),
        (tenant("globex").principal, 160),
    ] {
        for bucket in [900_000, 3_600_000] {
            let stats = store
                .violation_stats(&principal, &ViolationFilter::default(), bucket)
                .await
                .unwrap();
            let counted: u64 = stats.iter().map(|(_, n)| n).sum();
            assert_eq!(counted, events, "{principal:?} in buckets of {bucket} ms");
        }
    }
}

/// Checks racing the end of their run: every check answered with a decision is recorded, and
/// once the end is committed no check is recorded or decided any more.
async fn checks_racing_the_end_of_their_run(store: Store, _: Kind) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 8);
    let (run, _) = store
        .start_run(&Principal::Platform, "acme", "support", &json!({}), at(5))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let writer = writer.clone();
        let check = capped_spend(&run, 10 + i);
        tasks.push(tokio::spawn(async move { writer.check(check).await }));
    }
    tokio::task::yield_now().await;
    store
        .end_run(&Principal::Platform, &run.id, RunStatus::Completed, at(60))
        .await
        .unwrap();
    let after = writer.check(capped_spend(&run, 61)).await.unwrap();
    assert_eq!(after, CheckOutcome::Ended);
    let mut decided = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            CheckOutcome::Decided { .. } => decided += 1,
            // Past the cap the run halts; after the end it takes nothing.
            CheckOutcome::Ended | CheckOutcome::Halted { .. } => {}
            CheckOutcome::NoRun => panic!("the run was not found"),
        }
    }
    let recorded = store
        .run_actions(&Principal::Platform, &run.id)
        .await
        .unwrap();
    assert_eq!(recorded.len(), decided);
}

/// A check that cannot be committed (here: an action id already recorded) fails alone; the
/// checks that shared its batch are committed. A current-thread runtime makes the batch
/// deterministic: all 32 checks are queued before the writer runs.
async fn a_failing_check_fails_only_itself(store: Store) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 64);
    let (run, _) = store
        .start_run(&Principal::Platform, "acme", "support", &json!({}), at(5))
        .await
        .unwrap();
    let first = capped_spend(&run, 6);
    let taken = first.id.clone();
    assert!(matches!(
        writer.check(first).await.unwrap(),
        CheckOutcome::Decided { .. }
    ));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let mut check = capped_spend(&run, 10 + i);
        if i == 4 {
            check.id.clone_from(&taken);
        }
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move { writer.check(check).await }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        writer.stats(),
        charter_store::WriterStats {
            batches: 2,
            records: 33
        },
        "the 32 checks shared one batch"
    );
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 4 {
            // A retried commit that had in fact committed (a connection lost at the last
            // moment) meets its own action id: the same answer from either backend's driver.
            assert_eq!(
                outcome.as_ref().unwrap_err(),
                &charter_store::StoreError::Conflict {
                    message: "already exists".into(),
                    current_revision: None,
                },
                "the duplicate id cannot be committed"
            );
        } else {
            // 0.50 each against a 5.00 cap: the first check and nine of these are allowed, then
            // the run halts. The failed check spent nothing, so i = 9 is still allowed.
            match outcome.as_ref().unwrap() {
                CheckOutcome::Decided { decision, .. } if i <= 9 => {
                    assert_eq!(decision.outcome, Outcome::Allow, "check {i}");
                }
                CheckOutcome::Decided { decision, .. } if i == 10 => {
                    assert_eq!(decision.outcome, Outcome::Halt, "check {i}");
                }
                CheckOutcome::Halted { .. } if i > 10 => {}
                other => panic!("check {i}: {other:?}"),
            }
        }
    }
    let recorded = store
        .run_actions(&Principal::Platform, &run.id)
        .await
        .unwrap();
    assert_eq!(
        recorded.len(),
        1 + 9 + 1,
        "the first check, nine allowed, one halt"
    );
}

#[tokio::test]
async fn a_failing_check_fails_only_itself_sqlite() {
    a_failing_check_fails_only_itself(crate::harness::sqlite().await).await;
}

#[tokio::test]
async fn a_failing_check_fails_only_itself_postgres() {
    if let Some((store, schema)) = crate::harness::postgres().await {
        a_failing_check_fails_only_itself(store).await;
        crate::harness::drop_schema(&schema).await;
    }
}

/// A file database reads Validate's pages through rusqlite, an in-memory one through sqlx:
/// both give the same rows in the same order, for every scope and page size, including an
/// input that cannot be read (not replayable) and a missing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_pages_read_alike_from_a_file_and_from_memory() {
    let file = crate::harness::sqlite().await;
    let memory = Store::in_memory().await.unwrap();
    for store in [&file, &memory] {
        seed(store).await;
        let mut globex = imported("support", 150, 4);
        globex.tenant_id = "globex".into();
        store
            .import_runs(
                &Principal::Platform,
                &mut [
                    imported("support", 100, 5),
                    imported("billing", 102, 3),
                    globex,
                    imported("support", 101, 6),
                    // A page longer than the parser's split (512) is parsed on two threads.
                    imported("billing", 300, 600),
                ]
                .iter(),
            )
            .await
            .unwrap();
        // Inputs this version cannot read, and none at all, next to readable ones.
        let run = store
            .runs(
                &Principal::Platform,
                &charter_store::RunFilter::default(),
                None,
                1,
            )
            .await
            .unwrap()
            .items
            .remove(0);
        for (id, input) in [("evt_x1", "'{\"kind\": \"teleport\"}'"), ("evt_x2", "NULL")] {
            store
                .execute_raw(&format!(
                    "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind, input, decision, policy_set_hash) \
                     VALUES ('{id}', '{}', '{}', '{}', {}, 'tool_call', {input}, 'allow', '')",
                    run.id,
                    run.tenant_id,
                    run.agent_id,
                    at(103).as_millisecond()
                ))
                .await
                .unwrap();
        }
    }
    let scopes: [(Principal, Option<&str>, Option<&str>); 4] = [
        (Principal::Platform, None, None),
        (Principal::Platform, Some("globex"), None),
        (tenant("acme").principal, None, None),
        (tenant("acme").principal, None, Some("support")),
    ];
    for (principal, scope_tenant, agent) in &scopes {
        for limit in [1, 4, 100, 2_000] {
            let mut pages = Vec::new();
            for store in [&file, &memory] {
                let mut rows = Vec::new();
                let mut request = HistoryPage {
                    tenant: scope_tenant.map(str::to_owned),
                    agent: agent.map(str::to_owned),
                    since: at(0),
                    until: at(1_000),
                    after: None,
                    limit,
                    // Both readers leave out the arguments that no rule reads.
                    args: if limit == 4 {
                        ArgsRead::of([])
                    } else {
                        ArgsRead::all()
                    },
                };
                loop {
                    let page = store.actions_page(principal, &request).await.unwrap();
                    let Some(last) = page.last() else { break };
                    request = request.following(last);
                    // Generated ids differ between the two databases; everything else agrees.
                    rows.extend(page.into_iter().map(|r| {
                        (
                            r.tenant_id,
                            r.agent_id,
                            r.at_ms,
                            r.run_started_at,
                            r.action,
                            r.decision,
                            r.id.starts_with("evt_x"),
                        )
                    }));
                }
                pages.push(rows);
            }
            assert_eq!(
                pages[0], pages[1],
                "{principal:?} {scope_tenant:?} {agent:?} {limit}"
            );
            assert!(!pages[0].is_empty());
        }
    }
    // The unreadable and the missing input are there, not replayable.
    let platform = &scopes[0];
    let all = file
        .actions_page(&platform.0, &first_page(None, 1_000, 1_000))
        .await
        .unwrap();
    assert_eq!(all.len(), 5 + 3 + 4 + 6 + 600 + 2);
    assert_eq!(
        all.iter()
            .filter(|r| r.id.starts_with("evt_x"))
            .map(|r| r.action.is_none())
            .collect::<Vec<_>>(),
        [true, true]
    );
    let unread = HistoryPage {
        args: ArgsRead::of([]),
        ..first_page(None, 1_000, 1_000)
    };
    for store in [&file, &memory] {
        let page = store.actions_page(&platform.0, &unread).await.unwrap();
        let args: Vec<usize> = page
            .iter()
            .filter_map(|r| match &r.action.as_ref()?.detail {
                charter_core::ActionDetail::ToolCall(call) => Some(call.args.len()),
                _ => None,
            })
            .collect();
        assert_eq!(args.len(), all.len() - 2);
        assert!(args.iter().all(|n| *n == 0), "{args:?}");
    }
}

/// Tags the first `n` runs (in id order) with an import's id, as a crash between two pieces
/// of an import leaves them.
async fn cut_short(store: &Store, n: u64) {
    let marked = store
        .execute_raw(&format!(
            "UPDATE runs SET import_id = 'imp_0193b0e5c2a47c3e9c1f2d4a5b6c7d8e' \
             WHERE id IN (SELECT id FROM runs ORDER BY id LIMIT {n})"
        ))
        .await
        .unwrap();
    assert_eq!(marked, n);
}

/// Counts the rows of `table` that `filter` keeps (SQLite), through a no-op update (the store's
/// raw SQL answers a row count) of the rowid: nothing references it, so no foreign key is
/// checked (an update of `id` checked every action of each run, about a second under load,
/// holding the write lock all the while).
async fn count(store: &Store, table: &str, filter: &str) -> u64 {
    store
        .execute_raw(&format!("UPDATE {table} SET rowid = rowid WHERE {filter}"))
        .await
        .unwrap()
}

/// Every run id the platform sees, through the list's pages.
async fn listed_runs(store: &Store) -> Vec<String> {
    let (mut ids, mut cursor) = (Vec::new(), None);
    loop {
        let page = store
            .runs(
                &Principal::Platform,
                &RunFilter::default(),
                cursor.as_deref(),
                500,
            )
            .await
            .unwrap();
        ids.extend(page.items.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

/// The runs of a vector, looking at the database and the store's list of runs when the 601st
/// is pulled (after the first piece of 500 was committed).
struct Watching {
    runs: std::vec::IntoIter<ImportedRun>,
    store: Store,
    path: std::path::PathBuf,
    pulled: usize,
    tagged_midway: Option<i64>,
    listed_midway: Option<usize>,
}

impl charter_store::RunSource for Watching {
    async fn next_run(&mut self) -> Result<Option<ImportedRun>, StoreError> {
        if self.pulled == 600 {
            // Committed (read straight from the file) yet unseen (through the store).
            use sqlx::Connection as _;
            let url = format!("sqlite://{}?mode=ro", self.path.display());
            let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let tagged: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE import_id IS NOT NULL")
                    .fetch_one(&mut raw)
                    .await
                    .unwrap();
            self.tagged_midway = Some(tagged);
            self.listed_midway = Some(listed_runs(&self.store).await.len());
        }
        self.pulled += 1;
        Ok(self.runs.next())
    }
}

/// The runs of a vector, until the 601st, which never comes.
struct Stalling {
    runs: std::vec::IntoIter<ImportedRun>,
    pulled: usize,
}

impl charter_store::RunSource for Stalling {
    async fn next_run(&mut self) -> Result<Option<ImportedRun>, StoreError> {
        if self.pulled == 600 {
            std::future::pending::<()>().await;
        }
        self.pulled += 1;
        Ok(self.runs.next())
    }
}

/// On SQLite an import is written in pieces (short transactions, so checks never wait behind a
/// long one) whose runs stay unseen until the last piece: a failed import leaves nothing, and
/// one cut short by a crash is unseen, then deleted when the database is next opened.
#[tokio::test]
async fn sqlite_imports_in_pieces_show_all_or_nothing() {
    let (store, path) = crate::harness::sqlite_file().await;
    seed(&store).await;
    let acme = tenant("acme");
    // 2,500 runs of one action each: several pieces (500 actions each).
    let many: Vec<ImportedRun> = (0..2_500)
        .map(|i| imported("support", 100 + i, 1))
        .collect();
    let mut bad = many.clone();
    bad[2_200].agent_id = "ghost".into();
    let e = store
        .import_runs(&acme.principal, &mut bad.into_iter())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid { path, .. } if path == "runs[2200].agent_id"),
        "{e:?}"
    );
    // The first pieces were committed, then deleted.
    assert_eq!(count(&store, "runs", "TRUE").await, 0);
    assert_eq!(count(&store, "actions", "TRUE").await, 0);
    // And every pooled connection checks foreign keys again (the discard turns them off
    // while it deletes): an action of no run is refused, whichever connection takes it.
    for _ in 0..16 {
        let orphan = store
            .execute_raw(
                "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind) \
                 VALUES ('evt_orphan', 'run_nowhere', 'acme', 'support', 0, 'tool_call')",
            )
            .await;
        assert!(orphan.is_err(), "an orphan action was accepted");
    }

    // Seen by nobody while it is under way, although its first pieces are committed.
    let mut watching = Watching {
        runs: many.into_iter(),
        store: store.clone(),
        path: path.clone(),
        pulled: 0,
        tagged_midway: None,
        listed_midway: None,
    };
    let imported_now = store
        .import_runs(&acme.principal, &mut watching)
        .await
        .unwrap();
    assert_eq!(imported_now, (2_500, 2_500));
    assert_eq!(watching.tagged_midway, Some(500));
    assert_eq!(watching.listed_midway, Some(0));
    drop(watching);
    let mut ids = listed_runs(&store).await;
    assert_eq!(ids.len(), 2_500);
    assert_eq!(count(&store, "runs", "import_id IS NOT NULL").await, 0);

    // A crash between two pieces leaves runs tagged with their import's id.
    ids.sort();
    let cut: Vec<String> = ids[..500].to_vec();
    cut_short(&store, 500).await;
    // Unseen: not listed, not found, not replayed, not endable.
    assert_eq!(listed_runs(&store).await.len(), 2_000);
    assert!(matches!(
        store.get_run(&Principal::Platform, &cut[0]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .end_run(
                &Principal::Platform,
                &cut[0],
                RunStatus::Completed,
                at(9_000)
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let page = store
        .actions_page(&Principal::Platform, &first_page(None, 10_000, 10_000))
        .await
        .unwrap();
    assert_eq!(page.len(), 2_000);
    assert!(page.iter().all(|row| !cut.contains(&row.run_id)));
    // An import whose request is dropped half-way (its client gone) deletes what it wrote.
    let more: Vec<ImportedRun> = (0..1_000)
        .map(|i| imported("billing", 100 + i, 1))
        .collect();
    let mut stalling = Stalling {
        runs: more.into_iter(),
        pulled: 0,
    };
    let dropped = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        store.import_runs(&acme.principal, &mut stalling),
    )
    .await;
    assert!(dropped.is_err(), "the stalled import finished");
    let mut left = u64::MAX;
    // Up to 10 s: the discard runs in a task of its own, which a loaded machine may start late.
    for _ in 0..500 {
        left = count(&store, "runs", "agent_id = 'billing'").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "a dropped import left its pieces");

    // Deleted at the next open, with their actions; the rest kept.
    store.close().await;
    drop(store);
    let store = Store::open_sqlite(&path, charter_store::Sync::Normal)
        .await
        .unwrap();
    assert_eq!(count(&store, "runs", "TRUE").await, 2_000);
    assert_eq!(count(&store, "actions", "TRUE").await, 2_000);
    assert_eq!(listed_runs(&store).await.len(), 2_000);
}

/// The runs of an import cut short are deleted when the database is next opened, also when
/// another connection holds the database longer than SQLite's busy timeout meanwhile: the
/// deletion tries again instead of leaving them for the open after.
#[tokio::test]
async fn sqlite_a_busy_database_delays_the_discard_of_an_unfinished_import() {
    use sqlx::Connection as _;
    let (store, path) = crate::harness::sqlite_file().await;
    seed(&store).await;
    let acme = tenant("acme");
    let runs: Vec<ImportedRun> = (0..1_000)
        .map(|i| imported("support", 100 + i, 1))
        .collect();
    store
        .import_runs(&acme.principal, &mut runs.into_iter())
        .await
        .unwrap();
    cut_short(&store, 500).await;
    store.close().await;
    drop(store);

    // Another connection writes for 6 s: past the busy timeout (5 s) of the first try.
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
        other.close().await.unwrap();
    });
    let store = Store::open_sqlite(&path, charter_store::Sync::Normal)
        .await
        .unwrap();
    holder.await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(6),
        "opened while another connection held the database"
    );
    assert_eq!(count(&store, "runs", "TRUE").await, 500);
    assert_eq!(count(&store, "actions", "TRUE").await, 500);
    assert_eq!(listed_runs(&store).await.len(), 500);
}
