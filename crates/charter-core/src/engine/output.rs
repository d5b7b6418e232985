//! Output rules compiled: phrases in one case-insensitive regex, deny regexes in a `RegexSet`,
//! a PII detector and a JSON Schema validator, all built once.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::clip;
use crate::action::Output;
use crate::pattern::{Pattern, REGEX_SIZE_LIMIT};
use crate::pii::{self, PiiDetector};
use crate::rule::OutputRule;

/// An output rule ready to evaluate.
pub(super) struct CompiledOutput {
    channels: Option<Vec<String>>,
    phrases: Option<Regex>,
    regexes: Option<(RegexSet, Vec<Regex>)>,
    pii: Option<PiiDetector>,
    max_chars: Option<u64>,
    schema: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for CompiledOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledOutput")
            .field("channels", &self.channels)
            .field("phrases", &self.phrases)
            .field("max_chars", &self.max_chars)
            .finish_non_exhaustive()
    }
}

/// A failed output check: its message and the matched span, already masked.
pub(super) struct Finding {
    pub(super) message: String,
    pub(super) matching_input: String,
}

impl CompiledOutput {
    pub(super) fn compile(rule: &OutputRule) -> Result<CompiledOutput, String> {
        let phrases = match &rule.deny_phrases {
            Some(list) => {
                let alternation = list
                    .iter()
                    .map(|p| regex::escape(p))
                    .collect::<Vec<_>>()
                    .join("|");
                Some(
                    RegexBuilder::new(&alternation)
                        .case_insensitive(true)
                        .size_limit(REGEX_SIZE_LIMIT.saturating_mul(16))
                        .build()
                        .map_err(|e| format!("deny_phrases: {e}"))?,
                )
            }
            None => None,
        };
        let regexes = match &rule.deny_regex {
            Some(list) => {
                let sources: Vec<&str> = list.iter().map(Pattern::as_str).collect();
                let set = RegexSetBuilder::new(&sources)
                    .size_limit(REGEX_SIZE_LIMIT.saturating_mul(16))
                    .build()
                    .map_err(|e| format!("deny_regex: {e}"))?;
                Some((set, list.iter().map(|p| p.regex().clone()).collect()))
            }
            None => None,
        };
        let schema = match &rule.json_schema {
            Some(schema) => Some(crate::rule::compile_schema(schema)?),
            None => None,
        };
        Ok(CompiledOutput {
            channels: rule.channels.clone(),
            phrases,
            regexes,
            pii: rule.pii.as_deref().map(PiiDetector::new),
            max_chars: rule.max_chars,
            schema,
        })
    }

    /// Whether the rule governs this output (its channel filter).
    pub(super) fn applies(&self, output: &Output) -> bool {
        match (&self.channels, &output.channel) {
            (None, _) => true,
            (Some(channels), Some(channel)) => channels.iter().any(|c| c == channel),
            (Some(_), None) => false,
        }
    }

    /// The first failed check, in the order phrases, regexes, PII, length, schema.
    pub(super) fn check(&self, text: &str) -> Option<Finding> {
        if let Some(phrases) = &self.phrases
            && let Some(m) = phrases.find(text)
        {
            return Some(Finding {
                message: "the output contains a denied phrase".to_owned(),
                matching_input: clip(&pii::mask_all(m.as_str())),
            });
        }
        if let Some((set, regexes)) = &self.regexes
            && let Some(slot) = set.matches(text).iter().next()
        {
            let span = regexes[slot].find(text).map_or("", |m| m.as_str());
            return Some(Finding {
                message: format!(
                    "the output matches the denied pattern {:?}",
                    regexes[slot].as_str()
                ),
                matching_input: clip(&pii::mask_all(span)),
            });
        }
        if let Some(detector) = &self.pii
            && let Some(found) = detector.first(text)
        {
            let span = text.get(found.start..found.end).unwrap_or_default();
            return Some(Finding {
                message: format!(
                    "the output contains personal data ({})",
                    found.kind.as_str()
                ),
                matching_input: clip(&pii::mask(found.kind, span)),
            });
        }
        if let Some(max) = self.max_chars {
            // Counting stops one past the cap, so a huge text costs no more than the cap.
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            let count = text.chars().take(limit.saturating_add(1)).count();
            if count > limit {
                let total = text.chars().count();
                return Some(Finding {
                    message: format!(
                        "the output has {total} characters, more than max_chars {max}"
                    ),
                    matching_input: format!("{total} chars"),
                });
            }
        }
        if let Some(schema) = &self.schema {
            let problem = match serde_json::from_str::<serde_json::Value>(text) {
                Err(e) => Some(format!("the output is not JSON: {e}")),
                Ok(value) => schema.iter_errors(&value).next().map(|e| {
                    let at = e.instance_path().to_string();
                    let at = if at.is_empty() { "/".to_owned() } else { at };
                    format!("the output does not match its JSON Schema at {at}: {e}")
                }),
            };
            if let Some(message) = problem {
                return Some(Finding {
                    matching_input: clip(&pii::mask_all(text)),
                    message: clip(&pii::mask_all(&message)),
                });
            }
        }
        None
    }
}
