//! A draft's rules from the workspace in process: each of the six types added through its form
//! and read back through the API as stored, condition rows added without script, refusals
//! beside their field that change nothing, edit, remove, reorder, a stale form refused, and
//! the keys, statuses and tenants that may not change rules refused.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Page;
use crate::app::{App, policy_body};

/// A draft of acme with no rules, made through the API: its id.
async fn empty_draft(app: &App, key: &str) -> String {
    let body = json!({"name": "Rules", "description": "",
                      "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"}});
    let r = app
        .call("POST", "/v1/policies", Some(key), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The policy as the API answers it.
async fn policy(app: &App, key: &str, id: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/policies/{id}"), Some(key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// A form's fields, as `(name, value)`.
type Fields<'a> = Vec<(&'a str, &'a str)>;

/// Percent-encodes a form value.
fn encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A URL-encoded form body.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the hidden `revision` field of a page's form.
fn revision(page: &Page) -> String {
    let at = page
        .body
        .find("name=\"revision\" value=\"")
        .expect("a revision")
        + 23;
    let end = page.body[at..].find('"').unwrap();
    page.body[at..at + end].to_owned()
}

/// Opens the new-rule form of `rule_type` and posts `fields` with its token, type and
/// revision: the answer.
async fn add(app: &App, session: &str, id: &str, rule_type: &str, fields: &[(&str, &str)]) -> Page {
    let page = app
        .get(
            &format!("/policies/{id}/rules/new?type={rule_type}"),
            session,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (csrf, revision) = (page.csrf(), revision(&page));
    let mut all = vec![
        ("csrf", csrf.as_str()),
        ("type", rule_type),
        ("revision", revision.as_str()),
    ];
    all.extend_from_slice(fields);
    app.post(&format!("/policies/{id}/rules/new"), session, &form(&all))
        .await
}

#[tokio::test]
async fn each_rule_type_is_added_through_its_form_as_the_api_stores_it() {
    let (app, acme, _) = App::seeded().await;
    let id = empty_draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let page = app.get(&format!("/policies/{id}"), &session).await;
    assert!(page.body.contains(&format!("/policies/{id}/rules/new")));
    let chooser = app
        .get(&format!("/policies/{id}/rules/new"), &session)
        .await;
    for t in ["tool", "data_access", "rate", "cost", "time", "output"] {
        assert!(chooser.body.contains(&format!("rules/new?type={t}")), "{t}");
    }
    let first = app
        .get(&format!("/policies/{id}/rules/new?type=tool"), &session)
        .await;
    assert!(
        first.body.contains("name=\"id\" value=\"r1\""),
        "the next free id"
    );

    let cases: Vec<(&str, Fields, Value)> = vec![
        (
            "tool",
            vec![
                ("id", "r1"),
                ("effect", "deny"),
                ("tools", "*.send_email\r\n\r\n gmail.* \r\n"),
                ("when[0].arg", "cc"),
                ("when[0].op", "exists"),
                ("when[0].value", ""),
                ("when[1].arg", "to"),
                ("when[1].op", "in"),
                ("when[1].value", "a@x.com, b@x.com, 3"),
            ],
            json!({"id": "r1", "type": "tool", "effect": "deny",
                   "tools": ["*.send_email", "gmail.*"],
                   "when": [{"arg": "cc", "op": "exists"},
                            {"arg": "to", "op": "in", "value": ["a@x.com", "b@x.com", 3]}]}),
        ),
        (
            "data_access",
            vec![
                ("id", "r2"),
                ("description", "only public files"),
                ("effect", "allow"),
                ("resources", "files/**\nreports/*"),
                ("operations", "read"),
                ("operations", "write"),
                ("labels", "public"),
            ],
            json!({"id": "r2", "type": "data_access", "description": "only public files",
                   "effect": "allow", "resources": ["files/**", "reports/*"],
                   "operations": ["read", "write"], "labels": ["public"]}),
        ),
        (
            "rate",
            vec![
                ("id", "r3"),
                ("limit", "5"),
                ("window", "1h"),
                ("per", "agent"),
                ("match_kinds", "tool_call"),
                ("match_tools", "*.send_email"),
            ],
            json!({"id": "r3", "type": "rate", "limit": 5, "window": "1h", "per": "agent",
                   "match": {"kinds": ["tool_call"], "tools": ["*.send_email"]}}),
        ),
        (
            "cost",
            vec![
                ("id", "r4"),
                ("max_usd", "12.5"),
                ("period", "day"),
                ("per", "tenant"),
                ("timezone", "Europe/Paris"),
            ],
            json!({"id": "r4", "type": "cost", "max_usd": "12.50", "period": "day",
                   "per": "tenant", "timezone": "Europe/Paris"}),
        ),
        (
            "time",
            vec![
                ("id", "r5"),
                ("max_run_duration", "30m"),
                ("allow[0].days", "mon"),
                ("allow[0].days", "fri"),
                ("allow[0].from", "09:00"),
                ("allow[0].to", "17:00"),
                ("deny[0].days", "sat"),
                ("deny[0].from", "22:00"),
                ("deny[0].to", "06:00"),
                ("timezone", ""),
            ],
            json!({"id": "r5", "type": "time", "max_run_duration": "30m",
                   "allow": [{"days": ["mon", "fri"], "from": "09:00", "to": "17:00"}],
                   "deny": [{"days": ["sat"], "from": "22:00", "to": "06:00"}],
                   "timezone": "UTC"}),
        ),
        (
            "output",
            vec![
                ("id", "r6"),
                ("channels", "email"),
                ("deny_phrases", "top secret\ninternal only"),
                ("deny_regex", "(?i)api[_-]?key"),
                ("pii", "email"),
                ("pii", "iban"),
                ("max_chars", "500"),
                ("json_schema", "{\"type\": \"object\"}"),
            ],
            json!({"id": "r6", "type": "output", "channels": ["email"],
                   "deny_phrases": ["top secret", "internal only"],
                   "deny_regex": ["(?i)api[_-]?key"], "pii": ["email", "iban"],
                   "max_chars": 500, "json_schema": {"type": "object"}}),
        ),
    ];
    for (i, (rule_type, fields, expected)) in cases.into_iter().enumerate() {
        let done = add(&app, &session, &id, rule_type, &fields).await;
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "{rule_type}: {}",
            done.body
        );
        assert_eq!(done.header("location"), format!("/policies/{id}"));
        let stored = policy(&app, &acme, &id).await;
        assert_eq!(stored["rules"][i], expected, "{rule_type}");
    }
    let page = app.get(&format!("/policies/{id}"), &session).await;
    assert!(page.body.contains("/rules/r6/edit"));
    // Each was recorded with the session's key, as the API records it.
    let audit = app
        .call("GET", "/v1/audit?action=policy.updated", Some(&acme), None)
        .await;
    assert!(
        !audit.body["items"].as_array().unwrap().is_empty(),
        "{:?}",
        audit.body
    );
}

#[tokio::test]
async fn condition_and_window_rows_are_added_and_removed_without_script() {
    let (app, acme, _) = App::seeded().await;
    let id = empty_draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let added = add(
        &app,
        &session,
        &id,
        "tool",
        &[("id", "r1"), ("tools", "a"), ("add_condition", "1")],
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(added.body.contains("name=\"when[0].arg\""));
    assert!(added.body.contains("name=\"when[0].value\""));
    assert!(!added.body.contains("name=\"when[1].arg\""));
    let removed = add(
        &app,
        &session,
        &id,
        "tool",
        &[
            ("when[0].arg", "to"),
            ("when[0].op", "eq"),
            ("when[1].arg", "cc"),
            ("when[1].op", "exists"),
            ("remove_condition", "0"),
        ],
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert!(
        removed.body.contains("name=\"when[0].arg\" value=\"cc\""),
        "{}",
        removed.body
    );
    assert!(!removed.body.contains("name=\"when[1].arg\""));
    let window = add(&app, &session, &id, "time", &[("add_deny", "1")]).await;
    assert_eq!(window.status, StatusCode::OK);
    assert!(window.body.contains("name=\"deny[0].from\""));
    assert!(!window.body.contains("name=\"allow[0].from\""));
    // Nothing was stored by rows shown.
    assert_eq!(policy(&app, &acme, &id).await["rules"], json!([]));
}

#[tokio::test]
async fn a_bad_value_is_refused_beside_its_field_and_changes_nothing() {
    let (app, acme, _) = App::seeded().await;
    let id = empty_draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let before = policy(&app, &acme, &id).await["revision"].clone();
    let cases: [(&str, Fields, &str); 6] = [
        (
            "cost",
            vec![
                ("id", "r1"),
                ("max_usd", "-1"),
                ("period", "day"),
                ("per", "run"),
            ],
            "rule-max-usd-error",
        ),
        (
            "output",
            vec![("id", "r1"), ("deny_regex", "fine\n(?=a)")],
            "rule-deny-regex-error",
        ),
        (
            "time",
            vec![
                ("id", "r1"),
                ("allow[0].days", "mon"),
                ("allow[0].from", "25:00"),
                ("allow[0].to", "10:00"),
            ],
            "allow-0-from-error",
        ),
        (
            "tool",
            vec![
                ("id", "r1"),
                ("effect", "deny"),
                ("tools", "a"),
                ("when[0].arg", "n"),
                ("when[0].op", "gt"),
                ("when[0].value", "many"),
            ],
            "when-0-value-error",
        ),
        (
            "output",
            vec![("id", "r1"), ("json_schema", "{\"type\": 3}")],
            "rule-json-schema-error",
        ),
        (
            "rate",
            vec![
                ("id", "bad id!"),
                ("limit", "1"),
                ("window", "1h"),
                ("per", "run"),
            ],
            "rule-id-error",
        ),
    ];
    for (rule_type, fields, error_id) in cases {
        let refused = add(&app, &session, &id, rule_type, &fields).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rule_type}: {}",
            refused.body
        );
        assert!(
            refused.body.contains(&format!("id=\"{error_id}\"")),
            "{error_id}: {}",
            refused.body
        );
        // The form comes back as typed.
        for (name, value) in &fields {
            if !value.contains('\n') && *name != "allow[0].days" {
                assert!(refused.body.contains(&htmlish(value)), "{name}");
            }
        }
    }
    // An output rule with no check at all belongs to no field: above the form.
    let refused = add(&app, &session, &id, "output", &[("id", "r1")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("class=\"error\" role=\"alert\""));
    // A field the type's form does not have is refused, as the API refuses unknown fields.
    let unknown = add(&app, &session, &id, "cost", &[("id", "r1"), ("limit", "3")]).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    let after = policy(&app, &acme, &id).await;
    assert_eq!(after["revision"], before);
    assert_eq!(after["rules"], json!([]));
}

/// `text` as the templates escape it (enough for the values above).
fn htmlish(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&#34;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn a_rule_is_edited_in_place_removed_and_reordered() {
    let (app, acme, _) = App::seeded().await;
    let mut body = policy_body("Mail");
    body["rules"].as_array_mut().unwrap().extend([
        json!({"id": "r2", "type": "cost", "max_usd": "5", "period": "run"}),
        json!({"id": "r3", "type": "output", "deny_phrases": ["secret"]}),
    ]);
    let r = app
        .call("POST", "/v1/policies", Some(&acme), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let session = app.signed_in(&acme).await;

    // The form of a stored rule is filled in from it, conditions included.
    let edit = app
        .get(&format!("/policies/{id}/rules/r1/edit"), &session)
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.body);
    assert!(edit.body.contains("name=\"when[0].arg\" value=\"to\""));
    assert!(edit.body.contains("value=\"@acme.com\""));
    assert!(
        edit.body
            .contains("<option value=\"not_ends_with\" selected>")
    );
    assert!(edit.body.contains("*.send_email</textarea>"));
    let fields = [
        ("csrf", edit.csrf()),
        ("type", "tool".to_owned()),
        ("revision", revision(&edit)),
        ("id", "r1".to_owned()),
        ("description", "colleagues only".to_owned()),
        ("effect", "deny".to_owned()),
        ("tools", "*.send_email".to_owned()),
        ("when[0].arg", "to".to_owned()),
        ("when[0].op", "not_ends_with".to_owned()),
        ("when[0].value", "@acme.example".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let done = app
        .post(
            &format!("/policies/{id}/rules/r1/edit"),
            &session,
            &form(&fields),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let stored = policy(&app, &acme, &id).await;
    assert_eq!(
        stored["rules"][0],
        json!({"id": "r1", "type": "tool", "description": "colleagues only", "effect": "deny",
               "tools": ["*.send_email"],
               "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.example"}]})
    );
    let edit = app
        .get(&format!("/policies/{id}/rules/r2/edit"), &session)
        .await;
    assert!(
        edit.body.contains("name=\"max_usd\" value=\"5.00\""),
        "{}",
        edit.body
    );
    // Renaming a rule to another's id is refused beside the id.
    let clash = [
        ("csrf", edit.csrf()),
        ("type", "cost".to_owned()),
        ("revision", revision(&edit)),
        ("id", "r3".to_owned()),
        ("max_usd", "5".to_owned()),
        ("period", "run".to_owned()),
        ("per", "run".to_owned()),
    ];
    let clash: Vec<(&str, &str)> = clash.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let refused = app
        .post(
            &format!("/policies/{id}/rules/r2/edit"),
            &session,
            &form(&clash),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("id=\"rule-id-error\""),
        "{}",
        refused.body
    );

    // Remove r1 through its confirmation page.
    let confirm = app
        .get(&format!("/policies/{id}/rules/r1/remove"), &session)
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Remove rule r1?"));
    let body = format!("csrf={}&revision={}", confirm.csrf(), revision(&confirm));
    let gone = app
        .post(&format!("/policies/{id}/rules/r1/remove"), &session, &body)
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
    let ids = |p: &Value| -> Vec<String> {
        p["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&policy(&app, &acme, &id).await), ["r2", "r3"]);

    // Move r3 up: the first rule offers no "up", the last no "down".
    let page = app.get(&format!("/policies/{id}"), &session).await;
    assert_eq!(page.body.matches("value=\"up\"").count(), 1);
    assert_eq!(page.body.matches("value=\"down\"").count(), 1);
    let body = format!(
        "csrf={}&revision={}&direction=up",
        page.csrf(),
        revision(&page)
    );
    let moved = app
        .post(&format!("/policies/{id}/rules/r3/move"), &session, &body)
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(ids(&policy(&app, &acme, &id).await), ["r3", "r2"]);
    let page = app.get(&format!("/policies/{id}"), &session).await;
    let body = format!(
        "csrf={}&revision={}&direction=up",
        page.csrf(),
        revision(&page)
    );
    let refused = app
        .post(&format!("/policies/{id}/rules/r3/move"), &session, &body)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "already first");
    let missing = app
        .get(&format!("/policies/{id}/rules/r9/edit"), &session)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stale_form_is_refused_and_changes_nothing() {
    let (app, acme, _) = App::seeded().await;
    let id = empty_draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let page = app
        .get(&format!("/policies/{id}/rules/new?type=cost"), &session)
        .await;
    let (csrf, old) = (page.csrf(), revision(&page));
    // Someone else adds rules meanwhile.
    for rule_id in ["r1", "r2"] {
        let r = app
            .call(
                "POST",
                &format!("/v1/policies/{id}/rules"),
                Some(&acme),
                Some(json!({"id": rule_id, "type": "output", "max_chars": 10})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let before = policy(&app, &acme, &id).await;
    let body = form(&[
        ("csrf", &csrf),
        ("type", "cost"),
        ("revision", &old),
        ("id", "r3"),
        ("max_usd", "3"),
        ("period", "day"),
        ("per", "run"),
    ]);
    let refused = app
        .post(&format!("/policies/{id}/rules/new"), &session, &body)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("changed since you opened"),
        "{}",
        refused.body
    );
    let body = format!("csrf={csrf}&revision={old}&direction=down");
    let moved = app
        .post(&format!("/policies/{id}/rules/r1/move"), &session, &body)
        .await;
    assert_eq!(moved.status, StatusCode::CONFLICT, "{}", moved.body);
    let body = format!("csrf={csrf}&revision={old}");
    let removed = app
        .post(&format!("/policies/{id}/rules/r1/remove"), &session, &body)
        .await;
    assert_eq!(removed.status, StatusCode::CONFLICT, "{}", removed.body);
    assert!(removed.body.contains("changed since you opened"));
    assert_eq!(policy(&app, &acme, &id).await, before);
}

#[tokio::test]
async fn only_a_writer_of_a_draft_of_its_tenant_may_change_rules() {
    let (app, acme, globex) = App::seeded().await;
    let id = app
        .call(
            "POST",
            "/v1/policies",
            Some(&acme),
            Some(policy_body("Mail")),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = policy(&app, &acme, &id).await;
    let writer = app.signed_in(&acme).await;
    let token = app.get("/policies", &writer).await.csrf();
    let add_body = form(&[
        ("csrf", &token),
        ("type", "output"),
        ("revision", "1"),
        ("id", "r2"),
        ("max_chars", "10"),
    ]);
    let posts = |csrf: &str| {
        [
            (
                format!("/policies/{id}/rules/new"),
                add_body.replace(&token, csrf),
            ),
            (
                format!("/policies/{id}/rules/r1/remove"),
                format!("csrf={csrf}&revision=1"),
            ),
            (
                format!("/policies/{id}/rules/r1/move"),
                format!("csrf={csrf}&revision=1&direction=down"),
            ),
        ]
    };

    // No CSRF token: refused before any handler.
    for (path, body) in posts("") {
        let refused = app.post(&path, &writer, &body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }

    // A read-only key is offered nothing, and its forged forms are refused.
    let reader = app.key("reader", Some("acme"), &["read"]).await;
    let reader = app.signed_in(&reader).await;
    let page = app.get(&format!("/policies/{id}"), &reader).await;
    assert!(
        !page.body.contains("/rules/"),
        "no rule buttons for a reader"
    );
    let form_page = app
        .get(&format!("/policies/{id}/rules/new?type=tool"), &reader)
        .await;
    assert_eq!(form_page.status, StatusCode::FORBIDDEN);
    for (path, body) in posts(&page.csrf()) {
        let refused = app.post(&path, &reader, &body).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
    }

    // Another tenant's policy is not found, as a made-up id is.
    let other = app.signed_in(&globex).await;
    let other_token = app.get("/policies", &other).await.csrf();
    for path in [
        format!("/policies/{id}/rules/new?type=tool"),
        format!("/policies/{id}/rules/r1/edit"),
        format!("/policies/{id}/rules/r1/remove"),
        "/policies/pol_00000000000000000000000000000000/rules/new".to_owned(),
    ] {
        assert_eq!(
            app.get(&path, &other).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for (path, body) in posts(&other_token) {
        let refused = app.post(&path, &other, &body).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(policy(&app, &acme, &id).await, before);

    // An active policy offers no rule buttons and refuses the forms.
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            Some(&acme),
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let active = policy(&app, &acme, &id).await;
    let page = app.get(&format!("/policies/{id}"), &writer).await;
    assert!(
        !page.body.contains("/rules/"),
        "no rule buttons on an active policy"
    );
    for (path, body) in posts(&token) {
        let refused = app.post(&path, &writer, &body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            refused.body
        );
        assert!(refused.body.contains("only a draft"));
    }
    assert_eq!(policy(&app, &acme, &id).await, active);
}

#[tokio::test]
async fn a_time_rules_windows_are_filled_in_to_edit() {
    let (app, acme, _) = App::seeded().await;
    let id = empty_draft(&app, &acme).await;
    let rule = json!({"id": "hours", "type": "time", "max_run_duration": "2h",
                      "allow": [{"days": ["mon", "fri"], "from": "09:00", "to": "17:00"}],
                      "deny": [{"days": ["sat"], "from": "22:00", "to": "06:00"}],
                      "timezone": "Europe/Paris"});
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/rules"),
            Some(&acme),
            Some(rule),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let session = app.signed_in(&acme).await;
    let edit = app
        .get(&format!("/policies/{id}/rules/hours/edit"), &session)
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.body);
    for shown in [
        "name=\"max_run_duration\" value=\"2h\"",
        "name=\"allow[0].days\" value=\"mon\" checked",
        "name=\"allow[0].days\" value=\"fri\" checked",
        "name=\"allow[0].days\" value=\"tue\">",
        "name=\"allow[0].from\" value=\"09:00\"",
        "name=\"allow[0].to\" value=\"17:00\"",
        "name=\"deny[0].days\" value=\"sat\" checked",
        "name=\"deny[0].from\" value=\"22:00\"",
        "name=\"deny[0].to\" value=\"06:00\"",
        "name=\"timezone\" value=\"Europe/Paris\"",
        "action=\"/policies/",
    ] {
        assert!(edit.body.contains(shown), "{shown}");
    }
    assert!(!edit.body.contains("name=\"allow[1].from\""));
}
