//! Tenant B's key on tenant A's resources, for every route: 404 (or 403 where B lacks the right
//! anyway), and nothing of A in the body.

use axum::http::StatusCode;
use serde_json::json;

use crate::app::{App, policy_body};

#[tokio::test]
async fn another_tenants_resources_do_not_exist() {
    let (app, acme, globex) = App::seeded().await;
    let r = app
        .call(
            "POST",
            "/v1/policies",
            Some(&acme),
            Some(policy_body("Acme secret policy")),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let key_id = app.call("GET", "/v1/keys", Some(&acme), None).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let routes: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", format!("/v1/policies/{id}"), None),
        (
            "PUT",
            format!("/v1/policies/{id}"),
            Some(json!({"name": "mine"})),
        ),
        ("DELETE", format!("/v1/policies/{id}"), None),
        (
            "POST",
            format!("/v1/policies/{id}/rules"),
            Some(json!({"id": "r9", "type": "rate", "limit": 1, "window": "1m"})),
        ),
        ("DELETE", format!("/v1/policies/{id}/rules/r1"), None),
        (
            "POST",
            format!("/v1/policies/{id}/activate"),
            Some(json!({"force": true})),
        ),
        (
            "POST",
            format!("/v1/policies/{id}/deprecate"),
            Some(json!({})),
        ),
        ("POST", format!("/v1/policies/{id}/clone"), Some(json!({}))),
        ("GET", format!("/v1/policies/{id}/versions"), None),
        ("GET", format!("/v1/policies/{id}/export"), None),
        ("GET", "/v1/tenants/acme/agents".to_owned(), None),
        (
            "POST",
            "/v1/tenants/acme/agents".to_owned(),
            Some(json!({"id": "spy", "name": "spy"})),
        ),
        ("DELETE", format!("/v1/keys/{key_id}"), None),
        (
            "POST",
            "/v1/keys".to_owned(),
            Some(json!({"name": "spy", "tenant_id": "acme", "scopes": ["read"]})),
        ),
        (
            "POST",
            "/v1/policies".to_owned(),
            Some(policy_body("planted")),
        ),
    ];
    for (method, path, body) in routes {
        let r = app.call(method, &path, Some(&globex), body).await;
        assert!(
            r.status == StatusCode::NOT_FOUND
                || r.status == StatusCode::FORBIDDEN
                || r.status == StatusCode::BAD_REQUEST,
            "{method} {path}: {} {:?}",
            r.status,
            r.body
        );
        let text = r.body.to_string();
        assert!(
            !text.contains("Acme secret policy") && !text.contains("support agents email"),
            "{method} {path} leaked: {text}"
        );
    }
    // Lists and the audit log show B nothing of A.
    for path in [
        "/v1/policies",
        "/v1/tenants",
        "/v1/keys",
        "/v1/audit?tenant_id=acme&limit=500",
    ] {
        let r = app.call("GET", path, Some(&globex), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let text = r.body.to_string();
        assert!(
            !text.contains("Acme secret policy") && !text.contains("\"acme\""),
            "{path} leaked: {text}"
        );
    }
    // Verifying "acme's" chain with globex's key verifies globex's own.
    let r = app
        .call(
            "GET",
            "/v1/audit/verify?tenant_id=acme",
            Some(&globex),
            None,
        )
        .await;
    assert_eq!(r.body["ok"], true);
    let own = app
        .call("GET", "/v1/audit/verify", Some(&globex), None)
        .await;
    assert_eq!(r.body, own.body);
    // An exported document naming acme, imported with globex's key, lands in globex.
    let doc = json!({"format": "charter.policy/v1", "name": "moved", "scope": {"type": "tenant", "tenant_id": "acme"}, "rules": []});
    let r = app
        .call("POST", "/v1/policies/import", Some(&globex), Some(doc))
        .await;
    assert_eq!(r.body["items"][0]["scope"]["tenant_id"], "globex");
    // A's policy is untouched.
    let r = app
        .call("GET", &format!("/v1/policies/{id}"), Some(&acme), None)
        .await;
    assert_eq!(
        (
            r.body["name"].clone(),
            r.body["status"].clone(),
            r.body["revision"].clone()
        ),
        (json!("Acme secret policy"), json!("draft"), json!(1))
    );
}
