//! `charter policy ...`: authoring and the lifecycle over the HTTP API.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::{Failure, Query, encode};
use crate::output::{POLICY_COLUMNS, table};

/// Policy commands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// List policies.
    List {
        /// Only this status: draft, active or deprecated.
        #[arg(long)]
        status: Option<String>,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Names containing this text.
        #[arg(long)]
        q: Option<String>,
    },
    /// Show one policy: its header, and each rule as a sentence (`--json`: the server's JSON).
    Show {
        /// The policy version's id (`pol_...`).
        id: String,
    },
    /// Create a draft from a JSON file (`-` for standard input): `{name, description?, scope, rules?}`.
    Create {
        /// The JSON file of the draft, or `-` for standard input.
        file: String,
    },
    /// Edit a draft: name, description, or rules from a JSON file.
    Edit {
        /// The draft's id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// A JSON file holding the new rules (an array).
        #[arg(long)]
        rules: Option<String>,
        /// Refuse if the draft is no longer at this revision.
        #[arg(long)]
        revision: Option<u32>,
    },
    /// Add a rule (a JSON file, `-` for standard input) to a draft.
    AddRule {
        /// The draft's id.
        id: String,
        /// The JSON file of the rule, or `-` for standard input.
        file: String,
    },
    /// Remove a rule from a draft.
    RemoveRule {
        /// The draft's id.
        id: String,
        /// The id of the rule to remove (`r1`).
        rule_id: String,
    },
    /// Validate a draft against recorded history.
    Validate {
        /// The draft's id.
        id: String,
        /// How far back to replay, e.g. 7d.
        #[arg(long, default_value = "7d")]
        lookback: String,
    },
    /// Activate a draft.
    Activate {
        /// The draft's id.
        id: String,
        /// Without a validation of its current revision.
        #[arg(long)]
        force: bool,
        /// Deprecate the lineage's other active versions.
        #[arg(long)]
        supersede: bool,
    },
    /// Deprecate an active policy.
    Deprecate {
        /// The active policy's id.
        id: String,
    },
    /// Clone any version into a new draft.
    Clone {
        /// The id of the version to clone.
        id: String,
        /// The new draft's name (default: the same).
        #[arg(long)]
        name: Option<String>,
        /// A JSON file holding another scope (starts a new lineage).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Delete a draft.
    Delete {
        /// The draft's id.
        id: String,
    },
    /// Print the export document of a policy (`charter policy export ID > FILE`).
    Export {
        /// The policy version's id.
        id: String,
    },
    /// Import export documents (one, or an array) as drafts.
    Import {
        /// The JSON file of the documents, or `-` for standard input.
        file: String,
    },
    /// The versions of a policy's lineage, oldest first.
    Versions {
        /// The id of any version of the lineage.
        id: String,
    },
}

/// Reads a JSON file, or standard input for `-`.
pub(crate) fn read_json(file: &str) -> Result<Value, Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::Usage(format!("reading {file}: {e}")))?
    };
    serde_json::from_str(&text).map_err(|e| {
        Failure::Usage(format!(
            "{file} is not JSON: {}",
            charter_core::parse::json_error(&e)
        ))
    })
}

fn one(policy: &Value) -> String {
    crate::render::policy(policy)
}

pub(crate) async fn run(ctx: &Ctx, command: PolicyCommand) -> Result<(), Failure> {
    let c = &ctx.client;
    match command {
        PolicyCommand::List { status, tenant, q } => {
            let query = Query::default()
                .some("status", status)
                .some("tenant_id", tenant)
                .some("q", q);
            let path = format!("/v1/policies{query}");
            let answer = c.call(Method::GET, &path, None).await?;
            ctx.print(&answer, |v| {
                table(v["items"].as_array().map_or(&[][..], |a| a), POLICY_COLUMNS)
            });
        }
        PolicyCommand::Show { id } => {
            let answer = c
                .call(Method::GET, &format!("/v1/policies/{}", encode(&id)), None)
                .await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::Create { file } => {
            let body = read_json(&file)?;
            let answer = c.call(Method::POST, "/v1/policies", Some(&body)).await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::Edit {
            id,
            name,
            description,
            rules,
            revision,
        } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if let Some(file) = rules {
                body["rules"] = read_json(&file)?;
            }
            let path = format!("/v1/policies/{}", encode(&id));
            let answer = match revision {
                Some(r) => c.call_if_match(Method::PUT, &path, &body, r).await?,
                None => c.call(Method::PUT, &path, Some(&body)).await?,
            };
            ctx.print(&answer, one);
        }
        PolicyCommand::AddRule { id, file } => {
            let rule = read_json(&file)?;
            let answer = c
                .call(
                    Method::POST,
                    &format!("/v1/policies/{}/rules", encode(&id)),
                    Some(&rule),
                )
                .await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::RemoveRule { id, rule_id } => {
            let answer = c
                .call(
                    Method::DELETE,
                    &format!("/v1/policies/{}/rules/{}", encode(&id), encode(&rule_id)),
                    None,
                )
                .await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::Validate { id, lookback } => {
            let body = json!({ "lookback": lookback });
            let answer = c
                .call(
                    Method::POST,
                    &format!("/v1/policies/{}/validate", encode(&id)),
                    Some(&body),
                )
                .await?;
            ctx.print(&answer, |v| {
                format!(
                    "runs scanned {}, actions scanned {}\nwould block {} actions in {} runs ({} halted); new {}, already blocked {}, not replayable {}\n",
                    v["runs_scanned"],
                    v["actions_scanned"],
                    v["actions_blocked"],
                    v["runs_blocked"],
                    v["actions_halted"],
                    v["actions_new"],
                    v["actions_already_blocked"],
                    v["actions_not_replayable"]
                )
            });
        }
        PolicyCommand::Activate {
            id,
            force,
            supersede,
        } => {
            let body = json!({"force": force, "supersede": supersede});
            let answer = c
                .call(
                    Method::POST,
                    &format!("/v1/policies/{}/activate", encode(&id)),
                    Some(&body),
                )
                .await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::Deprecate { id } => {
            let answer = c
                .call(
                    Method::POST,
                    &format!("/v1/policies/{}/deprecate", encode(&id)),
                    Some(&json!({})),
                )
                .await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::Clone { id, name, scope } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(file) = scope {
                body["scope"] = read_json(&file)?;
            }
            let answer = c
                .call(
                    Method::POST,
                    &format!("/v1/policies/{}/clone", encode(&id)),
                    Some(&body),
                )
                .await?;
            ctx.print(&answer, one);
        }
        PolicyCommand::Delete { id } => {
            let answer = c
                .call(
                    Method::DELETE,
                    &format!("/v1/policies/{}", encode(&id)),
                    None,
                )
                .await?;
            ctx.print(&answer, |_| format!("deleted {id}\n"));
        }
        PolicyCommand::Export { id } => {
            let answer = c
                .call(
                    Method::GET,
                    &format!("/v1/policies/{}/export", encode(&id)),
                    None,
                )
                .await?;
            // A document is the output, for people and scripts alike.
            ctx.print_json(&answer);
        }
        PolicyCommand::Import { file } => {
            let body = read_json(&file)?;
            let answer = c
                .call(Method::POST, "/v1/policies/import", Some(&body))
                .await?;
            ctx.print(&answer, |v| {
                table(v["items"].as_array().map_or(&[][..], |a| a), POLICY_COLUMNS)
            });
        }
        PolicyCommand::Versions { id } => {
            let answer = c
                .call(
                    Method::GET,
                    &format!("/v1/policies/{}/versions", encode(&id)),
                    None,
                )
                .await?;
            ctx.print(&answer, |v| {
                table(
                    v["items"].as_array().map_or(&[][..], |a| a),
                    &[
                        ("VERSION", "/version"),
                        ("ID", "/id"),
                        ("STATUS", "/status"),
                        ("ACTIVATED", "/activated_at"),
                        ("BY", "/activated_by"),
                        ("DEPRECATED", "/deprecated_at"),
                        ("BY", "/deprecated_by"),
                    ],
                )
            });
        }
    }
    Ok(())
}
