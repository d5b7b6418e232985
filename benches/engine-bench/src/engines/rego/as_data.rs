//! Rego encoding 1, policy as data: a data document keyed by tenant and agent
//! (`data.charter.agents[input.tenant][input.agent]`, one lookup per request instead of one Rego
//! rule per policy; the usual way to run many tenants' policies in OPA) holds each agent's rules
//! in a flat, pre-merged form, and a module generated for the scenario (only the rule bodies
//! whose features occur in it) evaluates them:
//! - unconditional tool denies of an agent are merged: `tde` (exact names, a set-like object:
//!   one hash lookup) and `tdg` (globs);
//! - tool allow-lists (`ta`, one entry per rule: every one must match), conditional tool denies
//!   grouped by condition signature (`tc0`, `tc1`, ...: arguments and ops fixed in the module,
//!   values from data);
//! - data-access denies merged per operation (`dd`), data-access allow-lists per operation (`da`).
//!
//! A first, generic version (one module iterating every rule of the agent through helper
//! functions, globs as `regex.match`) was 4–6× slower on the RVM.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde_json::{Map, Value as Json, json};

use super::{Encoded, condition_check};
use crate::glob::{Glob, Seps};
use crate::model::{CondOp, Effect, Rule, Scenario};

/// Glob functions: `<name>(gs, s)` holds when `s` matches one of the globs of group `gs`
/// (`o`: one-star `head*tail`, `u`: `lit<sep>**`, `e`: `**<sep>lit`, `any`: `**`). Only the
/// bodies for shapes that occur in the scenario are emitted.
fn glob_functions(name: &str, seps: Seps, shapes: Shapes) -> String {
    let no_sep: String = seps
        .chars()
        .iter()
        .map(|c| format!("\n\tnot contains(mid, \"{c}\")"))
        .collect();
    let mut out = String::new();
    if shapes.one_star {
        let _ = write!(
            out,
            "\n{name}(gs, s) if {{\n\tsome g in gs.o\n\tstartswith(s, g.h)\n\tendswith(s, g.t)\n\
             \tn := count(s)\n\tn >= g.n\n\tmid := substring(s, g.hl, n - g.n){no_sep}\n}}\n"
        );
    }
    if shapes.under {
        let _ = write!(
            out,
            "\n{name}(gs, s) if {{\n\tsome g in gs.u\n\ts == g.l\n}}\n"
        );
        let _ = write!(
            out,
            "\n{name}(gs, s) if {{\n\tsome g in gs.u\n\tstartswith(s, g.p)\n}}\n"
        );
    }
    if shapes.ends_in {
        let _ = write!(
            out,
            "\n{name}(gs, s) if {{\n\tsome g in gs.e\n\ts == g.l\n}}\n"
        );
        let _ = write!(
            out,
            "\n{name}(gs, s) if {{\n\tsome g in gs.e\n\tendswith(s, g.s)\n}}\n"
        );
    }
    if shapes.any {
        let _ = write!(out, "\n{name}(gs, _) if gs.any\n");
    }
    out
}

/// Which glob shapes occur.
#[derive(Default, Clone, Copy)]
struct Shapes {
    one_star: bool,
    under: bool,
    ends_in: bool,
    any: bool,
}

impl Shapes {
    fn merge(&mut self, n: &Names) {
        self.one_star |= !n.one_star.is_empty();
        self.under |= !n.under.is_empty();
        self.ends_in |= !n.ends_in.is_empty();
        self.any |= n.any;
    }
}

/// A group of names: `e` (exact, set-like object) and `g` (globs by shape).
#[derive(Default)]
struct Names {
    exact: Map<String, Json>,
    one_star: Vec<Json>,
    under: Vec<Json>,
    ends_in: Vec<Json>,
    any: bool,
}

impl Names {
    fn add(&mut self, patterns: &[String], seps: Seps) -> Result<()> {
        for p in patterns {
            match Glob::parse(p, seps)? {
                Glob::Exact(lit) => {
                    self.exact.insert(lit, Json::Bool(true));
                }
                Glob::OneStar { head, tail } => {
                    let (hl, tl) = (head.chars().count(), tail.chars().count());
                    self.one_star
                        .push(json!({"h": head, "t": tail, "hl": hl, "n": hl + tl}));
                }
                Glob::Under { lit, sep } => {
                    self.under
                        .push(json!({"l": lit, "p": format!("{lit}{sep}")}));
                }
                Glob::EndsIn { lit, sep } => {
                    self.ends_in
                        .push(json!({"l": lit, "s": format!("{sep}{lit}")}));
                }
                Glob::Any => self.any = true,
            }
        }
        Ok(())
    }

    fn has_exact(&self) -> bool {
        !self.exact.is_empty()
    }

    fn has_globs(&self) -> bool {
        !(self.one_star.is_empty() && self.under.is_empty() && self.ends_in.is_empty()) || self.any
    }

    fn to_json(&self) -> Json {
        let mut g = Map::new();
        for (k, v) in [
            ("o", &self.one_star),
            ("u", &self.under),
            ("e", &self.ends_in),
        ] {
            if !v.is_empty() {
                g.insert(k.into(), Json::Array(v.clone()));
            }
        }
        if self.any {
            g.insert("any".into(), Json::Bool(true));
        }
        json!({"e": self.exact, "g": g})
    }
}

/// Which rule bodies the module needs.
#[derive(Default)]
struct Features {
    deny_exact: bool,
    deny_globs: bool,
    allow: bool,
    allow_globs: bool,
    /// Per condition signature: (any exact names, any globs).
    cond: Vec<(bool, bool)>,
    data_deny_exact: bool,
    data_deny_globs: bool,
    data_allow: bool,
    data_allow_globs: bool,
    tool_shapes: Shapes,
    path_shapes: Shapes,
}

type Signature = Vec<(String, CondOp)>;

pub fn encode(s: &Scenario) -> Result<Encoded> {
    let mut f = Features::default();
    let mut signatures: Vec<Signature> = Vec::new();
    let mut agents: BTreeMap<&str, BTreeMap<&str, Map<String, Json>>> = BTreeMap::new();

    let mut by_agent: BTreeMap<(&str, &str), Vec<&Rule>> = BTreeMap::new();
    for p in &s.policies {
        by_agent
            .entry((p.tenant.as_str(), p.agent.as_str()))
            .or_default()
            .extend(p.rules.iter());
    }
    for ((tenant, agent), rules) in by_agent {
        let mut deny = Names::default();
        let mut allow = Vec::new();
        let mut cond: BTreeMap<usize, Vec<Json>> = BTreeMap::new();
        let mut data_deny: BTreeMap<&str, Names> = BTreeMap::new();
        let mut data_allow: BTreeMap<&str, Vec<Json>> = BTreeMap::new();
        for rule in rules {
            match rule {
                Rule::Tool {
                    effect: Effect::Deny,
                    tools,
                    when,
                    ..
                } if when.is_empty() => {
                    deny.add(tools, Seps::Tool)?;
                    f.tool_shapes.merge(&deny);
                }
                Rule::Tool {
                    effect: Effect::Allow,
                    tools,
                    when,
                    ..
                } if when.is_empty() => {
                    let mut names = Names::default();
                    names.add(tools, Seps::Tool)?;
                    f.tool_shapes.merge(&names);
                    f.allow = true;
                    f.allow_globs |= names.has_globs();
                    allow.push(names.to_json());
                }
                Rule::Tool {
                    effect: Effect::Deny,
                    tools,
                    when,
                    ..
                } => {
                    let sig: Signature = when.iter().map(|c| (c.arg.clone(), c.op)).collect();
                    let k = match signatures.iter().position(|x| *x == sig) {
                        Some(k) => k,
                        None => {
                            signatures.push(sig);
                            f.cond.push((false, false));
                            signatures.len() - 1
                        }
                    };
                    let mut names = Names::default();
                    names.add(tools, Seps::Tool)?;
                    f.tool_shapes.merge(&names);
                    f.cond[k].0 |= names.has_exact();
                    f.cond[k].1 |= names.has_globs();
                    let mut entry = names.to_json();
                    entry["v"] = Json::Array(when.iter().map(|c| c.value.clone()).collect());
                    cond.entry(k).or_default().push(entry);
                }
                Rule::Tool {
                    effect: Effect::Allow,
                    ..
                } => {
                    bail!("the Rego encoding does not support conditions on allow rules")
                }
                Rule::DataAccess {
                    effect: Effect::Deny,
                    resources,
                    operations,
                    ..
                } => {
                    for op in operations {
                        let names = data_deny.entry(op.as_str()).or_default();
                        names.add(resources, Seps::Path)?;
                        f.path_shapes.merge(names);
                    }
                }
                Rule::DataAccess {
                    effect: Effect::Allow,
                    resources,
                    operations,
                    ..
                } => {
                    let mut names = Names::default();
                    names.add(resources, Seps::Path)?;
                    f.path_shapes.merge(&names);
                    f.data_allow = true;
                    f.data_allow_globs |= names.has_globs();
                    for op in operations {
                        data_allow
                            .entry(op.as_str())
                            .or_default()
                            .push(names.to_json());
                    }
                }
            }
        }
        let mut p = Map::new();
        if deny.has_exact() {
            f.deny_exact = true;
            p.insert("tde".into(), Json::Object(deny.exact.clone()));
        }
        if deny.has_globs() {
            f.deny_globs = true;
            p.insert("tdg".into(), deny.to_json()["g"].clone());
        }
        if !allow.is_empty() {
            p.insert("ta".into(), Json::Array(allow));
        }
        for (k, entries) in cond {
            p.insert(format!("tc{k}"), Json::Array(entries));
        }
        if !data_deny.is_empty() {
            let mut dd = Map::new();
            for (op, names) in data_deny {
                f.data_deny_exact |= names.has_exact();
                f.data_deny_globs |= names.has_globs();
                dd.insert(op.to_owned(), names.to_json());
            }
            p.insert("dd".into(), Json::Object(dd));
        }
        if !data_allow.is_empty() {
            let da: Map<String, Json> = data_allow
                .into_iter()
                .map(|(op, v)| (op.to_owned(), Json::Array(v)))
                .collect();
            p.insert("da".into(), Json::Object(da));
        }
        agents.entry(tenant).or_default().insert(agent, p);
    }
    Ok(Encoded {
        data: json!({"charter": {"agents": agents}}),
        module: module_text(&f, &signatures),
    })
}

fn condition_lines(sig: &Signature) -> String {
    sig.iter()
        .enumerate()
        .map(|(i, (arg, op))| condition_check(i, arg, *op, &format!("r.v[{i}]")))
        .collect()
}

fn module_text(f: &Features, signatures: &[Signature]) -> String {
    let mut m = String::from(
        "package charter\n\nimport rego.v1\n\ndefault allow := false\n\nallow if not violated\n\n\
         agent_rules := data.charter.agents[input.tenant][input.agent]\n",
    );
    let tool = "violated if {\n\tinput.kind == \"tool\"";
    let data = "violated if {\n\tinput.kind == \"data\"";
    if f.deny_exact {
        let _ = write!(m, "\n{tool}\n\tagent_rules.tde[input.tool]\n}}\n");
    }
    if f.deny_globs {
        let _ = write!(
            m,
            "\n{tool}\n\ttool_glob(agent_rules.tdg, input.tool)\n}}\n"
        );
    }
    if f.allow {
        let globs = if f.allow_globs {
            "\n\tnot tool_glob(a.g, input.tool)"
        } else {
            ""
        };
        let _ = write!(
            m,
            "\n{tool}\n\tsome a in agent_rules.ta\n\tnot a.e[input.tool]{globs}\n}}\n"
        );
    }
    for (k, (sig, (exact, globs))) in signatures.iter().zip(&f.cond).enumerate() {
        let conds = condition_lines(sig);
        if *exact {
            let _ = write!(
                m,
                "\n{tool}\n\tsome r in agent_rules.tc{k}\n\tr.e[input.tool]{conds}\n}}\n"
            );
        }
        if *globs {
            let _ = write!(
                m,
                "\n{tool}\n\tsome r in agent_rules.tc{k}\n\ttool_glob(r.g, input.tool){conds}\n}}\n"
            );
        }
    }
    if f.data_deny_exact {
        let _ = write!(
            m,
            "\n{data}\n\tagent_rules.dd[input.operation].e[input.resource]\n}}\n"
        );
    }
    if f.data_deny_globs {
        let _ = write!(
            m,
            "\n{data}\n\tpath_glob(agent_rules.dd[input.operation].g, input.resource)\n}}\n"
        );
    }
    if f.data_allow {
        let globs = if f.data_allow_globs {
            "\n\tnot path_glob(a.g, input.resource)"
        } else {
            ""
        };
        let _ = write!(
            m,
            "\n{data}\n\tsome a in agent_rules.da[input.operation]\n\tnot a.e[input.resource]{globs}\n}}\n"
        );
    }
    m.push_str(&glob_functions("tool_glob", Seps::Tool, f.tool_shapes));
    m.push_str(&glob_functions("path_glob", Seps::Path, f.path_shapes));
    m
}

pub struct AsData;

impl super::Encoding for AsData {
    const INTERP_NAME: &'static str = "regorus interpreter, policy as data";
    const RVM_NAME: &'static str = "regorus RVM, policy as data";

    fn encode(s: &Scenario) -> Result<Encoded> {
        encode(s)
    }
}
