//! Conditions on tool-call arguments, compiled and evaluated with product.md §4's semantics:
//! arrays element by element (any element for deny, every element for allow), a missing
//! argument makes a condition false, and a value an op cannot handle fails closed.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Number, Value};

use super::clip;
use super::matcher::{MatcherBuilder, NameMatcher, SetCache};
use crate::glob::{Glob, GlobKind};
use crate::pattern::{ToolGlob, build_regex};
use crate::policy::Policy;
use crate::rule::{ArgPath, Condition, Op, RuleKind};

/// A condition ready to evaluate.
#[derive(Debug)]
pub(super) struct CompiledCondition {
    arg: ArgPath,
    op: Op,
    operand: Operand,
}

#[derive(Debug)]
enum Operand {
    None,
    Value(Value),
    Values(Vec<Value>),
    Glob(Box<Glob>),
    Regex(Regex),
    Number(Number),
    Text(String),
}

/// How a deny or an allow rule reads a condition over several values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quantifier {
    /// Deny rules: the condition holds if any element satisfies it (or cannot be evaluated).
    Any,
    /// Allow rules: the condition holds only if every element satisfies it.
    Every,
}

/// The result of a condition, with the value that decided it.
#[derive(Debug)]
pub(super) enum Verdict {
    /// The condition holds; `witness` is the value that made it hold.
    Holds { witness: Option<String> },
    /// The condition does not hold; `witness` is the value that made it fail.
    Fails { witness: Option<String> },
    /// A value could not be evaluated (wrong type); `message` says why. Deny rules treat this
    /// as holding, allow rules as failing.
    Error { message: String, witness: String },
}

impl CompiledCondition {
    /// Compiles a checked condition (its value was checked against its op when parsed).
    pub(super) fn compile(condition: &Condition) -> Result<CompiledCondition, String> {
        let value = condition.value.clone();
        let operand = match (condition.op, value) {
            (Op::Exists | Op::NotExists, _) => Operand::None,
            (Op::Eq | Op::Ne, Some(v)) => Operand::Value(v),
            (Op::In | Op::NotIn, Some(Value::Array(vs))) => Operand::Values(vs),
            (Op::Glob | Op::NotGlob, Some(Value::String(p))) => {
                let glob = Glob::new(&p, GlobKind::Path).map_err(|e| e.to_string())?;
                glob.prepare().map_err(|e| e.to_string())?;
                Operand::Glob(Box::new(glob))
            }
            (Op::Regex | Op::NotRegex, Some(Value::String(p))) => Operand::Regex(build_regex(&p)?),
            (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Some(Value::Number(n))) => Operand::Number(n),
            (Op::Contains | Op::EndsWith | Op::NotEndsWith, Some(Value::String(s))) => {
                Operand::Text(s)
            }
            (op, _) => return Err(format!("`{}` has no usable value", op.as_str())),
        };
        Ok(CompiledCondition {
            arg: condition.arg.clone(),
            op: condition.op,
            operand,
        })
    }

    /// A readable form for messages: `to not_ends_with "@acme.com"`.
    pub(super) fn describe(&self) -> String {
        let value = match &self.operand {
            Operand::None => String::new(),
            Operand::Value(v) => format!(" {v}"),
            Operand::Values(vs) => format!(" {}", Value::Array(vs.clone())),
            Operand::Glob(g) => format!(" {:?}", g.as_str()),
            Operand::Regex(r) => format!(" {:?}", r.as_str()),
            Operand::Number(n) => format!(" {n}"),
            Operand::Text(t) => format!(" {t:?}"),
        };
        clip(&format!("{} {}{value}", self.arg, self.op.as_str()))
    }

    /// Evaluates the condition on a call's arguments.
    pub(super) fn evaluate(&self, args: &Map<String, Value>, quantifier: Quantifier) -> Verdict {
        let mut found = Vec::new();
        resolve(args, &self.arg, &mut found);
        match self.op {
            Op::Exists => {
                return if found.is_empty() {
                    Verdict::Fails { witness: None }
                } else {
                    Verdict::Holds { witness: None }
                };
            }
            Op::NotExists => {
                return if found.is_empty() {
                    Verdict::Holds { witness: None }
                } else {
                    Verdict::Fails {
                        witness: found.first().map(|v| display(v)),
                    }
                };
            }
            _ => {}
        }
        if found.is_empty() {
            return Verdict::Fails { witness: None };
        }
        // Arrays are read element by element: one bad recipient among many must not pass.
        let mut elements: Vec<&Value> = Vec::with_capacity(found.len());
        for value in found {
            match value {
                Value::Array(items) => elements.extend(items.iter()),
                other => elements.push(other),
            }
        }
        match quantifier {
            Quantifier::Any => {
                let mut error = None;
                for element in &elements {
                    match self.test(element) {
                        Ok(true) => {
                            return Verdict::Holds {
                                witness: Some(display(element)),
                            };
                        }
                        Ok(false) => {}
                        Err(message) => {
                            error.get_or_insert((message, display(element)));
                        }
                    }
                }
                match error {
                    Some((message, witness)) => Verdict::Error { message, witness },
                    None => Verdict::Fails { witness: None },
                }
            }
            Quantifier::Every => {
                for element in &elements {
                    match self.test(element) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Verdict::Fails {
                                witness: Some(display(element)),
                            };
                        }
                        Err(message) => {
                            return Verdict::Error {
                                message,
                                witness: display(element),
                            };
                        }
                    }
                }
                Verdict::Holds { witness: None }
            }
        }
    }

    /// Tests one value; `Err` says why the op cannot evaluate it.
    fn test(&self, value: &Value) -> Result<bool, String> {
        let op = self.op.as_str();
        let needs = |what: &str| {
            Err(format!(
                "`{op}` cannot evaluate {} (it needs {what}); failing closed",
                crate::parse::kind_of(value)
            ))
        };
        match (&self.operand, value) {
            (Operand::Value(expected), _) => Ok(json_eq(value, expected) == (self.op == Op::Eq)),
            (Operand::Values(list), _) => {
                let found = list.iter().any(|candidate| json_eq(value, candidate));
                Ok(found == (self.op == Op::In))
            }
            (Operand::Glob(glob), Value::String(s)) => {
                Ok(glob.is_match(s) == (self.op == Op::Glob))
            }
            (Operand::Regex(regex), Value::String(s)) => {
                Ok(regex.is_match(s) == (self.op == Op::Regex))
            }
            (Operand::Text(text), Value::String(s)) => Ok(match self.op {
                Op::Contains => s.contains(text.as_str()),
                Op::EndsWith => s.ends_with(text.as_str()),
                _ => !s.ends_with(text.as_str()),
            }),
            (Operand::Number(bound), Value::Number(n)) => {
                let Some(ordering) = compare_numbers(n, bound) else {
                    return needs("a comparable number");
                };
                Ok(match self.op {
                    Op::Lt => ordering == Ordering::Less,
                    Op::Lte => ordering != Ordering::Greater,
                    Op::Gt => ordering == Ordering::Greater,
                    _ => ordering != Ordering::Less,
                })
            }
            (Operand::Number(_), _) => needs("a number"),
            (Operand::Glob(_) | Operand::Regex(_) | Operand::Text(_), _) => needs("a string"),
            (Operand::None, _) => Ok(true),
        }
    }
}

/// Collects the values at `path`, walking arrays met on the way (a numeric segment indexes).
fn resolve<'v>(args: &'v Map<String, Value>, path: &ArgPath, out: &mut Vec<&'v Value>) {
    let mut segments = path.segments();
    let Some(first) = segments.next() else {
        return;
    };
    let Some(start) = args.get(first) else {
        return;
    };
    let mut current = vec![start];
    for segment in segments {
        let mut next = Vec::new();
        for value in current {
            step(value, segment, &mut next);
        }
        if next.is_empty() {
            return;
        }
        current = next;
    }
    out.extend(current);
}

fn step<'v>(value: &'v Value, segment: &str, out: &mut Vec<&'v Value>) {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(segment) {
                out.push(v);
            }
        }
        Value::Array(items) => {
            if let Ok(i) = segment.parse::<usize>() {
                if let Some(v) = items.get(i) {
                    out.push(v);
                }
            } else {
                for item in items {
                    step(item, segment, out);
                }
            }
        }
        _ => {}
    }
}

/// JSON equality where values of different types are unequal and numbers compare by value
/// (`1` equals `1.0`).
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}

/// Compares two JSON numbers exactly when both are integers, else as `f64`.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    // One side is a u64 above i64::MAX and the other negative, or a float is involved.
    match (a.as_u64(), b.as_i64()) {
        (Some(_), Some(y)) if y < 0 => return Some(Ordering::Greater),
        _ => {}
    }
    match (a.as_i64(), b.as_u64()) {
        (Some(x), Some(_)) if x < 0 => return Some(Ordering::Less),
        _ => {}
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// A value as shown in a matching input: strings bare, anything else as JSON, clipped.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => clip(s),
        other => clip(&other.to_string()),
    }
}

/// The tools whose call arguments some policies read: those named by a tool rule with
/// conditions, the only rules that look at arguments. A reader of recorded actions for these
/// policies alone (Validate) can check the other calls' arguments without building them: they
/// decide nothing.
#[derive(Debug, Clone, Default)]
pub struct ArgsRead(Reads);

#[derive(Debug, Clone, Default)]
enum Reads {
    /// Every tool's (the default, and what any other reader needs).
    #[default]
    All,
    /// Tools that match these globs (sorted, each once).
    Only {
        globs: Box<[String]>,
        matcher: Arc<NameMatcher>,
    },
}

impl ArgsRead {
    /// Every tool's arguments.
    #[must_use]
    pub fn all() -> ArgsRead {
        ArgsRead(Reads::All)
    }

    /// The arguments that these policies' rules read.
    pub fn of<'p>(policies: impl IntoIterator<Item = &'p Policy>) -> ArgsRead {
        let mut globs: Vec<&Glob> = Vec::new();
        for policy in policies {
            for rule in policy.rules() {
                // Every kind named, so a new one that reads arguments must say so here.
                match &rule.kind {
                    RuleKind::Tool(tool) => {
                        if !tool.when.is_empty() {
                            globs.extend(tool.tools.iter().map(ToolGlob::glob));
                        }
                    }
                    RuleKind::DataAccess(_)
                    | RuleKind::Rate(_)
                    | RuleKind::Cost(_)
                    | RuleKind::Time(_)
                    | RuleKind::Output(_) => {}
                }
            }
        }
        globs.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        globs.dedup_by(|a, b| a.as_str() == b.as_str());
        let mut builder = MatcherBuilder::default();
        for glob in &globs {
            builder.add(glob, 0);
        }
        // Globs that compiled in their rules compile here; if not, reading everything is
        // only slower.
        match builder.build(&mut SetCache::default()) {
            Ok(matcher) => ArgsRead(Reads::Only {
                globs: globs.iter().map(|g| g.as_str().to_owned()).collect(),
                matcher: Arc::new(matcher),
            }),
            Err(_) => ArgsRead::all(),
        }
    }

    /// Whether a call of `tool` has its arguments read.
    pub fn reads(&self, tool: &str) -> bool {
        match &self.0 {
            Reads::All => true,
            Reads::Only { matcher, .. } => matcher.any(tool),
        }
    }
}

impl PartialEq for ArgsRead {
    fn eq(&self, other: &ArgsRead) -> bool {
        match (&self.0, &other.0) {
            (Reads::All, Reads::All) => true,
            (Reads::Only { globs: a, .. }, Reads::Only { globs: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for ArgsRead {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(value: Value) -> CompiledCondition {
        let c: Condition = serde_json::from_value(value).unwrap();
        CompiledCondition::compile(&c).unwrap()
    }

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn any_element_for_deny_every_element_for_allow() {
        let c = cond(json!({"arg": "to", "op": "not_ends_with", "value": "@acme.com"}));
        let a = args(json!({"to": ["a@acme.com", "bob@gmail.com"]}));
        match c.evaluate(&a, Quantifier::Any) {
            Verdict::Holds { witness } => assert_eq!(witness.as_deref(), Some("bob@gmail.com")),
            other => panic!("{other:?}"),
        }
        let c = cond(json!({"arg": "to", "op": "ends_with", "value": "@acme.com"}));
        assert!(matches!(
            c.evaluate(&a, Quantifier::Every),
            Verdict::Fails { .. }
        ));
    }

    #[test]
    fn nested_paths_walk_arrays() {
        let c = cond(json!({"arg": "msg.rcpt.email", "op": "eq", "value": "x@y.z"}));
        let a = args(json!({"msg": {"rcpt": [{"email": "a@b.c"}, {"email": "x@y.z"}]}}));
        assert!(matches!(
            c.evaluate(&a, Quantifier::Any),
            Verdict::Holds { .. }
        ));
        let c = cond(json!({"arg": "msg.rcpt.0.email", "op": "eq", "value": "x@y.z"}));
        assert!(matches!(
            c.evaluate(&a, Quantifier::Any),
            Verdict::Fails { .. }
        ));
    }

    #[test]
    fn wrong_types_fail_closed() {
        let c = cond(json!({"arg": "n", "op": "gt", "value": 3}));
        assert!(matches!(
            c.evaluate(&args(json!({"n": "7"})), Quantifier::Any),
            Verdict::Error { .. }
        ));
        assert!(matches!(
            c.evaluate(&args(json!({"n": 7})), Quantifier::Any),
            Verdict::Holds { .. }
        ));
        assert!(matches!(
            c.evaluate(&args(json!({})), Quantifier::Any),
            Verdict::Fails { .. }
        ));
    }

    #[test]
    fn arguments_are_read_for_the_tools_of_conditional_tool_rules() {
        let policy = |rules: Value| {
            let definition = crate::policy::PolicyDefinition::parse(&json!({
                "name": "p", "scope": {"type": "platform"}, "rules": rules}))
            .unwrap();
            Policy::draft(
                crate::ids::PolicyId::new("pol_1").unwrap(),
                crate::ids::LineageId::new("lin_1").unwrap(),
                definition,
                jiff::Timestamp::UNIX_EPOCH,
            )
        };
        let p = policy(json!([
            {"id": "mail", "type": "tool", "effect": "deny", "tools": ["*.send_email", "sms.send"],
             "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
            {"id": "shell", "type": "tool", "effect": "deny", "tools": ["shell.**"]},
            {"id": "rate", "type": "rate", "limit": 5, "window": "1m", "per": "run",
             "match": {"tools": ["kb.*"]}}]));
        let read = ArgsRead::of([&p]);
        assert!(read.reads("gmail.send_email") && read.reads("sms.send"));
        assert!(!read.reads("shell.exec") && !read.reads("kb.search") && !read.reads("sms"));
        assert_eq!(read, ArgsRead::of([&p, &p]));
        assert_ne!(read, ArgsRead::all());
        let allow = policy(
            json!([{"id": "a", "type": "tool", "effect": "allow", "tools": ["**"],
            "when": [{"arg": "n", "op": "lt", "value": 3}]}]),
        );
        assert!(ArgsRead::of([&allow]).reads("anything.at.all"));
        assert!(!ArgsRead::of([]).reads("gmail.send_email"));
        assert!(ArgsRead::all().reads("gmail.send_email"));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert_eq!(
            compare_numbers(&Number::from(u64::MAX), &Number::from(-1)),
            Some(Ordering::Greater)
        );
    }
}
