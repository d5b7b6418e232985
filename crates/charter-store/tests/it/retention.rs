//! Retention: a pruning pass removes whole runs that ended before the cutoff (never one still
//! running, never what an open rate window or cost period may still count), violations with
//! their counts below a slot, and the oldest audit entries behind an anchor that keeps each
//! chain verifiable.

use charter_core::TenantId;
use charter_core::engine::Outcome;
use charter_store::{
    ActionWriter, Activation, Principal, Pruned, Retention, RunStatus, Store, StoreError,
    Verification, ViolationFilter,
};
use jiff::SignedDuration;
use serde_json::json;

use crate::harness::{Kind, acme_support, at, both, definition, later, platform, seed, tenant};
use crate::seeding::{activate, check, run, search, spend};

both!(
    runs_that_ended_before_the_cutoff_go_with_their_actions,
    an_open_rate_window_holds_the_cutoff_back,
    an_open_cost_period_holds_the_cutoff_back,
    violations_and_their_counts_go_below_the_slot,
    audit_entries_go_behind_an_anchor_and_tampering_is_still_caught
);

fn keep(seconds: i64) -> SignedDuration {
    SignedDuration::from_secs(seconds)
}

/// Counts the rows of `table` that `filter` keeps, through a no-op update.
async fn count(store: &Store, table: &str, filter: &str) -> u64 {
    store
        .execute_raw(&format!("UPDATE {table} SET n = n WHERE {filter}"))
        .await
        .unwrap()
}

async fn actions(store: &Store) -> u64 {
    store
        .execute_raw("UPDATE actions SET id = id WHERE 1 = 1")
        .await
        .unwrap()
}

async fn ended(store: &Store, run: &charter_store::Run, seconds: i64) {
    store
        .end_run(
            &Principal::Platform,
            &run.id,
            RunStatus::Completed,
            at(seconds),
        )
        .await
        .unwrap();
}

/// Kept 900 s at 1000 s: the cutoff is 100 s. A run that ended at 99 s goes with its 3 actions;
/// one of the same agent that ended at 101 s (its actions amid the first's) stays, and so does
/// one still running since 0 s.
async fn runs_that_ended_before_the_cutoff_go_with_their_actions(store: Store, _: Kind) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    let old = run(&store, "support", 0).await;
    let late = run(&store, "support", 5).await;
    let running = run(&store, "billing", 0).await;
    for s in [10, 20, 30] {
        assert_eq!(
            check(&writer, &old, &search(), at(s)).await,
            Some(Outcome::Allow)
        );
        assert_eq!(
            check(&writer, &late, &search(), at(s + 1)).await,
            Some(Outcome::Allow)
        );
        assert_eq!(
            check(&writer, &running, &search(), at(s)).await,
            Some(Outcome::Allow)
        );
    }
    ended(&store, &old.0, 99).await;
    ended(&store, &late.0, 101).await;
    assert_eq!(actions(&store).await, 9);

    let retention = Retention {
        actions: Some(keep(900)),
        ..Retention::default()
    };
    let pruned = store.prune(&retention, at(1000)).await.unwrap().pruned;
    assert_eq!(
        pruned,
        Pruned {
            runs: 1,
            actions: 3,
            ..Pruned::default()
        }
    );
    let gone = store.get_run(&Principal::Platform, &old.0.id).await;
    assert!(matches!(gone, Err(StoreError::NotFound { .. })), "{gone:?}");
    for kept in [&late.0, &running.0] {
        let actions = store
            .run_actions(&Principal::Platform, &kept.id)
            .await
            .unwrap();
        assert_eq!(actions.len(), 3, "{}", kept.id);
    }
    assert_eq!(actions(&store).await, 6);
    // Nothing more to do, and checks of the running run go on.
    assert_eq!(
        store.prune(&retention, at(1000)).await.unwrap().pruned,
        Pruned::default()
    );
    assert_eq!(
        check(&writer, &running, &search(), at(1001)).await,
        Some(Outcome::Allow)
    );
    // Much later the other ended run goes too; the running one never.
    let pruned = store.prune(&retention, at(100_000)).await.unwrap().pruned;
    assert_eq!((pruned.runs, pruned.actions), (1, 3));
    assert_eq!(
        store
            .run_actions(&Principal::Platform, &running.0.id)
            .await
            .unwrap()
            .len(),
        4
    );
}

/// "3 searches per hour per agent", activated after 2 searches in a run that ended 25 minutes
/// ago: kept a minute, yet that run stays (a counter keeps two windows), so the first check
/// after the pass seeds 2 and allows 1 more. A run that ended 2.5 hours ago goes.
async fn an_open_rate_window_holds_the_cutoff_back(store: Store, _: Kind) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    let now = 10_000;
    let older = run(&store, "support", now - 9_500).await;
    for s in [now - 9_400, now - 9_300, now - 9_200] {
        assert_eq!(
            check(&writer, &older, &search(), at(s)).await,
            Some(Outcome::Allow)
        );
    }
    ended(&store, &older.0, now - 9_000).await;
    let recent = run(&store, "support", now - 1_800).await;
    for s in [now - 1_700, now - 1_600] {
        assert_eq!(
            check(&writer, &recent, &search(), at(s)).await,
            Some(Outcome::Allow)
        );
    }
    ended(&store, &recent.0, now - 1_500).await;
    activate(
        &store,
        json!([{"id": "searches", "type": "rate", "limit": 3, "window": "1h", "per": "agent",
                "match": {"tools": ["web.*"]}}]),
    )
    .await;

    let retention = Retention {
        actions: Some(keep(60)),
        ..Retention::default()
    };
    let pass = store.prune(&retention, at(now)).await.unwrap();
    let pruned = pass.pruned;
    assert_eq!((pruned.runs, pruned.actions), (1, 3));
    let held = pass
        .held_back
        .expect("the rate window held the cutoff back");
    assert_eq!(
        (held.rule_id.as_str(), held.from),
        ("searches", at(now - 7_200)),
        "two windows back"
    );
    store
        .get_run(&Principal::Platform, &recent.0.id)
        .await
        .unwrap();

    let after = run(&store, "support", now).await;
    assert_eq!(
        check(&writer, &after, &search(), at(now + 10)).await,
        Some(Outcome::Allow),
        "2 of 3 were used in the last hour"
    );
    assert_eq!(
        check(&writer, &after, &search(), at(now + 20)).await,
        Some(Outcome::Block),
        "the kept history fills the window"
    );
}

/// A monthly cap of 5.00 per tenant, activated after 4.50 spent this month (and 9.00 last
/// month): kept an hour, the pass removes last month's run only, and the first check after it
/// seeds 4.50, so 0.50 more is allowed and then the run halts.
async fn an_open_cost_period_holds_the_cutoff_back(store: Store, _: Kind) {
    seed(&store).await;
    let writer = ActionWriter::spawn(store.clone(), 16);
    // at(0) is 2026-11-18 11:06:40 UTC; the pass runs five days later, in November still.
    let now = 5 * 86_400;
    let october = run(&store, "billing", -30 * 86_400).await;
    assert_eq!(
        check(&writer, &october, &spend("9.00"), at(-30 * 86_400 + 10)).await,
        Some(Outcome::Allow)
    );
    ended(&store, &october.0, -30 * 86_400 + 20).await;
    let november = run(&store, "billing", 100).await;
    assert_eq!(
        check(&writer, &november, &spend("4.50"), at(200)).await,
        Some(Outcome::Allow)
    );
    ended(&store, &november.0, 300).await;
    activate(
        &store,
        json!([{"id": "monthly", "type": "cost", "max_usd": "5.00", "period": "month",
                "per": "tenant"}]),
    )
    .await;

    let retention = Retention {
        actions: Some(keep(3_600)),
        ..Retention::default()
    };
    let pass = store.prune(&retention, at(now)).await.unwrap();
    let pruned = pass.pruned;
    assert_eq!((pruned.runs, pruned.actions), (1, 1));
    assert_eq!(
        pass.held_back.map(|held| held.rule_id),
        Some("monthly".to_owned()),
        "the month still open held the cutoff back"
    );
    store
        .get_run(&Principal::Platform, &november.0.id)
        .await
        .unwrap();

    let after = run(&store, "support", now).await;
    assert_eq!(
        check(&writer, &after, &spend("0.50"), at(now + 10)).await,
        Some(Outcome::Allow),
        "4.50 + 0.50 reaches the cap exactly"
    );
    assert_eq!(
        check(&writer, &after, &spend("0.01"), at(now + 20)).await,
        Some(Outcome::Halt)
    );
}

/// Violations at 0, 600, 3300 and 3500 s (15-minute slots start at -400, 500, ... 3200 s;
/// 3-hour slots at -7600 and 3200 s: at(0) is 7600 s into one). Kept 650 s at 4000 s: the
/// cutoff 3350 s is floored to the start of its 3-hour slot, 3200 s, so the events at 0 and
/// 600 s go, with the counts of their slots in both grains; the counts left add up to the
/// events left.
async fn violations_and_their_counts_go_below_the_slot(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let draft = store
        .create_policy(&acme, definition("mail", acme_support()), false)
        .await
        .unwrap();
    let force = Activation {
        force: true,
        supersede: false,
    };
    store
        .activate(&acme, draft.policy.id.as_str(), force, None)
        .await
        .unwrap();
    let writer = ActionWriter::spawn(store.clone(), 16);
    let mail = run(&store, "support", 0).await;
    let send =
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "x@evil.com"}});
    for s in [0, 600, 3300, 3500] {
        assert_eq!(
            check(&writer, &mail, &send, at(s)).await,
            Some(Outcome::Block)
        );
    }
    let slot = |s: i64| at(s).as_millisecond();
    assert_eq!(count(&store, "violation_counts", "1 = 1").await, 3);
    assert_eq!(count(&store, "violation_counts_3h", "1 = 1").await, 2);

    let retention = Retention {
        violations: Some(keep(650)),
        ..Retention::default()
    };
    let pruned = store.prune(&retention, at(4000)).await.unwrap().pruned;
    assert_eq!(
        pruned,
        Pruned {
            violations: 2,
            ..Pruned::default()
        }
    );
    let left = store
        .violations(&Principal::Platform, &ViolationFilter::default(), None, 100)
        .await
        .unwrap();
    let mut times: Vec<i64> = left.items.iter().map(|v| v.at.as_millisecond()).collect();
    times.sort_unstable();
    assert_eq!(times, vec![slot(3300), slot(3500)]);
    for table in [
        "violation_counts",
        "violation_policy_counts",
        "violation_counts_3h",
        "violation_policy_counts_3h",
    ] {
        assert_eq!(
            count(&store, table, &format!("slot < {}", slot(3200))).await,
            0,
            "{table}"
        );
        assert_eq!(count(&store, table, "1 = 1").await, 1, "{table}");
    }
    for bucket in [900_000, 10_800_000] {
        let stats = store
            .violation_stats(&Principal::Platform, &ViolationFilter::default(), bucket)
            .await
            .unwrap();
        assert_eq!(stats.iter().map(|(_, n)| n).sum::<u64>(), 2, "{stats:?}");
    }
    // The run itself is not touched by violations' retention.
    store
        .get_run(&Principal::Platform, &mail.0.id)
        .await
        .unwrap();
}

/// The platform chain's 2 entries and acme's and globex's (all of theirs) are written at 0 s,
/// 3 more platform entries at 1000 s. Kept 1500 s at 2000 s: 5 entries go, every chain still
/// verifies from its anchor, appends go on; a changed anchor, a removed entry and a changed
/// entry are still caught.
async fn audit_entries_go_behind_an_anchor_and_tampering_is_still_caught(store: Store, kind: Kind) {
    seed(&store).await;
    let p = later(&platform(), 1000);
    for t in ["initech", "umbrella", "hooli"] {
        store
            .create_tenant(&p, &TenantId::new(t).unwrap(), t)
            .await
            .unwrap();
    }
    let retention = Retention {
        audit: Some(keep(1500)),
        ..Retention::default()
    };
    let pruned = store.prune(&retention, at(2000)).await.unwrap().pruned;
    assert_eq!(
        pruned,
        Pruned {
            audit_entries: 5,
            ..Pruned::default()
        }
    );
    let verified = store
        .verify_audit(&Principal::Platform, None)
        .await
        .unwrap();
    assert_eq!(
        verified,
        Verification::Ok {
            ok: true,
            entries: 3
        }
    );
    store
        .create_tenant(
            &later(&platform(), 3000),
            &TenantId::new("wonka").unwrap(),
            "w",
        )
        .await
        .unwrap();
    let verified = store
        .verify_audit(&Principal::Platform, None)
        .await
        .unwrap();
    assert_eq!(
        verified,
        Verification::Ok {
            ok: true,
            entries: 4
        }
    );
    // The anchor is covered by the audit log's own protection only for its entries: deleting
    // one it does not cover is still refused.
    assert!(
        store
            .execute_raw("DELETE FROM audit_log WHERE chain = '' AND seq = 3")
            .await
            .is_err()
    );

    let broken = |first_bad_seq| Verification::Broken {
        ok: false,
        tenant_id: None,
        first_bad_seq,
    };
    store
        .execute_raw("UPDATE audit_anchors SET seq = 1 WHERE chain = ''")
        .await
        .unwrap();
    assert_eq!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        broken(3)
    );
    store
        .execute_raw("UPDATE audit_anchors SET seq = 2 WHERE chain = ''")
        .await
        .unwrap();
    assert_eq!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        Verification::Ok {
            ok: true,
            entries: 4
        }
    );

    let disable: &[&str] = match kind {
        Kind::Sqlite => &[
            "DROP TRIGGER audit_append_only_update",
            "DROP TRIGGER audit_append_only_delete",
        ],
        Kind::Postgres => &["ALTER TABLE audit_log DISABLE TRIGGER audit_append_only"],
    };
    for sql in disable {
        store.execute_raw(sql).await.unwrap();
    }
    store
        .execute_raw("DELETE FROM audit_log WHERE chain = '' AND seq = 4")
        .await
        .unwrap();
    assert_eq!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        broken(5)
    );
    store
        .execute_raw("UPDATE audit_log SET details = '{}' WHERE chain = '' AND seq = 3")
        .await
        .unwrap();
    assert_eq!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        broken(3)
    );

    // A chain whose every entry was removed verifies only while its anchor is its head.
    let acme = || Principal::Tenant(TenantId::new("acme").unwrap());
    assert!(matches!(
        store.verify_audit(&acme(), None).await.unwrap(),
        Verification::Ok { entries: 0, .. }
    ));
    store
        .execute_raw("UPDATE audit_anchors SET hash = 'x' WHERE chain = 'acme'")
        .await
        .unwrap();
    assert_eq!(
        store.verify_audit(&acme(), None).await.unwrap(),
        Verification::Broken {
            ok: false,
            tenant_id: Some("acme".into()),
            first_bad_seq: 3
        }
    );
}
