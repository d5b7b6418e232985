//! The policy author's story over HTTP: create, rules, validate requirement, activate, clone,
//! supersede, deprecate, versions, export, import, delete, audit.

use axum::http::StatusCode;
use serde_json::json;

use crate::app::{App, error_code, policy_body};

#[tokio::test]
async fn the_authoring_story() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let r = app
        .call(
            "POST",
            "/v1/policies",
            key,
            Some(policy_body("Block external email")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            r.body["status"].clone(),
            r.body["version"].clone(),
            r.body["revision"].clone()
        ),
        (json!("draft"), json!(1), json!(1))
    );
    assert!(r.body["last_validation"].is_null());
    assert_eq!(r.body["created_at"], "2026-11-18T11:06:40Z");

    let rule = json!({"id": "r2", "type": "rate", "limit": 10, "window": "1m", "per": "agent"});
    let r = app
        .call("POST", &format!("/v1/policies/{id}/rules"), key, Some(rule))
        .await;
    assert_eq!(
        (r.status, r.body["revision"].clone()),
        (StatusCode::CREATED, json!(2))
    );
    let r = app
        .call("DELETE", &format!("/v1/policies/{id}/rules/r2"), key, None)
        .await;
    assert_eq!(
        (r.status, r.body["revision"].clone()),
        (StatusCode::OK, json!(3))
    );
    let r = app
        .raw(
            "PUT",
            &format!("/v1/policies/{id}"),
            key,
            Some(r#"{"name": "Block outside email"}"#),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["error"]["details"]["current_revision"].clone()
        ),
        (StatusCode::PRECONDITION_FAILED, json!(3))
    );
    let r = app
        .raw(
            "PUT",
            &format!("/v1/policies/{id}"),
            key,
            Some(r#"{"name": "Block outside email"}"#),
            &[("if-match", "\"3\"")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["name"].clone()),
        (StatusCode::OK, json!("Block outside email"))
    );

    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::CONFLICT, "validation_required")
    );
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            key,
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::OK, json!("active"))
    );
    // Active is immutable: refused, and nothing changed.
    let r = app
        .call(
            "PUT",
            &format!("/v1/policies/{id}"),
            key,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::CONFLICT, "conflict")
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("active")
    );
    let r = app
        .call("DELETE", &format!("/v1/policies/{id}"), key, None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        app.call("GET", &format!("/v1/policies/{id}"), key, None)
            .await
            .body["name"],
        "Block outside email"
    );

    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/clone"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["version"].clone(),
            r.body["cloned_from"].clone()
        ),
        (StatusCode::CREATED, json!(2), json!(id))
    );
    let v2 = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{v2}/activate"),
            key,
            Some(json!({"force": true, "supersede": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call("GET", &format!("/v1/policies/{v2}/versions"), key, None)
        .await;
    let statuses: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("deprecated"), json!("active")]);
    assert!(
        r.body["items"][0]["deprecated_by"]
            .as_str()
            .unwrap()
            .starts_with("key_")
    );
    assert!(
        r.body["items"][1]["activated_by"]
            .as_str()
            .unwrap()
            .starts_with("key_")
    );
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{v2}/deprecate"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::OK, json!("deprecated"))
    );
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{v2}/deprecate"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Export → import round-trips into a new draft lineage.
    let exported = app
        .call("GET", &format!("/v1/policies/{v2}/export"), key, None)
        .await;
    assert_eq!(
        (exported.status, exported.body["format"].clone()),
        (StatusCode::OK, json!("charter.policy/v1"))
    );
    assert_eq!(exported.body["exported_from"]["status"], "deprecated");
    let r = app
        .call(
            "POST",
            "/v1/policies/import",
            key,
            Some(exported.body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let imported = &r.body["items"][0];
    assert_eq!(
        (imported["status"].clone(), imported["version"].clone()),
        (json!("draft"), json!(1))
    );
    assert_eq!(imported["rules"], exported.body["rules"]);
    assert_ne!(
        imported["lineage_id"],
        exported.body["exported_from"]["lineage_id"]
    );
    let draft = imported["id"].as_str().unwrap().to_owned();
    let r = app
        .call("DELETE", &format!("/v1/policies/{draft}"), key, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.call("GET", &format!("/v1/policies/{draft}"), key, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let r = app
        .call("GET", "/v1/policies?status=deprecated", key, None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = app.call("GET", "/v1/policies?q=OUTSIDE", key, None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);

    let r = app.call("GET", "/v1/audit?limit=500", key, None).await;
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "policy.created",
        "policy.updated",
        "policy.activated",
        "policy.cloned",
        "policy.deprecated",
        "policy.exported",
        "policy.imported",
        "policy.deleted",
        "agent.created",
        "key.created",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing: {actions:?}"
        );
    }
    let r = app.call("GET", "/v1/audit/verify", key, None).await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    let r = app
        .call("GET", "/v1/audit/verify", Some(&app.admin), None)
        .await;
    assert_eq!(r.body["ok"], true);
}

#[tokio::test]
async fn import_is_all_or_nothing_and_names_the_document() {
    let (app, acme, _) = App::seeded().await;
    let good = json!({"format": "charter.policy/v1", "name": "ok", "scope": {"type": "tenant", "tenant_id": "elsewhere"}, "rules": []});
    let bad = json!({"format": "charter.policy/v1", "name": "bad", "scope": {"type": "tenant", "tenant_id": "acme"},
                     "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["x"], "when": [{"arg": "a", "op": "gt", "value": "7"}]}]});
    let r = app
        .call(
            "POST",
            "/v1/policies/import",
            Some(&acme),
            Some(json!([good, bad])),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["path"].clone()),
        (StatusCode::BAD_REQUEST, json!("[1].rules[0].when[0].value"))
    );
    assert_eq!(
        app.call("GET", "/v1/policies", Some(&acme), None)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // With a tenant key, a tenant document lands in the key's own tenant.
    let r = app
        .call("POST", "/v1/policies/import", Some(&acme), Some(good))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["items"][0]["scope"]["tenant_id"], "acme");
}

#[tokio::test]
async fn every_refused_transition_is_a_409_and_changes_nothing() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let create = |name: &str| policy_body(name);
    let draft = app
        .call("POST", "/v1/policies", key, Some(create("draft")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let active = app
        .call("POST", "/v1/policies", key, Some(create("active")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        "POST",
        &format!("/v1/policies/{active}/activate"),
        key,
        Some(json!({"force": true})),
    )
    .await;
    let deprecated = app
        .call("POST", "/v1/policies", key, Some(create("deprecated")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        "POST",
        &format!("/v1/policies/{deprecated}/activate"),
        key,
        Some(json!({"force": true})),
    )
    .await;
    app.call(
        "POST",
        &format!("/v1/policies/{deprecated}/deprecate"),
        key,
        Some(json!({})),
    )
    .await;
    let snapshot = |id: &str| {
        let app = &app;
        let path = format!("/v1/policies/{id}");
        async move { app.call("GET", &path, key, None).await.body }
    };
    let before: Vec<_> = vec![
        snapshot(&draft).await,
        snapshot(&active).await,
        snapshot(&deprecated).await,
    ];
    let audit_before = app.call("GET", "/v1/audit?limit=500", key, None).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    let rule = json!({"id": "r9", "type": "rate", "limit": 1, "window": "1m"});
    let refused = [
        (
            "POST",
            format!("/v1/policies/{draft}/deprecate"),
            Some(json!({})),
        ),
        (
            "PUT",
            format!("/v1/policies/{active}"),
            Some(json!({"name": "x"})),
        ),
        (
            "POST",
            format!("/v1/policies/{active}/rules"),
            Some(rule.clone()),
        ),
        ("DELETE", format!("/v1/policies/{active}/rules/r1"), None),
        ("DELETE", format!("/v1/policies/{active}"), None),
        (
            "POST",
            format!("/v1/policies/{active}/activate"),
            Some(json!({"force": true})),
        ),
        (
            "PUT",
            format!("/v1/policies/{deprecated}"),
            Some(json!({"name": "x"})),
        ),
        (
            "POST",
            format!("/v1/policies/{deprecated}/rules"),
            Some(rule),
        ),
        ("DELETE", format!("/v1/policies/{deprecated}"), None),
        (
            "POST",
            format!("/v1/policies/{deprecated}/activate"),
            Some(json!({"force": true})),
        ),
        (
            "POST",
            format!("/v1/policies/{deprecated}/deprecate"),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in refused {
        let r = app.call(method, &path, key, body).await;
        assert_eq!(
            (r.status, error_code(&r)),
            (StatusCode::CONFLICT, "conflict"),
            "{method} {path}: {:?}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("policy"),
            "{:?}",
            r.body
        );
    }
    let after: Vec<_> = vec![
        snapshot(&draft).await,
        snapshot(&active).await,
        snapshot(&deprecated).await,
    ];
    assert_eq!(before, after);
    let audit_after = app.call("GET", "/v1/audit?limit=500", key, None).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(audit_before, audit_after);
    // Query parameters are strict and named.
    let r = app
        .call("GET", &format!("/v1/policies/{draft}?verbose=1"), key, None)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["path"].clone()),
        (StatusCode::BAD_REQUEST, json!("query.verbose"))
    );
}

#[tokio::test]
async fn conditional_writes_follow_rfc_9110() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let id = app
        .call("POST", "/v1/policies", key, Some(policy_body("Guard")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/policies/{id}");
    let r = app.call("GET", &path, key, None).await;
    assert_eq!(r.header("etag"), "\"1\"");
    assert_eq!(r.body["revision"], 1);

    let rule = r#"{"id": "r2", "type": "rate", "limit": 10, "window": "1m", "per": "agent"}"#;
    // Every write that takes If-Match: a stale one is a 412 naming the current revision and
    // changes nothing (the revision, the rules and the audit log stay as they were).
    let entries = audit_len(&app, key).await;
    let writes: Vec<(&str, String, Option<&str>)> = vec![
        ("PUT", path.clone(), Some(r#"{"name": "Renamed"}"#)),
        ("POST", format!("{path}/rules"), Some(rule)),
        ("DELETE", format!("{path}/rules/r1"), None),
        (
            "POST",
            format!("{path}/activate"),
            Some(r#"{"force": true}"#),
        ),
        ("DELETE", path.clone(), None),
    ];
    for (method, target, body) in &writes {
        for stale in ["\"7\"", "W/\"1\"", "\"01\"", "\"x\""] {
            let r = app
                .raw(method, target, key, *body, &[("if-match", stale)])
                .await;
            assert_eq!(
                (
                    r.status,
                    error_code(&r),
                    r.body["error"]["details"]["current_revision"].clone()
                ),
                (
                    StatusCode::PRECONDITION_FAILED,
                    "precondition_failed",
                    json!(1)
                ),
                "{method} {target} If-Match: {stale}: {:?}",
                r.body
            );
        }
        for malformed in ["1", "\"1", "\"1\" \"2\"", "\"1\", \"2\""] {
            let r = app
                .raw(method, target, key, *body, &[("if-match", malformed)])
                .await;
            assert_eq!(
                (
                    r.status,
                    error_code(&r),
                    r.body["error"]["details"]["path"].clone()
                ),
                (StatusCode::BAD_REQUEST, "invalid", json!("If-Match")),
                "{method} {target} If-Match: {malformed}"
            );
        }
    }
    let r = app.call("GET", &path, key, None).await;
    assert_eq!(
        (
            r.header("etag"),
            r.body["status"].clone(),
            r.body["name"].clone()
        ),
        ("\"1\"", json!("draft"), json!("Guard"))
    );
    assert_eq!(r.body["rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        audit_len(&app, key).await,
        entries,
        "a refused write is not audited"
    );

    // The current revision (or `*`) passes, and each write moves the ETag on.
    let mut revision = 1;
    for (method, target, body) in &writes[..3] {
        for condition in [format!("\"{revision}\""), "*".to_owned()] {
            if condition == "*" && *method == "DELETE" {
                continue;
            }
            let r = app
                .raw(method, target, key, *body, &[("if-match", &condition)])
                .await;
            assert!(r.status.is_success(), "{method} {target}: {:?}", r.body);
            revision += 1;
            assert_eq!(r.body["revision"], revision);
            assert_eq!(
                app.call("GET", &path, key, None).await.header("etag"),
                format!("\"{revision}\"")
            );
            if *method == "POST" {
                // Add the rule once only.
                break;
            }
        }
    }
    let (method, target, body) = &writes[3];
    let r = app
        .raw(
            method,
            target,
            key,
            *body,
            &[("if-match", &format!("\"{revision}\""))],
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::OK, json!("active"))
    );
    // A condition only matters once the write could otherwise succeed: an active policy
    // is a 409 whatever the revision (RFC 9110 §13.2.1).
    let r = app
        .raw("DELETE", &path, key, None, &[("if-match", "\"99\"")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);

    // A draft is deleted with its current revision.
    let draft = app
        .call("POST", "/v1/policies", key, Some(policy_body("Other")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .raw(
            "DELETE",
            &format!("/v1/policies/{draft}"),
            key,
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn audit_len(app: &App, key: Option<&str>) -> usize {
    app.call("GET", "/v1/audit", key, None).await.body["items"]
        .as_array()
        .unwrap()
        .len()
}
