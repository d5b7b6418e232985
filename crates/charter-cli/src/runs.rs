//! `charter runs`: runs live and recorded, with their actions and decisions; importing
//! recorded history.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::Ctx;
use crate::client::{Failure, Query, encode};
use crate::output::{cell, grid, instant};
use crate::pages::{self, Paging, items, with_more};

/// Runs.
#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// List runs, live and imported, newest first.
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only runs in this status.
        #[arg(long, value_parser = ["running", "halted", "completed", "failed"])]
        status: Option<String>,
        /// Runs started at or after this instant: RFC 3339, or a duration ago (`30m`, `7d`).
        #[arg(long, value_parser = crate::instant_or_ago)]
        since: Option<jiff::Timestamp>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show a run with its actions and their decisions.
    ///
    /// Its pinned policies, then its actions in order, each with its decision and, when
    /// refused, the rules that refused it (from the Monitor).
    Show {
        /// The run's id (`run_...`).
        run_id: String,
    },
    /// Import recorded runs (history for Validate), all or nothing.
    ///
    /// FILE holds one run per line (NDJSON, streamed: any length), or `{"runs": [...]}` if
    /// its name ends in `.json` (within the server's body limit).
    Import {
        /// The file of runs.
        file: PathBuf,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: RunsCommand) -> Result<(), Failure> {
    match command {
        RunsCommand::List {
            agent,
            tenant,
            status,
            since,
            paging,
        } => {
            let query = Query::default()
                .some("agent_id", agent)
                .some("tenant_id", tenant)
                .some("status", status)
                .some("since", since);
            let page = pages::read(&ctx.client, "/v1/runs", &query, &paging).await?;
            ctx.print(&page, |page| with_more(runs_table(items(page)), page));
            Ok(())
        }
        RunsCommand::Show { run_id } => {
            let id = encode(&run_id);
            let run = ctx
                .client
                .call(Method::GET, &format!("/v1/runs/{id}"), None)
                .await?;
            if ctx.json {
                ctx.print_json(&run);
                return Ok(());
            }
            // Why a refused action was refused lives in the Monitor, not in the run.
            let query = Query::default().set("run_id", &run_id);
            let every = Paging {
                limit: None,
                cursor: None,
                all: true,
            };
            let violations = pages::read(&ctx.client, "/v1/violations", &query, &every).await?;
            ctx.print(&run, |run| show(run, items(&violations)));
            Ok(())
        }
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

fn runs_table(runs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                cell(run, "/id"),
                instant(&cell(run, "/started_at")),
                cell(run, "/status"),
                cell(run, "/tenant_id"),
                cell(run, "/agent_id"),
                run["policy_set"]["policies"]
                    .as_array()
                    .map_or(0, Vec::len)
                    .to_string(),
                if run["imported"] == true {
                    "imported"
                } else {
                    "live"
                }
                .to_owned(),
            ]
        })
        .collect();
    grid(
        &[
            "ID", "STARTED", "STATUS", "TENANT", "AGENT", "POLICIES", "SOURCE",
        ],
        &rows,
    )
}

/// `Name@2 rule-id (type): message`, one violation of a decision or event.
fn why(violation: &Value) -> String {
    format!(
        "{}@{} {} ({}): {}",
        cell(violation, "/policy_name"),
        cell(violation, "/policy_version"),
        cell(violation, "/rule_id"),
        cell(violation, "/rule_type"),
        cell(violation, "/message"),
    )
}

/// A run for people: its facts, then its actions with their decisions and the violations
/// (from the Monitor) of the refused ones.
fn show(run: &Value, violations: &[Value]) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "{:<10} {value}", format!("{name}:"));
    };
    field("id", cell(run, "/id"));
    field("tenant", cell(run, "/tenant_id"));
    field("agent", cell(run, "/agent_id"));
    field("status", cell(run, "/status"));
    field("started", cell(run, "/started_at"));
    field("ended", cell(run, "/ended_at"));
    field(
        "source",
        if run["imported"] == true {
            "imported history"
        } else {
            "live"
        }
        .to_owned(),
    );
    let pinned: Vec<String> = run["policy_set"]["policies"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|p| format!("{}@{}", cell(p, "/id"), cell(p, "/version")))
        .collect();
    field(
        "policies",
        if pinned.is_empty() {
            "none".to_owned()
        } else {
            pinned.join(", ")
        },
    );
    if run["metadata"].as_object().is_some_and(|m| !m.is_empty()) {
        field("metadata", run["metadata"].to_string());
    }
    for violation in run["halted_by"].as_array().map_or(&[][..], Vec::as_slice) {
        field("halted by", why(violation));
    }
    let actions = run["actions"].as_array().map_or(&[][..], Vec::as_slice);
    field("actions", actions.len().to_string());
    if actions.is_empty() {
        return out;
    }
    let rows: Vec<Vec<String>> = actions
        .iter()
        .map(|action| {
            let reasons: Vec<String> = violations
                .iter()
                .filter(|v| v["action_id"] == action["id"])
                .map(why)
                .collect();
            vec![
                instant(&cell(action, "/at")),
                cell(action, "/decision"),
                cell(action, "/action/kind"),
                summary(&action["action"]),
                cell(action, "/action/cost_usd"),
                reasons.join("; "),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&grid(
        &["AT", "DECISION", "KIND", "ACTION", "COST", "WHY"],
        &rows,
    ));
    out
}

/// What an action was about: its tool, resource, channel or model.
fn summary(action: &Value) -> String {
    match action["kind"].as_str() {
        Some("tool_call") => cell(action, "/tool"),
        Some("data_access") => format!(
            "{} {}",
            cell(action, "/operation"),
            cell(action, "/resource")
        ),
        Some("output") => format!(
            "{} chars on {}",
            action["text"].as_str().map_or(0, |t| t.chars().count()),
            cell(action, "/channel")
        ),
        Some("model_call") => format!(
            "{} ({} in, {} out)",
            cell(action, "/model"),
            cell(action, "/input_tokens"),
            cell(action, "/output_tokens")
        ),
        _ if action.is_null() => "(input not kept)".to_owned(),
        _ => action.to_string(),
    }
}
