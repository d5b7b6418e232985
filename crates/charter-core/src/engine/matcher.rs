//! One-pass matching of a name against many globs: literal patterns in a hash map, the others
//! in one `RegexSet`, each pattern pointing at the rules that wrote it.

use std::sync::Arc;

use regex::{RegexSet, RegexSetBuilder};
use rustc_hash::FxHashMap;

use crate::glob::Glob;
use crate::pattern::REGEX_SIZE_LIMIT;

/// Maps a candidate name to the targets (rule slots) whose globs match it.
#[derive(Debug, Default)]
pub(super) struct NameMatcher {
    exact: Exact,
    set: Option<Arc<RegexSet>>,
    set_targets: Box<[Box<[u32]>]>,
}

/// Literal names and their targets.
#[derive(Debug)]
enum Exact {
    /// Few names (a name repeats once per target): a few bytes each, and a scan of a handful
    /// of short strings is as fast as hashing one. Most scopes are like this.
    Few(Box<[(Arc<str>, u32)]>),
    /// Many names: a hash map, so a large allow-list costs one lookup.
    Many(Box<FxHashMap<Arc<str>, Box<[u32]>>>),
}

impl Default for Exact {
    fn default() -> Exact {
        Exact::Few(Box::default())
    }
}

/// Above this many literal names a scope hashes them.
const FEW_NAMES: usize = 8;

/// What scopes of one compiled set share: regex sets by their patterns and literal names, so
/// thousands of agents whose policies use the same globs and tools hold one automaton and one
/// copy of each name, not thousands.
#[derive(Debug, Default)]
pub(super) struct SetCache {
    sets: FxHashMap<Vec<String>, Arc<RegexSet>>,
    names: rustc_hash::FxHashSet<Arc<str>>,
}

impl SetCache {
    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = name.into();
        self.names.insert(Arc::clone(&shared));
        shared
    }
}

/// Collects globs before building a [`NameMatcher`]; a pattern written by several rules is
/// compiled once.
#[derive(Debug, Default)]
pub(super) struct MatcherBuilder {
    exact: FxHashMap<Box<str>, Vec<u32>>,
    patterns: FxHashMap<String, usize>,
    sources: Vec<String>,
    targets: Vec<Vec<u32>>,
}

impl MatcherBuilder {
    pub(super) fn add(&mut self, glob: &Glob, target: u32) {
        if glob.is_literal() {
            push_unique(self.exact.entry(glob.as_str().into()).or_default(), target);
            return;
        }
        let source = glob.regex_source().to_owned();
        let slot = *self.patterns.entry(source.clone()).or_insert_with(|| {
            self.sources.push(source);
            self.targets.push(Vec::new());
            self.sources.len() - 1
        });
        push_unique(&mut self.targets[slot], target);
    }

    pub(super) fn build(self, cache: &mut SetCache) -> Result<NameMatcher, regex::Error> {
        let exact = if self.exact.len() > FEW_NAMES {
            Exact::Many(Box::new(
                self.exact
                    .into_iter()
                    .map(|(name, targets)| (cache.intern(&name), targets.into_boxed_slice()))
                    .collect(),
            ))
        } else {
            let mut few: Vec<(Arc<str>, u32)> = Vec::new();
            for (name, targets) in self.exact {
                let name = cache.intern(&name);
                few.extend(targets.into_iter().map(|t| (Arc::clone(&name), t)));
            }
            few.sort_unstable();
            Exact::Few(few.into_boxed_slice())
        };
        let set = if self.sources.is_empty() {
            None
        } else if let Some(set) = cache.sets.get(&self.sources) {
            Some(Arc::clone(set))
        } else {
            let set = Arc::new(
                RegexSetBuilder::new(&self.sources)
                    .size_limit(REGEX_SIZE_LIMIT.saturating_mul(64))
                    .dfa_size_limit(REGEX_SIZE_LIMIT.saturating_mul(64))
                    .build()?,
            );
            cache.sets.insert(self.sources.clone(), Arc::clone(&set));
            Some(set)
        };
        Ok(NameMatcher {
            exact,
            set,
            set_targets: self
                .targets
                .into_iter()
                .map(Vec::into_boxed_slice)
                .collect(),
        })
    }
}

fn push_unique(targets: &mut Vec<u32>, target: u32) {
    if targets.last() != Some(&target) && !targets.contains(&target) {
        targets.push(target);
    }
}

impl NameMatcher {
    /// Calls `f` with every target whose globs match `name` (a target may be reported more
    /// than once when several of its globs match).
    pub(super) fn for_each(&self, name: &str, mut f: impl FnMut(u32)) {
        match &self.exact {
            Exact::Few(few) => {
                for (_, target) in few.iter().filter(|(n, _)| **n == *name) {
                    f(*target);
                }
            }
            Exact::Many(map) => {
                if let Some(targets) = map.get(name) {
                    targets.iter().copied().for_each(&mut f);
                }
            }
        }
        if let Some(set) = &self.set {
            // Most names match no glob: the cheap yes/no first spares building the match list.
            if set.is_match(name) {
                for slot in &set.matches(name) {
                    self.set_targets[slot].iter().copied().for_each(&mut f);
                }
            }
        }
    }

    /// Whether any glob matches `name`.
    pub(super) fn any(&self, name: &str) -> bool {
        let literal = match &self.exact {
            Exact::Few(few) => few.iter().any(|(n, _)| **n == *name),
            Exact::Many(map) => map.contains_key(name),
        };
        literal || self.set.as_ref().is_some_and(|s| s.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::GlobKind;

    fn matcher(names: &[&str]) -> NameMatcher {
        let mut builder = MatcherBuilder::default();
        for (i, name) in names.iter().enumerate() {
            builder.add(
                &Glob::new(name, GlobKind::Name).unwrap(),
                u32::try_from(i % 3).unwrap(),
            );
        }
        builder.build(&mut SetCache::default()).unwrap()
    }

    fn targets(m: &NameMatcher, name: &str) -> Vec<u32> {
        let mut found = Vec::new();
        m.for_each(name, |t| found.push(t));
        found.sort_unstable();
        found.dedup();
        found
    }

    #[test]
    fn few_and_many_literal_names_agree() {
        let names: Vec<String> = (0..20).map(|i| format!("tool.n{i}")).collect();
        for count in [3, FEW_NAMES, FEW_NAMES + 1, 20] {
            let mut list: Vec<&str> = names[..count].iter().map(String::as_str).collect();
            list.push("*.send_email");
            let m = matcher(&list);
            for (i, name) in names.iter().enumerate() {
                let expected: Vec<u32> = if i < count {
                    vec![u32::try_from(i % 3).unwrap()]
                } else {
                    vec![]
                };
                assert_eq!(targets(&m, name), expected, "{name} among {count}");
                assert_eq!(m.any(name), i < count);
            }
            assert_eq!(
                targets(&m, "gmail.send_email"),
                vec![u32::try_from(count % 3).unwrap()]
            );
            assert!(!m.any("gmail.send"));
        }
    }

    #[test]
    fn one_name_may_serve_several_targets() {
        let m = matcher(&["a.b", "a.b", "a.b"]);
        assert_eq!(targets(&m, "a.b"), vec![0, 1, 2]);
    }
}
