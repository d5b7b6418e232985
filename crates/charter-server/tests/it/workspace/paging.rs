//! The workspace's lists page through the store's cursors: the Policies list (with its filters
//! kept in the links) and a run's actions, 50 to a page, every item once, none skipped.

use axum::http::StatusCode;
use serde_json::json;

use crate::app::{App, policy_body};

/// The `href` of the link `rel="next"` of `body`, unescaped.
fn next(body: &str) -> Option<String> {
    let at = body.find("rel=\"next\"")?;
    let start = body[..at].rfind("href=\"")? + 6;
    let end = start + body[start..].find('"')?;
    Some(body[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// How many times `needle` occurs in `body`.
fn count(body: &str, needle: &str) -> usize {
    body.matches(needle).count()
}

#[tokio::test]
async fn the_policies_list_pages_every_policy_once_with_its_filters() {
    let (app, acme, _) = App::seeded().await;
    for i in 0..57 {
        let r = app
            .call(
                "POST",
                "/v1/policies",
                Some(&acme),
                Some(policy_body(&format!("Paged policy {i:02}"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let session = app.signed_in(&acme).await;
    let mut seen = Vec::new();
    let mut path = Some("/policies?status=draft&q=paged".to_owned());
    let mut pages = 0;
    while let Some(at) = path {
        let page = app.get(&at, &session).await;
        assert_eq!(page.status, StatusCode::OK, "{at}: {}", page.body);
        for i in 0..57 {
            if page.body.contains(&format!(">Paged policy {i:02}<")) {
                seen.push(i);
            }
        }
        pages += 1;
        path = next(&page.body);
        if let Some(link) = &path {
            assert!(
                link.contains("status=draft") && link.contains("q=paged"),
                "{link}"
            );
        }
    }
    assert_eq!(pages, 2);
    seen.sort_unstable();
    assert_eq!(seen, (0..57).collect::<Vec<_>>(), "every policy once");
}

#[tokio::test]
async fn a_runs_page_pages_its_actions_in_order() {
    let (app, acme, _) = App::seeded().await;
    let run = app
        .call(
            "POST",
            "/v1/runs",
            Some(&acme),
            Some(json!({"agent_id": "support"})),
        )
        .await;
    let run_id = run.body["id"].as_str().unwrap().to_owned();
    for i in 0..61 {
        let r = app
            .call(
                "POST",
                &format!("/v1/runs/{run_id}/check"),
                Some(&acme),
                Some(json!({"kind": "tool_call", "tool": format!("step.n{i:02}"), "args": {}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let session = app.signed_in(&acme).await;
    let first = app.get(&format!("/runs/{run_id}"), &session).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(count(&first.body, "step.n"), 50, "{}", first.body);
    assert!(first.body.contains("step.n00") && first.body.contains("step.n49"));
    let later = next(&first.body).expect("a Later actions link");
    let second = app.get(&later, &session).await;
    assert_eq!(second.status, StatusCode::OK, "{later}: {}", second.body);
    assert_eq!(count(&second.body, "step.n"), 11);
    assert!(second.body.contains("step.n50") && second.body.contains("step.n60"));
    assert!(next(&second.body).is_none());
}
