//! Engine-neutral scenarios and requests. Every engine builds its own policy text/data from a
//! [`Scenario`] and its own request form from a [`Request`].

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Write,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::Read, Operation::Write, Operation::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Delete => "delete",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The condition operators the scenarios use (a subset of Charter's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CondOp {
    EndsWith,
    NotEndsWith,
    /// Numeric `>`; the bench uses integer values only (Cedar has no floats).
    Gt,
}

impl CondOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CondOp::EndsWith => "ends_with",
            CondOp::NotEndsWith => "not_ends_with",
            CondOp::Gt => "gt",
        }
    }
}

/// `{ "arg": ..., "op": ..., "value": ... }`; `arg` is a top-level argument name here.
#[derive(Clone, Debug)]
pub struct Condition {
    pub arg: String,
    pub op: CondOp,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub enum Rule {
    Tool {
        id: String,
        effect: Effect,
        tools: Vec<String>,
        when: Vec<Condition>,
    },
    DataAccess {
        id: String,
        effect: Effect,
        resources: Vec<String>,
        operations: Vec<Operation>,
    },
}

/// An agent-scoped policy (the only scope these scenarios use).
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub tenant: String,
    pub agent: String,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub tenant: String,
    pub agent: String,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub key: String,
    pub title: String,
    pub tenants: Vec<String>,
    pub agents: Vec<Agent>,
    pub policies: Vec<Policy>,
}

#[derive(Clone, Debug)]
pub enum Action {
    ToolCall {
        tool: String,
        args: Value,
    },
    DataAccess {
        resource: String,
        operation: Operation,
    },
}

#[derive(Clone, Debug)]
pub struct Request {
    pub tenant: String,
    pub agent: String,
    pub action: Action,
}

impl Request {
    pub fn summary(&self) -> String {
        match &self.action {
            Action::ToolCall { tool, args } => {
                format!("{}/{} tool_call {tool} {args}", self.tenant, self.agent)
            }
            Action::DataAccess {
                resource,
                operation,
            } => format!(
                "{}/{} data_access {} {resource}",
                self.tenant,
                self.agent,
                operation.as_str()
            ),
        }
    }
}

/// A scenario and the request stream every engine decides.
pub struct Workload {
    pub scenario: Scenario,
    pub requests: Vec<Request>,
}
