//! Charter's policy engine: the policy model, its parsing, and the evaluation of actions.
//!
//! Pure: no I/O, no async, no clock. Time comes in as an argument; limit state lives behind the
//! [`limits::Limits`] trait so the caller can settle claims atomically wherever it keeps them.
//!
//! The flow: outside JSON is parsed once into typed values ([`PolicyDefinition::parse`],
//! [`Action::parse`], [`PolicyDocument::parse_many`]); a set of policies is compiled once into a
//! [`CompiledSet`]; each action is evaluated against it into stateless violations and limit
//! claims; [`Evaluation::settle`](engine::Evaluation::settle) settles the claims and decides.

pub mod action;
pub mod calendar;
pub mod document;
pub mod enforcer;
pub mod engine;
pub mod glob;
pub mod ids;
pub mod limits;
pub mod money;
pub mod parse;
pub mod pattern;
pub mod pii;
pub mod policy;
pub mod replay;
pub mod rule;
pub mod scope;
pub mod sentence;

pub use action::{Action, ActionDetail, ActionKind};
pub use document::PolicyDocument;
pub use enforcer::Enforcer;
pub use engine::{CompiledSet, Decision, Outcome, RunContext, Violation};
pub use ids::{AgentId, LineageId, PolicyId, RuleId, RunId, TenantId};
pub use money::Money;
pub use parse::ParseError;
pub use policy::{Policy, PolicyDefinition, Status};
pub use rule::{Rule, RuleKind, RuleType};
pub use scope::Scope;
