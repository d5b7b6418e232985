//! `/docs`: the API reference, rendered by the server from the OpenAPI document the API serves.
//!
//! Why not Swagger UI: it sets inline styles (React `style` attributes), which the workspace's
//! CSP forbids, and loosening `style-src` for one page is a hole for every page an attacker can
//! steer there. This page needs no script at all: it is plain HTML, searchable with the
//! browser's find, with an anchor per operation and per schema.
//!
//! The page is built from [`crate::schemas::openapi`], the same value `GET /v1/openapi.json`
//! serializes (walked in its serialized form, so it reads exactly what clients read), once per
//! process: the document is fixed at compile time.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value};

use crate::state::AppState;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// Deeper schemas are cut here (nothing in the document nests this far: `$ref`s are linked,
/// never expanded, so there are no cycles to follow).
const MAX_DEPTH: usize = 8;

/// The methods of a path item, in the order they are shown.
const METHODS: [&str; 8] = [
    "get", "put", "post", "patch", "delete", "head", "options", "trace",
];

/// A piece of prose: plain text, or `code` where the document had backticks.
pub(crate) struct Segment {
    /// The text, escaped by the template.
    pub(crate) text: String,
    /// Whether it was between backticks.
    pub(crate) code: bool,
}

/// Text whose backtick spans become `<code>`, without ever trusting it as HTML.
fn prose(text: &str) -> Vec<Segment> {
    text.split('`')
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| Segment {
            text: s.to_owned(),
            code: i % 2 == 1,
        })
        .collect()
}

/// One line of a schema: a property (or the schema itself, items, a variant) at a depth.
pub(crate) struct Row {
    /// Indentation, 0 to [`MAX_DEPTH`] (a CSS class: no inline style under the CSP).
    pub(crate) depth: usize,
    /// The property's name, or a word for what the line is (`items`, `option 1`).
    pub(crate) name: String,
    /// Whether the enclosing object requires the property.
    pub(crate) required: bool,
    /// The type, as words (`string`, `array of`, `integer or null`).
    pub(crate) kind: String,
    /// The component the type names, linked to its anchor.
    pub(crate) link: Option<String>,
    /// Format, bounds, pattern, allowed values, default.
    pub(crate) constraints: String,
    /// The schema's description.
    pub(crate) description: Vec<Segment>,
}

/// A schema shown as rows.
pub(crate) struct Shape {
    /// The rows, the schema itself first.
    pub(crate) rows: Vec<Row>,
}

/// A parameter of an operation.
pub(crate) struct Param {
    /// Where it goes: `path`, `query`, `header`, `cookie`.
    pub(crate) location: String,
    /// Its name, whether it must be given, its type, constraints and description.
    pub(crate) row: Row,
}

/// A request body or an answer's content.
pub(crate) struct Body {
    /// The media type (`application/json`).
    pub(crate) media: String,
    /// The component the schema is, when it is a `$ref`.
    pub(crate) component: Option<String>,
    /// Its schema's rows (a referenced component's own, one level deep); `None` for the
    /// error body, told once in its own section rather than under every answer.
    pub(crate) shape: Option<Shape>,
}

/// An answer of an operation.
pub(crate) struct Answer {
    /// The status code (`200`, `4XX`, `default`).
    pub(crate) status: String,
    /// `ok` for 1xx–3xx, `err` otherwise: a CSS class.
    pub(crate) class: &'static str,
    /// What it means.
    pub(crate) description: Vec<Segment>,
    /// Its content, per media type.
    pub(crate) bodies: Vec<Body>,
}

/// One operation: a method on a path.
pub(crate) struct Operation {
    /// Its anchor: `op-` and the operation id (or method and path when it has none).
    pub(crate) anchor: String,
    /// The method, upper case.
    pub(crate) method: String,
    /// The path template.
    pub(crate) path: String,
    /// Its summary.
    pub(crate) summary: String,
    /// Its description.
    pub(crate) description: Vec<Segment>,
    /// Whether it asks for the bearer key.
    pub(crate) authenticated: bool,
    /// Its parameters.
    pub(crate) params: Vec<Param>,
    /// Its request body, per media type.
    pub(crate) request: Vec<Body>,
    /// Whether the request body is required.
    pub(crate) request_required: bool,
    /// Its answers, in the document's order.
    pub(crate) answers: Vec<Answer>,
}

/// The operations of a tag.
pub(crate) struct Group {
    /// The tag.
    pub(crate) name: String,
    /// The tag's description.
    pub(crate) description: Vec<Segment>,
    /// Its operations, by path then method.
    pub(crate) operations: Vec<Operation>,
}

/// A named component schema.
pub(crate) struct Component {
    /// Its name (and anchor: `schema-` and the name).
    pub(crate) name: String,
    /// Its rows.
    pub(crate) shape: Shape,
}

/// A security scheme.
pub(crate) struct Scheme {
    /// Its name in the document.
    pub(crate) name: String,
    /// `http bearer`, `apiKey`...
    pub(crate) kind: String,
    /// What it is.
    pub(crate) description: Vec<Segment>,
}

/// Everything the page shows, built once from the document.
pub(crate) struct Reference {
    /// The API's title.
    pub(crate) title: String,
    /// Its version.
    pub(crate) version: String,
    /// The OpenAPI version of the document.
    pub(crate) openapi: String,
    /// The API's description.
    pub(crate) description: Vec<Segment>,
    /// The security schemes.
    pub(crate) schemes: Vec<Scheme>,
    /// The operations grouped by tag.
    pub(crate) groups: Vec<Group>,
    /// The error body every refusal carries, when the document names one.
    pub(crate) error: Option<Component>,
    /// Every component schema, by name.
    pub(crate) components: Vec<Component>,
    /// How many operations the document has.
    pub(crate) operation_count: usize,
}

/// The reference of the API this binary serves.
static REFERENCE: LazyLock<Reference> = LazyLock::new(|| {
    // Serializing the document cannot fail (its maps have string keys); an empty reference
    // would be visible on the page and in the tests, never a panic in a request.
    let doc = serde_json::to_value(crate::schemas::openapi()).unwrap_or(Value::Null);
    Reference::build(&doc)
});

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn obj(v: &Value, key: &str) -> Option<Map<String, Value>> {
    v.get(key).and_then(Value::as_object).cloned()
}

/// The component a `$ref` names: `#/components/schemas/Policy` → `Policy`.
fn ref_name(v: &Value) -> Option<String> {
    v.get("$ref")
        .and_then(Value::as_str)
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
}

/// A JSON value as a person reads it: strings without quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The schema inside `X or null` (a `oneOf`/`anyOf` of a schema and `{"type": "null"}`, how
/// an `Option` is written in 3.1), which reads better as one line than as two options.
fn nullable(schema: &Value) -> Option<&Value> {
    let is_null = |v: &Value| v.as_object().is_some_and(|o| o.len() == 1) && v["type"] == "null";
    ["oneOf", "anyOf"].iter().find_map(|key| {
        let variants = schema.get(*key)?.as_array()?;
        match variants.as_slice() {
            [a, b] if is_null(a) => Some(b),
            [a, b] if is_null(b) => Some(a),
            _ => None,
        }
    })
}

/// The type words of a schema, and the component it names if any.
fn kind(schema: &Value) -> (String, Option<String>) {
    if let Some(name) = ref_name(schema) {
        return (name.clone(), Some(name));
    }
    if let Some(inner) = nullable(schema) {
        let (inner, link) = kind(inner);
        return (format!("{inner} or null"), link);
    }
    let words = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().map(plain).collect(),
            _ => Vec::new(),
        }
    };
    let mut types = schema.get("type").map(words).unwrap_or_default();
    if let Some(items) = schema.get("items")
        && let Some(pos) = types.iter().position(|t| t == "array")
    {
        let (inner, link) = kind(items);
        types[pos] = format!("array of {inner}");
        let kind = types.join(" or ");
        return (kind, link);
    }
    for (key, word) in [
        ("oneOf", "one of"),
        ("anyOf", "any of"),
        ("allOf", "all of"),
    ] {
        if schema.get(key).is_some() {
            types.push(word.to_owned());
        }
    }
    if types.is_empty() {
        if schema.get("const").is_some() {
            types.push("constant".to_owned());
        } else if schema.get("enum").is_some() {
            types.push("enum".to_owned());
        } else {
            types.push("any".to_owned());
        }
    }
    (types.join(" or "), None)
}

/// Format, bounds, pattern, allowed values and default, in words.
fn constraints(schema: &Value) -> String {
    let mut out = Vec::new();
    if let Some(f) = schema.get("format") {
        out.push(format!("format {}", plain(f)));
    }
    for (key, word) in [
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("multipleOf", "multiple of"),
    ] {
        if let Some(v) = schema.get(key) {
            out.push(format!("{word} {}", plain(v)));
        }
    }
    if schema.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        out.push("unique items".to_owned());
    }
    if let Some(p) = schema.get("pattern") {
        out.push(format!("pattern {}", plain(p)));
    }
    if let Some(c) = schema.get("const") {
        out.push(format!("always {}", plain(c)));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(plain).collect();
        out.push(format!("one of: {}", values.join(", ")));
    }
    if let Some(d) = schema.get("default") {
        // An empty string would read as nothing at all.
        let d = match d {
            Value::String(s) if s.is_empty() => "\"\"".to_owned(),
            other => plain(other),
        };
        out.push(format!("default {d}"));
    }
    out.join("; ")
}

/// One row for `schema` itself.
fn row(schema: &Value, name: String, required: bool, depth: usize) -> Row {
    let (kind, link) = kind(schema);
    let inner = nullable(schema).unwrap_or(schema);
    let mut description = prose(&text(schema, "description"));
    if description.is_empty() {
        description = prose(&text(inner, "description"));
    }
    let mut bounds = constraints(schema);
    if bounds.is_empty() {
        bounds = constraints(inner);
    }
    Row {
        depth: depth.min(MAX_DEPTH),
        name,
        required,
        kind,
        link,
        constraints: bounds,
        description,
    }
}

/// `schema` and what it contains, depth first: properties, map values, items, variants.
fn rows(schema: &Value, name: String, required: bool, depth: usize, out: &mut Vec<Row>) {
    out.push(row(schema, name, required, depth));
    // `X or null` is one line; what X contains follows it.
    let schema = nullable(schema).unwrap_or(schema);
    if depth >= MAX_DEPTH || ref_name(schema).is_some() {
        return;
    }
    let next = depth + 1;
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let needed: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (prop, sub) in props {
            rows(
                sub,
                prop.clone(),
                needed.contains(&prop.as_str()),
                next,
                out,
            );
        }
    }
    if let Some(extra) = schema.get("additionalProperties")
        && extra.is_object()
    {
        rows(extra, "{any key}".to_owned(), false, next, out);
    }
    // Items already named in the type (`array of Policy`) need no line of their own.
    if let Some(items) = schema.get("items")
        && ref_name(items).is_none()
        && (items.get("properties").is_some()
            || items.get("oneOf").is_some()
            || items.get("anyOf").is_some()
            || items.get("allOf").is_some())
    {
        rows(items, "items".to_owned(), false, next, out);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            for (i, variant) in variants.iter().enumerate() {
                rows(variant, format!("option {}", i + 1), false, next, out);
            }
        }
    }
}

fn shape(schema: &Value, name: &str) -> Shape {
    let mut out = Vec::new();
    rows(schema, name.to_owned(), false, 0, &mut out);
    Shape { rows: out }
}

/// The error body's component: every refusal carries it.
const ERROR_BODY: &str = "ErrorBody";

/// The contents of a body, a `$ref` shown as the component's own fields (whose own `$ref`s
/// stay links), so a reader sees what to send without leaving the operation.
fn bodies(content: Option<Map<String, Value>>, schemas: &Value) -> Vec<Body> {
    content
        .unwrap_or_default()
        .into_iter()
        .map(|(media, m)| {
            let schema = m.get("schema").unwrap_or(&Value::Null);
            let component = ref_name(schema);
            let shape = match component.as_deref() {
                Some(ERROR_BODY) => None,
                Some(name) => Some(match schemas.get(name) {
                    Some(target) => {
                        let mut shape = shape(target, name);
                        if let Some(first) = shape.rows.first_mut() {
                            first.link = Some(name.to_owned());
                        }
                        shape
                    }
                    None => shape(schema, "body"),
                }),
                None => Some(shape(schema, "body")),
            };
            Body {
                media,
                component,
                shape,
            }
        })
        .collect()
}

impl Reference {
    /// The reference of `doc`, an OpenAPI 3.x document as JSON.
    fn build(doc: &Value) -> Reference {
        let info = doc.get("info").unwrap_or(&Value::Null);
        let mut groups: Vec<Group> = doc
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| Group {
                name: text(t, "name"),
                description: prose(&text(t, "description")),
                operations: Vec::new(),
            })
            .collect();
        let global_security = doc
            .get("security")
            .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()));
        let schemas = doc.pointer("/components/schemas").unwrap_or(&Value::Null);
        let mut operation_count = 0;
        for (path, item) in obj(doc, "paths").unwrap_or_default() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                operation_count += 1;
                let tag = op
                    .get("tags")
                    .and_then(Value::as_array)
                    .and_then(|t| t.first())
                    .and_then(Value::as_str)
                    .unwrap_or("other")
                    .to_owned();
                let operation = operation(&path, method, op, &item, global_security, schemas);
                match groups.iter_mut().find(|g| g.name == tag) {
                    Some(group) => group.operations.push(operation),
                    None => groups.push(Group {
                        name: tag,
                        description: Vec::new(),
                        operations: vec![operation],
                    }),
                }
            }
        }
        groups.retain(|g| !g.operations.is_empty());
        let components: Vec<Component> = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, schema)| Component {
                name: name.clone(),
                shape: shape(schema, name),
            })
            .collect();
        let error = doc
            .pointer("/components/schemas")
            .and_then(|s| s.get(ERROR_BODY))
            .map(|schema| Component {
                name: ERROR_BODY.to_owned(),
                shape: shape(schema, ERROR_BODY),
            });
        let schemes = obj(
            doc.pointer("/components").unwrap_or(&Value::Null),
            "securitySchemes",
        )
        .unwrap_or_default()
        .into_iter()
        .map(|(name, s)| Scheme {
            kind: [text(&s, "type"), text(&s, "scheme")]
                .join(" ")
                .trim()
                .to_owned(),
            description: prose(&text(&s, "description")),
            name,
        })
        .collect();
        Reference {
            title: text(info, "title"),
            version: text(info, "version"),
            openapi: text(doc, "openapi"),
            description: prose(&text(info, "description")),
            schemes,
            groups,
            error,
            components,
            operation_count,
        }
    }
}

/// The anchor of an operation: its id, or its method and path made anchor-safe.
pub(crate) fn anchor(method: &str, path: &str, op: &Value) -> String {
    let id = op
        .get("operationId")
        .and_then(Value::as_str)
        .map_or_else(|| format!("{method}{path}"), str::to_owned);
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("op-{safe}")
}

fn operation(
    path: &str,
    method: &str,
    op: &Value,
    item: &Value,
    global: bool,
    schemas: &Value,
) -> Operation {
    // Path-level parameters apply to every method unless the operation redefines them.
    let mut params: Vec<Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for shared in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let same = |p: &Value| {
            text(p, "name") == text(shared, "name") && text(p, "in") == text(shared, "in")
        };
        if !params.iter().any(same) {
            params.push(shared.clone());
        }
    }
    let params = params
        .iter()
        .map(|p| {
            let required = p.get("required").and_then(Value::as_bool) == Some(true);
            let mut row = row(
                p.get("schema").unwrap_or(&Value::Null),
                text(p, "name"),
                required,
                0,
            );
            let own = prose(&text(p, "description"));
            if !own.is_empty() {
                row.description = own;
            }
            Param {
                location: text(p, "in"),
                row,
            }
        })
        .collect();
    let body = op.get("requestBody").unwrap_or(&Value::Null);
    let answers = obj(op, "responses")
        .unwrap_or_default()
        .into_iter()
        .map(|(status, a)| Answer {
            class: if status.starts_with(['1', '2', '3']) {
                "ok"
            } else {
                "err"
            },
            description: prose(&text(&a, "description")),
            bodies: bodies(obj(&a, "content"), schemas),
            status,
        })
        .collect();
    let authenticated = match op.get("security").and_then(Value::as_array) {
        // `security: [{}]` (an empty requirement) means "none needed".
        Some(reqs) => reqs
            .iter()
            .any(|r| r.as_object().is_some_and(|o| !o.is_empty())),
        None => global,
    };
    Operation {
        anchor: anchor(method, path, op),
        method: method.to_uppercase(),
        path: path.to_owned(),
        summary: text(op, "summary"),
        description: prose(&text(op, "description")),
        authenticated,
        params,
        request: bodies(obj(body, "content"), schemas),
        request_required: body.get("required").and_then(Value::as_bool) == Some(true),
        answers,
    }
}

/// The API reference page.
#[derive(Template)]
#[template(path = "reference.html", blocks = ["content"])]
struct ReferencePage {
    chrome: Chrome,
    reference: &'static Reference,
}

render::page!(ReferencePage);

/// `GET /docs`: the API reference.
pub(crate) async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, WebError> {
    let chrome = Chrome::load(&state, &visitor, "docs", uri.path().to_owned()).await?;
    Ok(render::respond(
        StatusCode::OK,
        is_htmx(&headers),
        &ReferencePage {
            chrome,
            reference: &REFERENCE,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_spans() {
        let s = prose("a `b` c");
        let parts: Vec<(&str, bool)> = s.iter().map(|s| (s.text.as_str(), s.code)).collect();
        assert_eq!(parts, [("a ", false), ("b", true), (" c", false)]);
    }

    #[test]
    fn a_nullable_ref_names_its_component() {
        let schema = serde_json::json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Policy"}]});
        let mut out = Vec::new();
        rows(&schema, "p".to_owned(), true, 0, &mut out);
        assert_eq!(out.len(), 1, "one line");
        assert_eq!(out[0].kind, "Policy or null");
        assert_eq!(out[0].link.as_deref(), Some("Policy"));
    }

    #[test]
    fn arrays_of_components_are_one_line() {
        let schema = serde_json::json!({"type": "array", "items": {"$ref": "#/components/schemas/Rule"}, "maxItems": 3});
        let r = row(&schema, "rules".to_owned(), false, 0);
        assert_eq!(
            (r.kind.as_str(), r.link.as_deref()),
            ("array of Rule", Some("Rule"))
        );
        assert_eq!(r.constraints, "max items 3");
    }

    #[test]
    fn every_operation_of_the_served_document_is_built() {
        assert!(REFERENCE.operation_count > 0);
        let shown: usize = REFERENCE.groups.iter().map(|g| g.operations.len()).sum();
        assert_eq!(shown, REFERENCE.operation_count);
    }
}
