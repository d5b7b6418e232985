//! The Agents, Keys and Audit Log pages in process: write controls only for keys with `write`
//! (and a read-only key's forged POST refused, changing nothing), errors next to their field,
//! a key's value shown once, revocation ending sessions, tenant isolation, escaping, the audit
//! log's filters and verification.

use axum::http::StatusCode;
use serde_json::json;

use super::{Page, SAME};
use crate::app::App;

impl App {
    /// The names of `tenant`'s agents, through the API.
    async fn agent_ids(&self, tenant: &str) -> Vec<String> {
        let r = self
            .call(
                "GET",
                &format!("/v1/tenants/{tenant}/agents"),
                Some(&self.admin),
                None,
            )
            .await;
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Whether a page offers a control that changes something, besides the sidebar's own
/// (sign-out, the tenant switcher).
fn offers_writes(page: &Page) -> bool {
    page.body
        .matches("method=\"post\"")
        .count()
        .saturating_sub(page.body.matches("action=\"/sign-out\"").count())
        .saturating_sub(page.body.matches("action=\"/tenant\"").count())
        > 0
        || page.body.contains("hx-post")
}

#[tokio::test]
async fn a_read_only_key_sees_no_write_controls_and_its_forged_posts_change_nothing() {
    let (app, _, _) = App::seeded().await;
    let reader = app.key("acme reader", Some("acme"), &["read"]).await;
    let session = app.signed_in(&reader).await;
    let page = app.get("/agents", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("(read only)"));
    assert!(page.body.contains("support"), "it reads the agents");
    assert!(!offers_writes(&page), "{}", page.body);
    let token = page.csrf();

    // A POST it forged with a valid token passes the CSRF guard and is refused by the write
    // check: nothing is created.
    let forged = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=forged&name=Forged&owner="),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("lacks the `write` scope"));
    assert!(!app.agent_ids("acme").await.contains(&"forged".to_owned()));

    // A key with `write` sees the form.
    let acme = app
        .key("acme writer", Some("acme"), &["read", "write"])
        .await;
    let writer = app.signed_in(&acme).await;
    let page = app.get("/agents", &writer).await;
    assert!(offers_writes(&page));
    assert!(page.body.contains("Register agent"));
}

#[tokio::test]
async fn an_agent_is_registered_from_the_form_and_a_bad_id_is_shown_next_to_its_field() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let token = app.get("/agents", &session).await.csrf();
    let bad = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=bad%20id%21&name=Mailer&owner="),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The message sits in the id field's own error, the form keeps what was typed.
    let field = bad.body.split("id=\"agent-id-error\">").nth(1).unwrap();
    assert!(
        field.starts_with("&#39; &#39; is not allowed in an id"),
        "{field}"
    );
    assert!(bad.body.contains("value=\"Mailer\""));
    assert!(bad.body.contains("aria-invalid=\"true\""));
    assert_eq!(app.agent_ids("acme").await, ["billing", "support"]);

    // A blank name: the store's refusal, next to the name.
    let blank = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=mailer&name=%20&owner="),
        )
        .await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        blank
            .body
            .contains("id=\"agent-name-error\">must be 1 to 200")
    );
    // A duplicate id, next to the id.
    let dup = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=support&name=Again&owner="),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        dup.body
            .contains("id=\"agent-id-error\">agent support already exists")
    );
    assert_eq!(app.agent_ids("acme").await, ["billing", "support"]);

    // A good one: registered, and the audit log names the session's key.
    let done = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=mailer&name=Mailer&owner=ops%40acme.com"),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.header("location"), "/agents");
    assert_eq!(
        app.agent_ids("acme").await,
        ["billing", "mailer", "support"]
    );
    let audit = app
        .call("GET", "/v1/audit?action=agent.created", Some(&acme), None)
        .await;
    let last = audit.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"]["name"], "acme ops");
    assert_eq!(last["details"]["agent_id"], "mailer");
    let list = app.get("/agents", &session).await;
    assert!(list.body.contains("ops@acme.com"));

    // Through htmx: the list comes back in place, with the address set to /agents.
    let htmx = app
        .web(
            "POST",
            "/agents",
            &[("cookie", &session), SAME, ("hx-request", "true")],
            &format!("csrf={token}&id=greeter&name=Greeter&owner="),
        )
        .await;
    assert_eq!(htmx.status, StatusCode::OK);
    assert_eq!(htmx.header("hx-push-url"), "/agents");
    assert!(htmx.body.contains("Agent <code>greeter</code> registered"));
    assert!(!htmx.body.contains("class=\"sidebar\""));
}

#[tokio::test]
async fn a_platform_key_registers_agents_in_the_tenant_it_chose() {
    let (app, _, _) = App::seeded().await;
    let admin = app.admin.clone();
    let session = app.signed_in(&admin).await;
    let page = app.get("/agents", &session).await;
    assert!(page.body.contains("Pick a tenant"));
    assert!(!page.body.contains("Register agent"));
    let token = page.csrf();
    let refused = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=x&name=X&owner="),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("choose a tenant"));
    let chose = app
        .post(
            "/tenant",
            &session,
            &format!("csrf={token}&tenant=globex&next=/agents"),
        )
        .await;
    assert_eq!(chose.status, StatusCode::SEE_OTHER);
    let done = app
        .post(
            "/agents",
            &session,
            &format!("csrf={token}&id=x&name=X&owner="),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(app.agent_ids("globex").await, ["support", "x"]);
    assert!(!app.agent_ids("acme").await.contains(&"x".to_owned()));
}

#[tokio::test]
async fn agent_names_render_escaped_and_a_tenant_key_sees_only_its_agents() {
    let (app, acme, globex) = App::seeded().await;
    let hostile = "<script>alert(1)</script>";
    let r = app
        .call(
            "POST",
            "/v1/tenants/globex/agents",
            Some(&globex),
            Some(json!({"id": "secret-agent", "name": hostile, "owner": hostile})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let session = app.signed_in(&acme).await;
    let page = app.get("/agents", &session).await;
    assert!(page.body.contains("billing"));
    assert!(!page.body.contains("secret-agent") && !page.body.contains("globex"));
    let theirs = app.signed_in(&globex).await;
    let page = app.get("/agents", &theirs).await;
    assert!(page.body.contains("secret-agent"));
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(!page.body.contains("<script>alert(1)"));
}

impl App {
    /// The keys the platform key sees, through the API: `(id, name, revoked)`.
    async fn keys(&self) -> Vec<(String, String, bool)> {
        let r = self.call("GET", "/v1/keys", Some(&self.admin), None).await;
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["id"].as_str().unwrap().to_owned(),
                    k["name"].as_str().unwrap().to_owned(),
                    !k["revoked_at"].is_null(),
                )
            })
            .collect()
    }

    /// The id of the key named `name`.
    async fn key_id(&self, name: &str) -> String {
        self.keys()
            .await
            .into_iter()
            .find(|(_, n, _)| n == name)
            .unwrap()
            .0
    }
}

/// The text of the element with id `id` (up to its closing tag).
fn text_of<'a>(page: &'a Page, id: &str) -> &'a str {
    let start = page.body.find(&format!("id=\"{id}\"")).unwrap();
    let rest = &page.body[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    &rest[open..open + close]
}

#[tokio::test]
async fn a_created_key_is_shown_once_and_never_again() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let list = app.get("/keys", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("acme ops") && list.body.contains("(this session)"));
    let token = list.csrf();
    let created = app
        .post(
            "/keys",
            &session,
            &format!("csrf={token}&name=ci+runner&scope_read=on&scope_execute=on"),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let value = text_of(&created, "new-key-value").to_owned();
    assert!(value.starts_with("chk_"), "{value}");
    assert!(created.body.contains("data-copy=\"new-key-value\""));
    assert!(created.body.contains("will not be shown again"));
    assert_eq!(
        created.header("cache-control"),
        "no-store",
        "no cache keeps it"
    );
    // The value works, for the tenant of the key that made it, with the scopes ticked.
    let r = app.call("GET", "/v1/keys", Some(&value), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let mine = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci runner")
        .unwrap()
        .clone();
    assert_eq!(mine["tenant_id"], "acme");
    assert_eq!(mine["scopes"], json!(["read", "execute"]));
    // Never again: not on the list, not in its partial.
    for partial in [false, true] {
        let mut headers = vec![("cookie", session.as_str())];
        if partial {
            headers.push(("hx-request", "true"));
        }
        let list = app.web("GET", "/keys", &headers, "").await;
        assert!(list.body.contains("ci runner"));
        assert!(!list.body.contains(&value));
        assert!(
            list.body
                .contains(&format!("…{}", &value[value.len() - 4..]))
        );
    }

    // A key grants only what it holds; the refusal keeps the form as it was.
    let reader = app
        .key("acme reader", Some("acme"), &["read", "write"])
        .await;
    let limited = app.signed_in(&reader).await;
    let token = app.get("/keys", &limited).await.csrf();
    let refused = app
        .post(
            "/keys",
            &limited,
            &format!("csrf={token}&name=escalate&scope_read=on&scope_execute=on"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("cannot grant the `execute` scope"));
    assert!(refused.body.contains("value=\"escalate\""));
    let none = app
        .post("/keys", &limited, &format!("csrf={token}&name=empty"))
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        none.body
            .contains("id=\"key-scopes-error\">a key needs at least one scope")
    );
    assert!(
        !app.keys()
            .await
            .iter()
            .any(|(_, n, _)| n == "escalate" || n == "empty")
    );
}

#[tokio::test]
async fn revoking_asks_first_and_ends_the_keys_sessions() {
    let (app, acme, _) = App::seeded().await;
    let other = app.key("acme bot", Some("acme"), &["read"]).await;
    let bot_session = app.signed_in(&other).await;
    let session = app.signed_in(&acme).await;
    let bot = app.key_id("acme bot").await;
    let list = app.get("/keys", &session).await;
    assert!(list.body.contains(&format!("href=\"/keys/{bot}/revoke\"")));
    // The confirmation changes nothing.
    let confirm = app.get(&format!("/keys/{bot}/revoke"), &session).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Revoke “acme bot”?"));
    assert!(!app.keys().await.iter().any(|(_, _, revoked)| *revoked));
    assert_eq!(
        app.get("/policies", &bot_session).await.status,
        StatusCode::OK
    );
    let done = app
        .post(
            &format!("/keys/{bot}/revoke"),
            &session,
            &format!("csrf={}", confirm.csrf()),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.header("location"), "/keys");
    assert!(
        app.keys()
            .await
            .iter()
            .any(|(id, _, revoked)| *id == bot && *revoked)
    );
    // The revoked key's session is over; the list shows it revoked, with no button.
    assert_eq!(
        app.get("/policies", &bot_session).await.header("location"),
        "/sign-in"
    );
    let list = app.get("/keys", &session).await;
    assert!(list.body.contains("revoked"));
    assert!(!list.body.contains(&format!("href=\"/keys/{bot}/revoke\"")));

    // Revoking the session's own key signs the visitor out.
    let own = app.key_id("acme ops").await;
    let confirm = app.get(&format!("/keys/{own}/revoke"), &session).await;
    assert!(confirm.body.contains("revoking it signs you out"));
    let done = app
        .post(
            &format!("/keys/{own}/revoke"),
            &session,
            &format!("csrf={}", confirm.csrf()),
        )
        .await;
    assert_eq!(done.header("location"), "/sign-in");
    assert_eq!(
        app.get("/keys", &session).await.header("location"),
        "/sign-in"
    );
}

#[tokio::test]
async fn a_read_only_key_cannot_create_or_revoke_keys() {
    let (app, _, _) = App::seeded().await;
    let reader = app.key("acme reader", Some("acme"), &["read"]).await;
    let session = app.signed_in(&reader).await;
    let page = app.get("/keys", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!offers_writes(&page), "{}", page.body);
    assert!(!page.body.contains("/revoke"));
    let token = page.csrf();
    let target = app.key_id("acme ops").await;
    let before = app.keys().await;
    for (path, body) in [
        (
            "/keys".to_owned(),
            format!("csrf={token}&name=mine&scope_read=on"),
        ),
        (format!("/keys/{target}/revoke"), format!("csrf={token}")),
    ] {
        let forged = app.post(&path, &session, &body).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}");
        assert!(forged.body.contains("lacks the `write` scope"));
    }
    let confirm = app.get(&format!("/keys/{target}/revoke"), &session).await;
    assert_eq!(confirm.status, StatusCode::FORBIDDEN);
    assert_eq!(app.keys().await, before, "nothing changed");
}

#[tokio::test]
async fn a_tenant_key_never_sees_another_tenants_keys() {
    let (app, acme, _) = App::seeded().await;
    let hostile = "<script>alert(1)</script>";
    let r = app
        .call(
            "POST",
            "/v1/keys",
            Some(&app.admin),
            Some(json!({"name": hostile, "tenant_id": "acme", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let session = app.signed_in(&acme).await;
    let page = app.get("/keys", &session).await;
    assert!(!page.body.contains("globex") && !page.body.contains(">admin<"));
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(!page.body.contains("<script>alert(1)"));
    // Another tenant's key: not found, the same as a made-up id, and not revoked.
    let theirs = app.key_id("globex ops").await;
    let token = page.csrf();
    for id in [theirs.as_str(), "key_made_up"] {
        let confirm = app.get(&format!("/keys/{id}/revoke"), &session).await;
        assert_eq!(confirm.status, StatusCode::NOT_FOUND, "{id}");
        let post = app
            .post(
                &format!("/keys/{id}/revoke"),
                &session,
                &format!("csrf={token}"),
            )
            .await;
        assert_eq!(post.status, StatusCode::NOT_FOUND, "{id}");
        assert!(!post.body.contains("globex"));
    }
    assert!(!app.keys().await.iter().any(|(_, _, revoked)| *revoked));
}

#[tokio::test]
async fn the_audit_log_filters_links_and_shows_an_edit_field_by_field() {
    let (app, acme, globex) = App::seeded().await;
    let hostile = "<script>alert(1)</script>";
    let r = app
        .call(
            "POST",
            "/v1/policies",
            Some(&acme),
            Some(crate::app::policy_body("mail")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (id, lineage) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["lineage_id"].as_str().unwrap().to_owned(),
    );
    let r = app
        .call(
            "PUT",
            &format!("/v1/policies/{id}"),
            Some(&acme),
            Some(json!({"name": hostile})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .call(
            "POST",
            "/v1/tenants/globex/agents",
            Some(&globex),
            Some(json!({"id": "hidden-agent", "name": "Hidden"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let session = app.signed_in(&acme).await;
    let all = app.get("/audit", &session).await;
    assert_eq!(all.status, StatusCode::OK);
    for action in [
        "agent.created",
        "key.created",
        "policy.created",
        "policy.updated",
    ] {
        assert!(all.body.contains(&format!(">{action}</span>")), "{action}");
    }
    // Never another tenant's entries (nor the platform's).
    assert!(!all.body.contains("hidden-agent") && !all.body.contains("globex"));
    assert!(!all.body.contains(">tenant.created</span>"));
    // The edit: its name before and after, escaped; links to the policy and its lineage.
    assert!(
        all.body
            .contains("<th scope=\"row\">name</th><td data-label=\"Before\"><pre>mail</pre></td>")
    );
    assert!(
        all.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(!all.body.contains("<script>alert(1)"));
    assert!(all.body.contains(&format!("href=\"/policies/{id}\"")));
    assert!(
        all.body
            .contains(&format!("href=\"/audit?lineage_id={lineage}\""))
    );

    // Filters narrow the entries and stay in the URL (the form shows them).
    let updated = app.get("/audit?action=policy.updated", &session).await;
    assert_eq!(updated.body.matches("class=\"entry\"").count(), 1);
    assert!(
        updated
            .body
            .contains("<option value=\"policy.updated\" selected>")
    );
    let of_policy = app.get(&format!("/audit?policy_id={id}"), &session).await;
    assert_eq!(of_policy.body.matches("class=\"entry\"").count(), 2);
    let of_lineage = app
        .get(&format!("/audit?lineage_id={lineage}"), &session)
        .await;
    assert_eq!(of_lineage.body.matches("class=\"entry\"").count(), 2);
    let acme_key = app.key_id("acme ops").await;
    let by_actor = app.get(&format!("/audit?actor={acme_key}"), &session).await;
    assert_eq!(by_actor.body.matches("class=\"entry\"").count(), 2);
    let later = app.get("/audit?since=2030-01-01", &session).await;
    assert!(later.body.contains("No entries match these filters"));
    let earlier = app.get("/audit?since=2020-01-01T00:00", &session).await;
    assert_eq!(
        earlier.body.matches("class=\"entry\"").count(),
        all.body.matches("class=\"entry\"").count()
    );
    let bad = app.get("/audit?since=yesterday", &session).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // A platform key reads every chain, or the chosen tenant's.
    let admin = app.admin.clone();
    let platform = app.signed_in(&admin).await;
    let every = app.get("/audit", &platform).await;
    assert!(every.body.contains("hidden-agent") && every.body.contains(">tenant.created</span>"));
}

#[tokio::test]
async fn the_audit_log_pages_with_the_stores_cursor() {
    let (app, acme, _) = App::seeded().await;
    for n in 0..55 {
        let r = app
            .call(
                "POST",
                "/v1/tenants/acme/agents",
                Some(&acme),
                Some(json!({"id": format!("a{n}"), "name": format!("agent {n}")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let session = app.signed_in(&acme).await;
    let first = app.get("/audit?action=agent.created", &session).await;
    assert_eq!(first.body.matches("class=\"entry\"").count(), 50);
    let next = first
        .body
        .split("<a href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|href| href.contains("cursor="))
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        next.starts_with("/audit?action=agent.created&cursor="),
        "{next}"
    );
    let second = app.get(&next, &session).await;
    // Two seeded agents and 55 made here: 57 in all.
    assert_eq!(second.body.matches("class=\"entry\"").count(), 7);
    assert!(second.body.contains("First page"));
    assert!(!second.body.contains("Next page"));
}

#[tokio::test]
async fn verify_reports_a_good_chain() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let list = app.get("/audit", &session).await;
    assert!(list.body.contains("href=\"/audit/verify\""));
    let page = app.get("/audit/verify", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("The chain is intact"));
    let api = app.call("GET", "/v1/audit/verify", Some(&acme), None).await;
    let n = api.body["entries"].as_u64().unwrap();
    assert!(
        page.body.contains(&format!("{n} entries checked")),
        "{}",
        page.body
    );
    let admin = app.admin.clone();
    let platform = app.signed_in(&admin).await;
    let page = app.get("/audit/verify", &platform).await;
    assert!(page.body.contains("The chain is intact") && page.body.contains("every audit chain"));
}
