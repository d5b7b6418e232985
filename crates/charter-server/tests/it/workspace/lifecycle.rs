//! A policy's lifecycle from its page in process: activate (refused without a validation unless
//! forced), deprecate, clone and delete through their confirmation pages' forms, export as a
//! download, and a read-only key offered none of it and refused when it forges the form.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{App, policy_body};

/// A draft of acme made through the API: its id.
async fn draft(app: &App, key: &str) -> String {
    let r = app
        .call("POST", "/v1/policies", Some(key), Some(policy_body("Mail")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The policy as the API answers it.
async fn policy(app: &App, key: &str, id: &str) -> (StatusCode, Value) {
    let r = app
        .call("GET", &format!("/v1/policies/{id}"), Some(key), None)
        .await;
    (r.status, r.body)
}

/// Opens `/policies/{id}/{change}` and posts its form with `extra` fields; the answer.
async fn confirm_and_post(
    app: &App,
    session: &str,
    id: &str,
    change: &str,
    extra: &str,
) -> super::Page {
    let path = format!("/policies/{id}/{change}");
    let page = app.get(&path, session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = format!("csrf={}{extra}", page.csrf());
    app.post(&path, session, &body).await
}

#[tokio::test]
async fn a_draft_is_activated_only_when_validated_or_forced_then_deprecated() {
    let (app, acme, _) = App::seeded().await;
    let id = draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let page = app.get(&format!("/policies/{id}"), &session).await;
    assert!(page.body.contains(&format!("/policies/{id}/activate")));
    assert!(page.body.contains(&format!("/policies/{id}/delete")));
    assert!(!page.body.contains(&format!("/policies/{id}/deprecate")));

    let confirm = app.get(&format!("/policies/{id}/activate"), &session).await;
    assert!(confirm.body.contains("Never validated"), "{}", confirm.body);
    let refused = confirm_and_post(&app, &session, &id, "activate", "").await;
    assert_ne!(refused.status, StatusCode::SEE_OTHER, "{}", refused.body);
    assert_eq!(policy(&app, &acme, &id).await.1["status"], "draft");

    let done = confirm_and_post(&app, &session, &id, "activate", "&force=1").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.header("location"), format!("/policies/{id}"));
    assert_eq!(policy(&app, &acme, &id).await.1["status"], "active");

    let done = confirm_and_post(&app, &session, &id, "deprecate", "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let (_, body) = policy(&app, &acme, &id).await;
    assert_eq!(body["status"], "deprecated");
    assert!(
        body["deprecated_by"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );

    let again = app.get(&format!("/policies/{id}/activate"), &session).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(
        again.body.contains("only a draft policy can be activated"),
        "{}",
        again.body
    );

    // The audit log names the session's key as the actor, as for the API.
    let audit = app
        .call(
            "GET",
            "/v1/audit?action=policy.deprecated",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
}

#[tokio::test]
async fn clone_opens_the_next_version_and_delete_removes_a_draft() {
    let (app, acme, _) = App::seeded().await;
    let id = draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let page = app.get(&format!("/policies/{id}"), &session).await;
    let body = format!("csrf={}", page.csrf());
    let cloned = app
        .post(&format!("/policies/{id}/clone"), &session, &body)
        .await;
    assert_eq!(cloned.status, StatusCode::SEE_OTHER, "{}", cloned.body);
    let clone = cloned
        .header("location")
        .trim_start_matches("/policies/")
        .to_owned();
    let (status, body) = policy(&app, &acme, &clone).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    assert_eq!(body["cloned_from"], json!(id));

    let gone = confirm_and_post(&app, &session, &clone, "delete", "").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
    assert_eq!(gone.header("location"), "/policies");
    assert_eq!(policy(&app, &acme, &clone).await.0, StatusCode::NOT_FOUND);
    // Only a draft is offered deletion, and an active policy refuses it.
    let confirm = app
        .get(
            "/policies/pol_00000000000000000000000000000000/delete",
            &session,
        )
        .await;
    assert_eq!(confirm.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn export_downloads_the_document_and_records_it() {
    let (app, acme, _) = App::seeded().await;
    let id = draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let page = app.get(&format!("/policies/{id}/export"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("content-disposition"),
        format!("attachment; filename=\"{id}.json\"")
    );
    let document: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(document["format"], "charter.policy/v1");
    assert_eq!(document["name"], "Mail");
    let audit = app
        .call("GET", "/v1/audit?action=policy.exported", Some(&acme), None)
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
}

#[tokio::test]
async fn a_read_only_key_is_offered_no_change_and_its_forged_form_changes_nothing() {
    let (app, acme, _) = App::seeded().await;
    let id = draft(&app, &acme).await;
    let reader = app.key("reader", Some("acme"), &["read"]).await;
    let session = app.signed_in(&reader).await;
    let page = app.get(&format!("/policies/{id}"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
    for change in ["activate", "delete", "clone", "deprecate", "validate"] {
        assert!(
            !page.body.contains(&format!("/policies/{id}/{change}")),
            "{change}"
        );
    }
    assert!(page.body.contains(&format!("/policies/{id}/export")));
    let confirm = app.get(&format!("/policies/{id}/activate"), &session).await;
    assert_eq!(confirm.status, StatusCode::FORBIDDEN);
    let body = format!("csrf={}", page.csrf());
    for change in ["activate", "delete", "clone", "validate"] {
        let forged = app
            .post(&format!("/policies/{id}/{change}"), &session, &body)
            .await;
        assert_eq!(
            forged.status,
            StatusCode::FORBIDDEN,
            "{change}: {}",
            forged.body
        );
    }
    let (status, body) = policy(&app, &acme, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "draft");
    let list = app.call("GET", "/v1/policies", Some(&acme), None).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "no clone was made"
    );
}

#[tokio::test]
async fn validate_from_the_page_shows_the_report_and_unlocks_activation() {
    use charter_core::engine::Outcome;
    use charter_store::{ImportedAction, ImportedRun, Principal, RunStatus};
    let (app, acme, _) = App::seeded().await;
    let at = |s: i64| jiff::Timestamp::from_second(1_795_000_000 - 86_400 + s).unwrap();
    let email = |to: &str| {
        charter_core::Action::parse(
            &json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}}),
        )
        .unwrap()
    };
    let history = [ImportedRun {
        tenant_id: "acme".into(),
        agent_id: "support".into(),
        started_at: at(0),
        ended_at: None,
        status: RunStatus::Completed,
        metadata: json!({}),
        actions: vec![
            ImportedAction {
                at: at(1),
                action: email("ann@acme.com"),
                decision: None,
            },
            ImportedAction {
                at: at(2),
                action: email("bob@gmail.com"),
                decision: None,
            },
            ImportedAction {
                at: at(3),
                action: email("eve@evil.io"),
                decision: Some(Outcome::Block),
            },
        ],
    }];
    let principal = Principal::Tenant(charter_core::TenantId::new("acme").unwrap());
    app.store
        .import_runs(&principal, &mut history.iter())
        .await
        .unwrap();
    let id = draft(&app, &acme).await;
    let session = app.signed_in(&acme).await;
    let path = format!("/policies/{id}/validate");
    let form = app.get(&path, &session).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);

    let bad = format!("csrf={}&lookback=7d&max_runs=0", form.csrf());
    let refused = app.post(&path, &session, &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("id=\"max_runs-error\""),
        "{}",
        refused.body
    );
    assert_eq!(
        app.call("GET", &format!("/v1/policies/{id}"), Some(&acme), None)
            .await
            .body["last_validation"],
        Value::Null,
        "a refused range replays and records nothing"
    );

    let body = format!("csrf={}&lookback=7d&max_runs=100", form.csrf());
    let done = app.post(&path, &session, &body).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    // 3 actions of 1 run; 2 external emails blocked, one of them already blocked.
    for (label, value) in [
        ("Actions scanned", 3),
        ("Actions blocked", 2),
        ("New blocks", 1),
        ("Already blocked", 1),
    ] {
        assert!(
            done.body
                .contains(&format!("<dt>{label}</dt><dd>{value}</dd>")),
            "{label}: {}",
            done.body
        );
    }
    assert!(
        done.body.contains("<code>bob@gmail.com</code>"),
        "{}",
        done.body
    );
    assert!(
        done.body.contains("href=\"/runs/run_"),
        "samples link to their runs"
    );

    let confirm = app.get(&format!("/policies/{id}/activate"), &session).await;
    assert!(
        confirm.body.contains("Validated at this revision"),
        "{}",
        confirm.body
    );
    let activated = confirm_and_post(&app, &session, &id, "activate", "").await;
    assert_eq!(
        activated.status,
        StatusCode::SEE_OTHER,
        "{}",
        activated.body
    );
}
