//! Static assets, embedded in the binary (`static/`): the workspace's `app.css` and `app.js`,
//! and the vendored htmx and its SSE extension. Their URLs carry a hash of their content, so
//! they are cached for a year and a new build is fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Files;

/// The URLs of the assets pages link to, each `/static/<content hash>/<file>`.
pub(crate) struct Assets {
    /// The stylesheet.
    pub(crate) css: String,
    /// The workspace's own script.
    pub(crate) js: String,
    /// htmx.
    pub(crate) htmx: String,
    /// htmx's SSE extension.
    pub(crate) sse: String,
    /// The icon.
    pub(crate) icon: String,
}

/// The assets' URLs, computed once.
pub(crate) static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets {
    css: url("app.css"),
    js: url("app.js"),
    htmx: url("vendor/htmx-2.0.11.min.js"),
    sse: url("vendor/htmx-ext-sse-2.2.4.min.js"),
    icon: url("favicon.svg"),
});

/// The version part of a file's URL: the first 12 hex digits of its SHA-256.
fn version(file: &str) -> Option<String> {
    Files::get(file).map(|f| super::session::hex(&f.metadata.sha256_hash()[..6]))
}

fn url(file: &str) -> String {
    // Every name above is embedded at compile time; a missing one would answer 404.
    let version = version(file).unwrap_or_else(|| "missing".to_owned());
    format!("/static/{version}/{file}")
}

/// The content type of an embedded file, by its extension.
fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// `GET /static/{version}/{file}`: the file, cached for a year when `version` is its current
/// one; an older version (a page from before an upgrade) gets today's file, not cached.
pub(crate) async fn serve(Path((asked, file)): Path<(String, String)>) -> Response {
    let Some(found) = Files::get(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let current = version(&file).is_some_and(|v| v == asked);
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&file)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        found.data,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_linked_asset_is_embedded() {
        let assets = &*super::ASSETS;
        for url in [
            &assets.css,
            &assets.js,
            &assets.htmx,
            &assets.sse,
            &assets.icon,
        ] {
            assert!(!url.contains("/missing/"), "{url}");
        }
    }
}
