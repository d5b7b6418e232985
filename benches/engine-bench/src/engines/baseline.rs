//! The hand-written lower bound: hash maps/sets and string operations, no engine. It is generic
//! over the scenario (per-agent rule lists, exact names in a `HashSet`, the glob shapes matched
//! with `starts_with`/`ends_with`), and it is the oracle every other engine must agree with.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde_json::Value;

use super::Engine;
use crate::glob::{Glob, Seps};
use crate::model::{Action, CondOp, Condition, Effect, Request, Rule, Scenario};

pub struct Baseline;

pub struct BaselineSet {
    /// tenant → agent → rules of every policy scoped to that agent.
    tenants: HashMap<String, HashMap<String, Vec<BRule>>>,
}

struct NameSet {
    exact: HashSet<String>,
    globs: Vec<Glob>,
}

impl NameSet {
    fn new(patterns: &[String], seps: Seps) -> Result<NameSet> {
        let mut exact = HashSet::new();
        let mut globs = Vec::new();
        for p in patterns {
            match Glob::parse(p, seps)? {
                Glob::Exact(lit) => {
                    exact.insert(lit);
                }
                g => globs.push(g),
            }
        }
        Ok(NameSet { exact, globs })
    }

    fn matches(&self, s: &str, seps: Seps) -> bool {
        self.exact.contains(s) || self.globs.iter().any(|g| g.matches(s, seps))
    }
}

enum BRule {
    Tool {
        effect: Effect,
        names: NameSet,
        when: Vec<Condition>,
    },
    Data {
        effect: Effect,
        names: NameSet,
        ops: [bool; 3],
    },
}

/// Three-valued condition result: a missing argument is `False`; a value the op cannot handle
/// is `Error`, which fails closed (a deny fires, an allow's condition is unmet).
#[derive(PartialEq, Eq)]
enum Tri {
    True,
    False,
    Error,
}

fn eval_condition(c: &Condition, args: &Value) -> Tri {
    let Some(v) = args.get(&c.arg) else {
        return Tri::False;
    };
    let b = match c.op {
        CondOp::EndsWith | CondOp::NotEndsWith => {
            let (Some(s), Some(suffix)) = (v.as_str(), c.value.as_str()) else {
                return Tri::Error;
            };
            s.ends_with(suffix) == (c.op == CondOp::EndsWith)
        }
        CondOp::Gt => match (v.as_i64(), c.value.as_i64()) {
            (Some(a), Some(b)) => a > b,
            _ => match (v.as_f64(), c.value.as_f64()) {
                (Some(a), Some(b)) => a > b,
                _ => return Tri::Error,
            },
        },
    };
    if b { Tri::True } else { Tri::False }
}

impl BRule {
    fn violated(&self, action: &Action) -> bool {
        match (self, action) {
            (
                BRule::Tool {
                    effect,
                    names,
                    when,
                },
                Action::ToolCall { tool, args },
            ) => {
                let hit = names.matches(tool, Seps::Tool);
                match effect {
                    Effect::Deny => {
                        hit && when.iter().all(|c| eval_condition(c, args) != Tri::False)
                    }
                    Effect::Allow => {
                        !hit || when.iter().any(|c| eval_condition(c, args) != Tri::True)
                    }
                }
            }
            (
                BRule::Data { effect, names, ops },
                Action::DataAccess {
                    resource,
                    operation,
                },
            ) => {
                ops[operation.index()]
                    && (names.matches(resource, Seps::Path) == (*effect == Effect::Deny))
            }
            _ => false,
        }
    }
}

impl Engine for Baseline {
    const NAME: &'static str = "hand-written Rust (baseline)";
    type Compiled = BaselineSet;
    type Input = Request;

    fn compile(s: &Scenario) -> Result<BaselineSet> {
        let mut tenants: HashMap<String, HashMap<String, Vec<BRule>>> = HashMap::new();
        for p in &s.policies {
            let rules = tenants
                .entry(p.tenant.clone())
                .or_default()
                .entry(p.agent.clone())
                .or_default();
            for r in &p.rules {
                rules.push(match r {
                    Rule::Tool {
                        effect,
                        tools,
                        when,
                        ..
                    } => BRule::Tool {
                        effect: *effect,
                        names: NameSet::new(tools, Seps::Tool)?,
                        when: when.clone(),
                    },
                    Rule::DataAccess {
                        effect,
                        resources,
                        operations,
                        ..
                    } => {
                        let mut ops = [false; 3];
                        for o in operations {
                            ops[o.index()] = true;
                        }
                        BRule::Data {
                            effect: *effect,
                            names: NameSet::new(resources, Seps::Path)?,
                            ops,
                        }
                    }
                });
            }
        }
        Ok(BaselineSet { tenants })
    }

    fn prepare(_: &BaselineSet, r: &Request) -> Result<Request> {
        Ok(r.clone())
    }

    fn decide(c: &BaselineSet, r: &Request) -> Result<bool> {
        let rules = c
            .tenants
            .get(&r.tenant)
            .and_then(|agents| agents.get(&r.agent));
        Ok(rules.is_none_or(|rules| !rules.iter().any(|rule| rule.violated(&r.action))))
    }
}
