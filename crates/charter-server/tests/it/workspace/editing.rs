//! Editing a draft as a whole from the workspace, in process: its details form (name,
//! description, scope, a scope fixed once the lineage has been active), its JSON editor (the
//! path at fault of a refusal), the revision each form was opened at (a stale form changes
//! nothing), and cloning into the same scope or another.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Page, SAME};
use crate::app::{App, policy_body};

/// A draft of acme's support agent, through the API: its id.
async fn draft(app: &App, key: &str, name: &str) -> String {
    let r = app
        .call("POST", "/v1/policies", Some(key), Some(policy_body(name)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The policy `id` through the API.
async fn policy(app: &App, id: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/policies/{id}"), Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// URL-encodes a form value.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Opens the form at `path` and posts `fields` with its token and revision.
async fn submit(app: &App, session: &str, path: &str, fields: &str) -> (Page, Page) {
    let form = app.get(path, session).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let body = format!("csrf={}&{fields}", form.csrf());
    let done = app.post(path, session, &body).await;
    (form, done)
}

/// The message shown in the element with id `id` of `page`.
fn shown_at<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[at..];
    &rest[..rest.find("</p>").unwrap_or(rest.len())]
}

#[tokio::test]
async fn the_details_form_renames_rescopes_and_refuses_beside_the_field() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let id = draft(&app, &acme, "Guard").await;
    let path = format!("/policies/{id}/details");
    let form = app.get(&path, &session).await;
    assert!(form.body.contains("value=\"Guard\""), "{}", form.body);
    assert!(form.body.contains("name=\"revision\" value=\"1\""));
    // The agent scope is chosen, the agents grouped by tenant.
    assert!(form.body.contains("<optgroup label=\"acme (acme)\">"));
    assert!(form.body.contains("value=\"acme/support\" selected"));

    let (_, done) = submit(
        &app,
        &session,
        &path,
        "revision=1&name=Outbound+guard&description=no+external+mail&scope=tenant&tenant=acme&agent=",
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.header("location"), format!("/policies/{id}"));
    let stored = policy(&app, &id).await;
    assert_eq!(stored["name"], "Outbound guard");
    assert_eq!(stored["description"], "no external mail");
    assert_eq!(
        stored["scope"],
        json!({"type": "tenant", "tenant_id": "acme"})
    );
    assert_eq!(stored["revision"], 2);
    assert_eq!(
        stored["rules"],
        policy_body("x")["rules"],
        "the rules are kept"
    );

    // Refusals land beside their input and change nothing.
    for (fields, input, says) in [
        (
            "revision=2&name=++&scope=tenant&tenant=acme",
            "policy-name-error",
            "needs a name",
        ),
        (
            "revision=2&name=G&scope=agent&agent=acme%2Fghost",
            "policy-agent-error",
            "ghost",
        ),
        (
            "revision=2&name=G&scope=tenant&tenant=globex",
            "policy-scope-error",
            "within its tenant",
        ),
        ("revision=2&name=G&scope=galaxy", "policy-scope-error", ""),
    ] {
        let (_, page) = submit(&app, &session, &path, fields).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields}: {}",
            page.body
        );
        assert!(
            shown_at(&page, input).contains(says),
            "{fields}: {}",
            shown_at(&page, input)
        );
        assert_eq!(policy(&app, &id).await["revision"], 2, "{fields}");
    }

    // A form opened at an older revision is refused: the draft changed since.
    let (_, stale) = submit(
        &app,
        &session,
        &path,
        "revision=1&name=Overwritten&scope=tenant&tenant=acme",
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stale.body
    );
    assert!(
        stale.body.contains("changed since you opened this form"),
        "{}",
        stale.body
    );
    assert_eq!(policy(&app, &id).await["name"], "Outbound guard");
}

#[tokio::test]
async fn a_scope_is_fixed_once_the_lineage_has_been_active() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let id = draft(&app, &acme, "Guard").await;
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            Some(&acme),
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // An active policy offers no editing, and refuses it.
    let page = app.get(&format!("/policies/{id}"), &session).await;
    assert!(!page.body.contains(&format!("/policies/{id}/details")));
    assert!(!page.body.contains(&format!("/policies/{id}/definition")));
    let form_page = app.get(&format!("/policies/{id}/details"), &session).await;
    assert_eq!(form_page.status, StatusCode::BAD_REQUEST);
    assert!(form_page.body.contains("only a draft can be edited"));

    // Its next version's details keep the scope and say why.
    let clone = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/clone"),
            Some(&acme),
            None,
        )
        .await;
    let next = clone.body["id"].as_str().unwrap().to_owned();
    let path = format!("/policies/{next}/details");
    let form = app.get(&path, &session).await;
    assert!(!form.body.contains("name=\"scope\""), "{}", form.body);
    assert!(form.body.contains("its scope is fixed"));
    let (_, renamed) = submit(
        &app,
        &session,
        &path,
        "revision=1&name=Guard+v2&description=",
    )
    .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    assert_eq!(policy(&app, &next).await["name"], "Guard v2");
    // A forged scope is refused beside the scope, and nothing changes.
    let (_, forged) = submit(
        &app,
        &session,
        &path,
        "revision=2&name=Guard+v2&scope=tenant&tenant=acme",
    )
    .await;
    assert_eq!(
        forged.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        forged.body
    );
    assert!(forged.body.contains("fixed"), "{}", forged.body);
    let stored = policy(&app, &next).await;
    assert_eq!(stored["scope"]["type"], "agent");
    assert_eq!(stored["revision"], 2);
}

#[tokio::test]
async fn the_json_editor_replaces_the_definition_or_names_the_path_at_fault() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let id = draft(&app, &acme, "Guard").await;
    let path = format!("/policies/{id}/definition");
    let form = app.get(&path, &session).await;
    assert_eq!(form.status, StatusCode::OK);
    // The editor opens with the definition, escaped for the textarea.
    assert!(
        form.body.contains("&quot;not_ends_with&quot;")
            || form.body.contains("&#34;not_ends_with&#34;"),
        "{}",
        form.body
    );

    let mut definition = policy_body("Guard as JSON");
    definition["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "r2", "type": "cost", "max_usd": 5, "period": "day", "per": "agent"}));
    let fields = format!("revision=1&definition={}", encoded(&definition.to_string()));
    let (_, done) = submit(&app, &session, &path, &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let stored = policy(&app, &id).await;
    assert_eq!(stored["name"], "Guard as JSON");
    assert_eq!(stored["rules"][1]["type"], "cost");
    assert_eq!(stored["rules"][1]["max_usd"], json!("5.00"), "{stored}");
    assert_eq!(stored["revision"], 2);

    // A bad op: the path at fault, the text kept as typed, nothing changed.
    let mut bad = definition.clone();
    bad["rules"][0]["when"][0]["op"] = json!("sounds_like");
    let fields = format!("revision=2&definition={}", encoded(&bad.to_string()));
    let (_, refused) = submit(&app, &session, &path, &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = shown_at(&refused, "policy-definition-error");
    assert!(
        error.contains("<code>rules[0].when[0].op</code>"),
        "{error}"
    );
    assert!(refused.body.contains("sounds_like"));
    // Not JSON at all.
    let (_, refused) = submit(&app, &session, &path, "revision=2&definition=%7B%22name%22").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(shown_at(&refused, "policy-definition-error").contains("not JSON at line 1"));
    // A duplicate rule id, refused by the store's parser of the whole definition.
    let mut twice = definition.clone();
    twice["rules"][1]["id"] = json!("r1");
    let fields = format!("revision=2&definition={}", encoded(&twice.to_string()));
    let (_, refused) = submit(&app, &session, &path, &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(shown_at(&refused, "policy-definition-error").contains("rules[1]"));
    // A stale revision.
    let fields = format!("revision=1&definition={}", encoded(&definition.to_string()));
    let (_, stale) = submit(&app, &session, &path, &fields).await;
    assert_eq!(
        stale.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stale.body
    );
    assert!(shown_at(&stale, "policy-definition-error").contains("now at revision 2"));
    assert_eq!(policy(&app, &id).await["revision"], 2);
}

#[tokio::test]
async fn editing_is_refused_to_readers_forgers_and_other_tenants() {
    let (app, acme, globex) = App::seeded().await;
    let id = draft(&app, &acme, "Guard").await;
    let reader = app.key("reader", Some("acme"), &["read"]).await;
    let reading = app.signed_in(&reader).await;
    let page = app.get(&format!("/policies/{id}"), &reading).await;
    assert!(!page.body.contains("Edit details"));
    assert!(!page.body.contains("Edit as JSON"));
    assert!(!page.body.contains("Clone into"));
    for path in ["details", "definition", "clone"] {
        let forged = app
            .post(
                &format!("/policies/{id}/{path}"),
                &reading,
                &format!(
                    "csrf={}&revision=1&name=Mine",
                    app.get("/policies", &reading).await.csrf()
                ),
            )
            .await;
        assert_eq!(
            forged.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            forged.body
        );
    }
    // Another tenant's draft is not found, as a made-up id is.
    let other = app.signed_in(&globex).await;
    for path in ["details", "definition", "clone"] {
        let page = app.get(&format!("/policies/{id}/{path}"), &other).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        let made_up = app
            .get(&format!("/policies/pol_nothing/{path}"), &other)
            .await;
        assert_eq!(made_up.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Without the token: refused, nothing changed.
    let session = app.signed_in(&acme).await;
    let forged = app
        .web(
            "POST",
            &format!("/policies/{id}/details"),
            &[("cookie", &session), SAME],
            "revision=1&name=Forged",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let stored = policy(&app, &id).await;
    assert_eq!(stored["name"], "Guard");
    assert_eq!(stored["revision"], 1);
}

#[tokio::test]
async fn a_clone_goes_into_the_same_scope_or_another() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let id = draft(&app, &acme, "Guard").await;
    let source = policy(&app, &id).await;
    let path = format!("/policies/{id}/clone");
    let form = app.get(&path, &session).await;
    assert!(form.body.contains("value=\"Guard\""));
    assert!(form.body.contains("value=\"acme/support\" selected"));

    // The quick button: no fields, the next version in place.
    let quick = app
        .post(&path, &session, &format!("csrf={}", form.csrf()))
        .await;
    assert_eq!(quick.status, StatusCode::SEE_OTHER, "{}", quick.body);
    let next = policy(
        &app,
        quick.header("location").strip_prefix("/policies/").unwrap(),
    )
    .await;
    assert_eq!(next["lineage_id"], source["lineage_id"]);
    assert_eq!(next["version"], 2);

    // Into another agent's scope, renamed: a new lineage.
    let (_, done) = submit(
        &app,
        &session,
        &path,
        "name=Billing+guard&scope=agent&tenant=&agent=acme%2Fbilling",
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let moved = policy(
        &app,
        done.header("location").strip_prefix("/policies/").unwrap(),
    )
    .await;
    assert_eq!(moved["name"], "Billing guard");
    assert_eq!(
        moved["scope"],
        json!({"type": "agent", "tenant_id": "acme", "agent_id": "billing"})
    );
    assert_ne!(moved["lineage_id"], source["lineage_id"]);
    assert_eq!(moved["version"], 1);
    assert_eq!(moved["cloned_from"], json!(id));
    assert_eq!(moved["rules"], source["rules"]);

    // Another tenant's scope is refused beside the picker, and nothing is created.
    let before = app
        .call("GET", "/v1/policies", Some(&acme), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    let (_, refused) = submit(&app, &session, &path, "name=G&scope=tenant&tenant=globex").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("id=\"policy-tenant-error\"")
            || refused.body.contains("id=\"policy-scope-error\"")
    );
    let after = app
        .call("GET", "/v1/policies", Some(&acme), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}
