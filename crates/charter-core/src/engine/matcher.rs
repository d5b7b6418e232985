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
    exact: FxHashMap<Box<str>, Vec<u32>>,
    set: Option<Arc<RegexSet>>,
    set_targets: Vec<Vec<u32>>,
}

/// Compiled regex sets by their patterns, shared by every scope of one compiled set: thousands
/// of agents whose policies use the same globs hold one automaton, not thousands.
#[derive(Debug, Default)]
pub(super) struct SetCache {
    sets: FxHashMap<Vec<String>, Arc<RegexSet>>,
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
            exact: self.exact,
            set,
            set_targets: self.targets,
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
        if let Some(targets) = self.exact.get(name) {
            targets.iter().copied().for_each(&mut f);
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
        self.exact.contains_key(name) || self.set.as_ref().is_some_and(|s| s.is_match(name))
    }
}
