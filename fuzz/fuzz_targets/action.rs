//! `Action::parse` (a check's body) and `Action::from_json` (a recorded action as Validate
//! reads it, with its own direct path): both read a text alike, and an accepted action,
//! stored and read again, is the same action.
#![no_main]

use charter_core::Action;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let direct = Action::from_json(text);
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        assert!(direct.is_err(), "malformed JSON accepted: {text}");
        return;
    };
    let parsed = Action::parse(&value);
    assert_eq!(
        direct.as_ref().ok(),
        parsed.as_ref().ok(),
        "from_json and parse disagree on {text}"
    );
    let Ok(action) = parsed else {
        return;
    };
    let Ok(written) = serde_json::to_string(&action) else {
        panic!("an accepted action does not serialize: {action:?}");
    };
    match Action::from_json(&written) {
        Ok(again) => assert_eq!(again, action, "changed by a round trip: {written}"),
        Err(e) => panic!("its own serialization is refused: {e:?} in {written}"),
    }
});
