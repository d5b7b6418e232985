//! Experiment: how fast can Cedar decide an S1-like allow-list with different encodings?
use std::collections::HashSet;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Result, anyhow};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request,
    RestrictedExpression,
};

const ALLOWED: [&str; 20] = [
    "crm.lookup_customer",
    "crm.update_customer",
    "crm.list_orders",
    "kb.search",
    "kb.get_article",
    "tickets.create",
    "tickets.update",
    "tickets.comment",
    "tickets.close",
    "tickets.search",
    "calendar.list_events",
    "calendar.create_event",
    "slack.post_message",
    "slack.read_channel",
    "jira.create_issue",
    "jira.search",
    "docs.read",
    "docs.search",
    "billing.get_invoice",
    "billing.list_invoices",
];

fn uid(s: &str) -> Result<EntityUid> {
    EntityUid::from_str(s).map_err(|e| anyhow!("{e}"))
}

fn bench(name: &str, policies: &str, entities: Entities, with_args: bool) -> Result<()> {
    let pset = PolicySet::from_str(policies).map_err(|e| anyhow!("{e:?}"))?;
    let auth = Authorizer::new();
    let reqs: Vec<Request> = (0..64)
        .map(|i| {
            let tool = if i % 2 == 0 {
                ALLOWED[i % 20]
            } else {
                "shell.exec"
            };
            let mut pairs = vec![(
                "tool".to_owned(),
                RestrictedExpression::new_string(tool.into()),
            )];
            if with_args {
                pairs.push((
                    "args".to_owned(),
                    RestrictedExpression::new_record([
                        (
                            "query".to_owned(),
                            RestrictedExpression::new_string("x".into()),
                        ),
                        ("limit".to_owned(), RestrictedExpression::new_long(10)),
                    ])?,
                ));
            }
            Ok(Request::new(
                uid(r#"Agent::"t1/a1""#)?,
                uid(r#"Action::"call_tool""#)?,
                uid(&format!("Tool::\"{tool}\""))?,
                Context::from_pairs(pairs)?,
                None,
            )?)
        })
        .collect::<Result<_>>()?;
    let n = 50_000;
    let mut allowed = 0;
    let t = Instant::now();
    for i in 0..n {
        let r = auth.is_authorized(&reqs[i % reqs.len()], &pset, &entities);
        if r.decision() == Decision::Allow {
            allowed += 1;
        }
        black_box(&r);
    }
    println!(
        "{name:50} {:>7.0} ns  allowed {allowed}",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    Ok(())
}

fn main() -> Result<()> {
    let list = ALLOWED
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let chain = ALLOWED
        .iter()
        .map(|t| format!("context.tool == \"{t}\""))
        .collect::<Vec<_>>()
        .join(" || ");
    let ents = || -> Result<Entities> {
        Ok(Entities::from_entities(
            [Entity::new_no_attrs(
                uid(r#"Agent::"t1/a1""#)?,
                HashSet::from([uid(r#"Tenant::"t1""#)?]),
            )],
            None,
        )?)
    };
    let permit = "permit (principal, action, resource);\n";
    bench("permit only (floor)", permit, ents()?, true)?;
    bench("permit only, no args in context", permit, ents()?, false)?;
    bench(
        "set literal contains",
        &format!(
            "{permit}forbid (principal == Agent::\"t1/a1\", action == Action::\"call_tool\", resource) when {{ !([{list}].contains(context.tool)) }};"
        ),
        ents()?,
        true,
    )?;
    bench(
        "== chain",
        &format!(
            "{permit}forbid (principal == Agent::\"t1/a1\", action == Action::\"call_tool\", resource) when {{ !({chain}) }};"
        ),
        ents()?,
        true,
    )?;
    bench(
        "set literal, no args in context",
        &format!(
            "{permit}forbid (principal == Agent::\"t1/a1\", action == Action::\"call_tool\", resource) when {{ !([{list}].contains(context.tool)) }};"
        ),
        ents()?,
        false,
    )?;
    // Tools as entities, members of a per-agent allow group.
    let group = uid(r#"ToolSet::"t1/a1/r1""#)?;
    let mut es = vec![
        Entity::new_no_attrs(
            uid(r#"Agent::"t1/a1""#)?,
            HashSet::from([uid(r#"Tenant::"t1""#)?]),
        ),
        Entity::new_no_attrs(group.clone(), HashSet::new()),
    ];
    for t in ALLOWED {
        es.push(Entity::new_no_attrs(
            uid(&format!("Tool::\"{t}\""))?,
            HashSet::from([group.clone()]),
        ));
    }
    bench(
        "resource in ToolSet group (entities)",
        &format!(
            "{permit}forbid (principal == Agent::\"t1/a1\", action == Action::\"call_tool\", resource) unless {{ resource in ToolSet::\"t1/a1/r1\" }};"
        ),
        Entities::from_entities(es, None)?,
        true,
    )?;
    Ok(())
}
