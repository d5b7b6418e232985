//! The small parsers of text inside rules: durations (`Span`), time zones, times of day,
//! money, linear-time regexes (`Pattern`) and globs of both kinds. What is accepted prints
//! back as text that parses to the same value.
#![no_main]

use charter_core::Money;
use charter_core::calendar::{Span, TimeOfDay, Zone};
use charter_core::glob::{Glob, GlobKind};
use charter_core::pattern::Pattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(span) = Span::parse(text) {
        let _ = span.as_millis();
        assert_eq!(Span::parse(&span.to_string()).ok(), Some(span));
    }
    if let Ok(zone) = Zone::parse(text) {
        let name = zone.to_string();
        assert_eq!(Zone::parse(&name).map(|z| z.to_string()).ok(), Some(name));
    }
    if let Ok(time) = TimeOfDay::parse(text) {
        assert_eq!(TimeOfDay::parse(&time.to_string()).ok(), Some(time));
    }
    if let Ok(money) = Money::parse(text) {
        assert_eq!(
            Money::parse(&money.to_string()).ok(),
            Some(money),
            "{text:?}"
        );
    }
    if let Ok(pattern) = Pattern::new(text) {
        let _ = pattern.regex().is_match(text);
    }
    for kind in [GlobKind::Name, GlobKind::Path] {
        if let Ok(glob) = Glob::new(text, kind) {
            let _ = glob.regex_source();
            let _ = glob.is_match(text);
        }
    }
});
