//! `charter runs`: recorded history.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;

use crate::Ctx;
use crate::client::Failure;
use crate::output::cell;

/// Runs.
#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// Import recorded runs (history for Validate), all or nothing. FILE holds one run per
    /// line (NDJSON, streamed: any length), or `{"runs": [...]}` if its name ends in `.json`
    /// (within the server's body limit).
    Import {
        /// The file of runs.
        file: PathBuf,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: RunsCommand) -> Result<(), Failure> {
    match command {
        RunsCommand::Import { file } => {
            let content_type = if file.extension().is_some_and(|e| e == "json") {
                "application/json"
            } else {
                "application/x-ndjson"
            };
            let opened = tokio::fs::File::open(&file)
                .await
                .map_err(|e| Failure::Usage(format!("reading {}: {e}", file.display())))?;
            let answer = ctx
                .client
                .call_with(
                    Method::POST,
                    "/v1/runs/import",
                    content_type,
                    reqwest::Body::from(opened),
                )
                .await?;
            ctx.print(&answer, |a| {
                format!(
                    "imported {} runs, {} actions\n",
                    cell(a, "/runs"),
                    cell(a, "/actions")
                )
            });
            Ok(())
        }
    }
}
