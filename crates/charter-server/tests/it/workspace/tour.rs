//! The workspace walked whole on each backend: every page answers over real data, and the
//! operator's changes made by form (a draft, a rule, its details, its JSON, validation,
//! activation, a clone into another scope, a key made and revoked) land in the store. The pages
//! read and write through the store's own operations, so this is where a query only the
//! workspace makes (sessions, the Monitor's filters, the Runs filters, the Audit Log's) meets
//! PostgreSQL as well as SQLite.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Page;
use crate::app::App;

/// URL-encodes `fields` as a form body.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the hidden field `name` of `page`'s first form that has one.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {}", page.body))
        + marker.len();
    let end = page.body[at..].find('"').unwrap();
    page.body[at..at + end].to_owned()
}

/// Opens `path`, then posts `fields` with the page's token (and its revision, when it has one).
async fn submit(app: &App, session: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    let page = app.get(path, session).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    let csrf = page.csrf();
    let revision = page
        .body
        .contains("name=\"revision\"")
        .then(|| hidden(&page, "revision"));
    let mut all = vec![("csrf", csrf.as_str())];
    if let Some(revision) = &revision {
        all.push(("revision", revision.as_str()));
    }
    all.extend_from_slice(fields);
    let to = path.split('?').next().unwrap_or(path);
    app.post(to, session, &form(&all)).await
}

/// The policy `id` through the API.
async fn policy(app: &App, id: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/policies/{id}"), Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// The id a redirect to `/policies/{id}` names.
fn opened(page: &Page) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page.header("location")
        .strip_prefix("/policies/")
        .unwrap_or_else(|| panic!("not a policy: {}", page.header("location")))
        .to_owned()
}

async fn tour(app: App, acme: String) {
    let session = app.signed_in(&acme).await;

    // A draft by form, a rule by form, its details and its JSON.
    let id = opened(
        &submit(
            &app,
            &session,
            "/policies/new",
            &[
                ("name", "Tour guard"),
                ("description", ""),
                ("scope", "agent"),
                ("tenant", ""),
                ("agent", "acme/support"),
            ],
        )
        .await,
    );
    let added = submit(
        &app,
        &session,
        &format!("/policies/{id}/rules/new?type=tool"),
        &[
            ("type", "tool"),
            ("id", "r1"),
            ("effect", "deny"),
            ("tools", "*.send_email"),
            ("when[0].arg", "to"),
            ("when[0].op", "not_ends_with"),
            ("when[0].value", "@acme.com"),
        ],
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let renamed = submit(
        &app,
        &session,
        &format!("/policies/{id}/details"),
        &[
            ("name", "Tour guard, reviewed"),
            ("description", "external email"),
            ("scope", "agent"),
            ("tenant", ""),
            ("agent", "acme/support"),
        ],
    )
    .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    let mut definition = policy(&app, &id).await;
    let definition = json!({
        "name": definition["name"].take(),
        "description": definition["description"].take(),
        "scope": definition["scope"].take(),
        "rules": [definition["rules"][0].take(),
                  {"id": "r2", "type": "rate", "limit": 5, "window": "1h", "per": "agent"}],
    });
    let text = definition.to_string();
    let saved = submit(
        &app,
        &session,
        &format!("/policies/{id}/definition"),
        &[("definition", text.as_str())],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = policy(&app, &id).await;
    assert_eq!(stored["name"], "Tour guard, reviewed");
    assert_eq!(stored["rules"][1]["type"], "rate");
    assert_eq!(stored["revision"], 4);

    // Validate, activate, then a block by a check of the agent's run.
    let validated = submit(
        &app,
        &session,
        &format!("/policies/{id}/validate"),
        &[("lookback", "7d"), ("max_runs", "")],
    )
    .await;
    assert_eq!(validated.status, StatusCode::OK, "{}", validated.body);
    let activated = submit(&app, &session, &format!("/policies/{id}/activate"), &[]).await;
    assert_eq!(
        activated.status,
        StatusCode::SEE_OTHER,
        "{}",
        activated.body
    );
    assert_eq!(policy(&app, &id).await["status"], "active");
    let run = app
        .call(
            "POST",
            "/v1/runs",
            Some(&acme),
            Some(json!({"agent_id": "support"})),
        )
        .await;
    let run_id = run.body["id"].as_str().unwrap().to_owned();
    let check = app
        .call(
            "POST",
            &format!("/v1/runs/{run_id}/check"),
            Some(&acme),
            Some(json!({"kind": "tool_call", "tool": "gmail.send_email",
                        "args": {"to": "bob@example.org"}})),
        )
        .await;
    assert_eq!(check.body["decision"], "block", "{:?}", check.body);

    // A clone into another agent's scope.
    let moved = opened(
        &submit(
            &app,
            &session,
            &format!("/policies/{id}/clone"),
            &[
                ("name", "Tour guard for billing"),
                ("scope", "agent"),
                ("tenant", ""),
                ("agent", "acme/billing"),
            ],
        )
        .await,
    );
    assert_eq!(
        policy(&app, &moved).await["scope"],
        json!({"type": "agent", "tenant_id": "acme", "agent_id": "billing"})
    );

    // A key made and revoked from the Keys page.
    let made = submit(
        &app,
        &session,
        "/keys",
        &[("name", "tour key"), ("scope_read", "on")],
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert!(made.body.contains("chk_"), "its value, shown once");
    let keys = app.get("/keys", &session).await;
    let row = &keys.body[keys.body.find("tour key").unwrap()..];
    let at = row.find("/keys/key_").unwrap() + 1;
    let end = at + row[at..].find('"').unwrap();
    let revoke = format!("/{}", &row[at..end]);
    assert!(revoke.ends_with("/revoke"), "{revoke}");
    let revoked = submit(&app, &session, &revoke, &[]).await;
    assert!(revoked.status.is_redirection(), "{}", revoked.body);
    assert!(app.get("/keys", &session).await.body.contains("revoked"));

    // Every page over this data.
    let lineage = policy(&app, &id).await["lineage_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, shows) in [
        ("/policies".to_owned(), "Tour guard, reviewed"),
        (
            "/policies?status=active&q=tour&scope=agent".to_owned(),
            "Tour guard, reviewed",
        ),
        (format!("/policies/{id}"), "does not end with"),
        (format!("/policies/{moved}"), "Tour guard for billing"),
        (format!("/policies/{moved}/rules/r1/edit"), "@acme.com"),
        ("/monitor".to_owned(), "bob@example.org"),
        (
            format!("/monitor?policy_id={id}&decision=block&rule_type=tool&range=24h"),
            "bob@example.org",
        ),
        (
            format!("/monitor?lineage_id={lineage}&agent_id=support"),
            "bob@example.org",
        ),
        ("/runs".to_owned(), run_id.as_str()),
        (
            "/runs?agent=support&status=running".to_owned(),
            run_id.as_str(),
        ),
        (format!("/runs/{run_id}"), "gmail.send_email"),
        ("/audit".to_owned(), "policy.activated"),
        (
            format!("/audit?lineage_id={lineage}&action=policy.updated"),
            "policy.updated",
        ),
        ("/audit/verify".to_owned(), "intact"),
        ("/agents".to_owned(), "billing"),
        ("/keys".to_owned(), "tour key"),
        ("/docs".to_owned(), "POST /v1/policies"),
    ] {
        let page = app.get(&path, &session).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(
            page.body.contains(shows),
            "{path} shows {shows}: {}",
            page.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_walked_whole_on_sqlite() {
    let (app, acme, _) = App::seeded().await;
    tour(app, acme).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_walked_whole_on_postgres() {
    if let Some((app, schema)) = App::postgres().await {
        let (app, acme, _) = app.seed().await;
        tour(app, acme).await;
        schema.drop().await;
    }
}
