//! Schemas of the answer types' fields that are described by name: components that the server's
//! OpenAPI document defines from charter-core's own types (`Outcome`, `RuleType`, `ActionKind`,
//! `Action`, `Violation`). The answer types derive `utoipa::ToSchema` (a derive only: nothing
//! here knows HTTP), so the document describes exactly the types the server serializes.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Ref, Schema, Type};

/// A reference to the component `name`.
fn named(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The component `name`, or `null`.
fn nullable(name: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(named(name))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// `block` or `halt` (a violation's decision).
pub(crate) fn outcome() -> RefOr<Schema> {
    named("Outcome")
}

/// A decision, or `null` (an imported action without one).
pub(crate) fn outcome_or_null() -> RefOr<Schema> {
    nullable("Outcome")
}

/// A rule's type.
pub(crate) fn rule_type() -> RefOr<Schema> {
    named("RuleType")
}

/// An action's kind.
pub(crate) fn action_kind() -> RefOr<Schema> {
    named("ActionKind")
}

/// An action as checked, or `null` when its input was not kept.
pub(crate) fn action_or_null() -> RefOr<Schema> {
    nullable("Action")
}

/// The violations that halted a run.
pub(crate) fn violations() -> RefOr<Schema> {
    ArrayBuilder::new().items(named("Violation")).into()
}
