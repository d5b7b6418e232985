//! Rendering answers: aligned tables for people, the server's JSON for scripts.

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
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, p)| cell(row, p)).collect())
        .collect();
    grid(&headers, &cells)
}

/// An aligned table of text cells under `headers`.
pub(crate) fn grid(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = line(headers, &widths);
    for row in rows {
        out.push_str(&line(row, &widths));
    }
    out
}

/// One line of a table, each cell padded to at least its width. A stream's lines are
/// printed before the next row exists, so their widths are fixed beforehand and a longer
/// cell pushes the rest of its line.
pub(crate) fn line<S: AsRef<str>>(cells: &[S], widths: &[usize]) -> String {
    let parts: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{:<w$}", c.as_ref()))
        .collect();
    format!("{}\n", parts.join("  ").trim_end())
}

/// An instant of the API as `2026-12-05T10:00:00Z`: whole seconds, so rows line up; the
/// text as given when it is not one.
pub(crate) fn instant(text: &str) -> String {
    text.parse::<jiff::Timestamp>().map_or_else(
        |_| text.to_owned(),
        |at| at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
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
