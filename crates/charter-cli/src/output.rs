//! Rendering answers: aligned tables for people, the server's JSON for scripts.

use std::fmt::Write as _;

use serde_json::Value;

/// A cell of a JSON object, as text (`-` when absent).
pub(crate) fn cell(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// A table of `rows` with `columns` (header, JSON pointer).
pub(crate) fn table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, p)| cell(row, p)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, values: Vec<&str>| {
        let parts: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, columns.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

/// The common view of a policy.
pub(crate) const POLICY_COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("VERSION", "/version"),
    ("STATUS", "/status"),
    ("REVISION", "/revision"),
    ("SCOPE", "/scope/type"),
    ("TENANT", "/scope/tenant_id"),
    ("AGENT", "/scope/agent_id"),
    ("NAME", "/name"),
];
