//! Charter itself: the scenario's export documents parsed and compiled into a `CompiledSet`;
//! a decision is the full first phase (`evaluate`) and its `decision`, violations and messages
//! included. These scenarios have no rate or cost rules, so there are no claims to settle.

use anyhow::{Context, Result, bail};
use charter_core::action::Action as CharterAction;
use charter_core::engine::{CompiledSet, RunContext};
use charter_core::{LineageId, Outcome, Policy, PolicyDocument, PolicyId};
use jiff::Timestamp;
use serde_json::json;

use super::Engine;
use crate::bench::CompileFailed;
use crate::charter::charter_policies;
use crate::model::{Action, Request, Scenario};

/// Charter's engine.
pub struct Charter;

/// A request as Charter takes it: the parsed action and the run it belongs to.
pub struct Input {
    action: CharterAction,
    tenant: String,
    agent: String,
}

impl Engine for Charter {
    const NAME: &'static str = "Charter";
    type Compiled = CompiledSet;
    type Input = Input;

    fn compile(s: &Scenario) -> Result<CompiledSet> {
        let mut policies = Vec::with_capacity(s.policies.len());
        for (i, document) in charter_policies(s).iter().enumerate() {
            let document = PolicyDocument::parse(document)
                .map_err(|e| CompileFailed(format!("policy {i}: {e}")))?;
            policies.push(Policy::draft(
                PolicyId::new(format!("pol_{i}"))?,
                LineageId::new(format!("lin_{i}"))?,
                document.into_definition(),
                Timestamp::UNIX_EPOCH,
            ));
        }
        CompiledSet::compile(&policies).map_err(|e| CompileFailed(e.to_string()).into())
    }

    fn prepare(_: &CompiledSet, r: &Request) -> Result<Input> {
        let value = match &r.action {
            Action::ToolCall { tool, args } => {
                json!({"kind": "tool_call", "tool": tool, "args": args})
            }
            Action::DataAccess {
                resource,
                operation,
            } => {
                json!({"kind": "data_access", "resource": resource, "operation": operation.as_str()})
            }
        };
        let action = CharterAction::parse(&value).context("request")?;
        Ok(Input {
            action,
            tenant: r.tenant.clone(),
            agent: r.agent.clone(),
        })
    }

    fn decide(set: &CompiledSet, input: &Input) -> Result<bool> {
        let ctx = RunContext {
            tenant_id: &input.tenant,
            agent_id: &input.agent,
            run_id: "run_bench",
            run_started_at: Timestamp::UNIX_EPOCH,
            now: Timestamp::UNIX_EPOCH,
        };
        let evaluation = set.evaluate(&input.action, &ctx);
        if !evaluation.claims.is_empty() {
            bail!("unexpected limit claims: the scenarios have no rate or cost rules");
        }
        Ok(evaluation.decision(&[]).outcome == Outcome::Allow)
    }
}
