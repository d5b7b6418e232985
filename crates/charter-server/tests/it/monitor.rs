//! The workspace's Monitor and Runs pages in process, signed in with a session cookie: filters
//! narrow the rows, the cursor pages, another tenant's events and runs never show, names are
//! escaped, and bad filter values answer a page that says what is wrong.

use axum::http::StatusCode;
use serde_json::json;

use crate::app::App;

/// Acme's guard (named to test escaping) blocking mail outside acme.com, a second acme policy
/// blocking a tool, and a globex policy; `blocked` acme checks, one allowed, one globex block.
struct Seeded {
    app: App,
    acme: String,
    guard: String,
    other: String,
    acme_run: String,
    globex: String,
    globex_run: String,
}

const GUARD: &str = "<script>alert(1)</script>";

async fn policy(app: &App, key: &str, tenant: &str, name: &str, tool: &str) -> String {
    let body = json!({
        "name": name,
        "scope": {"type": "agent", "tenant_id": tenant, "agent_id": "support"},
        "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": [tool],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]
    });
    let r = app
        .call("POST", "/v1/policies", Some(key), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            Some(key),
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    id
}

async fn run(app: &App, key: &str, tools_and_to: &[(&str, &str)]) -> String {
    let run = app
        .call(
            "POST",
            "/v1/runs",
            Some(key),
            Some(json!({"agent_id": "support"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (tool, to) in tools_and_to {
        let r = app
            .call(
                "POST",
                &format!("/v1/runs/{run}/check"),
                Some(key),
                Some(json!({"kind": "tool_call", "tool": tool, "args": {"to": to}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    run
}

async fn seeded(blocked: usize) -> Seeded {
    let (app, acme, globex) = App::seeded().await;
    let guard = policy(&app, &acme, "acme", GUARD, "gmail.send_email").await;
    let other = policy(&app, &acme, "acme", "No slack", "slack.post").await;
    policy(&app, &globex, "globex", "Globex guard", "gmail.send_email").await;
    let mut checks = vec![
        ("gmail.send_email", "ann@acme.com"),
        ("slack.post", "x@evil.io"),
    ];
    let outside: Vec<String> = (0..blocked).map(|i| format!("u{i}@gmail.com")).collect();
    checks.extend(outside.iter().map(|to| ("gmail.send_email", to.as_str())));
    let acme_run = run(&app, &acme, &checks).await;
    let globex_run = run(&app, &globex, &[("gmail.send_email", "g@gmail.com")]).await;
    Seeded {
        app,
        acme,
        guard,
        other,
        acme_run,
        globex,
        globex_run,
    }
}

/// Whether `body` shows [`GUARD`] as text (askama writes `&#60;`, others `&lt;`).
fn escaped(body: &str) -> bool {
    body.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        || body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
}

/// The number of event rows on a Monitor page.
fn rows(body: &str) -> usize {
    body.matches("<tr id=\"vio_").count()
}

/// The `href` of the link `rel="next"`, unescaped.
fn older(body: &str) -> Option<String> {
    let end = body.find("rel=\"next\"")?;
    let start = body[..end].rfind("<a href=\"")? + 9;
    let href = &body[start..end];
    Some(
        href[..href.find('"')?]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

#[tokio::test]
async fn the_monitor_filters_pages_and_escapes_with_the_visitors_authority() {
    let s = seeded(3).await;
    let session = s.app.signed_in(&s.acme).await;
    let cookie = [("cookie", session.as_str())];
    let get = |path: String| {
        let app = &s.app;
        async move { app.web("GET", &path, &cookie, "").await }
    };

    // Every acme block (3 mails, 1 slack post), none of globex's; the name is text.
    let page = get("/monitor".into()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(rows(&page.body), 4);
    assert!(escaped(&page.body));
    assert!(!page.body.contains(GUARD));
    assert!(!page.body.contains(&s.globex_run));
    assert!(
        page.body
            .contains(&format!("href=\"/runs/{}\"", s.acme_run))
    );
    assert!(page.body.contains("badge-block"));
    assert!(page.body.contains("u0@gmail.com"), "the matching input");
    assert!(page.body.contains("<svg") && page.body.contains("class=\"bar\""));

    // Filters narrow the rows and stay in the form.
    let page = get(format!("/monitor?policy_id={}", s.guard)).await;
    assert_eq!(rows(&page.body), 3);
    assert!(page.body.contains(&format!("value=\"{}\"", s.guard)));
    let page = get(format!("/monitor?policy_id={}&agent_id=&range=1h", s.other)).await;
    assert_eq!(rows(&page.body), 1);
    let page = get("/monitor?decision=halt".into()).await;
    assert_eq!((page.status, rows(&page.body)), (StatusCode::OK, 0));
    assert!(page.body.contains("No blocks or halts match these filters"));
    let page = get("/monitor?rule_type=tool&decision=block&since=2020-01-01T00%3A00".into()).await;
    assert_eq!(rows(&page.body), 4);
    let page = get("/monitor?until=2020-01-01T00%3A00".into()).await;
    assert_eq!(rows(&page.body), 0);
    // A run's events, the form keeping the run.
    let page = get(format!("/monitor?run_id={}", s.acme_run)).await;
    assert_eq!(rows(&page.body), 4);
    assert!(
        page.body
            .contains(&format!("name=\"run_id\" value=\"{}\"", s.acme_run))
    );
    // Another tenant's id matches nothing, as it does in the API.
    let page = get(format!("/monitor?run_id={}", s.globex_run)).await;
    assert_eq!((page.status, rows(&page.body)), (StatusCode::OK, 0));

    // Bad values: a page with the form and what is wrong, never a 500.
    for (query, words) in [
        ("decision=allow", "decision: one of block, halt"),
        ("rule_type=nope", "rule_type"),
        ("since=yesterday", "since"),
        ("range=2y", "range"),
        ("cursor=garbage", "cursor"),
        ("policy_id=%3Cscript%3E", "policy_id"),
        ("colour=red", "colour"),
    ] {
        let page = get(format!("/monitor?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            page.body.contains("These filters cannot be used"),
            "{query}"
        );
        assert!(page.body.contains(words), "{query}: {}", page.body);
        assert!(
            page.body.contains("id=\"f-policy\""),
            "{query}: the form stays"
        );
        assert!(!page.body.contains("<script>"), "{query}");
        assert!(!page.body.contains("id=\"events\""), "{query}: no table");
    }
    // The form keeps what was sent.
    let page = get("/monitor?agent_id=support&decision=allow".into()).await;
    assert!(page.body.contains("value=\"support\""), "{}", page.body);
    // htmx gets the same as a swappable 422.
    let page = s
        .app
        .web(
            "GET",
            "/monitor?decision=allow",
            &[("cookie", &session), ("hx-request", "true")],
            "",
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!page.body.contains("<html"));

    // A policy's page links to its blocks.
    let page = get(format!("/policies/{}", s.guard)).await;
    assert!(
        page.body
            .contains(&format!("href=\"/monitor?policy_id={}\"", s.guard))
    );
}

#[tokio::test]
async fn the_monitor_pages_with_the_cursor() {
    let s = seeded(53).await;
    let session = s.app.signed_in(&s.acme).await;
    let cookie = [("cookie", session.as_str())];
    let first = s
        .app
        .web(
            "GET",
            &format!("/monitor?policy_id={}", s.guard),
            &cookie,
            "",
        )
        .await;
    assert_eq!(rows(&first.body), 50);
    let next = older(&first.body).expect("an Older link");
    assert!(next.contains(&format!("policy_id={}", s.guard)), "{next}");
    let second = s.app.web("GET", &next, &cookie, "").await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(rows(&second.body), 3);
    assert!(older(&second.body).is_none());
    assert!(second.body.contains(">Newest</a>"));
    // New events belong on the first page only.
    assert!(
        first
            .body
            .contains("sse-connect=\"/monitor/stream?policy_id=")
    );
    assert!(!second.body.contains("sse-connect"));
}

#[tokio::test]
async fn runs_show_their_actions_and_another_tenants_run_is_not_found() {
    let s = seeded(2).await;
    let session = s.app.signed_in(&s.acme).await;
    let cookie = [("cookie", session.as_str())];

    let list = s.app.web("GET", "/runs", &cookie, "").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body
            .contains(&format!("href=\"/runs/{}\"", s.acme_run))
    );
    assert!(!list.body.contains(&s.globex_run));
    let bad = s.app.web("GET", "/runs?cursor=garbage", &cookie, "").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("cursor"));
    // Filters, kept in the URL: the run is running, by support, started today.
    let acme_run = format!("href=\"/runs/{}\"", s.acme_run);
    for (query, listed) in [
        ("agent=support&status=running", true),
        ("agent=billing", false),
        ("status=completed", false),
        ("since=2000-01-01T00%3A00", true),
        ("since=2999-01-01T00%3A00", false),
        ("agent=&status=&since=", true),
    ] {
        let page = s
            .app
            .web("GET", &format!("/runs?{query}"), &cookie, "")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        assert_eq!(page.body.contains(&acme_run), listed, "{query}");
        if !listed {
            assert!(page.body.contains("No runs match these filters"), "{query}");
        }
    }
    for (query, says) in [
        ("status=asleep", "status: `asleep`"),
        ("since=yesterday", "since: `yesterday`"),
        ("agent=%3Cx%3E", "agent: `&#60;x&#62;`"),
        ("colour=red", "colour"),
    ] {
        let page = s
            .app
            .web("GET", &format!("/runs?{query}"), &cookie, "")
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.body.contains(says), "{query}: {}", page.body);
    }

    let run = s
        .app
        .web("GET", &format!("/runs/{}", s.acme_run), &cookie, "")
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    // Its pinned versions, linked; its four actions in order, with decisions and violations.
    assert!(
        run.body
            .contains(&format!("href=\"/policies/{}\"", s.guard))
    );
    assert!(
        run.body
            .contains(&format!("href=\"/policies/{}\"", s.other))
    );
    assert_eq!(run.body.matches("<li class=\"step").count(), 4);
    assert_eq!(run.body.matches("step step-block").count(), 3);
    assert_eq!(run.body.matches("step step-allow").count(), 1);
    assert!(escaped(&run.body));
    assert!(!run.body.contains(GUARD));
    assert!(run.body.contains("u1@gmail.com"));
    assert!(
        run.body
            .contains(&format!("href=\"/monitor?run_id={}\"", s.acme_run))
    );

    // Another tenant's run is the same page as a made-up id.
    let theirs = s
        .app
        .web("GET", &format!("/runs/{}", s.globex_run), &cookie, "")
        .await;
    let made_up = s.app.web("GET", "/runs/run_made_up", &cookie, "").await;
    let odd = s.app.web("GET", "/runs/%3Cx%3E", &cookie, "").await;
    for page in [&theirs, &made_up, &odd] {
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.body.contains("nothing this key may see"));
        assert!(!page.body.contains(&s.globex_run));
    }

    // The platform key sees both tenants' runs.
    let admin = s.app.signed_in(&s.app.admin.clone()).await;
    let page = s
        .app
        .web(
            "GET",
            &format!("/runs/{}", s.globex_run),
            &[("cookie", &admin)],
            "",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    // Acme's three blocks and globex's one.
    let page = s
        .app
        .web("GET", "/monitor", &[("cookie", &admin)], "")
        .await;
    assert_eq!(rows(&page.body), 4);
    assert!(page.body.contains(&s.globex_run));
}

/// The next data frame of a stream's body as text, within `wait`; `None` when the stream
/// ended or nothing came.
async fn next_text(body: &mut axum::body::Body, wait: std::time::Duration) -> Option<String> {
    use http_body_util::BodyExt as _;
    let frame = tokio::time::timeout(wait, body.frame()).await.ok()??.ok()?;
    frame
        .into_data()
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether a stream's body ends within `wait` (frames before the end are skipped: keep-alives).
async fn ends_within(body: &mut axum::body::Body, wait: std::time::Duration) -> bool {
    use http_body_util::BodyExt as _;
    tokio::time::timeout(wait, async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn the_live_monitor_streams_rendered_rows_and_ends_with_the_session() {
    use axum::body::Body;
    use axum::http::Request;
    use std::time::Duration;
    use tower::ServiceExt as _;
    let s = seeded(0).await;
    let session = s.app.signed_in(&s.acme).await;
    let open = |query: &str| {
        Request::builder()
            .uri(format!("/monitor/stream{query}"))
            .header("cookie", session.as_str())
            .body(Body::empty())
            .unwrap()
    };
    let response = s
        .app
        .router
        .clone()
        .oneshot(open(&format!("?policy_id={}&agent_id=", s.guard)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "an event stream"
    );
    let mut stream = response.into_body();
    // Without a session there is no stream; a bad filter is refused by name.
    let refused = s
        .app
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/monitor/stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    let bad = s
        .app
        .router
        .clone()
        .oneshot(open("?decision=allow"))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Globex's block and acme's other policy's do not pass; the guard's arrives as a row.
    let globex_key = s.globex.clone();
    run(&s.app, &globex_key, &[("gmail.send_email", "g2@gmail.com")]).await;
    run(
        &s.app,
        &s.acme,
        &[
            ("slack.post", "x@evil.io"),
            ("gmail.send_email", "eve@gmail.com"),
        ],
    )
    .await;
    let text = next_text(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(text.starts_with("event: violation\n"), "{text}");
    assert!(
        text.contains("<tr id=\\\"vio_") || text.contains("<tr id=\"vio_"),
        "{text}"
    );
    assert!(text.contains("eve@gmail.com"), "{text}");
    assert!(!text.contains("x@evil.io"), "{text}");
    assert!(
        text.contains("&#60;script&#62;") || text.contains("&lt;script&gt;"),
        "{text}"
    );

    // Signing out ends the stream (within a session check).
    let page = s
        .app
        .web("GET", "/monitor", &[("cookie", &session)], "")
        .await;
    assert!(
        page.body.contains("sse-connect=\"/monitor/stream\""),
        "{}",
        page.body
    );
    let at = page.body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page.body[at..at + 64].to_owned();
    let out = s
        .app
        .web(
            "POST",
            "/sign-out",
            &[("cookie", &session), ("sec-fetch-site", "same-origin")],
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        ends_within(&mut stream, Duration::from_secs(12)).await,
        "the stream ended with the session"
    );
}

#[tokio::test]
async fn a_shutdown_ends_the_live_streams_of_the_workspace_and_the_api() {
    use axum::body::Body;
    use axum::http::Request;
    use std::time::Duration;
    use tower::ServiceExt as _;
    let s = seeded(0).await;
    let session = s.app.signed_in(&s.acme).await;
    let workspace = Request::builder()
        .uri("/monitor/stream")
        .header("cookie", session.as_str())
        .body(Body::empty())
        .unwrap();
    let api = Request::builder()
        .uri("/v1/violations/stream")
        .header("authorization", format!("Bearer {}", s.acme))
        .body(Body::empty())
        .unwrap();
    let mut streams = Vec::new();
    for request in [workspace, api] {
        let response = s.app.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        streams.push(response.into_body());
    }
    // Open, and quiet: nothing comes until something is blocked.
    for stream in &mut streams {
        assert!(
            next_text(stream, Duration::from_millis(200))
                .await
                .is_none()
        );
    }
    s.app.runtime.close_streams();
    for stream in &mut streams {
        assert!(
            ends_within(stream, Duration::from_secs(2)).await,
            "the stream ended at shutdown"
        );
    }
}
