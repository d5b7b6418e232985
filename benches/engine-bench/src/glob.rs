//! Charter glob shapes, and their translation into each engine's pattern language.
//!
//! Charter semantics (product.md §4): names split into segments at separators (`.` and `/` for
//! tool names, `/` for resource paths); `*` matches any run of characters within one segment;
//! `**` matches any number of whole segments, none included, together with the separator beside it.
//!
//! The bench only needs the shapes below, which are the shapes real allow/deny lists use. Each
//! engine gets an *exact* encoding of every shape (checked against the hand-written matcher on
//! every request before anything is timed); any other pattern is refused rather than approximated.

use anyhow::{Result, bail, ensure};

/// Which characters separate segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seps {
    /// Tool names: `.` and `/`.
    Tool,
    /// Resource paths: `/`.
    Path,
}

impl Seps {
    pub fn chars(self) -> &'static [char] {
        match self {
            Seps::Tool => &['.', '/'],
            Seps::Path => &['/'],
        }
    }
}

/// A parsed glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Glob {
    /// No wildcard.
    Exact(String),
    /// `head*tail`: one `*`, no `**` (e.g. `*.send_email`, `crm/customers/*/ssn`, `shell.*`).
    OneStar { head: String, tail: String },
    /// `lit<sep>**` (e.g. `hr/**`, `corp.**`): `lit` itself or anything below it.
    Under { lit: String, sep: char },
    /// `**<sep>lit` (e.g. `**.send_email`): `lit` itself or anything ending in `<sep>lit`.
    EndsIn { lit: String, sep: char },
    /// `**`: everything.
    Any,
}

impl Glob {
    pub fn parse(pattern: &str, seps: Seps) -> Result<Glob> {
        ensure!(!pattern.is_empty(), "empty glob");
        for bad in ['"', '\\', '?', '[', ']', '{', '}'] {
            ensure!(
                !pattern.contains(bad),
                "glob {pattern:?}: character {bad:?} is not supported by this bench's encodings"
            );
        }
        if pattern == "**" {
            return Ok(Glob::Any);
        }
        let stars = pattern.matches('*').count();
        if stars == 0 {
            return Ok(Glob::Exact(pattern.to_owned()));
        }
        if let Some(rest) = pattern.strip_suffix("**")
            && let Some(sep) = rest.chars().last().filter(|c| seps.chars().contains(c))
        {
            let lit = &rest[..rest.len() - sep.len_utf8()];
            if !lit.contains('*') && !lit.is_empty() {
                return Ok(Glob::Under {
                    lit: lit.to_owned(),
                    sep,
                });
            }
        }
        if let Some(rest) = pattern.strip_prefix("**")
            && let Some(sep) = rest.chars().next().filter(|c| seps.chars().contains(c))
        {
            let lit = &rest[sep.len_utf8()..];
            if !lit.contains('*') && !lit.is_empty() {
                return Ok(Glob::EndsIn {
                    lit: lit.to_owned(),
                    sep,
                });
            }
        }
        if stars == 1 {
            let (head, tail) = pattern.split_once('*').unwrap_or((pattern, ""));
            return Ok(Glob::OneStar {
                head: head.to_owned(),
                tail: tail.to_owned(),
            });
        }
        bail!("glob {pattern:?}: shape not supported by this bench's encodings")
    }

    /// The reference matcher (Charter semantics), string operations only.
    pub fn matches(&self, s: &str, seps: Seps) -> bool {
        match self {
            Glob::Exact(lit) => s == lit,
            Glob::OneStar { head, tail } => {
                s.len() >= head.len() + tail.len()
                    && s.starts_with(head.as_str())
                    && s.ends_with(tail.as_str())
                    && !s[head.len()..s.len() - tail.len()].contains(seps.chars())
            }
            Glob::Under { lit, sep } => s
                .strip_prefix(lit.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(*sep)),
            Glob::EndsIn { lit, sep } => s
                .strip_suffix(lit.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.ends_with(*sep)),
            Glob::Any => true,
        }
    }

    /// A Cedar boolean expression over the string expression `expr` with the same semantics.
    ///
    /// Cedar's `like` has a single wildcard `*` that matches any characters, separators
    /// included, and no character classes. The encodings are still exact:
    /// - `head*tail` = `like "head*tail"` and, for every separator `s`, not `like "head*s*tail"`
    ///   (the part matched by `*` has a fixed position, so it contains `s` iff the second
    ///   pattern matches);
    /// - `lit<sep>**` = `== "lit"` or `like "lit<sep>*"`; `**<sep>lit` = `== "lit"` or `like "*<sep>lit"`.
    pub fn to_cedar(&self, expr: &str, seps: Seps) -> String {
        match self {
            Glob::Exact(lit) => format!("{expr} == \"{lit}\""),
            Glob::OneStar { head, tail } => {
                let mut out = format!("({expr} like \"{head}*{tail}\"");
                for s in seps.chars() {
                    out.push_str(&format!(" && !({expr} like \"{head}*{s}*{tail}\")"));
                }
                out.push(')');
                out
            }
            Glob::Under { lit, sep } => {
                format!("({expr} == \"{lit}\" || {expr} like \"{lit}{sep}*\")")
            }
            Glob::EndsIn { lit, sep } => {
                format!("({expr} == \"{lit}\" || {expr} like \"*{sep}{lit}\")")
            }
            Glob::Any => "true".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str, seps: Seps) -> bool {
        Glob::parse(p, seps).expect("valid glob").matches(s, seps)
    }

    #[test]
    fn product_examples() {
        assert!(m("**.send_email", "send_email", Seps::Tool));
        assert!(m("**.send_email", "a.b.send_email", Seps::Tool));
        assert!(!m("**.send_email", "xsend_email", Seps::Tool));
        assert!(m("corp.**", "corp", Seps::Tool));
        assert!(m("corp.**", "corp.x.y", Seps::Tool));
        assert!(!m("corp.**", "corpx", Seps::Tool));
        assert!(m("files/*", "files/report.pdf", Seps::Path));
        assert!(m("*.send_email", "gmail.send_email", Seps::Tool));
        assert!(!m("*.send_email", "corp.gmail.send_email", Seps::Tool));
        assert!(!m("*.send_email", "corp/gmail.send_email", Seps::Tool));
        assert!(m("crm/customers/*/ssn", "crm/customers/42/ssn", Seps::Path));
        assert!(!m(
            "crm/customers/*/ssn",
            "crm/customers/42/x/ssn",
            Seps::Path
        ));
        assert!(m("hr/**", "hr", Seps::Path));
        assert!(m("hr/**", "hr/a/b", Seps::Path));
        assert!(!m("hr/**", "hrx/a", Seps::Path));
    }

    #[test]
    fn refuses_unsupported_shapes() {
        assert!(Glob::parse("a/*/b/*", Seps::Path).is_err());
        assert!(Glob::parse("a/**/b", Seps::Path).is_err());
    }
}
