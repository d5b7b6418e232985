//! Where a refusal shows on a rule's form: the parser's JSON path (`tools[1]`,
//! `when[0].value`, `allow[1].from`, `match.kinds[0]`) mapped to the name of the form's input.

use crate::web::forms::FormErrors;

/// The fields whose JSON name is the form's input name (an entry of a list names the list's
/// box).
const PLAIN: [&str; 20] = [
    "id",
    "description",
    "effect",
    "tools",
    "resources",
    "operations",
    "labels",
    "limit",
    "window",
    "per",
    "max_usd",
    "period",
    "timezone",
    "max_run_duration",
    "channels",
    "deny_phrases",
    "deny_regex",
    "pii",
    "max_chars",
    "json_schema",
];

/// The input of the rule form that shows an error at the rule's JSON `path`; `None`: above the
/// form. A path under a policy's `rules[n]` (from the store) is read relative to the rule.
pub(crate) fn field_of(path: &str) -> Option<String> {
    let path = match path.strip_prefix("rules[") {
        Some(rest) => rest.split_once("].").map_or("", |(_, p)| p),
        None => path,
    };
    let head_end = path.find(['.', '[']).unwrap_or(path.len());
    let (head, rest) = path.split_at(head_end);
    if PLAIN.contains(&head) {
        return Some(head.to_owned());
    }
    match head {
        "match" if rest.starts_with(".tools") => Some("match_tools".to_owned()),
        "match" => Some("match_kinds".to_owned()),
        "when" | "allow" | "deny" => {
            let Some((index, within)) = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .filter(|(i, _)| i.parse::<usize>().is_ok())
            else {
                // The whole list (`at most 64 windows`): its fieldset.
                return Some(head.to_owned());
            };
            let within = within.strip_prefix('.').unwrap_or(within);
            let within_end = within.find(['.', '[']).unwrap_or(within.len());
            let field = match (head, &within[..within_end]) {
                ("when", "op") => "op",
                ("when", "value") => "value",
                // A condition as a whole (or its path): its argument's box.
                ("when", _) => "arg",
                (_, "days") => "days",
                (_, "from") => "from",
                // A window as a whole (`from` equal to `to`): its end's box.
                _ => "to",
            };
            Some(format!("{head}[{index}].{field}"))
        }
        _ => None,
    }
}

/// The errors of a refusal at `path`: beside its input, or above the form.
pub(crate) fn at(path: &str, message: String) -> FormErrors {
    match field_of(path) {
        Some(field) => FormErrors::one(field, message),
        None if path.is_empty() => FormErrors::above(message),
        None => FormErrors::above(format!("{path}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_land_beside_their_inputs() {
        for (path, field) in [
            ("tools[1]", Some("tools")),
            ("tools", Some("tools")),
            ("when[0].value", Some("when[0].value")),
            ("when[2].op", Some("when[2].op")),
            ("when[2].arg", Some("when[2].arg")),
            ("when[2]", Some("when[2].arg")),
            ("when", Some("when")),
            ("allow[1].from", Some("allow[1].from")),
            ("deny[0].days", Some("deny[0].days")),
            ("deny[0]", Some("deny[0].to")),
            ("match.kinds[0]", Some("match_kinds")),
            ("match.tools[3]", Some("match_tools")),
            ("max_usd", Some("max_usd")),
            ("json_schema", Some("json_schema")),
            ("deny_regex[2]", Some("deny_regex")),
            ("rules[4].id", Some("id")),
            ("type", None),
            ("", None),
        ] {
            assert_eq!(field_of(path).as_deref(), field, "{path}");
        }
        assert_eq!(at("", "x".into()).general(), Some("x"));
        assert_eq!(at("type", "x".into()).general(), Some("type: x"));
    }
}
