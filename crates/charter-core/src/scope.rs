//! Where a policy applies: the platform, one tenant, or one agent of a tenant.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{AgentId, TenantId};
use crate::parse::{self, ParseError};

/// The reach of a policy (product.md §2.1). Lower scopes add rules; they never widen a higher one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// Every run of every tenant.
    Platform,
    /// Every run of every agent of one tenant.
    Tenant {
        /// The tenant.
        tenant_id: TenantId,
    },
    /// Only runs of one agent.
    Agent {
        /// The agent's tenant.
        tenant_id: TenantId,
        /// The agent.
        agent_id: AgentId,
    },
}

impl Scope {
    /// The tenant this scope belongs to, if any.
    pub fn tenant_id(&self) -> Option<&TenantId> {
        match self {
            Scope::Platform => None,
            Scope::Tenant { tenant_id } | Scope::Agent { tenant_id, .. } => Some(tenant_id),
        }
    }

    /// The scope's type as written in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scope::Platform => "platform",
            Scope::Tenant { .. } => "tenant",
            Scope::Agent { .. } => "agent",
        }
    }

    /// Whether a run of `agent_id` in `tenant_id` is governed by this scope.
    pub fn covers(&self, tenant_id: &str, agent_id: &str) -> bool {
        match self {
            Scope::Platform => true,
            Scope::Tenant { tenant_id: t } => t.as_str() == tenant_id,
            Scope::Agent {
                tenant_id: t,
                agent_id: a,
            } => t.as_str() == tenant_id && a.as_str() == agent_id,
        }
    }

    /// Parses a scope, naming the offending field (`tenant_id`, `agent_id`, `type`).
    pub fn parse(value: &serde_json::Value) -> Result<Scope, ParseError> {
        parse::object(value, "a scope")?;
        let flat: Flat = parse::from_value(value)?;
        flat.scope()
    }
}

/// A scope's fields as written, before they are checked against its type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a scope")]
struct Flat {
    r#type: ScopeType,
    tenant_id: Option<TenantId>,
    agent_id: Option<AgentId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScopeType {
    Platform,
    Tenant,
    Agent,
}

impl Flat {
    /// The scope, if its fields are those of its type.
    fn scope(self) -> Result<Scope, ParseError> {
        let needs = |field: &str| ParseError::new(field, format!("missing field `{field}`"));
        let forbids = |field: &str, ty: &str| {
            ParseError::new(field, format!("a {ty} scope has no `{field}`"))
        };
        match self.r#type {
            ScopeType::Platform => {
                if self.tenant_id.is_some() {
                    return Err(forbids("tenant_id", "platform"));
                }
                if self.agent_id.is_some() {
                    return Err(forbids("agent_id", "platform"));
                }
                Ok(Scope::Platform)
            }
            ScopeType::Tenant => {
                if self.agent_id.is_some() {
                    return Err(forbids("agent_id", "tenant"));
                }
                Ok(Scope::Tenant {
                    tenant_id: self.tenant_id.ok_or_else(|| needs("tenant_id"))?,
                })
            }
            ScopeType::Agent => Ok(Scope::Agent {
                tenant_id: self.tenant_id.ok_or_else(|| needs("tenant_id"))?,
                agent_id: self.agent_id.ok_or_else(|| needs("agent_id"))?,
            }),
        }
    }
}

/// Reads the fields straight from the input (no intermediate JSON value: a stored scope is
/// read with every row of a policy list), then checks them as [`Scope::parse`] does.
impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Flat::deserialize(deserializer)?
            .scope()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_each_scope() {
        assert_eq!(
            Scope::parse(&json!({"type": "platform"})).unwrap(),
            Scope::Platform
        );
        let s = Scope::parse(&json!({"type": "agent", "tenant_id": "acme", "agent_id": "bot"}))
            .unwrap();
        assert!(s.covers("acme", "bot"));
        assert!(!s.covers("acme", "other"));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type": "agent", "tenant_id": "acme", "agent_id": "bot"})
        );
    }

    #[test]
    fn names_bad_fields() {
        let e = Scope::parse(&json!({"type": "agent", "tenant_id": "acme"})).unwrap_err();
        assert_eq!(e.path, "agent_id");
        let e = Scope::parse(&json!({"type": "galaxy"})).unwrap_err();
        assert_eq!(e.path, "type");
        let e = Scope::parse(&json!({"type": "tenant", "tenant_id": "a b"})).unwrap_err();
        assert_eq!(e.path, "tenant_id");
        let e = Scope::parse(&json!({"type": "platform", "tenant_id": "a"})).unwrap_err();
        assert_eq!(e.path, "tenant_id");
        let e = Scope::parse(&json!({"type": "platform", "extra": 1})).unwrap_err();
        assert_eq!(e.path, "extra");
    }
}
