//! The engines under comparison. Adding one (Charter) = one more `impl Engine` plus one line in
//! `main.rs`.

pub mod baseline;
pub mod cedar;
pub mod charter;
pub mod rego;

use anyhow::Result;

use crate::model::{Request, Scenario};

/// A policy engine as the bench drives it.
///
/// - `compile` builds the engine's policy set from the engine-neutral [`Scenario`] once (for
///   Cedar/Rego that includes generating the policy text/data from the scenario).
/// - `prepare` turns an engine-neutral [`Request`] into the engine's own request form (Cedar
///   `Request` + `Context`, a regorus `Value` input, ...). It runs once per request outside the
///   timed decision loop; the bench times it separately ("request build").
/// - `decide` is the timed hot path: `true` = allowed.
pub trait Engine {
    const NAME: &'static str;
    type Compiled;
    type Input;

    fn compile(s: &Scenario) -> Result<Self::Compiled>;
    fn prepare(c: &Self::Compiled, r: &Request) -> Result<Self::Input>;
    fn decide(c: &Self::Compiled, input: &Self::Input) -> Result<bool>;
}
