//! The workspace's pages, one module per area.

pub(crate) mod agents;
pub(crate) mod audit;
pub(crate) mod authoring;
pub(crate) mod cloning;
pub(crate) mod editing;
pub(crate) mod keys;
pub(crate) mod lifecycle;
pub(crate) mod monitor;
pub(crate) mod policies;
pub(crate) mod reference;
pub(crate) mod rules;
pub(crate) mod runs;
pub(crate) mod scopes;
pub(crate) mod validate;
