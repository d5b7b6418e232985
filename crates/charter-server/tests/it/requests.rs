//! Bad input of every class gets a clear error and changes nothing; scopes and revoked keys.

use axum::http::StatusCode;
use serde_json::json;

use crate::app::{App, error_code, error_path, policy_body};

#[tokio::test]
async fn bad_bodies_name_the_offending_field() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"name\": ".to_owned(), ""),
        ("unknown top-level field", json!({"name": "n", "scope": {"type": "tenant", "tenant_id": "acme"}, "colour": 1}).to_string(), "colour"),
        ("server-owned field", json!({"name": "n", "scope": {"type": "tenant", "tenant_id": "acme"}, "status": "active"}).to_string(), "status"),
        ("wrong type", json!({"name": 7, "scope": {"type": "tenant", "tenant_id": "acme"}}).to_string(), "name"),
        ("missing field", json!({"scope": {"type": "tenant", "tenant_id": "acme"}}).to_string(), "name"),
        ("unknown field in a rule", {
            let mut b = policy_body("n");
            b["rules"][0]["burst"] = json!(1);
            b.to_string()
        }, "rules[0].burst"),
        ("bad op in a condition", {
            let mut b = policy_body("n");
            b["rules"][0]["when"][0]["op"] = json!("ends_wiht");
            b.to_string()
        }, "rules[0].when[0].op"),
        ("unknown time zone", json!({"name": "n", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "t", "type": "time", "max_run_duration": "1h", "timezone": "Mars/Base"}]}).to_string(), "rules[0].timezone"),
        ("another tenant in the body", json!({"name": "n", "scope": {"type": "tenant", "tenant_id": "globex"}}).to_string(), "scope.tenant_id"),
        ("a tenant that exists nowhere", json!({"name": "n", "scope": {"type": "tenant", "tenant_id": "nowhere"}}).to_string(), "scope.tenant_id"),
    ];
    for (what, body, path) in cases {
        let r = app.raw("POST", "/v1/policies", key, Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
        assert_eq!(
            (error_code(&r), error_path(&r)),
            ("invalid", path),
            "{what}: {:?}",
            r.body
        );
    }
    // Nothing was created by any of them.
    assert!(
        app.call("GET", "/v1/policies", key, None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = app.call("GET", "/v1/policies?color=red", key, None).await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::BAD_REQUEST, "invalid")
    );
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let (app, acme, _) = App::seeded().await;
    let huge = json!({"name": "n", "description": "x".repeat(1_100_000), "scope": {"type": "tenant", "tenant_id": "acme"}});
    let r = app
        .call("POST", "/v1/policies", Some(&acme), Some(huge))
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
}

#[tokio::test]
async fn keys_scopes_and_revocation() {
    let (app, acme, _) = App::seeded().await;
    assert_eq!(
        app.call("GET", "/v1/policies", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(
            "GET",
            "/v1/policies",
            Some("chk_not_a_key_at_all_00000"),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
    // A read-only key reads but cannot write.
    let r = app
        .call(
            "POST",
            "/v1/keys",
            Some(&acme),
            Some(json!({"name": "viewer", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["tenant_id"], "acme");
    assert_eq!(
        r.body["last4"].as_str().unwrap(),
        &r.body["key"].as_str().unwrap()[64..]
    );
    let viewer = r.body["key"].as_str().unwrap().to_owned();
    let viewer_id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call("GET", "/v1/policies", Some(&viewer), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .call(
            "POST",
            "/v1/policies",
            Some(&viewer),
            Some(policy_body("n")),
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    // Listing never shows key values.
    let r = app.call("GET", "/v1/keys", Some(&acme), None).await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none() && k.get("secret_hash").is_none())
    );
    // Tenants cannot mint tenants or platform keys.
    let r = app
        .call(
            "POST",
            "/v1/tenants",
            Some(&acme),
            Some(json!({"id": "evil", "name": "evil"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Revocation takes effect at once.
    let r = app
        .call(
            "DELETE",
            &format!("/v1/keys/{viewer_id}"),
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["revoked_at"].is_null()),
        (StatusCode::OK, false)
    );
    assert_eq!(
        app.call("GET", "/v1/policies", Some(&viewer), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/keys/{viewer_id}"),
            Some(&acme),
            None
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.call("DELETE", "/v1/keys/key_nope", Some(&acme), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Unknown policy ids.
    assert_eq!(
        app.call("GET", "/v1/policies/pol_nope", Some(&acme), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_count_requests_per_route_template() {
    let (app, acme, _) = App::seeded().await;
    app.call("GET", "/v1/policies/pol_a", Some(&acme), None)
        .await;
    app.call("GET", "/v1/policies/pol_b", Some(&acme), None)
        .await;
    let r = app.raw("GET", "/metrics", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"charter_http_requests_total{method="GET",route="/v1/policies/{id}",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains("charter_http_request_duration_seconds_bucket"));
    assert!(!text.contains("pol_a"), "ids never become labels");
}

#[tokio::test]
async fn key_usage_is_counted_and_flushed() {
    let (app, acme, _) = App::seeded().await;
    for _ in 0..3 {
        app.call("GET", "/v1/policies", Some(&acme), None).await;
    }
    app.usage.flush(&app.store).await.unwrap();
    let r = app.call("GET", "/v1/keys", Some(&acme), None).await;
    let key = &r.body["items"][0];
    // Three list calls, the keys call itself is counted at the next flush.
    assert_eq!(key["calls"], 3, "{key}");
    assert!(!key["last_used_at"].is_null());
}

/// (method, path, key, body, status, error code, details.path)
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    StatusCode,
    &'a str,
    &'a str,
);

#[tokio::test]
async fn tenants_agents_and_keys_refuse_bad_input() {
    let (app, acme, _) = App::seeded().await;
    let admin = app.admin.clone();
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/tenants",
            Some(admin.as_str()),
            "{\"id\": ",
            StatusCode::BAD_REQUEST,
            "invalid",
            "",
        ),
        (
            "POST",
            "/v1/tenants",
            Some(admin.as_str()),
            r#"{"id": "t1", "name": "x", "plan": "gold"}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "plan",
        ),
        (
            "POST",
            "/v1/tenants",
            Some(admin.as_str()),
            r#"{"id": 5, "name": "x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "id",
        ),
        (
            "POST",
            "/v1/tenants",
            Some(admin.as_str()),
            r#"{"id": "t1"}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "name",
        ),
        (
            "POST",
            "/v1/tenants",
            Some(admin.as_str()),
            r#"{"id": "bad id", "name": "x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "id",
        ),
        (
            "POST",
            "/v1/tenants",
            Some(admin.as_str()),
            r#"{"id": "acme", "name": "again"}"#,
            StatusCode::CONFLICT,
            "conflict",
            "",
        ),
        (
            "POST",
            "/v1/tenants/acme/agents",
            Some(acme.as_str()),
            r#"{"id": "support", "name": "dup"}"#,
            StatusCode::CONFLICT,
            "conflict",
            "",
        ),
        (
            "POST",
            "/v1/tenants/acme/agents",
            Some(acme.as_str()),
            r#"{"id": "a1", "name": "x", "team": 1}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "team",
        ),
        (
            "POST",
            "/v1/tenants/nowhere/agents",
            Some(admin.as_str()),
            r#"{"id": "a1", "name": "x"}"#,
            StatusCode::NOT_FOUND,
            "not_found",
            "",
        ),
        (
            "POST",
            "/v1/keys",
            Some(acme.as_str()),
            r#"{"name": "k", "scopes": ["admin"]}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "scopes[0]",
        ),
        (
            "POST",
            "/v1/keys",
            Some(acme.as_str()),
            r#"{"name": "k", "scopes": []}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "scopes",
        ),
        (
            "POST",
            "/v1/keys",
            Some(acme.as_str()),
            r#"{"name": "k", "tenant_id": "globex", "scopes": ["read"]}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "tenant_id",
        ),
        (
            "POST",
            "/v1/policies/pol_x/activate",
            Some(acme.as_str()),
            r#"{"force": "yes"}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
            "force",
        ),
        (
            "GET",
            "/v1/audit?limit=lots",
            Some(acme.as_str()),
            "",
            StatusCode::BAD_REQUEST,
            "invalid",
            "query.limit",
        ),
    ];
    for (method, path, key, body, status, code, field) in cases {
        let r = app
            .raw(method, path, key, Some(body).filter(|b| !b.is_empty()), &[])
            .await;
        assert_eq!(
            (r.status, error_code(&r)),
            (status, code),
            "{method} {path} {body}: {:?}",
            r.body
        );
        if !field.is_empty() {
            assert_eq!(
                error_path(&r),
                field,
                "{method} {path} {body}: {:?}",
                r.body
            );
        }
    }
    // Nothing was created by any of them.
    let tenants = app.call("GET", "/v1/tenants", Some(&admin), None).await;
    assert_eq!(tenants.body["items"].as_array().unwrap().len(), 2);
    let agents = app
        .call("GET", "/v1/tenants/acme/agents", Some(&admin), None)
        .await;
    assert_eq!(agents.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn review_findings_stay_fixed() {
    let (app, acme, globex) = App::seeded().await;
    let admin = app.admin.clone();
    // A key cannot grant scopes it does not hold.
    let r = app
        .call(
            "POST",
            "/v1/keys",
            Some(&acme),
            Some(json!({"name": "w", "scopes": ["write"]})),
        )
        .await;
    let writer = r.body["key"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            "/v1/keys",
            Some(&writer),
            Some(json!({"name": "x", "scopes": ["read", "write", "execute"]})),
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{:?}",
        r.body
    );
    // The scope is checked before the body is read.
    let r = app
        .call(
            "POST",
            "/v1/keys",
            Some(&acme),
            Some(json!({"name": "viewer", "scopes": ["read"]})),
        )
        .await;
    let viewer = r.body["key"].as_str().unwrap().to_owned();
    let huge = json!({"name": "n", "description": "x".repeat(1_100_000), "scope": {"type": "tenant", "tenant_id": "acme"}});
    assert_eq!(
        app.call("POST", "/v1/policies", Some(&viewer), Some(huge))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.raw("POST", "/v1/policies", Some(&viewer), Some("{bad"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A platform draft does not exist for tenants, whatever they try.
    let secret = json!({"name": "Platform secret", "scope": {"type": "platform"},
                        "rules": [{"id": "secret-rule", "type": "tool", "effect": "deny", "tools": ["x"]}]});
    let draft = app
        .call("POST", "/v1/policies", Some(&admin), Some(secret))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path, body) in [
        ("GET", format!("/v1/policies/{draft}"), None),
        (
            "PUT",
            format!("/v1/policies/{draft}"),
            Some(json!({"name": "mine"})),
        ),
        ("DELETE", format!("/v1/policies/{draft}"), None),
        (
            "POST",
            format!("/v1/policies/{draft}/clone"),
            Some(json!({"scope": {"type": "tenant", "tenant_id": "globex"}})),
        ),
    ] {
        let r = app.call(method, &path, Some(&globex), body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            r.body
        );
        assert!(
            !r.body.to_string().contains("secret"),
            "{method} {path} leaked"
        );
    }
    // Bodies must be objects.
    let r = app
        .raw(
            "POST",
            "/v1/tenants",
            Some(&admin),
            Some(r#"["t4", "T4"]"#),
            &[],
        )
        .await;
    assert_eq!((r.status, error_path(&r)), (StatusCode::BAD_REQUEST, ""));
    let r = app
        .raw("POST", "/v1/policies", Some(&acme), Some("[1]"), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Unknown routes and methods answer in the error format.
    let r = app.call("GET", "/v1/nothing", Some(&acme), None).await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = app.call("PATCH", "/v1/tenants", Some(&acme), None).await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    // The scheme is case-insensitive.
    let r = app
        .raw(
            "GET",
            "/v1/policies",
            None,
            None,
            &[("authorization", &format!("bearer {acme}"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Listing the agents of a tenant that does not exist is a 404, as creating one is.
    assert_eq!(
        app.call("GET", "/v1/tenants/nope/agents", Some(&admin), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call("GET", "/v1/policies?scope_type=bogus", Some(&acme), None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn unreadable_path_segments_answer_as_missing_ids() {
    let (app, acme, _) = App::seeded().await;
    let r = app.call("GET", "/v1/policies/%FF", Some(&acme), None).await;
    assert_eq!(
        (r.status, r.body["error"].clone()),
        (
            StatusCode::NOT_FOUND,
            json!({"code": "not_found", "message": "policy %FF not found", "details": {}})
        ),
    );
    // Without a key the request is refused before its path is read.
    let r = app.call("GET", "/v1/policies/%FF", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
