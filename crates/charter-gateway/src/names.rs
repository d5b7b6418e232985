//! Tool names: on the wire, to the upstream, and in Charter actions.
//!
//! With one upstream, tool names are exactly the upstream's on the wire. With several, each
//! tool is `server__tool` on the wire (`__` and not `.`: many clients, `OpenAI`'s
//! function calling among them, accept only `[A-Za-z0-9_-]` in tool names). The Charter action always
//! names `server.tool`, so policies read the same whatever the number of upstreams.

/// The separator between a server's name and its tool's on the wire, with several upstreams.
pub const WIRE_SEPARATOR: &str = "__";

/// Checks an upstream's name: 1 to 64 letters, digits, `-` and `_`, neither starting nor
/// ending with `_` and without `__`, so that `server__tool` splits back unambiguously at its
/// first `__` and `server.tool` is one segment for Charter's globs.
pub fn check_server_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{name:?}: only letters, digits, '-' and '_' (the name prefixes tool names)"
        ));
    }
    if name.starts_with('_') || name.ends_with('_') || name.contains(WIRE_SEPARATOR) {
        return Err(format!(
            "{name:?}: may not start or end with '_' nor contain \"__\" (the separator of prefixed tool names)"
        ));
    }
    Ok(())
}

/// Maps tool names between the agent's view and the upstreams'.
#[derive(Debug, Clone)]
pub struct Names {
    servers: Vec<String>,
}

impl Names {
    /// The mapping for these upstream names (already checked by the configuration).
    pub fn new(servers: Vec<String>) -> Names {
        Names { servers }
    }

    /// Whether tool names are prefixed on the wire (several upstreams).
    pub fn prefixed(&self) -> bool {
        self.servers.len() > 1
    }

    /// The upstream's name.
    pub fn server(&self, upstream: usize) -> &str {
        self.servers.get(upstream).map_or("", String::as_str)
    }

    /// The name the agent sees for `tool` of `upstream`.
    pub fn to_wire(&self, upstream: usize, tool: &str) -> String {
        if self.prefixed() {
            format!("{}{WIRE_SEPARATOR}{tool}", self.server(upstream))
        } else {
            tool.to_owned()
        }
    }

    /// The upstream and its own tool name for a name the agent called; `None` for a prefix
    /// that names no upstream.
    pub fn from_wire<'a>(&self, wire: &'a str) -> Option<(usize, &'a str)> {
        if !self.prefixed() {
            return Some((0, wire));
        }
        let (server, tool) = wire.split_once(WIRE_SEPARATOR)?;
        let upstream = self.servers.iter().position(|s| s == server)?;
        (!tool.is_empty()).then_some((upstream, tool))
    }

    /// The tool's name in Charter actions: `server.tool`.
    pub fn to_charter(&self, upstream: usize, tool: &str) -> String {
        format!("{}.{tool}", self.server(upstream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_upstream_keeps_names_as_they_are() {
        let names = Names::new(vec!["mail".into()]);
        assert!(!names.prefixed());
        assert_eq!(names.to_wire(0, "send_email"), "send_email");
        assert_eq!(names.from_wire("send_email"), Some((0, "send_email")));
        assert_eq!(names.from_wire("a__b"), Some((0, "a__b")));
        assert_eq!(names.to_charter(0, "send_email"), "mail.send_email");
    }

    #[test]
    fn several_upstreams_prefix_and_split_at_the_first_separator() {
        let names = Names::new(vec!["mail".into(), "my-docs".into()]);
        assert!(names.prefixed());
        assert_eq!(names.to_wire(1, "read__all"), "my-docs__read__all");
        assert_eq!(
            names.from_wire("my-docs__read__all"),
            Some((1, "read__all"))
        );
        assert_eq!(names.from_wire("mail__send_email"), Some((0, "send_email")));
        assert_eq!(names.from_wire("other__x"), None);
        assert_eq!(names.from_wire("send_email"), None);
        assert_eq!(names.from_wire("mail__"), None);
        assert_eq!(names.to_charter(1, "read__all"), "my-docs.read__all");
    }

    #[test]
    fn server_names_that_would_split_ambiguously_are_refused() {
        assert!(check_server_name("mail").is_ok());
        assert!(check_server_name("a_b-c9").is_ok());
        for bad in ["", "a__b", "_a", "a_", "a.b", "a b", &"x".repeat(65)] {
            assert!(check_server_name(bad).is_err(), "{bad:?}");
        }
    }
}
