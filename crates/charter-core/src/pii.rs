//! STUB (replaced by the real module).
#![allow(missing_docs, clippy::all, clippy::pedantic)]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    CreditCard,
    Ssn,
    Iban,
    IpAddress,
    Jwt,
    ApiKey,
}
impl PiiKind {
    pub fn as_str(self) -> &'static str {
        "pii"
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiMatch {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}
#[derive(Debug, Clone)]
pub struct PiiDetector {
    kinds: Vec<PiiKind>,
}
impl PiiDetector {
    pub fn new(kinds: &[PiiKind]) -> PiiDetector {
        PiiDetector {
            kinds: kinds.to_vec(),
        }
    }
    pub fn kinds(&self) -> &[PiiKind] {
        &self.kinds
    }
    pub fn find_all(&self, _t: &str) -> Vec<PiiMatch> {
        vec![]
    }
    pub fn first(&self, _t: &str) -> Option<PiiMatch> {
        None
    }
}
pub fn mask(_k: PiiKind, v: &str) -> String {
    v.to_owned()
}
pub fn mask_all(t: &str) -> String {
    t.to_owned()
}
