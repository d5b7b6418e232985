//! Tenants, agents, keys and tenant isolation: another tenant's resources answer as if they did
//! not exist, and platform policies are read-only to tenants.

use charter_core::{AgentId, TenantId};
use charter_store::{
    Activation, AuditFilter, KeyScope, PolicyEdit, PolicyFilter, PolicySummary, Principal, Store,
    StoreError, new_key_secret,
};
use serde_json::json;

use crate::harness::{Kind, acme_support, both, definition, later, platform, seed, tenant};

both!(
    policy_pages_list_what_the_whole_list_does,
    a_search_finds_names_stored_before_their_lowercase,
    tenants_agents_and_keys,
    tenants_cannot_see_each_other,
    platform_policies_are_read_only_to_tenants
);

async fn tenants_agents_and_keys(store: Store, _: Kind) {
    seed(&store).await;
    let p = platform();
    let acme = TenantId::new("acme").unwrap();
    assert!(matches!(
        store.create_tenant(&p, &acme, "again").await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .create_tenant(&p, &TenantId::new("platform").unwrap(), "x")
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .create_tenant(&tenant("acme"), &TenantId::new("evil").unwrap(), "x")
            .await,
        Err(StoreError::Forbidden(_))
    ));
    assert_eq!(
        store
            .list_tenants(&Principal::Platform)
            .await
            .unwrap()
            .len(),
        2
    );
    let own = store.list_tenants(&tenant("acme").principal).await.unwrap();
    assert_eq!(
        own.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["acme"]
    );
    assert!(matches!(
        store
            .create_agent(&p, &acme, &AgentId::new("support").unwrap(), "dup", None)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store
            .list_agents(&Principal::Platform, "acme")
            .await
            .unwrap()
            .len(),
        2
    );

    assert_eq!(store.count_keys().await.unwrap(), 0);
    let secret = new_key_secret();
    let key = store
        .create_key(
            &p,
            "ops",
            Some(&acme),
            &[KeyScope::Write, KeyScope::Read],
            &secret,
        )
        .await
        .unwrap();
    assert_eq!(key.scopes, vec![KeyScope::Read, KeyScope::Write]);
    assert_eq!(key.last4, secret[secret.len() - 4..]);
    assert_eq!(
        store.authenticate(&secret).await.unwrap().map(|k| k.id),
        Some(key.id.clone())
    );
    assert_eq!(
        store
            .authenticate("chk_wrong_wrong_wrong_wrong")
            .await
            .unwrap(),
        None
    );
    // A tenant key cannot mint platform keys nor keys of another tenant.
    assert!(matches!(
        store
            .create_key(
                &tenant("acme"),
                "x",
                None,
                &[KeyScope::Read],
                &new_key_secret()
            )
            .await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store
            .create_key(
                &tenant("acme"),
                "x",
                Some(&TenantId::new("globex").unwrap()),
                &[KeyScope::Read],
                &new_key_secret()
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .create_key(&p, "x", None, &[KeyScope::Read], "short")
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.revoke_key(&tenant("globex"), &key.id).await,
        Err(StoreError::NotFound { .. })
    ));
    // Authenticated twice (a store may keep it in memory), then revoked.
    for _ in 0..2 {
        assert_eq!(
            store.authenticate(&secret).await.unwrap().map(|k| k.id),
            Some(key.id.clone())
        );
    }
    store.revoke_key(&tenant("acme"), &key.id).await.unwrap();
    assert_eq!(
        store.authenticate(&secret).await.unwrap(),
        None,
        "a revoked key is refused at once"
    );
    assert!(matches!(
        store.revoke_key(&p, &key.id).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store
            .list_keys(&tenant("globex").principal)
            .await
            .unwrap()
            .len(),
        0
    );
    let listed = store.list_keys(&tenant("acme").principal).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
}

async fn tenants_cannot_see_each_other(store: Store, _: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let globex = tenant("globex");
    let p = store
        .create_policy(&acme, definition("acme secret", acme_support()), false)
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    let not_found = |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
    assert!(not_found(
        store.get_policy(&globex.principal, &id).await.map(drop)
    ));
    assert!(not_found(
        store
            .update_policy(&globex, &id, PolicyEdit::default(), None)
            .await
            .map(drop)
    ));
    assert!(not_found(store.delete_policy(&globex, &id, None).await));
    assert!(not_found(
        store
            .activate(
                &globex,
                &id,
                Activation {
                    force: true,
                    supersede: false
                },
                None
            )
            .await
            .map(drop)
    ));
    assert!(not_found(
        store.clone_policy(&globex, &id, None, None).await.map(drop)
    ));
    assert!(not_found(
        store.versions(&globex.principal, &id).await.map(drop)
    ));
    assert!(not_found(
        store.list_agents(&globex.principal, "acme").await.map(drop)
    ));
    assert!(
        store
            .list_policies(&globex.principal, &PolicyFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        crate::harness::all_audit(
            &store,
            &globex.principal,
            &AuditFilter {
                tenant_id: Some("acme".into()),
                ..AuditFilter::default()
            }
        )
        .await
        .unwrap()
        .iter()
        .all(|e| e.tenant_id.as_deref() == Some("globex"))
    );
    // Naming another tenant in a body is the same answer as naming one that exists nowhere.
    let e = store
        .create_policy(&globex, definition("x", acme_support()), false)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        StoreError::Invalid {
            path: "scope.tenant_id".into(),
            message: "no tenant `acme`".into()
        }
    );
    let e = store
        .create_policy(
            &acme,
            definition(
                "x",
                json!({"type": "agent", "tenant_id": "acme", "agent_id": "ghost"}),
            ),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { ref path, .. } if path == "scope.agent_id"),
        "{e:?}"
    );
    // The policy is untouched.
    assert_eq!(store.get_policy(&acme.principal, &id).await.unwrap(), p);
}

async fn platform_policies_are_read_only_to_tenants(store: Store, _: Kind) {
    seed(&store).await;
    let p = store
        .create_policy(
            &platform(),
            definition("platform rule", json!({"type": "platform"})),
            false,
        )
        .await
        .unwrap();
    let id = p.policy.id.to_string();
    let acme = tenant("acme");
    // A platform draft governs nothing, and tenants do not see it.
    assert!(matches!(
        store.get_policy(&acme.principal, &id).await,
        Err(StoreError::NotFound { .. })
    ));
    let p = store
        .activate(
            &platform(),
            &id,
            Activation {
                force: true,
                supersede: false,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.get_policy(&acme.principal, &id).await.unwrap(), p);
    assert_eq!(
        store
            .list_policies(&acme.principal, &PolicyFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        store
            .update_policy(
                &acme,
                &id,
                PolicyEdit {
                    name: Some("mine".into()),
                    ..PolicyEdit::default()
                },
                None
            )
            .await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store.delete_policy(&acme, &id, None).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store
            .create_policy(&acme, definition("x", json!({"type": "platform"})), false)
            .await,
        Err(StoreError::Forbidden(_))
    ));
    // Platform changes land in the platform chain, which a tenant key does not read.
    let own = crate::harness::all_audit(&store, &acme.principal, &AuditFilter::default())
        .await
        .unwrap();
    assert!(
        own.iter()
            .all(|e| e.policy_id.as_deref() != Some(id.as_str()))
    );
    let platform_chain = crate::harness::all_audit(
        &store,
        &Principal::Platform,
        &AuditFilter {
            tenant_id: Some("platform".into()),
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap();
    assert!(
        platform_chain
            .iter()
            .any(|e| e.policy_id.as_deref() == Some(id.as_str()))
    );
}

/// A SQLite database is used by one process at a time: a second open of the same file is
/// refused with a clear error (the first keeps keys in memory and could not see revocations
/// made elsewhere), and the file can be opened again once the first store is gone.
#[tokio::test]
async fn a_sqlite_database_is_opened_by_one_process_at_a_time() {
    let (first, path) = crate::harness::sqlite_file().await;
    let second = Store::open_sqlite(&path, charter_store::Sync::Normal).await;
    let Err(StoreError::Backend(message)) = second else {
        panic!("a second open succeeded");
    };
    assert!(
        message.contains("in use by another Charter process"),
        "{message}"
    );
    first.close().await;
    drop(first);
    Store::open_sqlite(&path, charter_store::Sync::Normal)
        .await
        .unwrap();
}

/// `policies_page` (the workspace's list, paged and filtered in SQL) gives, page after page,
/// exactly what `list_policies` gives, newest first: every filter, both kinds of key; each
/// summary (its rule count from SQL) is that of the whole policy.
async fn policy_pages_list_what_the_whole_list_does(store: Store, _: Kind) {
    use charter_core::policy::Status;
    seed(&store).await;
    let p = platform();
    let mut n = 0;
    for (name, scope) in [
        ("Refund cap", json!({"type": "platform"})),
        (
            "refund guard",
            json!({"type": "tenant", "tenant_id": "acme"}),
        ),
        ("Email guard", acme_support()),
        (
            "ÉMAIL guard",
            json!({"type": "tenant", "tenant_id": "globex"}),
        ),
        (
            "search rate",
            json!({"type": "agent", "tenant_id": "globex", "agent_id": "support"}),
        ),
        ("Refund 100%_cap", json!({"type": "platform"})),
    ] {
        for _ in 0..3 {
            n += 1;
            let stored = store
                .create_policy(&later(&p, n), definition(name, scope.clone()), false)
                .await
                .unwrap();
            let id = stored.policy.id.to_string();
            if n % 3 != 0 {
                let force = Activation {
                    force: true,
                    supersede: false,
                };
                store
                    .activate(&later(&p, n), &id, force, None)
                    .await
                    .unwrap();
            }
            if n % 3 == 1 {
                store.deprecate(&later(&p, n), &id).await.unwrap();
            }
        }
    }
    let filters = [
        PolicyFilter::default(),
        PolicyFilter {
            status: Some(Status::Active),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            status: Some(Status::Draft),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            q: Some("REFUND".into()),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            q: Some("émail".into()),
            ..PolicyFilter::default()
        },
        // `LIKE`'s wildcards are searched for as themselves.
        PolicyFilter {
            q: Some("%".into()),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            q: Some("d_c".into()),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            scope_type: Some("platform".into()),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            scope_type: Some("tenant".into()),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            scope_type: Some("agent".into()),
            agent_id: Some("support".into()),
            ..PolicyFilter::default()
        },
        PolicyFilter {
            tenant_id: Some("acme".into()),
            status: Some(Status::Deprecated),
            ..PolicyFilter::default()
        },
    ];
    for principal in [
        Principal::Platform,
        tenant("acme").principal,
        tenant("globex").principal,
    ] {
        for filter in &filters {
            let mut whole: Vec<String> = store
                .list_policies(&principal, filter)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.policy.id.to_string())
                .collect();
            whole.reverse();
            let mut paged = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = store
                    .policies_page(&principal, filter, cursor.as_deref(), 2)
                    .await
                    .unwrap();
                assert!(page.items.len() <= 2);
                for summary in &page.items {
                    let whole = store
                        .get_policy(&principal, summary.id.as_str())
                        .await
                        .unwrap();
                    assert_eq!(summary, &PolicySummary::of(&whole));
                }
                paged.extend(page.items.into_iter().map(|s| s.id.to_string()));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(paged, whole, "{principal:?} {filter:?}");
        }
    }
}

/// Policies written before `name_folded` and `rule_count` existed (NULL there) are found by a search all the
/// same, and the next open fills their lowercased names, active and deprecated versions
/// included, and so their rule counts: the immutability trigger allows that one change, and no
/// other to those columns. A rename or an edit of the rules that leaves them as they were (an
/// older node's) empties them.
async fn a_search_finds_names_stored_before_their_lowercase(store: Store, kind: Kind) {
    seed(&store).await;
    let acme = tenant("acme");
    let force = Activation {
        force: true,
        supersede: false,
    };
    let mut ids = Vec::new();
    for (n, name) in [(0, "Refund Cap"), (1, "ÉMAIL guard"), (2, "refund draft")] {
        let id = store
            .create_policy(&later(&acme, n), definition(name, acme_support()), false)
            .await
            .unwrap()
            .policy
            .id
            .to_string();
        if n < 2 {
            store.activate(&acme, &id, force, None).await.unwrap();
        }
        if n == 1 {
            store.deprecate(&acme, &id).await.unwrap();
        }
        ids.push(id);
    }
    let refund = vec![ids[2].clone(), ids[0].clone()];
    let email = vec![ids[1].clone()];
    assert_eq!(searched(&store, &acme.principal, "REFUND").await, refund);
    // An edit through the store that leaves them as they were (a rename of case only, the same
    // number of rules) keeps them: the triggers that catch an older node's edits do not empty
    // them for good.
    let draft = store.get_policy(&acme.principal, &ids[2]).await.unwrap();
    let edit = PolicyEdit {
        name: Some("REFUND DRAFT".into()),
        rules: Some(draft.policy.definition.rules.clone()),
        ..PolicyEdit::default()
    };
    store
        .update_policy(&acme, &ids[2], edit, None)
        .await
        .unwrap();
    let unfilled =
        "UPDATE policies SET revision = revision WHERE name_folded IS NULL OR rule_count IS NULL";
    assert_eq!(store.execute_raw(unfilled).await.unwrap(), 0);
    assert_eq!(searched(&store, &acme.principal, "REFUND").await, refund);

    // As an older version left them: no lowercased names. On SQLite in one statement text, so
    // on one connection: another with the schema cached from before the drop could refuse to
    // create the trigger again, as existing.
    let unfold = "UPDATE policies SET name_folded = NULL, rule_count = NULL";
    let steps = match kind {
        Kind::Sqlite => {
            let trigger = include_str!("../../migrations/sqlite/0013_policy_search.sql")
                .split_once("CREATE TRIGGER policies_frozen_update")
                .map(|(_, rest)| rest)
                .unwrap();
            vec![format!(
                "DROP TRIGGER policies_frozen_update; {unfold}; \
                 CREATE TRIGGER policies_frozen_update{trigger}"
            )]
        }
        Kind::Postgres => vec![
            "ALTER TABLE policies DISABLE TRIGGER policies_frozen".to_owned(),
            unfold.to_owned(),
            "ALTER TABLE policies ENABLE TRIGGER policies_frozen".to_owned(),
        ],
    };
    for step in steps {
        store.execute_raw(&step).await.unwrap();
    }
    // Updating a row without its lowercased name is allowed (the fill), whatever its status.
    assert_eq!(store.execute_raw(unfilled).await.unwrap(), 3);
    // But a missing rule count is filled only with the count of the rules.
    let miscounted = format!(
        "UPDATE policies SET rule_count = 99 WHERE id = '{}'",
        ids[0]
    );
    assert!(store.execute_raw(&miscounted).await.is_err());
    summaries_are_whole(&store, &acme.principal).await;
    assert_eq!(searched(&store, &acme.principal, "REFUND").await, refund);
    assert_eq!(searched(&store, &acme.principal, "émail").await, email);

    let reopened = store.reopen().await.unwrap();
    assert_eq!(reopened.execute_raw(unfilled).await.unwrap(), 0);
    summaries_are_whole(&reopened, &acme.principal).await;
    assert_eq!(searched(&reopened, &acme.principal, "REFUND").await, refund);
    assert_eq!(searched(&reopened, &acme.principal, "émail").await, email);
    // Filled, the column is as frozen as the rest of an active version.
    let refused = format!(
        "UPDATE policies SET name_folded = 'x' WHERE id = '{}'",
        ids[0]
    );
    assert!(reopened.execute_raw(&refused).await.is_err());

    // A draft renamed as an older node would, without its lowercase, is found by its new name.
    let renamed = format!(
        "UPDATE policies SET name = 'Renamed GUARD' WHERE id = '{}'",
        ids[2]
    );
    assert_eq!(reopened.execute_raw(&renamed).await.unwrap(), 1);
    assert_eq!(
        searched(&reopened, &acme.principal, "guard").await,
        vec![ids[2].clone(), ids[1].clone()]
    );
    assert_eq!(
        searched(&reopened, &acme.principal, "refund").await,
        vec![ids[0].clone()]
    );
    // So are its rules, counted again.
    let emptied = format!("UPDATE policies SET rules = '[]' WHERE id = '{}'", ids[2]);
    assert_eq!(reopened.execute_raw(&emptied).await.unwrap(), 1);
    summaries_are_whole(&reopened, &acme.principal).await;
}

/// Every policy's summary in the list is that of the whole policy (its rule count included).
async fn summaries_are_whole(store: &Store, principal: &Principal) {
    let page = store
        .policies_page(principal, &PolicyFilter::default(), None, 50)
        .await
        .unwrap();
    assert!(!page.items.is_empty());
    for summary in &page.items {
        let whole = store
            .get_policy(principal, summary.id.as_str())
            .await
            .unwrap();
        assert_eq!(summary, &PolicySummary::of(&whole));
    }
}

/// The ids of the first page of a search by name, as `principal` sees it.
async fn searched(store: &Store, principal: &Principal, q: &str) -> Vec<String> {
    let filter = PolicyFilter {
        q: Some(q.to_owned()),
        ..PolicyFilter::default()
    };
    let page = store
        .policies_page(principal, &filter, None, 50)
        .await
        .unwrap();
    page.items.into_iter().map(|s| s.id.to_string()).collect()
}
