//! The web workspace in process: sign-in and sign-out, the session cookie, CSRF refusals that
//! change nothing, sessions ended by revocation and expiry, tenant isolation of pages, escaping,
//! the security headers, and page versus partial.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use jiff::Timestamp;
use serde_json::json;
use tower::ServiceExt as _;

use crate::app::{App, policy_body};

/// The Agents, Keys and Audit Log pages.
mod accounts;
mod authoring;
/// A draft edited as a whole (details, JSON) and cloned.
mod editing;
mod lifecycle;
/// The lists' pages.
mod paging;
/// The API reference at `/docs`.
mod reference;
/// A draft's rules: add, edit, remove, reorder.
mod rules;
/// Every page and the main forms, on SQLite and on PostgreSQL.
mod tour;

/// An answer of the workspace.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The `Set-Cookie` line for cookie `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the hidden `csrf` field of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..at + 64].to_owned()
    }
}

/// The value a `Set-Cookie` line sets.
fn cookie_value(line: &str) -> &str {
    line.split(';').next().unwrap().split_once('=').unwrap().1
}

/// The header a browser sends with a form of this origin.
const SAME: (&str, &str) = ("sec-fetch-site", "same-origin");

impl App {
    /// A new key of `tenant` (`None`: platform) named `name` with `scopes`: its value.
    async fn key(&self, name: &str, tenant: Option<&str>, scopes: &[&str]) -> String {
        let r = self
            .call(
                "POST",
                "/v1/keys",
                Some(&self.admin),
                Some(json!({"name": name, "tenant_id": tenant, "scopes": scopes})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["key"].as_str().unwrap().to_owned()
    }

    /// `GET path` with `session`.
    async fn get(&self, path: &str, session: &str) -> Page {
        self.web("GET", path, &[("cookie", session)], "").await
    }

    /// A same-origin form `POST path` with `session` and `body`.
    async fn post(&self, path: &str, session: &str, body: &str) -> Page {
        self.web("POST", path, &[("cookie", session), SAME], body)
            .await
    }
}

impl App {
    pub(crate) async fn web(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Page {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if method == "POST" && !headers.iter().any(|(name, _)| *name == "content-type") {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Signs in with `key` as a browser does; the session cookie (`charter_session=...`) and
    /// the answer.
    async fn sign_in(&self, key: &str, extra: &[(&str, &str)]) -> (Option<String>, Page) {
        let form = self.web("GET", "/sign-in", &[], "").await;
        assert_eq!(form.status, StatusCode::OK);
        let pre = form.set_cookie("charter_sign_in").unwrap();
        let cookie = format!("charter_sign_in={}", cookie_value(&pre));
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        if !extra.iter().any(|(name, _)| *name == "sec-fetch-site") {
            headers.push(("sec-fetch-site", "same-origin"));
        }
        let body = format!("key={key}&csrf={}", form.csrf());
        let page = self.web("POST", "/sign-in", &headers, &body).await;
        let session = page
            .set_cookie("charter_session")
            .map(|line| format!("charter_session={}", cookie_value(&line)))
            .filter(|c| c != "charter_session=");
        (session, page)
    }

    pub(crate) async fn signed_in(&self, key: &str) -> String {
        let (session, page) = self.sign_in(key, &[]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        session.unwrap()
    }
}

#[tokio::test]
async fn a_good_key_signs_in_with_a_strict_cookie_and_a_bad_one_does_not() {
    let (app, acme, _) = App::seeded().await;
    let (session, page) = app.sign_in("chk_not_a_key_at_all_00000000", &[]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(session.is_none());
    assert!(page.body.contains("This key is not valid"));

    let (session, page) = app.sign_in(&acme, &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/policies");
    let line = page.set_cookie("charter_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/;", "Max-Age=43200"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "plain http: {line}");
    assert!(!line.contains(&acme), "the cookie never holds the key");
    let session = session.unwrap();

    // Behind a proxy that terminated TLS the cookie is Secure; every sign-in is a new id.
    let (again, page) = app.sign_in(&acme, &[("x-forwarded-proto", "https")]).await;
    assert!(
        page.set_cookie("charter_session")
            .unwrap()
            .contains("; Secure")
    );
    assert_ne!(again.unwrap(), session);

    let list = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("acme ops"),
        "the key's name in the sidebar"
    );
}

#[tokio::test]
async fn sign_in_needs_its_form_token_and_a_same_origin_request() {
    let (app, acme, _) = App::seeded().await;
    // No token cookie: refused, no session.
    let page = app
        .web(
            "POST",
            "/sign-in",
            &[],
            &format!("key={acme}&csrf={}", "0".repeat(64)),
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.set_cookie("charter_session").is_none());
    // From another site: refused before anything else.
    let (session, page) = app
        .sign_in(&acme, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(session.is_none());
}

#[tokio::test]
async fn pages_need_a_session_and_htmx_is_sent_to_sign_in_with_hx_redirect() {
    let (app, _, _) = App::seeded().await;
    let page = app.web("GET", "/policies", &[], "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/sign-in");
    let page = app
        .web("GET", "/policies", &[("hx-request", "true")], "")
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(page.header("hx-redirect"), "/sign-in");
    let forged = format!("charter_session={}", "a".repeat(64));
    let page = app
        .web("GET", "/policies", &[("cookie", &forged)], "")
        .await;
    assert_eq!(page.header("location"), "/sign-in");
}

/// The sidebar's tenant as the page shows it.
fn tenant_shown(page: &Page) -> bool {
    page.body.contains("<option value=\"acme\" selected>")
}

#[tokio::test]
async fn csrf_refusals_change_nothing() {
    let (app, _, _) = App::seeded().await;
    let admin = app.admin.clone();
    let session = app.signed_in(&admin).await;
    let page = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    let token = page.csrf();
    let cookie = ("cookie", session.as_str());
    let same = ("sec-fetch-site", "same-origin");
    let refused = [
        (vec![cookie, same], "tenant=acme&next=/policies".to_owned()),
        (
            vec![cookie, same],
            format!("tenant=acme&next=/policies&csrf={}", "f".repeat(64)),
        ),
        (
            vec![cookie, ("sec-fetch-site", "cross-site")],
            format!("tenant=acme&next=/policies&csrf={token}"),
        ),
        (
            vec![
                cookie,
                ("origin", "http://evil.example"),
                ("host", "localhost"),
            ],
            format!("tenant=acme&next=/policies&csrf={token}"),
        ),
        (
            vec![cookie, same, ("x-csrf-token", "0123")],
            format!("tenant=acme&next=/policies&csrf={token}"),
        ),
    ];
    for (headers, body) in refused {
        let page = app.web("POST", "/tenant", &headers, &body).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{headers:?} {body}");
        assert!(page.body.contains("Nothing was changed"));
        let after = app.web("GET", "/policies", &[cookie], "").await;
        assert!(!tenant_shown(&after), "{headers:?}: the tenant changed");
    }
    // Sign-out without its token is refused too: the session lives on.
    let page = app.web("POST", "/sign-out", &[cookie, same], "").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.web("GET", "/policies", &[cookie], "").await.status,
        StatusCode::OK
    );

    // With the token (as a form field, or as htmx's header) and from this origin: done.
    let body = format!("tenant=acme&next=/policies&csrf={token}");
    let page = app.web("POST", "/tenant", &[cookie, same], &body).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(tenant_shown(
        &app.web("GET", "/policies", &[cookie], "").await
    ));
    let page = app
        .web(
            "POST",
            "/tenant",
            &[cookie, ("x-csrf-token", &token)],
            "tenant=&next=/policies",
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!tenant_shown(
        &app.web("GET", "/policies", &[cookie], "").await
    ));

    // Signing out ends the session and deletes the cookie.
    let page = app
        .web(
            "POST",
            "/sign-out",
            &[cookie, same],
            &format!("csrf={token}"),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.set_cookie("charter_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = app.web("GET", "/policies", &[cookie], "").await;
    assert_eq!(after.header("location"), "/sign-in");
}

#[tokio::test]
async fn a_tenant_key_neither_switches_tenants_nor_sees_another() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let page = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    assert!(!page.body.contains("globex"), "another tenant's name");
    assert!(!page.body.contains("tenant-select"));
    let body = format!("tenant=globex&next=/policies&csrf={}", page.csrf());
    let page = app
        .web("POST", "/tenant", &[("cookie", &session)], &body)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions_at_once() {
    let (app, acme, _) = App::seeded().await;
    let admin = app.admin.clone();
    let session = app.signed_in(&acme).await;
    assert_eq!(
        app.web("GET", "/policies", &[("cookie", &session)], "")
            .await
            .status,
        StatusCode::OK
    );
    let keys = app.call("GET", "/v1/keys", Some(&admin), None).await;
    let key_id = keys.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "acme ops")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call("DELETE", &format!("/v1/keys/{key_id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let page = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/sign-in");
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let (app, _, _) = App::seeded().await;
    let keys = app.call("GET", "/v1/keys", Some(&app.admin), None).await;
    let key_id = keys.body["items"][0]["id"].as_str().unwrap().to_owned();
    // The test server's clock is fixed at 1_795_000_000: this session ended a second before.
    let (id, csrf) = ("e".repeat(64), "c".repeat(64));
    let start = Timestamp::from_second(1_794_000_000).unwrap();
    let end = Timestamp::from_second(1_794_999_999).unwrap();
    app.store
        .create_session(&id, &key_id, &csrf, start, end)
        .await
        .unwrap();
    let cookie = format!("charter_session={id}");
    let page = app
        .web("GET", "/policies", &[("cookie", &cookie)], "")
        .await;
    assert_eq!(page.header("location"), "/sign-in");
}

#[tokio::test]
async fn another_tenants_policy_is_not_found_like_a_made_up_id() {
    let (app, acme, globex) = App::seeded().await;
    let mut body = policy_body("globex mail");
    body["scope"] = json!({"type": "tenant", "tenant_id": "globex"});
    let r = app
        .call("POST", "/v1/policies", Some(&globex), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let theirs = r.body["id"].as_str().unwrap().to_owned();
    let session = app.signed_in(&acme).await;
    let cookie = ("cookie", session.as_str());
    let other = app
        .web("GET", &format!("/policies/{theirs}"), &[cookie], "")
        .await;
    let made_up = app
        .web(
            "GET",
            "/policies/pol_0000000000000000000000000000dead",
            &[cookie],
            "",
        )
        .await;
    let hostile = app
        .web("GET", "/policies/%00%3Cscript%3E", &[cookie], "")
        .await;
    for page in [&other, &made_up, &hostile] {
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(other.body, made_up.body);
    assert!(!other.body.contains("globex"));
    // The list does not show it either; the platform key sees and opens it.
    let list = app.web("GET", "/policies", &[cookie], "").await;
    assert!(!list.body.contains("globex mail"));
    let admin = app.admin.clone();
    let platform = app.signed_in(&admin).await;
    let page = app
        .web(
            "GET",
            &format!("/policies/{theirs}"),
            &[("cookie", &platform)],
            "",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("globex mail"));
    assert!(page.body.contains("not_ends_with"), "the rules as JSON");
}

#[tokio::test]
async fn names_are_escaped_everywhere() {
    let (app, acme, _) = App::seeded().await;
    let name = "<script>alert(1)</script>";
    let r = app
        .call("POST", "/v1/policies", Some(&acme), Some(policy_body(name)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let session = app.signed_in(&acme).await;
    for path in [
        "/policies".to_owned(),
        format!("/policies/{id}"),
        "/policies?q=%3Cscript%3E".to_owned(),
    ] {
        let page = app.web("GET", &path, &[("cookie", &session)], "").await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>alert(1)"), "{path}");
    }
}

#[tokio::test]
async fn a_policys_rules_read_as_sentences_with_their_values_escaped() {
    let (app, acme, _) = App::seeded().await;
    let mut body = policy_body("Outbound mail");
    body["rules"].as_array_mut().unwrap().push(json!({"id": "r2", "type": "tool",
        "effect": "deny", "tools": ["crm.*"], "when": [{"arg": "q", "op": "eq", "value": "<b>x</b>"}],
        "description": "No raw HTML."}));
    let r = app
        .call("POST", "/v1/policies", Some(&acme), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let session = app.signed_in(&acme).await;
    let page = app
        .web(
            "GET",
            &format!("/policies/{id}"),
            &[("cookie", &session)],
            "",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(
            "block <code>*.send_email</code> when <code>args.to</code> does not end with <code>@acme.com</code>"
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>x</b>"), "{}", page.body);
    assert!(
        page.body.contains("<code>&#60;b&#62;x&#60;/b&#62;</code>")
            || page.body.contains("<code>&lt;b&gt;x&lt;/b&gt;</code>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No raw HTML."));
}

#[tokio::test]
async fn the_list_filters_by_status_scope_and_name_and_refuses_bad_filters() {
    let (app, acme, _) = App::seeded().await;
    for name in ["outbound mail", "refund cap"] {
        let r = app
            .call("POST", "/v1/policies", Some(&acme), Some(policy_body(name)))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let session = app.signed_in(&acme).await;
    let get = |path: &'static str| {
        let (app, session) = (&app, session.clone());
        async move { app.web("GET", path, &[("cookie", &session)], "").await }
    };
    let all = get("/policies").await;
    assert!(all.body.contains("outbound mail") && all.body.contains("refund cap"));
    assert!(all.body.contains("badge-draft"));
    let found = get("/policies?q=REFUND").await;
    assert!(found.body.contains("refund cap") && !found.body.contains("outbound mail"));
    let active = get("/policies?status=active").await;
    assert!(active.body.contains("No policies match these filters"));
    let platform = get("/policies?scope=platform").await;
    assert!(!platform.body.contains("refund cap"));
    let bad = get("/policies?status=gone").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("none of draft, active, deprecated, all"));
    let unknown = get("/policies?sort=name").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_empty_workspace_says_what_to_do_next() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let page = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    assert!(page.body.contains("No policies yet"));
    assert!(page.body.contains("charter policy create"));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let page = app
        .web("GET", "/policies", &[("cookie", &session)], "")
        .await;
    let css = page
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        css.starts_with("/static/") && css.ends_with("/app.css"),
        "{css}"
    );
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    for (path, cookie) in [
        ("/policies", session.as_str()),
        ("/sign-in", ""),
        ("/policies/nothing", session.as_str()),
        ("/policies", ""),
        (css.as_str(), ""),
    ] {
        let page = app.web("GET", path, &[("cookie", cookie)], "").await;
        assert_eq!(page.header("content-security-policy"), csp, "{path}");
        assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
    }
    // No inline script or style anywhere in a page.
    assert!(!page.body.contains("<script>") && !page.body.contains("style="));
    assert!(!page.body.contains("<style"));
    let asset = app.web("GET", &css, &[], "").await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(asset.header("content-type"), "text/css; charset=utf-8");
    assert!(asset.header("cache-control").contains("immutable"));
    let js = page
        .body
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let script = app.web("GET", js, &[], "").await;
    assert_eq!(
        script.header("content-type"),
        "text/javascript; charset=utf-8"
    );
    // Pages are never cached.
    assert_eq!(page.header("cache-control"), "no-store");
}

#[tokio::test]
async fn htmx_gets_the_content_alone_and_a_browser_the_whole_page() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let cookie = ("cookie", session.as_str());
    let full = app.web("GET", "/policies", &[cookie], "").await;
    let partial = app
        .web("GET", "/policies", &[cookie, ("hx-request", "true")], "")
        .await;
    for page in [&full, &partial] {
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.header("vary"), "HX-Request");
        assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
        assert!(page.body.contains("<section class=\"page\""));
    }
    assert!(full.body.starts_with("<!doctype html>"));
    assert!(full.body.contains("class=\"sidebar\""));
    assert!(!partial.body.contains("<html") && !partial.body.contains("class=\"sidebar\""));
}
