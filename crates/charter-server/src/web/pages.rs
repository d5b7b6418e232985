//! The workspace's pages, one module per area.

pub(crate) mod monitor;
pub(crate) mod policies;
pub(crate) mod runs;
pub(crate) mod soon;
