//! The OpenAPI 3.1 document of API v1 (`GET /v1/openapi.json`), generated from the code.
//!
//! Bodies are described by the types that are sent and parsed: charter-store's answer types
//! derive `utoipa::ToSchema`, the server's composed answers are types the handlers serialize
//! through (`crate::answers`, errors in `crate::error`), request bodies derive their schemas on
//! the types the handlers parse, and charter-core's types carry their own JSON Schema
//! (`schemars`: rules, scopes, the policy document, a new policy's definition, a stored
//! version, a replay's report), whose roots and `$defs` become components here
//! ([`core_schemas`]).
//!
//! What is still described by hand here, and why: an action (parsed by hand by `Action::parse`,
//! whose tagged, flattened shape no derive closes as the parser does), a decision's violations
//! (charter-core serializes `Violation` by hand; the decision around them is the handler's own
//! type), the enum of rule types, and the Monitor's query parameters (one query type serves
//! three routes that each refuse some of its fields). The answers test (`tests/it/answers.rs`)
//! validates real answers against these, so a drift fails it.

#![allow(
    dead_code,
    reason = "these types exist only to describe bodies to utoipa; they are never built"
)]

use std::borrow::Cow;

use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};

use crate::api;

/// `POST /v1/policies/import`: one document or an array of documents, all or nothing.
pub(crate) struct ImportBody;

impl PartialSchema for ImportBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "One policy document, or an array of them (imported all or nothing).",
            ))
            .item(Ref::from_schema_name("PolicyDocument"))
            .item(
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("PolicyDocument"))
                    .min_items(Some(1)),
            )
            .into()
    }
}

impl ToSchema for ImportBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("PolicyDocument".to_owned(), CorePolicyDocument::schema()));
    }
}

/// A rule's type.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RuleType {
    /// Which tools may be called, with which arguments.
    Tool,
    /// Which resources may be read, written or deleted.
    DataAccess,
    /// How many matching actions in a rolling window.
    Rate,
    /// How much spend in a period.
    Cost,
    /// When, and for how long.
    Time,
    /// What text may leave the platform.
    Output,
}

/// Declares an action's schema (product.md §3): one object per kind, tagged by `kind`, each
/// closed to unknown fields as the parser is (see [`closed`]); the fields given are added to
/// every kind (an imported action's `at` and `decision`). `$kinds` is the derived enum, `$name`
/// the component.
macro_rules! action_schema {
    ($(#[$meta:meta])* $name:ident / $kinds:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                closed($kinds::schema())
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$kinds as ToSchema>::schemas(schemas);
            }
        }

        $(#[$meta])*
        #[derive(ToSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub(crate) enum $kinds {
            /// A call to a tool.
            ToolCall {
                $($extra)*
                /// The tool's name, e.g. `gmail.send_email` (1–256 characters, no control characters).
                #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")]
                tool: String,
                /// The call's arguments (default `{}`).
                #[serde(default)]
                #[schema(value_type = Option<Object>)]
                args: Value,
                /// The spend the action will incur (default 0).
                #[serde(default)]
                #[schema(value_type = Option<CoreMoney>)]
                cost_usd: Value,
            },
            /// A read, write or delete of a resource.
            DataAccess {
                $($extra)*
                /// The resource, a `/`-separated path, e.g. `crm/customers/42/ssn` (at most
                /// 2048 characters; normalised).
                #[schema(min_length = 1, max_length = 2048, pattern = "^[^\\x00]+$")]
                resource: String,
                /// What the access does.
                #[schema(value_type = CoreOperation)]
                operation: Value,
                /// Labels of the data, e.g. `pii`, `region:us` (at most 64).
                #[serde(default)]
                #[schema(max_items = 64)]
                labels: Option<Vec<String>>,
                /// The spend the action will incur (default 0).
                #[serde(default)]
                #[schema(value_type = Option<CoreMoney>)]
                cost_usd: Value,
            },
            /// Text about to leave the platform.
            Output {
                $($extra)*
                /// The text.
                #[schema(pattern = "^[^\\x00]*$")]
                text: String,
                /// Where it goes, e.g. `email`, `chat` (1–256 characters, no control characters).
                #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")]
                channel: Option<String>,
                /// The spend the action will incur (default 0).
                #[serde(default)]
                #[schema(value_type = Option<CoreMoney>)]
                cost_usd: Value,
            },
            /// A call to a model.
            ModelCall {
                $($extra)*
                /// The model, e.g. `openai/gpt-4o` (1–256 characters, no control characters).
                #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")]
                model: String,
                /// Tokens sent (default 0).
                #[serde(default)]
                input_tokens: Option<u64>,
                /// Tokens received (default 0).
                #[serde(default)]
                output_tokens: Option<u64>,
                /// The spend the action will incur (default 0).
                #[serde(default)]
                #[schema(value_type = Option<CoreMoney>)]
                cost_usd: Value,
            },
        }
    };
}

action_schema! {
    /// One step of a run, as asked about: a `kind` and the kind's fields. `cost_usd` is a
    /// decimal string (or JSON number) at least 0 with at most 6 decimal places; recorded
    /// actions show it as a string, and only when it is not 0.
    Action / ActionKinds {}
}

action_schema! {
    /// One recorded action of an imported run: an action with the time it happened and,
    /// optionally, what the source system decided.
    ImportedAction / ImportedActionKinds {
        /// When it happened (RFC 3339): actions are in time order, none before the run's
        /// `started_at`.
        #[schema(value_type = String, format = DateTime)]
        at: String,
        /// What the source system decided, if known (feeds Validate's "already blocked").
        #[serde(default)]
        #[schema(value_type = Option<CoreOutcome>)]
        decision: Value,
    }
}

/// A `oneOf` whose objects take no other fields: utoipa closes a struct with
/// `deny_unknown_fields`, not the variants of an enum.
fn closed(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::OneOf(mut one_of)) = schema else {
        return schema;
    };
    for item in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = item {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
    RefOr::T(Schema::OneOf(one_of))
}

/// One violated rule of a refused action.
#[derive(ToSchema)]
pub(crate) struct Violation {
    /// The policy version.
    policy_id: String,
    /// Its name.
    policy_name: String,
    /// Its version number.
    policy_version: u32,
    /// Its lineage.
    lineage_id: String,
    /// The rule's id.
    rule_id: String,
    /// The rule's type.
    rule_type: RuleType,
    /// The policy's scope.
    #[schema(value_type = CoreScope)]
    scope: Value,
    /// `block` or `halt`.
    decision: CoreOutcome,
    /// Why, for people.
    message: String,
    /// The part of the input that matched, with personal data masked.
    matching_input: Option<String>,
}

/// The Monitor's filters, shared by `GET /v1/violations`, its stats and its stream (whose
/// handlers read one query struct and refuse, each, the parameters that are not theirs: so
/// each route's parameters are listed here).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ViolationFilters {
    /// Only this policy version.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    policy_id: Option<String>,
    /// Only this lineage.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    lineage_id: Option<String>,
    /// Only this agent's.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    agent_id: Option<String>,
    /// Only this tenant's (a tenant key sees only its own: another tenant's id matches nothing).
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
    /// Only this run's.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    run_id: Option<String>,
    /// Only this rule type.
    #[param(value_type = Option<RuleType>)]
    rule_type: Option<String>,
    /// Only this decision: `block` or `halt`.
    #[param(pattern = "^(block|halt)$")]
    decision: Option<String>,
    /// At or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// The page of `GET /v1/violations`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ViolationPaging {
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}~[A-Za-z0-9_.:-]{0,128}$")]
    cursor: Option<String>,
    /// Page size: 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The bucket of `GET /v1/violations/stats`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsParams {
    /// The bucket's length (default `1h`); at most 10,000 buckets per answer.
    #[param(value_type = Option<CoreSpan>)]
    bucket: Option<String>,
}

/// Marker types naming the core's schemas, so fields and bodies can refer to them; each is the
/// core's own schema (see [`core_schemas`]).
macro_rules! core_schema {
    ($($ty:ident => $name:literal),* $(,)?) => {$(
        #[doc = concat!("The core's `", $name, "` schema.")]
        pub(crate) struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T(core_schema($name))
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    )*};
}

core_schema! {
    CoreNewPolicy => "NewPolicy",
    CorePolicy => "PolicyVersion",
    CoreReplayReport => "ReplayReport",
    CoreOutcome => "Outcome",
    CoreRule => "Rule",
    CoreScope => "Scope",
    CoreStatus => "Status",
    CorePolicyDocument => "PolicyDocument",
    CoreActionKind => "ActionKind",
    CoreMoney => "Money",
    CoreOperation => "Operation",
    CoreSpan => "Span",
}

/// One of the core's schemas by name (an empty schema if there is none: the test of the
/// committed document would show it).
fn core_schema(name: &str) -> Schema {
    core_schemas()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

/// API v1, as routed by [`crate::router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Charter API",
        version = "v1",
        description = "Charter's HTTP API v1: a control plane for AI agents. Every request but \
                       /healthz, /metrics and /v1/openapi.json carries `Authorization: Bearer <key>`."
    ),
    paths(
        api::healthz_doc,
        api::readyz,
        api::metrics_doc,
        api::openapi_doc,
        api::tenants::create_tenant,
        api::tenants::list_tenants,
        api::tenants::create_agent,
        api::tenants::list_agents,
        api::keys::create_key,
        api::keys::list_keys,
        api::keys::revoke_key,
        api::policies::create,
        api::policies::list,
        api::policies::show,
        api::policies::update,
        api::policies::remove,
        api::policies::add_rule,
        api::policies::remove_rule,
        api::policies::activate,
        api::policies::deprecate,
        api::policies::clone,
        api::policies::versions,
        api::policies::export,
        api::policies::import,
        api::validate::validate,
        api::runs::start,
        api::runs::list,
        api::runs::show,
        api::runs::check,
        api::runs::end,
        api::run_import::import,
        api::monitor::list,
        api::monitor::stats,
        api::monitor::stream,
        api::audit::list,
        api::audit::verify,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Extras, &Edges, &Refusals),
    tags(
        (name = "operations", description = "Health, metrics and this document."),
        (name = "tenants", description = "Tenants and their agents."),
        (name = "keys", description = "API keys: shown once at creation, stored only as a hash."),
        (name = "policies", description = "Authoring, the lifecycle, versions, export and import."),
        (name = "runs", description = "Runs and checks, the hot path (keys with `execute`); importing recorded history."),
        (name = "monitor", description = "Violations: listed, counted per time bucket, tailed live."),
        (name = "audit", description = "The tamper-evident audit log."),
    )
)]
struct ApiDoc;

/// Adds the bearer scheme and the core's policy-document schema.
struct Extras;

impl Modify for Extras {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer <key>`."))
                    .build(),
            ),
        );
        for (name, schema) in core_schemas() {
            components.schemas.insert(name, RefOr::T(schema));
        }
    }
}

/// The operations whose body may be left out (an empty body is read as `{}`).
const OPTIONAL_BODIES: &[&str] = &[
    "activate_policy",
    "deprecate_policy",
    "clone_policy",
    "validate_policy",
    "end_run",
];

/// What the path macros cannot say: that some bodies are optional (utoipa marks a body
/// required unless its type is an `Option`, which would admit a JSON `null` body the server
/// refuses), and that an absent query or header parameter is absent, never `null` (utoipa types
/// an `Option` as `[T, "null"]`, and a client then sends the text `null`).
struct Edges;

impl Modify for Edges {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let optional = operation
                    .operation_id
                    .as_deref()
                    .is_some_and(|id| OPTIONAL_BODIES.contains(&id));
                if let (true, Some(RefOr::T(body))) = (optional, &mut operation.request_body) {
                    body.required = Some(Required::False);
                }
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter
                        && let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema
                        && let SchemaType::Array(types) = &object.schema_type
                        && let [one] = &types
                            .iter()
                            .filter(|t| **t != Type::Null)
                            .cloned()
                            .collect::<Vec<_>>()[..]
                    {
                        object.schema_type = SchemaType::Type(one.clone());
                    }
                }
            }
        }
    }
}

/// The refusals every operation of a kind answers alike, written once here rather than on each
/// route: an operation that needs a key answers 401 without a valid one and 403 when the key
/// lacks the scope or the authority; one that takes a body answers 413 when it is over the
/// limit. A route that says more of one of them (run import's 413) keeps its own.
struct Refusals;

impl Refusals {
    /// An `ErrorBody` answer described by `description`.
    fn answer(description: &str) -> RefOr<Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    }
}

impl Modify for Refusals {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let keyed = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Refusals::answer(description));
                };
                if keyed {
                    add("401", "`unauthenticated`: no valid key.");
                    add(
                        "403",
                        "`forbidden`: the key lacks the scope or the authority.",
                    );
                }
                if operation.request_body.is_some() {
                    add("413", "`too_large`: the body exceeds the limit.");
                }
                if keyed {
                    add(
                        "503",
                        "`unavailable`: the database cannot be reached or lacks room just now; \
                         nothing was recorded. Sent with `Retry-After`.",
                    );
                }
            }
        }
    }
}

/// charter-core's JSON Schemas (2020-12, which OpenAPI 3.1 speaks) as components: the policy
/// document as `PolicyDocument`, a definition as `NewPolicy`, a stored version as `PolicyVersion`, a replay's report as
/// `ReplayReport`, and each of their `$defs` under its own name (one generator made them all,
/// so a name shared by two roots is one type: the first is kept), with `$ref`s rewritten to point
/// at components. utoipa has no raw-schema variant, so each is carried verbatim as the
/// (flattened) extension map of an otherwise empty object schema, which serializes to exactly
/// the core's JSON.
fn core_schemas() -> Vec<(String, Schema)> {
    let roots = [
        ("PolicyDocument", charter_core::document::json_schema()),
        (
            "NewPolicy",
            charter_core::document::definition_json_schema(),
        ),
        (
            "PolicyVersion",
            charter_core::document::policy_json_schema(),
        ),
        (
            "ReplayReport",
            charter_core::document::replay_report_json_schema(),
        ),
    ];
    let mut out: Vec<(String, Schema)> = Vec::new();
    for (name, schema) in roots {
        let Value::Object(mut root) = rewrite_refs(schema) else {
            continue;
        };
        root.remove("$schema");
        if let Some(Value::Object(defs)) = root.remove("$defs") {
            for (def_name, def) in defs {
                if !out.iter().any(|(n, _)| *n == def_name) {
                    out.push((def_name, raw(def)));
                }
            }
        }
        out.push((name.to_owned(), raw(Value::Object(root))));
    }
    out
}

/// A schema whose JSON is exactly `value`.
fn raw(value: Value) -> Schema {
    let Value::Object(map) = value else {
        return Schema::default();
    };
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .extensions(Some(map.into_iter().collect()))
        .build()
        .into()
}

/// `#/$defs/X` → `#/components/schemas/X`, everywhere.
fn rewrite_refs(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match (&*k, v) {
                        ("$ref", Value::String(r)) => Value::String(
                            r.strip_prefix("#/$defs/")
                                .map_or(r.clone(), |name| format!("#/components/schemas/{name}")),
                        ),
                        (_, v) => rewrite_refs(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

/// The OpenAPI 3.1 document of API v1, as served at `GET /v1/openapi.json`.
pub fn openapi() -> Document {
    ApiDoc::openapi()
}
