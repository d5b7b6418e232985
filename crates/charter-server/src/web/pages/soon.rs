//! The sidebar's areas not built yet: a page that says so and where the same thing is today.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use crate::state::AppState;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// A page still to come.
#[derive(Template)]
#[template(path = "soon.html", blocks = ["content"])]
struct SoonPage {
    chrome: Chrome,
    title: &'static str,
    /// Where the same thing is available now (CLI or API).
    today: &'static str,
}

render::page!(SoonPage);

async fn soon(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    uri: &Uri,
    nav: &'static str,
    title: &'static str,
    today: &'static str,
) -> Result<Response, WebError> {
    let chrome = Chrome::load(state, visitor, nav, uri.path().to_owned()).await?;
    Ok(render::respond(
        StatusCode::OK,
        is_htmx(headers),
        &SoonPage {
            chrome,
            title,
            today,
        },
    ))
}

macro_rules! soon_pages {
    ($($name:ident: $nav:literal, $title:literal, $today:literal;)*) => {
        $(
            #[doc = concat!("`GET /", $nav, "`: to come.")]
            pub(crate) async fn $name(
                State(state): State<AppState>,
                visitor: Visitor,
                headers: HeaderMap,
                uri: Uri,
            ) -> Result<Response, WebError> {
                soon(&state, &visitor, &headers, &uri, $nav, $title, $today).await
            }
        )*
    };
}

soon_pages! {
    docs: "docs", "API reference", "GET /v1/openapi.json";
}
