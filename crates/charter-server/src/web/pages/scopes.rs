//! The scope picker of the policy forms (a new draft, a draft's details, a clone): Platform,
//! Tenant or Agent, with the tenants and agents the visitor's key sees. It turns into the
//! `scope` JSON the API takes, so core's `Scope::parse` decides what is a valid scope and its
//! JSON path says which input is at fault.

use charter_core::Scope;
use charter_store::Principal;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::web::render::WebError;
use crate::web::session::Visitor;

/// An agent of the picker.
pub(crate) struct AgentChoice {
    /// `tenant/agent` (neither id may hold a `/`).
    pub(crate) value: String,
    /// The agent's name.
    pub(crate) label: String,
}

/// A tenant's agents, shown as one group of the agent picker.
pub(crate) struct AgentGroup {
    /// The tenant's name and id.
    pub(crate) label: String,
    pub(crate) agents: Vec<AgentChoice>,
}

/// The picker: what may be chosen, and what is chosen.
pub(crate) struct Picker {
    /// Whether the key may name the platform scope.
    pub(crate) platform: bool,
    /// The tenants a tenant scope may name: `(id, name)`.
    pub(crate) tenants: Vec<(String, String)>,
    /// The agents, by tenant.
    pub(crate) groups: Vec<AgentGroup>,
    /// `platform`, `tenant` or `agent`, as chosen (or sent).
    pub(crate) scope: String,
    /// The chosen tenant of a tenant scope.
    pub(crate) tenant: String,
    /// The chosen agent of an agent scope, as `tenant/agent`.
    pub(crate) agent: String,
    /// Whether `tenant` is among `tenants` (else it is offered as sent).
    pub(crate) tenant_listed: bool,
    /// Whether `agent` is among the groups' agents (else it is offered as sent).
    pub(crate) agent_listed: bool,
}

/// A scope as the picker's three inputs: `(scope, tenant, agent)`.
pub(crate) fn inputs(scope: &Scope) -> (String, String, String) {
    match scope {
        Scope::Platform => ("platform".into(), String::new(), String::new()),
        Scope::Tenant { tenant_id } => ("tenant".into(), tenant_id.to_string(), String::new()),
        Scope::Agent {
            tenant_id,
            agent_id,
        } => (
            "agent".into(),
            tenant_id.to_string(),
            format!("{tenant_id}/{agent_id}"),
        ),
    }
}

impl Picker {
    /// The picker with `scope`, `tenant` and `agent` chosen; an empty `scope` chooses where the
    /// key most likely authors: its tenant, the one in view, or the platform.
    pub(crate) async fn load(
        state: &AppState,
        visitor: &Visitor,
        scope: &str,
        tenant: &str,
        agent: &str,
    ) -> Result<Picker, WebError> {
        let principal = &visitor.caller.principal;
        let tenants = state.store.list_tenants(principal).await?;
        let mut groups = Vec::with_capacity(tenants.len());
        for tenant in &tenants {
            let agents = state.store.list_agents(principal, &tenant.id).await?;
            if agents.is_empty() {
                continue;
            }
            groups.push(AgentGroup {
                label: format!("{} ({})", tenant.name, tenant.id),
                agents: agents
                    .into_iter()
                    .map(|agent| AgentChoice {
                        value: format!("{}/{}", tenant.id, agent.id),
                        label: format!("{} — {}", agent.name, agent.id),
                    })
                    .collect(),
            });
        }
        let in_view = visitor.tenant_in_view();
        let scope = if scope.is_empty() {
            if *principal != Principal::Platform || in_view.is_some() {
                "tenant"
            } else {
                "platform"
            }
        } else {
            scope
        };
        let tenant = if tenant.is_empty() {
            in_view.unwrap_or_default()
        } else {
            tenant.to_owned()
        };
        Ok(Picker {
            platform: *principal == Principal::Platform,
            tenant_listed: tenants.iter().any(|t| t.id == tenant),
            agent_listed: groups
                .iter()
                .any(|g| g.agents.iter().any(|a| a.value == agent)),
            tenants: tenants.into_iter().map(|t| (t.id, t.name)).collect(),
            groups,
            scope: scope.to_owned(),
            tenant,
            agent: agent.to_owned(),
        })
    }

    /// Whether any agent can be picked.
    pub(crate) fn has_agents(&self) -> bool {
        !self.groups.is_empty()
    }
}

/// The scope the three inputs describe, as the JSON the API takes: core's parser names what is
/// wrong with it (an unknown `type`, a missing tenant or agent).
pub(crate) fn scope_json(scope: &str, tenant: &str, agent: &str) -> Value {
    match scope {
        "platform" => json!({"type": "platform"}),
        "tenant" => json!({"type": "tenant", "tenant_id": tenant.trim()}),
        "agent" => {
            let (tenant, agent) = agent.split_once('/').unwrap_or(("", agent));
            json!({"type": "agent", "tenant_id": tenant, "agent_id": agent})
        }
        other => json!({"type": other}),
    }
}

/// The picker's input that shows an error at `path` under the scope, given the chosen `scope`
/// type; `None` when the path is not the scope's.
pub(crate) fn field_of(path: &str, scope: &str) -> Option<&'static str> {
    match path {
        "scope" | "scope.type" => Some("scope"),
        // An agent scope takes its tenant from the agent picker.
        "scope.tenant_id" if scope == "agent" => Some("agent"),
        "scope.tenant_id" => Some("tenant"),
        "scope.agent_id" => Some("agent"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_are_the_json_the_api_takes() {
        assert_eq!(
            scope_json("agent", "", "acme/support"),
            json!({"type": "agent", "tenant_id": "acme", "agent_id": "support"})
        );
        assert_eq!(
            scope_json("tenant", " acme ", "globex/x"),
            json!({"type": "tenant", "tenant_id": "acme"})
        );
        assert_eq!(scope_json("galaxy", "", ""), json!({"type": "galaxy"}));
    }

    #[test]
    fn a_scope_round_trips_through_its_inputs() {
        for value in [
            json!({"type": "platform"}),
            json!({"type": "tenant", "tenant_id": "acme"}),
            json!({"type": "agent", "tenant_id": "acme", "agent_id": "support"}),
        ] {
            let Ok(scope) = Scope::parse(&value) else {
                panic!("{value} parses");
            };
            let (kind, tenant, agent) = inputs(&scope);
            assert_eq!(scope_json(&kind, &tenant, &agent), value);
        }
    }

    #[test]
    fn a_path_lands_beside_its_input() {
        assert_eq!(field_of("scope.type", "galaxy"), Some("scope"));
        assert_eq!(field_of("scope.tenant_id", "tenant"), Some("tenant"));
        assert_eq!(field_of("scope.tenant_id", "agent"), Some("agent"));
        assert_eq!(field_of("scope.agent_id", "agent"), Some("agent"));
        assert_eq!(field_of("name", "agent"), None);
    }
}
