//! Every limit of outside input charter-core enforces (docs/operations.md, "Limits"): each
//! taken at exactly its value and refused one past it, with an error at the field's path whose
//! message names the limit. Nesting far past any limit is refused without recursion.

use charter_core::action::{self, Action};
use charter_core::engine::ArgsRead;
use charter_core::parse::{self, MAX_DEPTH, MAX_TEXT_DEPTH};
use charter_core::pattern::{MAX_REGEX_LEN, Pattern, REGEX_SIZE_LIMIT};
use charter_core::rule::{
    MAX_ARG_PATH, MAX_CONDITIONS, MAX_DESCRIPTION, MAX_IN_VALUES, MAX_LABEL, MAX_LIST, MAX_PHRASE,
    MAX_RULES, MAX_WINDOWS,
};
use charter_core::{ParseError, PolicyDefinition, PolicyDocument, ids, policy};
use serde_json::{Value, json};

/// Nesting far past every limit: a recursive parser or walk would overflow the stack.
const VERY_DEEP: usize = 100_000;

fn scope() -> Value {
    json!({"type": "agent", "tenant_id": "acme", "agent_id": "support"})
}

fn definition(rules: &Value) -> Result<(), ParseError> {
    PolicyDefinition::parse(&json!({"name": "Limits", "scope": scope(), "rules": rules})).map(drop)
}

fn one_rule(rule: &Value) -> Result<(), ParseError> {
    definition(&json!([rule]))
}

fn tool_rule(fields: &Value) -> Value {
    let mut rule = json!({"id": "r1", "type": "tool", "effect": "deny", "tools": ["x.*"]});
    for (k, v) in fields.as_object().unwrap() {
        rule[k] = v.clone();
    }
    rule
}

/// `levels` arrays, each holding the next, around `inner`.
fn nested(levels: usize, inner: Value) -> Value {
    (0..levels).fold(inner, |value, _| Value::Array(vec![value]))
}

/// `levels` objects deep, counting the innermost `{}`: a JSON Schema asking for arrays of
/// arrays `levels - 1` levels down (`{"type": "array", "items": ...}`).
fn nested_schema(levels: usize) -> Value {
    (1..levels).fold(
        json!({}),
        |inner, _| json!({"type": "array", "items": inner}),
    )
}

/// `levels` arrays as text, without building a value.
fn nested_text(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// Takes `make(max)`, refuses `make(max + 1)` at `path` with a message naming `max`.
#[track_caller]
fn boundary(what: &str, max: usize, path: &str, make: impl Fn(usize) -> Result<(), ParseError>) {
    if let Err(e) = make(max) {
        panic!("{what}: {max} is within the limit, refused with {e}");
    }
    let e = make(max + 1).expect_err(what);
    assert_eq!(e.path, path, "{what}: {e}");
    assert!(
        e.message.contains(&max.to_string()),
        "{what}: the message names the limit {max}: {e}"
    );
}

#[test]
fn every_policy_limit_takes_its_value_and_refuses_one_more() {
    boundary("rules per policy", MAX_RULES, "rules", |n| {
        definition(&Value::Array(
            (0..n)
                .map(|i| tool_rule(&json!({"id": format!("r{i}")})))
                .collect(),
        ))
    });
    boundary(
        "conditions per rule",
        MAX_CONDITIONS,
        "rules[0].when",
        |n| {
            let when: Vec<Value> = (0..n)
                .map(|_| json!({"arg": "to", "op": "exists"}))
                .collect();
            one_rule(&tool_rule(&json!({"when": when})))
        },
    );
    boundary("globs per rule", MAX_LIST, "rules[0].tools", |n| {
        let tools: Vec<String> = (0..n).map(|i| format!("t{i}.*")).collect();
        one_rule(&tool_rule(&json!({"tools": tools})))
    });
    boundary("patterns per rule", MAX_LIST, "rules[0].deny_regex", |n| {
        let patterns: Vec<String> = (0..n).map(|i| format!("secret{i}")).collect();
        one_rule(&json!({"id": "r1", "type": "output", "deny_regex": patterns}))
    });
    boundary("phrases per rule", MAX_LIST, "rules[0].deny_phrases", |n| {
        let phrases: Vec<String> = (0..n).map(|i| format!("phrase {i}")).collect();
        one_rule(&json!({"id": "r1", "type": "output", "deny_phrases": phrases}))
    });
    boundary("resources per rule", MAX_LIST, "rules[0].resources", |n| {
        let resources: Vec<String> = (0..n).map(|i| format!("hr/{i}/**")).collect();
        one_rule(
            &json!({"id": "r1", "type": "data_access", "effect": "deny", "resources": resources}),
        )
    });
    boundary(
        "values of `in`",
        MAX_IN_VALUES,
        "rules[0].when[0].value",
        |n| {
            let values: Vec<usize> = (0..n).collect();
            one_rule(&tool_rule(
                &json!({"when": [{"arg": "n", "op": "in", "value": values}]}),
            ))
        },
    );
    boundary("time windows", MAX_WINDOWS, "rules[0].allow", |n| {
        let window = json!({"days": ["mon"], "from": "09:00", "to": "17:00"});
        let allow: Vec<Value> = (0..n).map(|_| window.clone()).collect();
        one_rule(&json!({"id": "r1", "type": "time", "timezone": "UTC", "allow": allow}))
    });
    boundary(
        "regex length",
        MAX_REGEX_LEN,
        "rules[0].deny_regex[0]",
        |n| one_rule(&json!({"id": "r1", "type": "output", "deny_regex": ["a".repeat(n)]})),
    );
    boundary(
        "glob length",
        charter_core::glob::MAX_GLOB_LEN,
        "rules[0].tools[0]",
        |n| one_rule(&tool_rule(&json!({"tools": ["a".repeat(n)]}))),
    );
    boundary("argument path", MAX_ARG_PATH, "rules[0].when[0].arg", |n| {
        one_rule(&tool_rule(
            &json!({"when": [{"arg": "a".repeat(n), "op": "exists"}]}),
        ))
    });
    boundary(
        "phrase length",
        MAX_PHRASE,
        "rules[0].deny_phrases[0]",
        |n| one_rule(&json!({"id": "r1", "type": "output", "deny_phrases": ["a".repeat(n)]})),
    );
    boundary("label length", MAX_LABEL, "rules[0].labels[0]", |n| {
        one_rule(&json!({"id": "r1", "type": "data_access", "effect": "deny",
                        "resources": ["hr/**"], "labels": ["a".repeat(n)]}))
    });
    boundary("rule id", ids::MAX_ID_LEN, "rules[0].id", |n| {
        one_rule(&tool_rule(&json!({"id": "r".repeat(n)})))
    });
    boundary(
        "rule description",
        MAX_DESCRIPTION,
        "rules[0].description",
        |n| one_rule(&tool_rule(&json!({"description": "d".repeat(n)}))),
    );
    boundary("policy name", policy::MAX_NAME, "name", |n| {
        PolicyDefinition::parse(&json!({"name": "n".repeat(n), "scope": scope()})).map(drop)
    });
    boundary(
        "policy description",
        policy::MAX_DESCRIPTION,
        "description",
        |n| {
            PolicyDefinition::parse(
                &json!({"name": "P", "description": "d".repeat(n), "scope": scope()}),
            )
            .map(drop)
        },
    );
    boundary(
        "condition value depth",
        MAX_DEPTH,
        "rules[0].when[0].value",
        |n| {
            one_rule(&tool_rule(
                &json!({"when": [{"arg": "a", "op": "eq", "value": nested(n, json!(1))}]}),
            ))
        },
    );
    boundary(
        "output schema depth",
        MAX_DEPTH,
        "rules[0].json_schema",
        |n| one_rule(&json!({"id": "r1", "type": "output", "json_schema": nested_schema(n)})),
    );
    boundary(
        "documents per import",
        charter_core::document::MAX_DOCUMENTS,
        "",
        |n| {
            let document = json!({"format": "charter.policy/v1", "name": "P", "scope": scope()});
            let many = Value::Array((0..n).map(|_| document.clone()).collect());
            PolicyDocument::parse_many(&many.to_string()).map(drop)
        },
    );
}

#[test]
fn a_regex_too_large_once_compiled_is_refused() {
    let error = Pattern::new(r"\w{1000}\w{1000}").unwrap_err();
    assert!(error.contains("too large once compiled"), "{error}");
    assert!(error.contains(&REGEX_SIZE_LIMIT.to_string()), "{error}");
    let e = one_rule(&json!({"id": "r1", "type": "output", "deny_regex": [r"\w{1000}\w{1000}"]}))
        .unwrap_err();
    assert_eq!(e.path, "rules[0].deny_regex[0]");
}

/// A tool call whose `args` hold `{"a": inner}`.
fn call(inner: &Value) -> Value {
    json!({"kind": "tool_call", "tool": "kb.search", "args": {"a": inner}})
}

/// Parses an action every way one is parsed: from a value, from text, and from text for
/// policies that do not read its arguments (which are checked, not built).
fn every_way(action: &Value) -> Vec<Result<Action, ParseError>> {
    let text = action.to_string();
    vec![
        Action::parse(action),
        Action::from_json(&text),
        Action::from_json_reading(&text, &ArgsRead::of([])),
    ]
}

#[test]
fn every_action_limit_takes_its_value_and_refuses_one_more() {
    // `args` is the first level, `{"a": ...}`'s value the second.
    boundary("args depth", MAX_DEPTH, "args", |n| {
        let results = every_way(&call(&nested(n - 1, json!("x"))));
        let errors: Vec<_> = results.into_iter().filter_map(Result::err).collect();
        match errors.first() {
            None => Ok(()),
            Some(e) => {
                assert_eq!(errors.len(), 3, "every way agrees: {errors:?}");
                assert!(errors.iter().all(|other| other == e), "{errors:?}");
                Err(e.clone())
            }
        }
    });
    boundary("tool name", action::MAX_NAME, "tool", |n| {
        Action::parse(&json!({"kind": "tool_call", "tool": "t".repeat(n)})).map(drop)
    });
    boundary("resource path", action::MAX_RESOURCE, "resource", |n| {
        let resource = "r".repeat(n);
        Action::parse(&json!({"kind": "data_access", "resource": resource, "operation": "read"}))
            .map(drop)
    });
    boundary("labels", action::MAX_LABELS, "labels", |n| {
        let labels: Vec<String> = (0..n).map(|i| format!("l{i}")).collect();
        Action::parse(
            &json!({"kind": "data_access", "resource": "hr/x", "operation": "read", "labels": labels}),
        )
        .map(drop)
    });
}

#[test]
fn a_value_nested_within_the_limit_is_checked_and_kept() {
    let deepest = call(&nested(MAX_DEPTH - 2, json!("x")));
    for parsed in every_way(&deepest) {
        parsed.unwrap();
    }
    // `check_depth` counts the value's own array or object as the first level.
    parse::check_depth(&nested(MAX_DEPTH, json!(1)), "v").unwrap();
    let e = parse::check_depth(&nested(MAX_DEPTH + 1, json!(1)), "v").unwrap_err();
    assert_eq!(e.path, "v");
    parse::check_depth(&json!("scalars have no depth"), "v").unwrap();
}

#[test]
fn text_nested_past_the_parsers_limit_is_refused_without_recursion() {
    let depth_error = |e: &ParseError| {
        assert!(
            e.message
                .contains(&format!("at most {MAX_TEXT_DEPTH} levels")),
            "{e}"
        );
    };
    // The parser's own limit, exactly.
    parse::json(nested_text(MAX_TEXT_DEPTH).as_bytes()).unwrap();
    depth_error(&parse::json(nested_text(MAX_TEXT_DEPTH + 1).as_bytes()).unwrap_err());

    let deep = nested_text(VERY_DEEP);
    depth_error(&parse::json(deep.as_bytes()).unwrap_err());
    // In an action's arguments, read or not.
    let action = format!(r#"{{"kind":"tool_call","tool":"kb.search","args":{{"a":{deep}}}}}"#);
    depth_error(&Action::from_json(&action).unwrap_err());
    depth_error(&Action::from_json_reading(&action, &ArgsRead::of([])).unwrap_err());
    // In a policy document's output schema and a condition's value.
    let schema = format!(
        r#"{{"format":"charter.policy/v1","name":"P","scope":{},"rules":[{{"id":"r1","type":"output","json_schema":{{"items":{deep}}}}}]}}"#,
        scope()
    );
    depth_error(&PolicyDocument::parse_many(&schema).unwrap_err());
    let condition = format!(
        r#"{{"format":"charter.policy/v1","name":"P","scope":{},"rules":[{{"id":"r1","type":"tool","effect":"deny","tools":["x"],"when":[{{"arg":"a","op":"eq","value":{deep}}}]}}]}}"#,
        scope()
    );
    depth_error(&PolicyDocument::parse_many(&condition).unwrap_err());
}

#[test]
fn a_schema_at_the_depth_limit_validates_outputs_as_deep_as_text_goes() {
    use charter_core::engine::{CompiledSet, Outcome, RunContext};
    use charter_core::policy::{Policy, Status};
    use charter_core::{LineageId, PolicyId};
    // Every level of an output down to the schema's last must be an array.
    let definition = PolicyDefinition::parse(&json!({
        "name": "Deep", "scope": scope(),
        "rules": [{"id": "r1", "type": "output", "json_schema": nested_schema(MAX_DEPTH)}]
    }))
    .unwrap();
    let mut policy = Policy::draft(
        PolicyId::new("pol_deep").unwrap(),
        LineageId::new("lin_deep").unwrap(),
        definition,
        jiff::Timestamp::UNIX_EPOCH,
    );
    policy.status = Status::Active;
    let set = CompiledSet::compile([&policy]).unwrap();
    let context = RunContext {
        tenant_id: "acme",
        agent_id: "support",
        run_id: "run_1",
        run_started_at: jiff::Timestamp::UNIX_EPOCH,
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    let output = |text: String| Action::parse(&json!({"kind": "output", "text": text})).unwrap();
    let mut limits = charter_core::limits::MemoryLimits::default();
    let deepest = output(nested_text(MAX_TEXT_DEPTH));
    let decision = set
        .evaluate(&deepest, &context)
        .settle(&mut limits, context.now);
    assert_eq!(
        decision.outcome,
        Outcome::Allow,
        "{:?}",
        decision.violations
    );
    let not_array = output(format!("{}1{}", "[".repeat(10), "]".repeat(10)));
    let decision = set
        .evaluate(&not_array, &context)
        .settle(&mut limits, context.now);
    assert_eq!(decision.outcome, Outcome::Block);
}
