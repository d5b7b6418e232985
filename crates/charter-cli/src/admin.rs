//! `charter tenants`, `charter agents`, `charter keys` and `charter audit`.

use std::fmt::Write as _;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::Ctx;
use crate::client::{Failure, encode};
use crate::output::table;

/// Tenant commands (`list` when none is given).
#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// List tenants.
    List,
    /// Create a tenant (platform keys).
    Create {
        /// The tenant's id (`acme`): letters, digits, `_ . : -`.
        id: String,
        /// Its display name.
        name: String,
    },
}

/// Agent commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// List a tenant's agents.
    List {
        /// The tenant's id.
        tenant: String,
    },
    /// Register an agent in a tenant.
    Create {
        /// The tenant's id.
        tenant: String,
        /// The agent's id (`support`): letters, digits, `_ . : -`.
        id: String,
        /// Its display name.
        name: String,
        /// Who answers for it, e.g. an email address.
        #[arg(long)]
        owner: Option<String>,
    },
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key; its value is shown once.
    Create {
        /// A name for people (`ci-deploy`); the key itself is generated.
        name: String,
        /// The key's tenant (omit for a platform key).
        #[arg(long)]
        tenant: Option<String>,
        /// Comma-separated: read, write, execute.
        #[arg(long, default_value = "read")]
        scopes: String,
    },
    /// List keys (never their values).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_...`, from `charter keys list`).
        id: String,
    },
}

/// Audit commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// List audit entries.
    List {
        /// A tenant's chain, or `platform`.
        #[arg(long)]
        tenant: Option<String>,
        /// One policy version.
        #[arg(long)]
        policy: Option<String>,
        /// One action, e.g. policy.activated.
        #[arg(long)]
        action: Option<String>,
        /// Entries per page (1 to 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue after this cursor (printed at the end of a full page).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Recompute the hash chains and name the first bad entry.
    Verify {
        /// Only this tenant's chain, or `platform` (default: every chain the key reads).
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub(crate) async fn tenants(ctx: &Ctx, command: TenantCommand) -> Result<(), Failure> {
    let columns = [("ID", "/id"), ("NAME", "/name"), ("CREATED", "/created_at")];
    match command {
        TenantCommand::List => {
            let answer = ctx.client.call(Method::GET, "/v1/tenants", None).await?;
            ctx.print(&answer, |v| {
                table(v["items"].as_array().map_or(&[][..], |a| a), &columns)
            });
        }
        TenantCommand::Create { id, name } => {
            let body = json!({"id": id, "name": name});
            let answer = ctx
                .client
                .call(Method::POST, "/v1/tenants", Some(&body))
                .await?;
            ctx.print(&answer, |v| table(std::slice::from_ref(v), &columns));
        }
    }
    Ok(())
}

pub(crate) async fn agents(ctx: &Ctx, command: AgentCommand) -> Result<(), Failure> {
    let columns = [
        ("TENANT", "/tenant_id"),
        ("ID", "/id"),
        ("NAME", "/name"),
        ("OWNER", "/owner"),
    ];
    match command {
        AgentCommand::List { tenant } => {
            let path = format!("/v1/tenants/{}/agents", encode(&tenant));
            let answer = ctx.client.call(Method::GET, &path, None).await?;
            ctx.print(&answer, |v| {
                table(v["items"].as_array().map_or(&[][..], |a| a), &columns)
            });
        }
        AgentCommand::Create {
            tenant,
            id,
            name,
            owner,
        } => {
            let path = format!("/v1/tenants/{}/agents", encode(&tenant));
            let body = json!({"id": id, "name": name, "owner": owner});
            let answer = ctx.client.call(Method::POST, &path, Some(&body)).await?;
            ctx.print(&answer, |v| table(std::slice::from_ref(v), &columns));
        }
    }
    Ok(())
}

pub(crate) async fn keys(ctx: &Ctx, command: KeyCommand) -> Result<(), Failure> {
    let columns = [
        ("ID", "/id"),
        ("NAME", "/name"),
        ("TENANT", "/tenant_id"),
        ("SCOPES", "/scopes"),
        ("LAST4", "/last4"),
        ("CALLS", "/calls"),
        ("REVOKED", "/revoked_at"),
    ];
    match command {
        KeyCommand::Create {
            name,
            tenant,
            scopes,
        } => {
            let scopes: Vec<&str> = scopes
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let body = json!({"name": name, "tenant_id": tenant, "scopes": scopes});
            let answer = ctx
                .client
                .call(Method::POST, "/v1/keys", Some(&body))
                .await?;
            ctx.print(&answer, |v| {
                format!(
                    "{}\nkey: {}\n(shown once: store it now)\n",
                    table(std::slice::from_ref(v), &columns),
                    v["key"].as_str().unwrap_or("-")
                )
            });
        }
        KeyCommand::List => {
            let answer = ctx.client.call(Method::GET, "/v1/keys", None).await?;
            ctx.print(&answer, |v| {
                table(v["items"].as_array().map_or(&[][..], |a| a), &columns)
            });
        }
        KeyCommand::Revoke { id } => {
            let answer = ctx
                .client
                .call(Method::DELETE, &format!("/v1/keys/{}", encode(&id)), None)
                .await?;
            ctx.print(&answer, |v| table(std::slice::from_ref(v), &columns));
        }
    }
    Ok(())
}

pub(crate) async fn audit(ctx: &Ctx, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::List {
            tenant,
            policy,
            action,
            limit,
            cursor,
        } => {
            let mut path = format!("/v1/audit?limit={limit}");
            for (k, v) in [
                ("tenant_id", tenant),
                ("policy_id", policy),
                ("action", action),
                ("cursor", cursor),
            ] {
                if let Some(v) = v {
                    let _ = write!(path, "&{k}={}", encode(&v));
                }
            }
            let answer = ctx.client.call(Method::GET, &path, None).await?;
            ctx.print(&answer, |v| {
                let mut out = table(
                    v["items"].as_array().map_or(&[][..], |a| a),
                    &[
                        ("SEQ", "/seq"),
                        ("AT", "/at"),
                        ("TENANT", "/tenant_id"),
                        ("ACTION", "/action"),
                        ("POLICY", "/policy_id"),
                        ("VERSION", "/version"),
                        ("ACTOR", "/actor/name"),
                    ],
                );
                if let Some(next) = v["next_cursor"].as_str() {
                    let _ = writeln!(out, "more: --cursor {next}");
                }
                out
            });
        }
        AuditCommand::Verify { tenant } => {
            let path = match tenant {
                Some(t) => format!("/v1/audit/verify?tenant_id={}", encode(&t)),
                None => "/v1/audit/verify".to_owned(),
            };
            let answer = ctx.client.call(Method::GET, &path, None).await?;
            let ok = answer["ok"].as_bool().unwrap_or(false);
            ctx.print(&answer, |v| {
                if ok {
                    format!("ok: {} entries verified\n", v["entries"])
                } else {
                    format!(
                        "BROKEN: chain {} first bad entry {}\n",
                        v["tenant_id"].as_str().unwrap_or("platform"),
                        v["first_bad_seq"]
                    )
                }
            });
            if !ok {
                return Err(Failure::Refused {
                    status: 200,
                    code: "audit_broken".into(),
                    message: "the audit chain does not verify".into(),
                    path: None,
                });
            }
        }
    }
    Ok(())
}
