//! Rego via `regorus`.
//!
//! Two encodings of a scenario (each a module + data document generated from the [`Scenario`]):
//! - [`as_data::AsData`], policy as data: per-agent rules in a data document keyed by tenant and
//!   agent, looked up by `input.tenant` / `input.agent` (the S4 design: one lookup per request,
//!   however many policies there are);
//! - [`as_code::AsCode`], policy as code: every Charter rule becomes Rego rule bodies with the
//!   names and values inline, guarded by `input.tenant == ... ; input.agent == ...` (what one
//!   would write by hand for a handful of policies; cost grows with the number of policies).
//!
//! and two ways to run each, all four measured:
//! - [`RegoInterp`]: the tree-walking interpreter; one prepared `Engine` (module parsed,
//!   analysed, data loaded once) reused for every request: `set_input` + `eval_rule`;
//! - [`RegoRvm`]: the module compiled once to a Rego VM (RVM) `Program`; one `RegoVM` with the
//!   program and data loaded, reused: `set_input` + `execute`. This is regorus's fastest mode.
//!
//! Common to both encodings:
//! - Globs are matched with string builtins (`startswith`, `endswith`, `substring`, `contains`)
//!   with Charter's segment semantics per shape (see [`Glob`](crate::glob::Glob)). That is ~4×
//!   faster in regorus than `regex.match` on an anchored translation (~0.6 µs vs ~2.4 µs per
//!   call on the RVM, examples/rego_variants.rs), and `glob.match`'s `**` does not have Charter's
//!   semantics (`hr/**` must match `hr`).
//! - Conditions: a missing argument makes `input.args[..]` undefined, so the condition is false
//!   (as in Charter). A value of the wrong type also makes it false, which for a deny rule fails
//!   open where Charter fails closed; the request streams only send well-typed values. Conditions
//!   on allow rules are not encoded (no scenario uses them; compile refuses them).
//! - Allowed = `not violated`, with one `violated` body per way of violating a rule.

pub mod as_code;
pub mod as_data;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::num::{NonZeroU32, NonZeroUsize};

use anyhow::{Result, bail};
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::RegoVM;
use serde_json::{Value as Json, json};

use super::Engine;
use crate::model::{Action, CondOp, Request, Scenario};

pub const ENTRY_POINT: &str = "data.charter.allow";

/// The module and data document for a scenario.
pub struct Encoded {
    pub data: Json,
    pub module: String,
}

/// An encoding of scenarios into Rego.
pub trait Encoding {
    const INTERP_NAME: &'static str;
    const RVM_NAME: &'static str;
    fn encode(s: &Scenario) -> Result<Encoded>;
}

/// Body lines checking condition `i` on argument `arg` against the Rego expression `value`.
fn condition_check(i: usize, arg: &str, op: CondOp, value: &str) -> String {
    let arg = Json::String(arg.to_owned());
    let check = match op {
        CondOp::EndsWith => format!("is_string(v{i})\n\tendswith(v{i}, {value})"),
        CondOp::NotEndsWith => format!("is_string(v{i})\n\tnot endswith(v{i}, {value})"),
        CondOp::Gt => format!("is_number(v{i})\n\tv{i} > {value}"),
    };
    format!("\n\tv{i} := input.args[{arg}]\n\t{check}")
}

/// The input document of a request.
pub fn input_json(r: &Request) -> Json {
    match &r.action {
        Action::ToolCall { tool, args } => json!({
            "tenant": r.tenant, "agent": r.agent, "kind": "tool", "tool": tool, "args": args,
        }),
        Action::DataAccess {
            resource,
            operation,
        } => json!({
            "tenant": r.tenant, "agent": r.agent, "kind": "data",
            "resource": resource, "operation": operation.as_str(),
        }),
    }
}

/// A prepared engine: module parsed, data loaded, compiled for the entry point.
fn prepared_engine<E: Encoding>(
    s: &Scenario,
) -> Result<(regorus::Engine, regorus::CompiledPolicy, regorus::Value)> {
    let Encoded { data, module } = E::encode(s)?;
    let data = regorus::Value::from(data);
    let mut engine = regorus::Engine::new();
    // The default limits (1 MiB, 20,000 lines per file) guard against hostile input; the
    // generated policy-as-code module of 1,000+ policies is larger.
    engine.set_policy_length_config(regorus::PolicyLengthConfig {
        max_col: NonZeroU32::new(1 << 20).unwrap_or(NonZeroU32::MIN),
        max_file_bytes: NonZeroUsize::MAX,
        max_lines: NonZeroUsize::MAX,
    });
    engine.add_policy("charter.rego".to_owned(), module)?;
    engine.add_data(data.clone())?;
    let compiled = engine.compile_with_entrypoint(&ENTRY_POINT.into())?;
    Ok((engine, compiled, data))
}

fn as_bool(v: &regorus::Value) -> Result<bool> {
    match v {
        regorus::Value::Bool(b) => Ok(*b),
        other => bail!("{ENTRY_POINT} evaluated to {other:?}, not a boolean"),
    }
}

pub struct RegoInterp<E>(PhantomData<E>);

pub struct InterpSet {
    engine: RefCell<regorus::Engine>,
}

impl<E: Encoding> Engine for RegoInterp<E> {
    const NAME: &'static str = E::INTERP_NAME;
    type Compiled = InterpSet;
    type Input = regorus::Value;

    fn compile(s: &Scenario) -> Result<InterpSet> {
        let (mut engine, _, _) = prepared_engine::<E>(s)?;
        // The first evaluation does the remaining one-time preparation (analysis, scheduling).
        engine.set_input(regorus::Value::new_object());
        engine.eval_rule(ENTRY_POINT.to_owned())?;
        Ok(InterpSet {
            engine: RefCell::new(engine),
        })
    }

    fn prepare(_: &InterpSet, r: &Request) -> Result<regorus::Value> {
        Ok(regorus::Value::from(input_json(r)))
    }

    fn decide(c: &InterpSet, input: &regorus::Value) -> Result<bool> {
        let mut engine = c.engine.borrow_mut();
        // `Value` is reference-counted: this clone is a pointer copy.
        engine.set_input(input.clone());
        as_bool(&engine.eval_rule(ENTRY_POINT.to_owned())?)
    }
}

pub struct RegoRvm<E>(PhantomData<E>);

pub struct RvmSet {
    vm: RefCell<RegoVM>,
}

impl<E: Encoding> Engine for RegoRvm<E> {
    const NAME: &'static str = E::RVM_NAME;
    type Compiled = RvmSet;
    type Input = regorus::Value;

    fn compile(s: &Scenario) -> Result<RvmSet> {
        let (_, compiled, data) = prepared_engine::<E>(s)?;
        let program = Compiler::compile_from_policy(&compiled, &[ENTRY_POINT])?;
        let mut vm = RegoVM::new();
        vm.load_program(program);
        vm.set_data(data)?;
        // No limits: no execution timer and no instruction cap (the default cap is 25,000), as
        // in regorus's own "regular_no_limits" benchmark configuration.
        vm.set_execution_timer_config(None);
        vm.set_max_instructions(usize::MAX);
        Ok(RvmSet {
            vm: RefCell::new(vm),
        })
    }

    fn prepare(_: &RvmSet, r: &Request) -> Result<regorus::Value> {
        Ok(regorus::Value::from(input_json(r)))
    }

    fn decide(c: &RvmSet, input: &regorus::Value) -> Result<bool> {
        let mut vm = c.vm.borrow_mut();
        vm.set_input(input.clone());
        as_bool(&vm.execute()?)
    }
}
