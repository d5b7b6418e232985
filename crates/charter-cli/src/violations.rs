//! `charter violations`: the Monitor. Every block and halt, filtered, newest first, paged;
//! counted per time bucket (`stats`); or tailed live (`--follow`).

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use crate::client::{ClientArgs, Failure, Query};
use crate::output::{cell, grid, instant, line};
use crate::pages::{self, Paging, items, with_more};
use crate::{Ctx, out};
use charter_gateway::sse::{Decoder, Message};

/// `charter violations [FILTERS] [--limit N] [--cursor C | --all | --follow]`, or
/// `charter violations stats [FILTERS] [--bucket 1h]`.
#[derive(Debug, Args)]
pub(crate) struct ViolationsArgs {
    /// Tail new violations as they are committed, one line each (one JSON object per line
    /// with --json), until interrupted.
    #[arg(long, conflicts_with_all = ["limit", "cursor", "all"])]
    follow: bool,
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    paging: Paging,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    command: Option<ViolationsCommand>,
}

/// What to do with the violations other than listing them.
#[derive(Debug, Subcommand)]
pub(crate) enum ViolationsCommand {
    /// Count violations per time bucket, oldest first; empty buckets are left out.
    Stats {
        /// The width of a bucket: a duration like 5m, 1h or 1d.
        #[arg(long, default_value = "1h")]
        bucket: String,
    },
}

/// The Monitor's filters, shared by the list, the stream and the counts (global, so they
/// may also follow `stats`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Filters")]
struct Filters {
    /// Only this policy version's (`pol_...`).
    #[arg(long, global = true)]
    policy: Option<String>,
    /// Only the violations of any version of this lineage (`lin_...`).
    #[arg(long, global = true)]
    lineage: Option<String>,
    /// Only this agent's.
    #[arg(long, global = true)]
    agent: Option<String>,
    /// Only this tenant's.
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// Only this run's (`run_...`).
    #[arg(long, global = true)]
    run: Option<String>,
    /// Only rules of this type.
    #[arg(long, global = true, value_parser = ["tool", "data_access", "rate", "cost", "time", "output"])]
    rule_type: Option<String>,
    /// At or after this instant: RFC 3339, or a duration ago (`30m`, `7d`).
    #[arg(long, global = true, value_parser = crate::instant_or_ago)]
    since: Option<jiff::Timestamp>,
    /// Before this instant: RFC 3339, or a duration ago.
    #[arg(long, global = true, value_parser = crate::instant_or_ago)]
    until: Option<jiff::Timestamp>,
}

impl Filters {
    fn query(&self) -> Query {
        Query::default()
            .some("policy_id", self.policy.as_deref())
            .some("lineage_id", self.lineage.as_deref())
            .some("agent_id", self.agent.as_deref())
            .some("tenant_id", self.tenant.as_deref())
            .some("run_id", self.run.as_deref())
            .some("rule_type", self.rule_type.as_deref())
            .some("since", self.since)
            .some("until", self.until)
    }
}

const HEADERS: [&str; 9] = [
    "TIME", "DECISION", "POLICY", "RULE", "TENANT", "AGENT", "RUN", "INPUT", "MESSAGE",
];

/// The widths of a followed stream's columns, which cannot wait for the widest cell: an
/// instant, `block`/`halt`, typical names and ids, a run id (36 characters), an input.
const STREAM_WIDTHS: [usize; 9] = [20, 8, 28, 24, 10, 12, 36, 24, 0];

/// An event as the cells of a table row.
fn cells(event: &Value) -> Vec<String> {
    vec![
        instant(&cell(event, "/at")),
        cell(event, "/decision"),
        format!(
            "{}@{}",
            cell(event, "/policy_name"),
            cell(event, "/policy_version")
        ),
        format!("{}/{}", cell(event, "/rule_id"), cell(event, "/rule_type")),
        cell(event, "/tenant_id"),
        cell(event, "/agent_id"),
        cell(event, "/run_id"),
        cell(event, "/matching_input"),
        cell(event, "/message"),
    ]
}

pub(crate) async fn run(ctx: &Ctx, args: ViolationsArgs) -> Result<(), Failure> {
    let query = args.filters.query();
    match args.command {
        // Checked here rather than by clap, which would also refuse the filters before
        // `stats` (`charter violations --agent support stats`).
        Some(ViolationsCommand::Stats { .. })
            if args.follow
                || args.paging.all
                || args.paging.limit.is_some()
                || args.paging.cursor.is_some() =>
        {
            Err(Failure::Usage(
                "stats take filters and --bucket, not --limit, --cursor, --all or --follow"
                    .to_owned(),
            ))
        }
        Some(ViolationsCommand::Stats { bucket }) => {
            let query = query.set("bucket", bucket);
            let answer = ctx
                .client
                .call(Method::GET, &format!("/v1/violations/stats{query}"), None)
                .await?;
            ctx.print(&answer, stats);
            Ok(())
        }
        None if args.follow => follow(ctx, &query).await,
        None => {
            let page = pages::read(&ctx.client, "/v1/violations", &query, &args.paging).await?;
            ctx.print(&page, |page| {
                let rows: Vec<Vec<String>> = items(page).iter().map(cells).collect();
                with_more(grid(&HEADERS, &rows), page)
            });
            Ok(())
        }
    }
}

/// Counts with a bar each, scaled to the largest.
fn stats(answer: &Value) -> String {
    let buckets = answer["buckets"].as_array().map_or(&[][..], Vec::as_slice);
    let max = buckets
        .iter()
        .filter_map(|b| b["count"].as_u64())
        .max()
        .unwrap_or(0);
    let rows: Vec<Vec<String>> = buckets
        .iter()
        .map(|b| {
            let count = b["count"].as_u64().unwrap_or(0);
            // At least one mark for any count, at most 40.
            let width = if max == 0 {
                0
            } else {
                (count * 40).div_ceil(max)
            };
            vec![
                instant(&cell(b, "/start")),
                count.to_string(),
                "#".repeat(usize::try_from(width).unwrap_or(40)),
            ]
        })
        .collect();
    grid(&["START", "COUNT", ""], &rows)
}

/// Prints each new violation until the server closes the stream (exit 1), nobody reads
/// standard output any more (exit 0: `charter violations --follow | head -5`), or the
/// process is interrupted.
async fn follow(ctx: &Ctx, query: &Query) -> Result<(), Failure> {
    let mut response = ctx
        .client
        .stream(&format!("/v1/violations/stream{query}"))
        .await?;
    // On standard error, so scripts reading standard output see only events; the server has
    // subscribed once its answer arrived, so this line also tells a script it may go on.
    eprintln!("charter: following new violations (interrupt to stop)");
    if !ctx.json && !out(&line(&HEADERS, &STREAM_WIDTHS)) {
        return Ok(());
    }
    let mut decoder = Decoder::default();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| Failure::Transport(format!("reading the stream: {e}")))?;
        let Some(chunk) = chunk else {
            return Err(Failure::Transport(
                "the server closed the stream".to_owned(),
            ));
        };
        for message in decoder.feed(&chunk) {
            match message {
                Message::Event { event, data, .. } if event == "violation" => {
                    let Ok(value) = serde_json::from_str::<Value>(&data) else {
                        eprintln!("charter: an event that is not JSON: {data}");
                        continue;
                    };
                    let text = if ctx.json {
                        // One line of JSON per event; a newline between JSON tokens (data
                        // split over lines) is whitespace, so a space keeps it JSON.
                        format!("{}\n", data.replace('\n', " "))
                    } else {
                        line(&cells(&value), &STREAM_WIDTHS)
                    };
                    if !out(&text) {
                        return Ok(());
                    }
                }
                Message::Comment(text) if !text.is_empty() => {
                    // The server fell behind this subscriber: say so rather than hide a gap.
                    eprintln!("charter: {text}");
                }
                Message::Event { .. } | Message::Comment(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{cells, stats};

    #[test]
    fn an_event_is_a_row() {
        let event = json!({"at": "2026-12-05T10:00:00.123Z", "decision": "halt",
            "policy_name": "Spend cap", "policy_version": 3, "rule_id": "daily", "rule_type": "cost",
            "tenant_id": "acme", "agent_id": "billing", "run_id": "run_1", "matching_input": null,
            "message": "over $50.00"});
        assert_eq!(
            cells(&event),
            [
                "2026-12-05T10:00:00Z",
                "halt",
                "Spend cap@3",
                "daily/cost",
                "acme",
                "billing",
                "run_1",
                "-",
                "over $50.00"
            ]
        );
    }

    #[test]
    fn counts_have_bars_scaled_to_the_largest() {
        let answer = json!({"buckets": [
            {"start": "2026-12-05T10:00:00Z", "count": 80},
            {"start": "2026-12-05T11:00:00Z", "count": 1}]});
        assert_eq!(
            stats(&answer),
            format!(
                "START                 COUNT\n2026-12-05T10:00:00Z  80     {}\n2026-12-05T11:00:00Z  1      #\n",
                "#".repeat(40)
            )
        );
    }
}
