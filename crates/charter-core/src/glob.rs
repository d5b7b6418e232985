//! STUB (replaced by the real module).
#![allow(missing_docs, clippy::all, clippy::pedantic)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobKind {
    Name,
    Path,
}
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    kind: GlobKind,
    regex: regex::Regex,
    re: String,
}
impl PartialEq for Glob {
    fn eq(&self, o: &Self) -> bool {
        self.source == o.source && self.kind == o.kind
    }
}
impl Eq for Glob {}
impl std::hash::Hash for Glob {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.source.hash(h);
        self.kind.hash(h);
    }
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("empty")]
    Empty,
    #[error("too long")]
    TooLong { max: usize },
    #[error("bad")]
    Bad,
}
pub const MAX_GLOB_LEN: usize = 512;
impl Glob {
    pub fn new(pattern: &str, kind: GlobKind) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let sep = match kind {
            GlobKind::Name => "./",
            GlobKind::Path => "/",
        };
        let mut re = String::from("^");
        let segs: Vec<&str> = pattern.split(|c| sep.contains(c)).collect();
        let seps: Vec<char> = pattern.chars().filter(|c| sep.contains(*c)).collect();
        let cls = format!("[^{}]", regex::escape(sep));
        let n = segs.len();
        for (i, s) in segs.iter().enumerate() {
            let sepc = if i < seps.len() {
                regex::escape(&seps[i].to_string())
            } else {
                String::new()
            };
            if *s == "**" {
                if n == 1 {
                    re.push_str(".*");
                } else if i + 1 < n {
                    re.push_str(&format!("(?:.*{sepc})?"));
                } else {
                    let prev = regex::escape(&seps[i - 1].to_string());
                    re.truncate(re.len() - prev.len());
                    re.push_str(&format!("(?:{prev}.*)?"));
                }
                continue;
            }
            for c in s.chars() {
                match c {
                    '*' => re.push_str(&format!("{cls}*")),
                    '?' => re.push_str(&cls),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push_str(&sepc);
        }
        re.push('$');
        let regex = regex::Regex::new(&re).map_err(|_| GlobError::Bad)?;
        Ok(Glob {
            source: pattern.to_owned(),
            kind,
            regex,
            re,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.source
    }
    pub fn kind(&self) -> GlobKind {
        self.kind
    }
    pub fn is_literal(&self) -> bool {
        !self.source.contains(['*', '?'])
    }
    pub fn is_match(&self, c: &str) -> bool {
        self.regex.is_match(c)
    }
    pub fn regex_source(&self) -> &str {
        &self.re
    }
}
pub fn normalize_resource(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}
