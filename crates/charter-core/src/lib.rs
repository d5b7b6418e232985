//! Charter's policy engine.
