//! Runs pin their policy set; actions, decisions and violations are recorded (group commit)
//! and read back by the Monitor's and Validate's queries.

use charter_core::Action;
use charter_core::engine::{CompiledSet, Outcome, RunContext};
use charter_store::{
    ActionWriter, Activation, CheckBatch, CheckOutcome, HistoryPage, PendingCheck, Principal,
    RunFilter, RunStatus, Store, StoreError, ViolationFilter,
};
use serde_json::json;

use crate::harness::{Kind, acme_support, at, both, definition, seed, tenant};

both!(
    runs_pin_their_policy_set,
    actions_violations_and_queries,
    a_chart_sums_both_grains_of_counts_as_the_events_count,
);

async fn runs_pin_their_policy_set(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let force = Activation {
        force: true,
        supersede: false,
    };
    let a = store
        .create_policy(&acme, definition("A", acme_support()), false)
        .await
        .unwrap();
    let a_id = a.policy.id.to_string();
    // A draft is never pinned.
    let (r0, pinned) = store
        .start_run(&acme.principal, "acme", "support", &json!({}), at(1))
        .await
        .unwrap();
    assert!(pinned.is_empty() && r0.policy_set.policies.is_empty());
    store.activate(&acme, &a_id, force, None).await.unwrap();
    let (r1, pinned) = store
        .start_run(
            &acme.principal,
            "acme",
            "support",
            &json!({"ticket": 7}),
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(pinned.len(), 1);
    assert_eq!(pinned[0].id.as_str(), a_id);
    let b = store
        .create_policy(
            &acme,
            definition("B", json!({"type": "tenant", "tenant_id": "acme"})),
            false,
        )
        .await
        .unwrap();
    store
        .activate(&acme, b.policy.id.as_str(), force, None)
        .await
        .unwrap();
    let (r2, pinned) = store
        .start_run(&acme.principal, "acme", "support", &json!({}), at(3))
        .await
        .unwrap();
    assert_eq!(pinned.len(), 2);
    assert_ne!(r1.policy_set.hash, r2.policy_set.hash);
    store.deprecate(&acme, &a_id).await.unwrap();
    let (r3, _) = store
        .start_run(&acme.principal, "acme", "support", &json!({}), at(4))
        .await
        .unwrap();
    assert_eq!(r3.policy_set.policies.len(), 1);
    // The run started before keeps its set, and its policies can still be read.
    let again = store.get_run(&acme.principal, &r1.id).await.unwrap();
    assert_eq!(again.policy_set, r1.policy_set);
    assert_eq!(again.metadata, json!({"ticket": 7}));
    let policies = store.pinned_policies(&again).await.unwrap();
    assert_eq!(policies[0].id.as_str(), a_id);
    // Another agent of the tenant pins only the tenant policy; another tenant's key sees nothing.
    let (other, _) = store
        .start_run(&acme.principal, "acme", "billing", &json!({}), at(5))
        .await
        .unwrap();
    assert_eq!(other.policy_set.policies.len(), 1);
    assert!(matches!(
        store.get_run(&tenant("globex").principal, &r1.id).await,
        Err(StoreError::NotFound { .. })
    ));
    // A tenant the principal cannot name is refused at `tenant_id`, alike whether it exists.
    for (principal, name) in [
        (&tenant("globex").principal, "acme"),
        (&tenant("globex").principal, "nowhere"),
        (&Principal::Platform, "nowhere"),
    ] {
        assert_eq!(
            store
                .start_run(principal, name, "support", &json!({}), at(6))
                .await
                .unwrap_err(),
            StoreError::Invalid {
                path: "tenant_id".into(),
                message: format!("no tenant `{name}`"),
            }
        );
    }
    assert!(matches!(
        store
            .start_run(&acme.principal, "acme", "ghost", &json!({}), at(6))
            .await,
        Err(StoreError::Invalid { .. })
    ));
}

async fn actions_violations_and_queries(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let mut def = definition("Guard", acme_support());
    def.rules.push(
        charter_core::Rule::parse(
            &json!({"id": "cap", "type": "cost", "max_usd": "1.00", "period": "run"}),
        )
        .unwrap(),
    );
    let p = store.create_policy(&acme, def, false).await.unwrap();
    store
        .activate(
            &acme,
            p.policy.id.as_str(),
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    let writer = ActionWriter::spawn(store.clone(), 64);

    // 8 runs × 8 actions, checked concurrently: every other action goes to an external address.
    let mut tasks = Vec::new();
    for r in 0..8 {
        let store = store.clone();
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let (run, policies) = store
                .start_run(&Principal::Platform, "acme", "support", &json!({}), at(10))
                .await
                .unwrap();
            let set = std::sync::Arc::new(CompiledSet::compile(&policies).unwrap());
            for i in 0..8 {
                let to = if i % 2 == 0 {
                    "ann@acme.com"
                } else {
                    "bob@gmail.com"
                };
                let action = Action::parse(
                    &json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}}),
                )
                .unwrap();
                let now = at(100 + r * 10 + i);
                let ctx = RunContext {
                    tenant_id: "acme",
                    agent_id: "support",
                    run_id: &run.id,
                    run_started_at: run.started_at,
                    now,
                };
                let evaluation = set.evaluate(&action, &ctx);
                let outcome = writer
                    .check(PendingCheck {
                        id: format!("evt_{r}_{i}"),
                        run_id: run.id.clone(),
                        tenant_id: "acme".into(),
                        agent_id: "support".into(),
                        at: now,
                        action,
                        evaluation,
                        policy_set_hash: run.policy_set.hash.clone(),
                        set: std::sync::Arc::clone(&set),
                    })
                    .await
                    .unwrap();
                let CheckOutcome::Decided { decision, .. } = outcome else {
                    panic!("{outcome:?}");
                };
                let expected = if i % 2 == 0 {
                    Outcome::Allow
                } else {
                    Outcome::Block
                };
                assert_eq!(decision.outcome, expected);
            }
            run.id
        }));
    }
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.unwrap());
    }
    let stats = writer.stats();
    assert_eq!(stats.records, 64);
    assert!(stats.batches <= 64);

    // 32 blocks, newest first, paged by 10 with filters by policy and lineage.
    let filter = ViolationFilter {
        policy_id: Some(p.policy.id.to_string()),
        ..ViolationFilter::default()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .violations(&acme.principal, &filter, cursor.as_deref(), 10)
            .await
            .unwrap();
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 32);
    assert!(
        seen.windows(2)
            .all(|w| (w[0].at, &w[0].id) >= (w[1].at, &w[1].id)),
        "newest first"
    );
    let first = &seen[0];
    assert_eq!(
        (
            first.rule_id.as_str(),
            first.rule_type.as_str(),
            first.decision.as_str()
        ),
        ("r1", "tool", "block")
    );
    assert_eq!(first.matching_input.as_deref(), Some("bob@gmail.com"));
    assert_eq!(first.action.summary, "gmail.send_email");
    let one_run = ViolationFilter {
        run_id: Some(runs[3].clone()),
        ..ViolationFilter::default()
    };
    assert_eq!(
        store
            .violations(&acme.principal, &one_run, None, 50)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    let lineage = ViolationFilter {
        lineage_id: Some(p.policy.lineage_id.to_string()),
        rule_type: Some("tool".into()),
        ..ViolationFilter::default()
    };
    assert_eq!(
        store
            .violations(&Principal::Platform, &lineage, None, 500)
            .await
            .unwrap()
            .items
            .len(),
        32
    );
    let window = ViolationFilter {
        since: Some(at(100)),
        until: Some(at(110)),
        ..ViolationFilter::default()
    };
    assert_eq!(
        store
            .violations(&acme.principal, &window, None, 50)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    // Another tenant sees none of it, even asking by id.
    assert!(
        store
            .violations(&tenant("globex").principal, &filter, None, 50)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store
            .violations(&acme.principal, &filter, Some("garbage"), 10)
            .await,
        Err(StoreError::Invalid { .. })
    ));

    // Counts per 10 s bucket: 4 blocks in each of the 8 runs' buckets.
    let stats = store
        .violation_stats(&acme.principal, &ViolationFilter::default(), 10_000)
        .await
        .unwrap();
    assert_eq!(stats.len(), 8);
    assert!(stats.iter().all(|(_, n)| *n == 4));

    // Buckets of whole 15-minute slots are summed from the counts the commit keeps per slot,
    // with the partial slots at a range's ends counted from the events: the same totals as
    // the events themselves, by tenant, by policy and in a window.
    let by_policy = ViolationFilter {
        policy_id: Some(p.policy.id.to_string()),
        ..ViolationFilter::default()
    };
    for (principal, filter) in [
        (&acme.principal, &ViolationFilter::default()),
        (&Principal::Platform, &ViolationFilter::default()),
        (&acme.principal, &by_policy),
        (&acme.principal, &window),
    ] {
        let listed = store
            .violations(principal, filter, None, 500)
            .await
            .unwrap()
            .items;
        let events = u64::try_from(listed.len()).unwrap();
        assert!(events > 0, "{filter:?}");
        // The first event, as an all-time chart starts from it: the oldest one listed.
        assert_eq!(
            store.first_violation_at(principal, filter).await.unwrap(),
            listed.iter().map(|v| v.at).min(),
            "{filter:?}"
        );
        for bucket in [900_000, 3_600_000, 86_400_000] {
            let stats = store
                .violation_stats(principal, filter, bucket)
                .await
                .unwrap();
            let counted: u64 = stats.iter().map(|(_, n)| n).sum();
            assert_eq!(counted, events, "{filter:?} in buckets of {bucket} ms");
        }
    }

    // A tenant naming another tenant (or one that exists nowhere) in the filter gets nothing,
    // never its own events; naming its own changes nothing; the platform filters as asked.
    for (other, principal) in [
        ("globex", &acme.principal),
        ("nowhere", &acme.principal),
        ("acme", &tenant("globex").principal),
        ("globex", &Principal::Platform),
    ] {
        let named = ViolationFilter {
            tenant_id: Some(other.into()),
            ..ViolationFilter::default()
        };
        let page = store.violations(principal, &named, None, 50).await.unwrap();
        assert!(page.items.is_empty(), "{other}: {:?}", page.items);
        let stats = store
            .violation_stats(principal, &named, 10_000)
            .await
            .unwrap();
        assert!(stats.is_empty(), "{other}: {stats:?}");
        assert_eq!(
            store.first_violation_at(principal, &named).await.unwrap(),
            None,
            "{other}"
        );
        let runs = RunFilter {
            tenant_id: Some(other.into()),
            ..RunFilter::default()
        };
        let page = store.runs(principal, &runs, None, 50).await.unwrap();
        assert!(page.items.is_empty(), "{other}: {:?}", page.items);
    }
    for principal in [&acme.principal, &Principal::Platform] {
        let own = ViolationFilter {
            tenant_id: Some("acme".into()),
            ..ViolationFilter::default()
        };
        let page = store.violations(principal, &own, None, 500).await.unwrap();
        assert_eq!(page.items.len(), 32);
        let runs = RunFilter {
            tenant_id: Some("acme".into()),
            ..RunFilter::default()
        };
        let page = store.runs(principal, &runs, None, 500).await.unwrap();
        assert_eq!(page.items.len(), 8);
    }

    // Validate's stream: every action, in (time, run, id) order, across pages.
    let mut rows = Vec::new();
    let mut request = HistoryPage {
        tenant: None,
        agent: Some("support".into()),
        since: at(0),
        until: at(1000),
        after: None,
        limit: 7,
        args: charter_core::engine::ArgsRead::all(),
    };
    loop {
        let page = store.actions_page(&acme.principal, &request).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        request = request.following(last);
        rows.extend(page);
    }
    assert_eq!(rows.len(), 64);
    assert!(
        rows.windows(2)
            .all(|w| (w[0].at_ms, &w[0].run_id, &w[0].id) < (w[1].at_ms, &w[1].run_id, &w[1].id))
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.decision == Some(Outcome::Block))
            .count(),
        32
    );
    assert!(rows.iter().all(|r| r.action.is_some()));

    // A halting decision halts the run; ending keeps it halted; ending twice is refused.
    let (run, policies) = store
        .start_run(&acme.principal, "acme", "support", &json!({}), at(500))
        .await
        .unwrap();
    let set = std::sync::Arc::new(CompiledSet::compile(&policies).unwrap());
    let spend =
        Action::parse(&json!({"kind": "model_call", "model": "m", "cost_usd": "2.00"})).unwrap();
    let ctx = RunContext {
        tenant_id: "acme",
        agent_id: "support",
        run_id: &run.id,
        run_started_at: run.started_at,
        now: at(501),
    };
    let pending = |id: &str| PendingCheck {
        id: id.into(),
        run_id: run.id.clone(),
        tenant_id: "acme".into(),
        agent_id: "support".into(),
        at: at(501),
        action: spend.clone(),
        evaluation: set.evaluate(&spend, &ctx),
        policy_set_hash: run.policy_set.hash.clone(),
        set: std::sync::Arc::clone(&set),
    };
    // Two checks of one run in one batch: the first halts it, the second is refused with the
    // halting violations and not recorded.
    let outcomes = store
        .commit_checks(CheckBatch::new(vec![
            pending("evt_halt"),
            pending("evt_after"),
        ]))
        .await
        .unwrap();
    let CheckOutcome::Decided { decision, events } = &outcomes[0] else {
        panic!("{outcomes:?}");
    };
    assert_eq!(decision.outcome, Outcome::Halt);
    assert_eq!(events.len(), decision.violations.len());
    for (event, v) in events.iter().zip(&decision.violations) {
        assert_eq!(
            (
                event.action_id.as_str(),
                event.rule_id.as_str(),
                event.decision.as_str()
            ),
            ("evt_halt", v.source.rule_id.as_str(), v.outcome.as_str())
        );
    }
    let CheckOutcome::Halted { halted_by } = &outcomes[1] else {
        panic!("{outcomes:?}");
    };
    let halting: Vec<_> = decision
        .violations
        .iter()
        .filter(|v| v.outcome == Outcome::Halt)
        .collect();
    assert_eq!(halted_by, &serde_json::to_value(&halting).unwrap());
    // A later check (another batch) is refused the same way.
    assert_eq!(
        writer.check(pending("evt_later")).await.unwrap(),
        outcomes[1]
    );
    assert_eq!(
        store
            .get_run(&acme.principal, &run.id)
            .await
            .unwrap()
            .status,
        RunStatus::Halted
    );
    let ended = store
        .end_run(&acme.principal, &run.id, RunStatus::Completed, at(502))
        .await
        .unwrap();
    assert_eq!(
        (ended.status, ended.ended_at),
        (RunStatus::Halted, Some(at(502)))
    );
    assert!(matches!(
        store
            .end_run(&acme.principal, &run.id, RunStatus::Completed, at(503))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    // An ended run takes no check, and an unknown run is named as such; neither is recorded.
    assert_eq!(
        writer.check(pending("evt_ended")).await.unwrap(),
        CheckOutcome::Ended
    );
    let mut ghost = pending("evt_ghost");
    ghost.run_id = "run_nope".into();
    assert_eq!(writer.check(ghost).await.unwrap(), CheckOutcome::NoRun);
    let recorded = store.run_actions(&acme.principal, &run.id).await.unwrap();
    assert_eq!(recorded.len(), 1, "only the halting check is recorded");
    let done = store
        .end_run(&acme.principal, &runs[0], RunStatus::Failed, at(504))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Failed);
}

/// The Monitor's chart sums the counts the commit keeps per 15 minutes and per 3 hours (the
/// coarse ones for buckets of 3 hours or more, the fine ones at the range's edges, the events
/// for the partial slots beyond), and gives bucket by bucket what counting the events gives:
/// events every 1,433 s over 60 hours, ranges starting and ending inside slots of both grains.
async fn a_chart_sums_both_grains_of_counts_as_the_events_count(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("Guard", acme_support()), false)
        .await
        .unwrap();
    let force = Activation {
        force: true,
        supersede: false,
    };
    store
        .activate(&acme, p.policy.id.as_str(), force, None)
        .await
        .unwrap();
    let mail = crate::seeding::run(&store, "support", 0).await;
    let writer = ActionWriter::spawn(store.clone(), 64);
    let send =
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}});
    for i in 0..150 {
        let decided = crate::seeding::check(&writer, &mail, &send, at(1 + i * 1_433)).await;
        assert_eq!(decided, Some(Outcome::Block));
    }
    let events: Vec<i64> = store
        .violations(&acme.principal, &ViolationFilter::default(), None, 500)
        .await
        .unwrap()
        .items
        .iter()
        .map(|v| v.at.as_millisecond())
        .collect();
    assert_eq!(events.len(), 150);
    let by_policy = ViolationFilter {
        policy_id: Some(p.policy.id.to_string()),
        ..ViolationFilter::default()
    };
    // Edges inside 15-minute and 3-hour slots, on a slot's start, and none.
    let edges = [
        (None, None),
        (Some(at(4_000)), None),
        (None, Some(at(150_000))),
        (Some(at(4_000)), Some(at(150_000))),
        (Some(at(20_000)), Some(at(31_000))),
        (Some(at(0)), Some(at(1 + 149 * 1_433))),
    ];
    for base in [&ViolationFilter::default(), &by_policy] {
        for (since, until) in edges {
            let filter = ViolationFilter {
                since,
                until,
                ..base.clone()
            };
            for bucket in [900_000, 3_600_000, 10_800_000, 21_600_000, 86_400_000] {
                let mut expected = std::collections::BTreeMap::<i64, u64>::new();
                for &e in &events {
                    if since.is_none_or(|s| e >= s.as_millisecond())
                        && until.is_none_or(|u| e < u.as_millisecond())
                    {
                        *expected.entry(e.div_euclid(bucket) * bucket).or_default() += 1;
                    }
                }
                let charted: std::collections::BTreeMap<i64, u64> = store
                    .violation_stats(&acme.principal, &filter, bucket)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(start, n)| (start.as_millisecond(), n))
                    .collect();
                assert_eq!(charted, expected, "{filter:?} in buckets of {bucket} ms");
            }
        }
    }
}
