//! The API reference at `/docs` in process: every operation of the served document is on the
//! page (compared against the document itself, so a new route cannot be missed), every
//! component has its anchor, text is escaped, and the page keeps the workspace's strict CSP.

use axum::http::StatusCode;
use serde_json::Value;

use crate::app::App;

/// The workspace's one Content-Security-Policy: the reference needs no exception.
const STRICT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                          img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                          base-uri 'none'; form-action 'self'";

/// The document `GET /v1/openapi.json` serves.
fn document() -> Value {
    serde_json::to_value(charter_server::openapi()).unwrap()
}

/// `text` as askama escapes it in HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn the_reference_lists_every_operation_and_schema_of_the_served_document() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let page = app.web("GET", "/docs", &[("cookie", &session)], "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let doc = document();
    let methods = [
        "get", "put", "post", "patch", "delete", "head", "options", "trace",
    ];
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in methods {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let id = op["operationId"]
                .as_str()
                .expect("every operation has an id");
            let anchor = format!("id=\"op-{id}\"");
            assert!(page.body.contains(&anchor), "{method} {path}: no {anchor}");
            let at = page.body.find(&anchor).unwrap();
            let article = &page.body[at..];
            let article = &article[..article.find("</article>").unwrap()];
            let upper = method.to_uppercase();
            assert!(
                article.contains(&format!(
                    ">{upper}</span> <code class=\"op-path\">{}</code>",
                    escaped(path)
                )),
                "{method} {path}: its heading"
            );
            for status in op["responses"].as_object().unwrap().keys() {
                assert!(
                    article.contains(&format!(">{status}</span>")),
                    "{method} {path}: answer {status}"
                );
            }
            // A body that names a component shows that component's fields in place.
            let body = op.pointer("/requestBody/content/application~1json/schema/$ref");
            if let Some(name) = body
                .and_then(Value::as_str)
                .and_then(|r| r.rsplit('/').next())
            {
                let fields = doc["components"]["schemas"][name]["properties"].as_object();
                for field in fields.into_iter().flat_map(|f| f.keys()) {
                    let cell = format!("<code>{}</code>", escaped(field));
                    assert!(article.contains(&cell), "{method} {path}: {name}.{field}");
                }
            }
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = format!("<code>{}</code>", escaped(p["name"].as_str().unwrap()));
                assert!(article.contains(&name), "{method} {path}: parameter {name}");
            }
        }
    }
    assert!(operations > 30, "{operations}");
    assert_eq!(
        page.body.matches("<article id=\"op-").count(),
        operations,
        "one article per operation, no more"
    );
    assert!(page.body.contains(&format!("{operations} operations")));
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            page.body
                .contains(&format!("<article id=\"schema-{name}\"")),
            "schema {name}"
        );
    }
    // Every `$ref` link lands on an anchor of the page.
    for link in page.body.split("href=\"#schema-").skip(1) {
        let name = link.split('"').next().unwrap();
        assert!(
            page.body.contains(&format!("id=\"schema-{name}\"")),
            "{name}"
        );
    }
    // The raw document is one click away; the bearer scheme and the error body are told.
    assert!(
        page.body
            .contains("href=\"/v1/openapi.json\" download=\"openapi.json\"")
    );
    assert!(page.body.contains("id=\"auth\"") && page.body.contains("<strong>bearer</strong>"));
    assert!(page.body.contains("id=\"errors\""));
    assert!(page.body.contains("see <a href=\"#errors\">Errors</a>"));
    assert!(
        page.body
            .contains("aria-current=\"page\">API reference</a>")
    );
}

#[tokio::test]
async fn the_reference_escapes_the_document_and_keeps_the_strict_csp() {
    let (app, acme, _) = App::seeded().await;
    let session = app.signed_in(&acme).await;
    let page = app.web("GET", "/docs", &[("cookie", &session)], "").await;
    assert_eq!(page.status, StatusCode::OK);
    // The API's description says `Authorization: Bearer <key>`: text, never a tag.
    let description = document()["info"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(description.contains("<key>"));
    assert!(page.body.contains("Bearer &#60;key&#62;"));
    assert!(!page.body.contains("<key>"));
    // Backticks become code spans, still escaped inside.
    assert!(
        page.body
            .contains("<code>Authorization: Bearer &#60;key&#62;</code>")
    );
    assert_eq!(
        page.headers["content-security-policy"].to_str().unwrap(),
        STRICT_CSP
    );
    assert!(!page.body.contains("style=") && !page.body.contains("<style"));
    assert!(!page.body.contains("<script>"));
    assert_eq!(
        page.body.matches("<script").count(),
        page.body.matches("<script src=\"/static/").count()
    );
}

#[tokio::test]
async fn the_reference_needs_a_session_and_answers_htmx_its_content() {
    let (app, acme, _) = App::seeded().await;
    let anonymous = app.web("GET", "/docs", &[], "").await;
    assert_ne!(anonymous.status, StatusCode::OK);
    assert!(!anonymous.body.contains("op-create_policy"));
    let session = app.signed_in(&acme).await;
    let partial = app
        .web(
            "GET",
            "/docs",
            &[("cookie", &session), ("hx-request", "true")],
            "",
        )
        .await;
    assert_eq!(partial.status, StatusCode::OK);
    assert!(!partial.body.contains("<html"));
    assert!(
        partial
            .body
            .contains("data-title=\"API reference · Charter\"")
    );
    assert!(partial.body.contains("<article id=\"op-"));
}
