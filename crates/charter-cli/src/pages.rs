//! Paged lists (`{items, next_cursor}`, newest first): one page with a hint to the next, or
//! every page with `--all`.

use std::fmt::Write as _;

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Failure, Query};

/// The largest page the API gives.
const MAX_LIMIT: u32 = 500;

/// How much of a list to read.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Paging")]
pub(crate) struct Paging {
    /// Items per page, 1 to 500 (default 50; 500 with --all).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIMIT)))]
    pub(crate) limit: Option<u32>,
    /// Start after this cursor (printed as `more: --cursor ...` below a page that has more).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Follow the cursors to the last page and print every item.
    #[arg(long)]
    pub(crate) all: bool,
}

/// Reads `path` with `query`: one page as the server answers it, or with `--all` every page
/// joined into one (`next_cursor: null`).
pub(crate) async fn read(
    client: &Client,
    path: &str,
    query: &Query,
    paging: &Paging,
) -> Result<Value, Failure> {
    let limit = paging.limit.or(paging.all.then_some(MAX_LIMIT));
    let mut cursor = paging.cursor.clone();
    let mut items = Vec::new();
    loop {
        let query = query
            .clone()
            .some("limit", limit)
            .some("cursor", cursor.as_deref());
        let page = client
            .call(Method::GET, &format!("{path}{query}"), None)
            .await?;
        if !paging.all {
            return Ok(page);
        }
        if let Some(more) = page["items"].as_array() {
            items.extend(more.iter().cloned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(json!({"items": items, "next_cursor": null})),
        }
    }
}

/// A page's items.
pub(crate) fn items(page: &Value) -> &[Value] {
    page["items"].as_array().map_or(&[][..], Vec::as_slice)
}

/// `text` followed by the hint to the next page, when there is one.
pub(crate) fn with_more(mut text: String, page: &Value) -> String {
    if let Some(next) = page["next_cursor"].as_str() {
        let _ = writeln!(text, "more: --cursor {next}");
    }
    text
}
