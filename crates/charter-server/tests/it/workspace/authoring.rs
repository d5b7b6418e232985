//! Authoring from the workspace in process: a new draft from the form (each scope, errors
//! beside their fields), an import from an uploaded file (one document or an array, all or
//! nothing, errors with their path), a read-only key offered neither and refused when it forges
//! them, a tenant key kept in its tenant, and a policy's version chain.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Page;
use super::SAME;
use crate::app::{App, policy_body};

/// The policies `key` sees, through the API.
async fn policies(app: &App, key: &str) -> Vec<Value> {
    let r = app.call("GET", "/v1/policies", Some(key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Opens the new-policy form and posts `fields` (URL-encoded, without the token).
async fn post_new(app: &App, session: &str, fields: &str) -> Page {
    let form = app
        .web("GET", "/policies/new", &[("cookie", session)], "")
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let body = format!("csrf={}&{fields}", form.csrf());
    app.web("POST", "/policies/new", &[("cookie", session), SAME], &body)
        .await
}

/// Uploads `file` to the import form as a browser does (multipart, the token a field).
async fn upload(app: &App, session: &str, file: &str) -> Page {
    let form = app
        .web("GET", "/policies/import", &[("cookie", session)], "")
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let body = multipart(&form.csrf(), file);
    app.web(
        "POST",
        "/policies/import",
        &[
            ("cookie", session),
            SAME,
            ("content-type", "multipart/form-data; boundary=----charter"),
        ],
        &body,
    )
    .await
}

fn multipart(csrf: &str, file: &str) -> String {
    format!(
        "------charter\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         ------charter\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.json\"\r\n\
         Content-Type: application/json\r\n\r\n{file}\r\n------charter--\r\n"
    )
}

/// A portable document of a new draft of acme, exported through the API (the draft deleted,
/// so the workspace starts empty).
async fn document(app: &App, key: &str, name: &str) -> Value {
    let r = app
        .call("POST", "/v1/policies", Some(key), Some(policy_body(name)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let doc = app
        .call("GET", &format!("/v1/policies/{id}/export"), Some(key), None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    let gone = app
        .call("DELETE", &format!("/v1/policies/{id}"), Some(key), None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{:?}", gone.body);
    doc.body
}

/// A key of acme with `read` only.
async fn reader(app: &App) -> String {
    let r = app
        .call(
            "POST",
            "/v1/keys",
            Some(&app.admin),
            Some(json!({"name": "reader", "tenant_id": "acme", "scopes": ["read"]})),
        )
        .await;
    r.body["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_form_creates_an_empty_draft_of_each_scope_and_opens_it() {
    let (app, acme, _) = App::seeded().await;
    let admin = app.signed_in(&app.admin.clone()).await;
    let list = app.web("GET", "/policies", &[("cookie", &admin)], "").await;
    assert!(
        list.body.contains("href=\"/policies/new\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("href=\"/policies/import\""));
    let form = app
        .web("GET", "/policies/new", &[("cookie", &admin)], "")
        .await;
    // The agent picker lists every tenant's agents as tenant/agent.
    for pair in ["acme/support", "acme/billing", "globex/support"] {
        assert!(form.body.contains(&format!("value=\"{pair}\"")), "{pair}");
    }
    for (fields, scope) in [
        (
            "name=Everywhere&description=all+runs&scope=platform&tenant=&agent=",
            json!({"type": "platform"}),
        ),
        (
            "name=Acme+wide&scope=tenant&tenant=acme&agent=",
            json!({"type": "tenant", "tenant_id": "acme"}),
        ),
        (
            "name=Support+only&scope=agent&tenant=&agent=acme%2Fsupport",
            json!({"type": "agent", "tenant_id": "acme", "agent_id": "support"}),
        ),
    ] {
        let done = post_new(&app, &admin, fields).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let to = done.header("location").to_owned();
        let id = to.strip_prefix("/policies/").unwrap();
        let r = app
            .call("GET", &format!("/v1/policies/{id}"), Some(&app.admin), None)
            .await;
        assert_eq!(r.body["status"], "draft");
        assert_eq!(r.body["scope"], scope);
        assert_eq!(r.body["rules"], json!([]));
        let page = app.web("GET", &to, &[("cookie", &admin)], "").await;
        assert_eq!(page.status, StatusCode::OK);
    }
    assert_eq!(
        policies(&app, &app.admin).await[0]["description"],
        "all runs"
    );
    // A tenant key authors in its own tenant; htmx is sent on with HX-Redirect.
    let session = app.signed_in(&acme).await;
    let form = app
        .web("GET", "/policies/new", &[("cookie", &session)], "")
        .await;
    assert!(!form.body.contains("value=\"platform\""));
    assert!(!form.body.contains("globex"));
    let body = format!(
        "csrf={}&name=Mine&scope=tenant&tenant=acme&agent=",
        form.csrf()
    );
    let done = app
        .web(
            "POST",
            "/policies/new",
            &[("cookie", &session), SAME, ("hx-request", "true")],
            &body,
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.header("hx-redirect").starts_with("/policies/pol_"));
    assert_eq!(policies(&app, &acme).await.len(), 3);
}

#[tokio::test]
async fn a_refused_field_is_shown_beside_it_and_nothing_is_created() {
    let (app, _, _) = App::seeded().await;
    let admin = app.signed_in(&app.admin.clone()).await;
    for (fields, field, says) in [
        (
            "name=++&scope=platform",
            "policy-name-error",
            "needs a name",
        ),
        (
            "name=%3Cb%3EBold%3C%2Fb%3E&scope=agent&agent=acme%2Fghost",
            "policy-agent-error",
            "no agent `ghost`",
        ),
        (
            "name=A&scope=agent&agent=acme%2Fbad+agent",
            "policy-agent-error",
            "",
        ),
        ("name=A&scope=tenant&tenant=", "policy-tenant-error", ""),
        (
            "name=A&scope=tenant&tenant=nowhere",
            "policy-tenant-error",
            "no tenant",
        ),
        ("name=A&scope=galaxy", "policy-scope-error", ""),
    ] {
        let page = post_new(&app, &admin, fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields}");
        let at = page
            .body
            .find(&format!("id=\"{field}\""))
            .unwrap_or_else(|| panic!("{fields}: {}", page.body));
        assert!(page.body[at..].contains(says), "{fields}");
    }
    // The form comes back as typed, escaped.
    let page = post_new(
        &app,
        &admin,
        "name=%3Cb%3EBold%3C%2Fb%3E&scope=agent&agent=acme%2Fghost",
    )
    .await;
    assert!(
        page.body.contains("value=\"&#60;b&#62;Bold&#60;/b&#62;\"")
            || page.body.contains("&lt;b&gt;Bold"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>Bold"));
    assert!(policies(&app, &app.admin).await.is_empty());
}

#[tokio::test]
async fn a_read_only_key_is_offered_neither_and_its_forged_posts_change_nothing() {
    let (app, acme, _) = App::seeded().await;
    let doc = document(&app, &acme, "Mail").await;
    let reader = reader(&app).await;
    let session = app.signed_in(&reader).await;
    let list = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("/policies/new"));
    assert!(!list.body.contains("/policies/import"));
    for path in ["/policies/new", "/policies/import"] {
        let page = app.web("GET", path, &[("cookie", &session)], "").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Forged with the session's valid token, taken from a page it may see.
    let csrf = list.csrf();
    let body = format!("csrf={csrf}&name=Forged&scope=tenant&tenant=acme");
    let forged = app
        .web(
            "POST",
            "/policies/new",
            &[("cookie", &session), SAME],
            &body,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let forged = app
        .web(
            "POST",
            "/policies/import",
            &[
                ("cookie", &session),
                SAME,
                ("content-type", "multipart/form-data; boundary=----charter"),
            ],
            &multipart(&csrf, &doc.to_string()),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(policies(&app, &acme).await.is_empty());
    // Without the token, the guard refuses the upload before any handler.
    let writer = app.signed_in(&acme).await;
    let no_token = app
        .web(
            "POST",
            "/policies/import",
            &[
                ("cookie", &writer),
                SAME,
                ("content-type", "multipart/form-data; boundary=----charter"),
            ],
            &multipart("0", &doc.to_string()),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(policies(&app, &acme).await.is_empty());
}

#[tokio::test]
async fn an_uploaded_file_of_one_document_or_many_becomes_drafts() {
    let (app, acme, _) = App::seeded().await;
    let doc = document(&app, &acme, "Mail <guard>").await;
    let session = app.signed_in(&acme).await;
    let one = upload(&app, &session, &doc.to_string()).await;
    assert_eq!(one.status, StatusCode::CREATED, "{}", one.body);
    assert!(one.body.contains("Imported 1 draft"));
    assert!(
        one.body.contains("Mail &#60;guard&#62;") || one.body.contains("Mail &lt;guard&gt;"),
        "{}",
        one.body
    );
    assert!(!one.body.contains("Mail <guard>"));
    let found = policies(&app, &acme).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["status"], "draft");
    let id = found[0]["id"].as_str().unwrap();
    assert!(one.body.contains(&format!("href=\"/policies/{id}\"")));

    let mut second = doc.clone();
    second["name"] = json!("Second");
    let many = upload(&app, &session, &json!([doc, second]).to_string()).await;
    assert_eq!(many.status, StatusCode::CREATED, "{}", many.body);
    assert!(many.body.contains("Imported 2 drafts"));
    assert_eq!(policies(&app, &acme).await.len(), 3);
}

#[tokio::test]
async fn a_refused_document_names_its_path_and_nothing_is_imported() {
    let (app, acme, _) = App::seeded().await;
    let doc = document(&app, &acme, "Mail").await;
    let session = app.signed_in(&acme).await;
    let mut bad = doc.clone();
    bad["rules"][0]["when"][0]["op"] = json!("nearly");
    let page = upload(&app, &session, &json!([doc, bad]).to_string()).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("Nothing was imported"));
    assert!(
        page.body.contains("[1].rules[0].when[0].op"),
        "{}",
        page.body
    );
    // Past the body limit (1 MiB), the upload is refused before it is read whole.
    let huge = format!("[{}]", " ".repeat(1 << 20));
    let page = upload(&app, &session, &huge).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("larger than"), "{}", page.body);
    for file in ["not json", "[]", ""] {
        let page = upload(&app, &session, file).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{file}");
        assert!(page.body.contains("Nothing was imported"), "{file}");
    }
    assert!(policies(&app, &acme).await.is_empty());
}

#[tokio::test]
async fn a_tenant_key_neither_creates_in_nor_imports_into_another_tenant() {
    let (app, acme, globex) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    for fields in [
        "name=X&scope=tenant&tenant=globex",
        "name=X&scope=agent&agent=globex%2Fsupport",
        "name=X&scope=platform",
    ] {
        let page = post_new(&app, &session, fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields}");
        // Refused beside a field, and the pickers offer nothing of globex.
        assert!(page.body.contains("class=\"field-error\""), "{fields}");
        assert!(!page.body.contains("(globex)"), "{fields}");
    }
    // A platform document is refused (only platform keys author them), and nothing imported.
    let mut platform = document(&app, &app.admin.clone(), "Everyone").await;
    platform["scope"] = json!({"type": "platform"});
    let page = upload(&app, &session, &platform.to_string()).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("only platform keys"), "{}", page.body);
    assert!(policies(&app, &acme).await.is_empty());
    // A document of globex lands in acme, the key's own tenant, as the API rehomes it.
    let mut doc = document(&app, &app.admin.clone(), "Theirs").await;
    doc["scope"] = json!({"type": "tenant", "tenant_id": "globex"});
    let page = upload(&app, &session, &doc.to_string()).await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    assert!(page.body.contains("Tenant acme"));
    assert!(policies(&app, &globex).await.is_empty());
    let mine = policies(&app, &acme).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0]["scope"],
        json!({"type": "tenant", "tenant_id": "acme"})
    );
}

#[tokio::test]
async fn a_policys_page_shows_its_version_chain_oldest_first_with_who_and_when() {
    let (app, acme, _) = App::seeded().await;
    let post = |path: String, body: Value| {
        let app = &app;
        let acme = &acme;
        async move {
            let r = app.call("POST", &path, Some(acme), Some(body)).await;
            assert!(r.status.is_success(), "{path}: {:?}", r.body);
            r.body
        }
    };
    let v1 = post("/v1/policies".into(), policy_body("Mail <v1>")).await;
    let v1 = v1["id"].as_str().unwrap().to_owned();
    post(
        format!("/v1/policies/{v1}/activate"),
        json!({"force": true}),
    )
    .await;
    let v2 = post(format!("/v1/policies/{v1}/clone"), json!({})).await;
    let v2 = v2["id"].as_str().unwrap().to_owned();
    let active = post(
        format!("/v1/policies/{v2}/activate"),
        json!({"force": true, "supersede": true}),
    )
    .await;
    let v3 = post(format!("/v1/policies/{v2}/clone"), json!({})).await;
    let v3 = v3["id"].as_str().unwrap().to_owned();
    let first = app
        .call("GET", &format!("/v1/policies/{v1}"), Some(&acme), None)
        .await
        .body;
    assert_eq!(first["status"], "deprecated");
    let key_id = active["activated_by"].as_str().unwrap();

    let session = app.signed_in(&acme).await;
    let page = app
        .web(
            "GET",
            &format!("/policies/{v2}"),
            &[("cookie", &session)],
            "",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let chain = &page.body[page.body.find("class=\"list versions\"").unwrap()..];
    let chain = &chain[..chain.find("</table>").unwrap()];
    let rows: Vec<&str> = chain.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 3, "{chain}");
    assert!(rows[0].contains(&format!("href=\"/policies/{v1}\"")));
    assert!(rows[0].contains("badge-deprecated"));
    // v1: activated, then deprecated when v2 superseded it, both by the acme key (its name,
    // and its id linked to its audit entries).
    let by = format!("by acme ops <a href=\"/audit?actor={key_id}\"");
    assert_eq!(rows[0].matches(&by).count(), 2, "{}", rows[0]);
    assert!(rows[1].contains("aria-current=\"page\""));
    assert!(rows[1].contains("<strong>v2</strong>"));
    assert!(rows[1].contains("badge-active"));
    assert!(rows[2].contains(&format!("href=\"/policies/{v3}\"")));
    assert!(rows[2].contains("badge-draft"));
    // The draft is neither activated nor deprecated.
    assert_eq!(rows[2].matches("<span class=\"muted\">—</span>").count(), 2);
    // The name is escaped in the heading.
    assert!(page.body.contains("Mail &#60;v1&#62;") || page.body.contains("Mail &lt;v1&gt;"));
    assert!(!page.body.contains("Mail <v1>"));
}
