//! Rego encoding 2, policy as code: every Charter rule becomes Rego rule bodies with its names
//! and values inline, each guarded by `input.tenant == "t1"`, `input.agent == "a1"`:
//! - a deny rule: one `violated` body per way its names can match (an exact-name set test
//!   `input.tool in {...}`, or one glob shape) plus its conditions;
//! - an allow-list: a helper rule `m<policy>_<rule>` that holds when the name matches, and
//!   `violated if { guard; not m.. }`;
//! - data-access rules add `input.operation` tests when they do not cover all operations.
//!
//! This is what one writes by hand for a few policies. Rego has no index over these guards here,
//! so the cost grows with the number of policies: the bench still runs it on the scaling series
//! to show where it stops being the faster encoding.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde_json::{Value as Json, json};

use super::{Encoded, condition_check};
use crate::glob::{Glob, Seps};
use crate::model::{Effect, Operation, Rule, Scenario};

fn lit(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

/// Conjunctions of body lines, one per way `subject` can match `patterns`.
fn alternatives(patterns: &[String], seps: Seps, subject: &str) -> Result<Vec<String>> {
    let mut exact = Vec::new();
    let mut alts = Vec::new();
    for p in patterns {
        match Glob::parse(p, seps)? {
            Glob::Exact(name) => exact.push(lit(&name)),
            Glob::OneStar { head, tail } => {
                let (hl, tl) = (head.chars().count(), tail.chars().count());
                let mut lines = Vec::new();
                if !head.is_empty() {
                    lines.push(format!("startswith({subject}, {})", lit(&head)));
                }
                if !tail.is_empty() {
                    lines.push(format!("endswith({subject}, {})", lit(&tail)));
                }
                lines.push(format!("n := count({subject})"));
                lines.push(format!("n >= {}", hl + tl));
                lines.push(format!(
                    "mid := substring({subject}, {hl}, n - {})",
                    hl + tl
                ));
                for c in seps.chars() {
                    lines.push(format!("not contains(mid, {})", lit(&c.to_string())));
                }
                alts.push(lines.join("\n\t"));
            }
            Glob::Under { lit: l, sep } => {
                alts.push(format!("{subject} == {}", lit(&l)));
                alts.push(format!(
                    "startswith({subject}, {})",
                    lit(&format!("{l}{sep}"))
                ));
            }
            Glob::EndsIn { lit: l, sep } => {
                alts.push(format!("{subject} == {}", lit(&l)));
                alts.push(format!(
                    "endswith({subject}, {})",
                    lit(&format!("{sep}{l}"))
                ));
            }
            Glob::Any => alts.push("true".to_owned()),
        }
    }
    match exact.len() {
        0 => {}
        1 => alts.insert(0, format!("{subject} == {}", exact[0])),
        _ => alts.insert(0, format!("{subject} in {{{}}}", exact.join(", "))),
    }
    Ok(alts)
}

pub fn encode(s: &Scenario) -> Result<Encoded> {
    let mut m = String::from(
        "package charter\n\nimport rego.v1\n\ndefault allow := false\n\nallow if not violated\n",
    );
    for (i, p) in s.policies.iter().enumerate() {
        let _ = write!(m, "\n# {}\n", p.name.replace('\n', " "));
        let scope = format!(
            "input.tenant == {}\n\tinput.agent == {}",
            lit(&p.tenant),
            lit(&p.agent)
        );
        for (j, rule) in p.rules.iter().enumerate() {
            let helper = format!("m{i}_{j}");
            match rule {
                Rule::Tool {
                    effect,
                    tools,
                    when,
                    ..
                } => {
                    let guard = format!("{scope}\n\tinput.kind == \"tool\"");
                    let alts = alternatives(tools, Seps::Tool, "input.tool")?;
                    match effect {
                        Effect::Deny => {
                            let conds: String = when
                                .iter()
                                .enumerate()
                                .map(|(k, c)| {
                                    condition_check(k, &c.arg, c.op, &c.value.to_string())
                                })
                                .collect();
                            for alt in alts {
                                let _ =
                                    write!(m, "\nviolated if {{\n\t{guard}\n\t{alt}{conds}\n}}\n");
                            }
                        }
                        Effect::Allow => {
                            if !when.is_empty() {
                                bail!(
                                    "the Rego encoding does not support conditions on allow rules"
                                );
                            }
                            for alt in alts {
                                let _ = write!(m, "\n{helper} if {{\n\t{alt}\n}}\n");
                            }
                            let _ = write!(m, "\nviolated if {{\n\t{guard}\n\tnot {helper}\n}}\n");
                        }
                    }
                }
                Rule::DataAccess {
                    effect,
                    resources,
                    operations,
                    ..
                } => {
                    let mut guard = format!("{scope}\n\tinput.kind == \"data\"");
                    if !Operation::ALL.iter().all(|o| operations.contains(o)) {
                        let ops: Vec<String> = operations.iter().map(|o| lit(o.as_str())).collect();
                        let _ = write!(guard, "\n\tinput.operation in {{{}}}", ops.join(", "));
                    }
                    let alts = alternatives(resources, Seps::Path, "input.resource")?;
                    match effect {
                        Effect::Deny => {
                            for alt in alts {
                                let _ = write!(m, "\nviolated if {{\n\t{guard}\n\t{alt}\n}}\n");
                            }
                        }
                        Effect::Allow => {
                            for alt in alts {
                                let _ = write!(m, "\n{helper} if {{\n\t{alt}\n}}\n");
                            }
                            let _ = write!(m, "\nviolated if {{\n\t{guard}\n\tnot {helper}\n}}\n");
                        }
                    }
                }
            }
        }
    }
    Ok(Encoded {
        data: json!({}),
        module: m,
    })
}

pub struct AsCode;

impl super::Encoding for AsCode {
    const INTERP_NAME: &'static str = "regorus interpreter, policy as code";
    const RVM_NAME: &'static str = "regorus RVM, policy as code";

    fn encode(s: &Scenario) -> Result<Encoded> {
        encode(s)
    }
}
