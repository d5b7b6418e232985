//! `Rule::parse` and `parse_rules` (a rule's conditions included): an accepted rule reads as a
//! sentence, and serialized and parsed again it is the same rule.
#![no_main]

use charter_core::Rule;
use charter_core::rule::parse_rules;
use charter_core::sentence::Sentence;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let rules = match &value {
        Value::Array(_) => parse_rules(&value, "rules").unwrap_or_default(),
        _ => Rule::parse(&value).into_iter().collect(),
    };
    for rule in rules {
        let _ = Sentence::of(&rule.kind).pieces().len();
        let Ok(written) = serde_json::to_value(&rule) else {
            panic!("an accepted rule does not serialize: {rule:?}");
        };
        match Rule::parse(&written) {
            Ok(again) => assert_eq!(again, rule, "changed by a round trip: {written}"),
            Err(e) => panic!("its own serialization is refused: {e:?} in {written}"),
        }
    }
});
