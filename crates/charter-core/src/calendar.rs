//! STUB (replaced by the real module).
#![allow(missing_docs, clippy::all, clippy::pedantic)]
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Span { millis: u64, text: String }
impl TryFrom<String> for Span { type Error = CalendarError; fn try_from(s: String) -> Result<Self, CalendarError> { Span::parse(&s) } }
impl From<Span> for String { fn from(s: Span) -> String { s.text } }
impl Span {
    pub fn parse(s: &str) -> Result<Span, CalendarError> {
        let (n, u) = s.split_at(s.len().saturating_sub(1));
        let n: u64 = n.parse().map_err(|_| CalendarError::Bad)?;
        if n == 0 { return Err(CalendarError::Bad); }
        let m = match u { "s" => 1000, "m" => 60_000, "h" => 3_600_000, "d" => 86_400_000, _ => return Err(CalendarError::Bad) };
        Ok(Span { millis: n * m, text: s.to_owned() })
    }
    pub fn as_millis(&self) -> u64 { self.millis }
}
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Zone { name: String, #[serde(skip)] #[schemars(skip)] tz: jiff::tz::TimeZone }
impl PartialEq for Zone { fn eq(&self, o: &Self) -> bool { self.name == o.name } }
impl Eq for Zone {}
impl TryFrom<String> for Zone { type Error = CalendarError; fn try_from(s: String) -> Result<Self, CalendarError> { Zone::parse(&s) } }
impl From<Zone> for String { fn from(s: Zone) -> String { s.name } }
impl Default for Zone { fn default() -> Zone { Zone::utc() } }
impl Zone {
    pub fn parse(name: &str) -> Result<Zone, CalendarError> { let tz = jiff::tz::TimeZone::get(name).map_err(|_| CalendarError::Bad)?; Ok(Zone { name: name.to_owned(), tz }) }
    pub fn utc() -> Zone { Zone { name: "UTC".into(), tz: jiff::tz::TimeZone::UTC } }
    pub fn name(&self) -> &str { &self.name }
    pub fn tz(&self) -> &jiff::tz::TimeZone { &self.tz }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday { Mon, Tue, Wed, Thu, Fri, Sat, Sun }
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Window { pub days: Vec<Weekday>, pub from: String, pub to: String }
impl Window { pub fn contains(&self, _at: jiff::Timestamp, _z: &Zone) -> bool { false } }
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period { Run, Hour, Day, Week, Month }
pub fn period_bounds(_at: jiff::Timestamp, _p: Period, _z: &Zone) -> Option<(jiff::Timestamp, jiff::Timestamp)> { None }
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError { #[error("bad")] Bad }
