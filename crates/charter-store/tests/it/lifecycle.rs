//! Policy lifecycle: every transition, every refused one (nothing changes), immutability in
//! the database, the audit chain and its verify, concurrency.

use charter_core::rule::Rule;
use charter_core::{RuleId, Scope, Status};
use charter_store::{
    Activation, AuditFilter, PolicyEdit, Principal, Store, StoreError, Verification,
};
use serde_json::json;

use crate::harness::{Kind, acme_support, both, definition, later, platform, seed, tenant};

both!(
    full_lifecycle,
    refused_transitions_change_nothing,
    revisions_guard_concurrent_edits,
    database_refuses_changes_to_frozen_rows,
    audit_chain_verifies_and_detects_tampering,
    concurrent_activations_have_one_winner,
    scope_is_fixed_once_active,
);

fn audit_actions(entries: &[charter_store::AuditEntry]) -> Vec<String> {
    entries.iter().map(|e| e.action.clone()).collect()
}

async fn full_lifecycle(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(
            &acme,
            definition("Block external email", acme_support()),
            false,
        )
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    assert_eq!(
        (p.policy.version, p.policy.revision, p.policy.status),
        (1, 1, Status::Draft)
    );

    let edited = store
        .update_policy(
            &later(&acme, 1),
            &id,
            PolicyEdit {
                name: Some("Block outside email".into()),
                ..PolicyEdit::default()
            },
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(edited.policy.revision, 2);
    let rule =
        Rule::parse(&json!({"id": "r2", "type": "rate", "limit": 5, "window": "1m"})).unwrap();
    let with_rule = store.add_rule(&acme, &id, rule, None).await.unwrap();
    assert_eq!(
        (with_rule.policy.revision, with_rule.policy.rules().len()),
        (3, 2)
    );
    let without = store
        .remove_rule(&acme, &id, &RuleId::new("r2").unwrap(), Some(3))
        .await
        .unwrap();
    assert_eq!(
        (without.policy.revision, without.policy.rules().len()),
        (4, 1)
    );

    // Activation needs a validation of the current revision, unless forced.
    let refused = store
        .activate(&acme, &id, Activation::default(), None)
        .await
        .unwrap_err();
    assert_eq!(refused, StoreError::ValidationRequired { revision: 4 });
    store
        .record_validation(&acme, &id, 4, &json!({"actions_blocked": 0}))
        .await
        .unwrap();
    let (revision, _, report) = store
        .latest_validation(&acme.principal, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((revision, report), (4, json!({"actions_blocked": 0})));
    assert!(matches!(
        store
            .latest_validation(&tenant("globex").principal, &id)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let active = store
        .activate(&later(&acme, 2), &id, Activation::default(), None)
        .await
        .unwrap();
    assert_eq!(active.policy.status, Status::Active);
    let read = store.get_policy(&Principal::Platform, &id).await.unwrap();
    assert_eq!(read.policy.status, Status::Active);
    assert!(read.policy.activated_at.is_some());

    // Clone → v2 in the same lineage; edit; activate with supersede → v1 deprecated.
    let v2 = store.clone_policy(&acme, &id, None, None).await.unwrap();
    assert_eq!(
        (v2.policy.version, &v2.policy.lineage_id),
        (2, &p.policy.lineage_id)
    );
    assert_eq!(
        v2.policy.cloned_from.as_ref().map(ToString::to_string),
        Some(id.clone())
    );
    let v2_id = v2.policy.id.to_string();
    store
        .activate(
            &acme,
            &v2_id,
            Activation {
                force: true,
                supersede: true,
            },
            None,
        )
        .await
        .unwrap();
    let v1 = store.get_policy(&Principal::Platform, &id).await.unwrap();
    assert_eq!(v1.policy.status, Status::Deprecated);
    let (lineage, versions) = store.versions(&acme.principal, &v2_id).await.unwrap();
    assert_eq!(lineage, p.policy.lineage_id);
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.policy.version, v.policy.status))
            .collect::<Vec<_>>(),
        vec![(1, Status::Deprecated), (2, Status::Active)]
    );

    // Clone into another scope → version 1 of a new lineage.
    let other = store
        .clone_policy(
            &acme,
            &v2_id,
            Some(Scope::Tenant {
                tenant_id: "acme".parse_id(),
            }),
            Some("Acme-wide".into()),
        )
        .await
        .unwrap();
    assert_eq!(other.policy.version, 1);
    assert_ne!(other.policy.lineage_id, p.policy.lineage_id);

    // Deprecate, then delete a draft: the audit log keeps its definition.
    store.deprecate(&acme, &v2_id).await.unwrap();
    store
        .delete_policy(&acme, other.policy.id.as_str(), None)
        .await
        .unwrap();
    assert!(matches!(
        store
            .get_policy(&acme.principal, other.policy.id.as_str())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let log = crate::harness::all_audit(&store, &acme.principal, &AuditFilter::default())
        .await
        .unwrap();
    let actions = audit_actions(&log);
    for expected in [
        "agent.created",
        "policy.created",
        "policy.updated",
        "policy.validated",
        "policy.activated",
        "policy.cloned",
        "policy.deprecated",
        "policy.deleted",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    let deleted = log.iter().find(|e| e.action == "policy.deleted").unwrap();
    assert_eq!(deleted.details["definition"]["name"], "Acme-wide");
    let updated = log
        .iter()
        .find(|e| e.action == "policy.updated" && e.details["revision"] == 2)
        .unwrap();
    assert_eq!(updated.details["before"]["name"], "Block external email");
    assert_eq!(updated.details["after"]["name"], "Block outside email");
    let forced = log
        .iter()
        .find(|e| e.action == "policy.activated" && e.policy_id.as_deref() == Some(v2_id.as_str()))
        .unwrap();
    assert_eq!(forced.details["force"], true);
    assert!(matches!(
        store.verify_audit(&acme.principal, None).await.unwrap(),
        Verification::Ok { ok: true, .. }
    ));
}

trait ParseId {
    fn parse_id(&self) -> charter_core::TenantId;
}

impl ParseId for str {
    fn parse_id(&self) -> charter_core::TenantId {
        charter_core::TenantId::new(self).unwrap()
    }
}

async fn refused_transitions_change_nothing(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    assert!(matches!(
        store.deprecate(&acme, &id).await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .activate(
            &acme,
            &id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    let before = store.get_policy(&acme.principal, &id).await.unwrap();
    let audit_before = crate::harness::all_audit(&store, &acme.principal, &AuditFilter::default())
        .await
        .unwrap()
        .len();

    let edit = PolicyEdit {
        name: Some("changed".into()),
        ..PolicyEdit::default()
    };
    let e = store
        .update_policy(&acme, &id, edit, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { message, .. } if message.contains("active")),
        "{e:?}"
    );
    let rule =
        Rule::parse(&json!({"id": "r9", "type": "rate", "limit": 1, "window": "1m"})).unwrap();
    assert!(matches!(
        store.add_rule(&acme, &id, rule, None).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .remove_rule(&acme, &id, &RuleId::new("r1").unwrap(), None)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.delete_policy(&acme, &id, None).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .activate(
                &acme,
                &id,
                Activation {
                    force: true,
                    supersede: false
                },
                None
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store.deprecate(&acme, &id).await.unwrap();
    let deprecated = store.get_policy(&acme.principal, &id).await.unwrap();
    assert!(matches!(
        store
            .activate(
                &acme,
                &id,
                Activation {
                    force: true,
                    supersede: false
                },
                None
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.deprecate(&acme, &id).await,
        Err(StoreError::Conflict { .. })
    ));
    let after = store.get_policy(&acme.principal, &id).await.unwrap();
    assert_eq!(after, deprecated);
    assert_eq!(before.policy.definition, after.policy.definition);
    // Exactly one new entry: the deprecation.
    let audit_after = crate::harness::all_audit(&store, &acme.principal, &AuditFilter::default())
        .await
        .unwrap()
        .len();
    assert_eq!(audit_after, audit_before + 1);
    // Unknown ids.
    assert!(matches!(
        store.deprecate(&acme, "pol_nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn revisions_guard_concurrent_edits(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    let e = store
        .update_policy(
            &acme,
            &id,
            PolicyEdit {
                name: Some("x".into()),
                ..PolicyEdit::default()
            },
            Some(7),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::RevisionMismatch {
                current_revision: 1,
                ..
            }
        ),
        "{e:?}"
    );
    // Eight writers with the same precondition: one wins, the others learn the new revision.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let acme = acme.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update_policy(
                    &acme,
                    &id,
                    PolicyEdit {
                        name: Some(format!("w{i}")),
                        ..PolicyEdit::default()
                    },
                    Some(1),
                )
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::RevisionMismatch { .. } | StoreError::Conflict { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(
        store
            .get_policy(&acme.principal, &id)
            .await
            .unwrap()
            .policy
            .revision,
        2
    );
}

async fn database_refuses_changes_to_frozen_rows(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    // A draft may be changed by anyone with SQL...
    assert_eq!(
        store
            .execute_raw(&format!("UPDATE policies SET name = 'd' WHERE id = '{id}'"))
            .await
            .unwrap(),
        1
    );
    store
        .activate(
            &acme,
            &id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    // ...an active one not, except to deprecate it, or to fill the lowercased name that the
    // rename by SQL left empty, once.
    let fill = format!("UPDATE policies SET name_folded = 'd' WHERE id = '{id}'");
    assert_eq!(store.execute_raw(&fill).await.unwrap(), 1);
    for sql in [
        format!("UPDATE policies SET name = 'hacked' WHERE id = '{id}'"),
        format!("UPDATE policies SET rules = '[]' WHERE id = '{id}'"),
        format!("UPDATE policies SET status = 'draft' WHERE id = '{id}'"),
        format!("UPDATE policies SET status = 'deprecated', name = 'x' WHERE id = '{id}'"),
        fill.clone(),
        format!("UPDATE policies SET name_folded = 'hacked' WHERE id = '{id}'"),
        format!("UPDATE policies SET rule_count = 7 WHERE id = '{id}'"),
        format!("UPDATE policies SET rule_count = NULL WHERE id = '{id}'"),
        format!("UPDATE policies SET name_folded = NULL WHERE id = '{id}'"),
        format!("UPDATE policies SET status = 'deprecated', name_folded = 'x' WHERE id = '{id}'"),
        format!("DELETE FROM policies WHERE id = '{id}'"),
        "UPDATE audit_log SET action = 'x'".to_owned(),
        "DELETE FROM audit_log".to_owned(),
    ] {
        let e = store.execute_raw(&sql).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{sql}: {e:?}");
    }
    store.deprecate(&acme, &id).await.unwrap();
    for sql in [
        format!("UPDATE policies SET deprecated_by = 'someone' WHERE id = '{id}'"),
        format!("UPDATE policies SET status = 'active' WHERE id = '{id}'"),
        format!("UPDATE policies SET name_folded = 'x' WHERE id = '{id}'"),
        format!("DELETE FROM policies WHERE id = '{id}'"),
    ] {
        assert!(store.execute_raw(&sql).await.is_err(), "{sql}");
    }
    let read = store.get_policy(&acme.principal, &id).await.unwrap();
    assert_eq!(
        (read.policy.status, read.policy.name()),
        (Status::Deprecated, "d")
    );
}

async fn audit_chain_verifies_and_detects_tampering(store: Store, kind: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    for i in 0..5 {
        store
            .create_policy(&acme, definition(&format!("p{i}"), acme_support()), false)
            .await
            .unwrap();
    }
    let platform_ok = store
        .verify_audit(&Principal::Platform, None)
        .await
        .unwrap();
    let Verification::Ok { entries, .. } = platform_ok else {
        panic!("{platform_ok:?}")
    };
    // 2 tenants created (platform chain), 3 agents, 5 policies.
    assert_eq!(entries, 10);
    let acme_log = crate::harness::all_audit(&store, &acme.principal, &AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(
        acme_log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert!(
        acme_log
            .iter()
            .all(|e| e.tenant_id.as_deref() == Some("acme"))
    );
    // Tamper with entry 4 of acme's chain behind the store's back.
    let disable = match kind {
        Kind::Sqlite => "DROP TRIGGER audit_append_only_update",
        Kind::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_append_only",
    };
    store.execute_raw(disable).await.unwrap();
    store
        .execute_raw("UPDATE audit_log SET details = '{\"definition\":{\"name\":\"forged\"}}' WHERE chain = 'acme' AND seq = 4")
        .await
        .unwrap();
    assert_eq!(
        store.verify_audit(&acme.principal, None).await.unwrap(),
        Verification::Broken {
            ok: false,
            tenant_id: Some("acme".into()),
            first_bad_seq: 4
        }
    );
    // Globex's chain is untouched and still verifies.
    assert!(matches!(
        store
            .verify_audit(&tenant("globex").principal, None)
            .await
            .unwrap(),
        Verification::Ok {
            ok: true,
            entries: 1
        }
    ));
    assert!(matches!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        Verification::Broken {
            first_bad_seq: 4,
            ..
        }
    ));
    // Cutting the newest entries off a chain is detected too.
    let disable_delete = match kind {
        Kind::Sqlite => "DROP TRIGGER audit_append_only_delete",
        Kind::Postgres => "SELECT 1",
    };
    store.execute_raw(disable_delete).await.unwrap();
    store
        .execute_raw("DELETE FROM audit_log WHERE chain = '' AND seq = 2")
        .await
        .unwrap();
    assert_eq!(
        store
            .verify_audit(&Principal::Platform, Some("platform"))
            .await
            .unwrap(),
        Verification::Broken {
            ok: false,
            tenant_id: None,
            first_bad_seq: 2
        }
    );
}

async fn concurrent_activations_have_one_winner(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let acme = acme.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .activate(
                    &acme,
                    &id,
                    Activation {
                        force: true,
                        supersede: true,
                    },
                    None,
                )
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let log = crate::harness::all_audit(
        &store,
        &acme.principal,
        &AuditFilter {
            action: Some("policy.activated".into()),
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(log.len(), 1);
    assert!(matches!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        Verification::Ok { .. }
    ));
}

async fn scope_is_fixed_once_active(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    // A draft's scope can move while the lineage was never active.
    let billing = Scope::Agent {
        tenant_id: "acme".parse_id(),
        agent_id: charter_core::AgentId::new("billing").unwrap(),
    };
    let moved = store
        .update_policy(
            &acme,
            &id,
            PolicyEdit {
                scope: Some(billing.clone()),
                ..PolicyEdit::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(moved.policy.scope(), &billing);
    store
        .activate(
            &acme,
            &id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    let v2 = store.clone_policy(&acme, &id, None, None).await.unwrap();
    let e = store
        .update_policy(
            &acme,
            v2.policy.id.as_str(),
            PolicyEdit {
                scope: Some(Scope::Tenant {
                    tenant_id: "acme".parse_id(),
                }),
                ..PolicyEdit::default()
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { message, .. } if message.contains("fixed")),
        "{e:?}"
    );
    let _ = platform();
}

both!(
    concurrent_supersedes_leave_one_active_version,
    concurrent_clones_get_distinct_versions,
    a_lineage_keeps_one_scope_and_one_tenant,
    replace_and_truncate_cannot_bypass_the_triggers,
);

async fn concurrent_supersedes_leave_one_active_version(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let v1 = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let v1_id = v1.policy.id.to_string();
    store
        .activate(
            &acme,
            &v1_id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    let mut drafts = Vec::new();
    for _ in 0..6 {
        drafts.push(
            store
                .clone_policy(&acme, &v1_id, None, None)
                .await
                .unwrap()
                .policy
                .id
                .to_string(),
        );
    }
    let mut tasks = Vec::new();
    for id in drafts {
        let (store, acme) = (store.clone(), acme.clone());
        tasks.push(tokio::spawn(async move {
            store
                .activate(
                    &acme,
                    &id,
                    Activation {
                        force: true,
                        supersede: true,
                    },
                    None,
                )
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (_, versions) = store.versions(&acme.principal, &v1_id).await.unwrap();
    let active = versions
        .iter()
        .filter(|v| v.policy.status == Status::Active)
        .count();
    assert_eq!(
        active,
        1,
        "{:?}",
        versions
            .iter()
            .map(|v| (v.policy.version, v.policy.status))
            .collect::<Vec<_>>()
    );
}

async fn concurrent_clones_get_distinct_versions(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let v1 = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = v1.policy.id.to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, acme, id) = (store.clone(), acme.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            store.clone_policy(&acme, &id, None, None).await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().policy.version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=9).collect::<Vec<_>>());
    // A deleted draft's number is never given again.
    let (_, all) = store.versions(&acme.principal, &id).await.unwrap();
    let last = all.last().unwrap().policy.id.to_string();
    store.delete_policy(&acme, &last, None).await.unwrap();
    assert_eq!(
        store
            .clone_policy(&acme, &id, None, None)
            .await
            .unwrap()
            .policy
            .version,
        10
    );
}

async fn a_lineage_keeps_one_scope_and_one_tenant(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let v1 = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let v1_id = v1.policy.id.to_string();
    let v2 = store.clone_policy(&acme, &v1_id, None, None).await.unwrap();
    let billing = Scope::Agent {
        tenant_id: "acme".parse_id(),
        agent_id: charter_core::AgentId::new("billing").unwrap(),
    };
    store
        .update_policy(
            &acme,
            v2.policy.id.as_str(),
            PolicyEdit {
                scope: Some(billing),
                ..PolicyEdit::default()
            },
            None,
        )
        .await
        .unwrap();
    store
        .activate(
            &acme,
            &v1_id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    // v2 drifted to another scope before the lineage was fixed: it cannot become active in it.
    let e = store
        .activate(
            &acme,
            v2.policy.id.as_str(),
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { message, .. } if message.contains("fixed")),
        "{e:?}"
    );
    // Moving a draft to another tenant is refused: a lineage never spans tenants.
    let lone = store
        .create_policy(&platform(), definition("q", acme_support()), false)
        .await
        .unwrap();
    let globex = Scope::Tenant {
        tenant_id: "globex".parse_id(),
    };
    let e = store
        .update_policy(
            &platform(),
            lone.policy.id.as_str(),
            PolicyEdit {
                scope: Some(globex),
                ..PolicyEdit::default()
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid { path, .. } if path == "scope"),
        "{e:?}"
    );
}

async fn replace_and_truncate_cannot_bypass_the_triggers(store: Store, kind: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let p = store
        .create_policy(&acme, definition("p", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    store
        .activate(
            &acme,
            &id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    let attacks: Vec<String> = match kind {
        Kind::Sqlite => vec![
            format!(
                "REPLACE INTO policies (id, lineage_id, version, tenant_id, scope, status, revision, name, description, rules, created_at, created_by, updated_at, updated_by) \
                 SELECT id, lineage_id, version, tenant_id, scope, status, revision, 'hacked', description, '[]', created_at, created_by, updated_at, updated_by FROM policies WHERE id = '{id}'"
            ),
            "REPLACE INTO audit_log SELECT chain, seq, at, tenant_id, actor_key_id, actor_name, 'forged', policy_id, lineage_id, version, details, prev_hash, hash FROM audit_log WHERE seq = 1".to_owned(),
        ],
        Kind::Postgres => vec!["TRUNCATE audit_log".to_owned(), "TRUNCATE policies CASCADE".to_owned()],
    };
    for sql in attacks {
        assert!(store.execute_raw(&sql).await.is_err(), "{sql}");
    }
    assert_eq!(
        store
            .get_policy(&acme.principal, &id)
            .await
            .unwrap()
            .policy
            .name(),
        "p"
    );
    assert!(matches!(
        store
            .verify_audit(&Principal::Platform, None)
            .await
            .unwrap(),
        Verification::Ok { .. }
    ));
}
