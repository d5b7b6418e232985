//! `PolicyDefinition::parse`: the body of `POST /v1/policies` and of a draft's edit. An
//! accepted definition, serialized and parsed again, is the same definition.
#![no_main]

use charter_core::PolicyDefinition;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(definition) = PolicyDefinition::parse(&value) else {
        return;
    };
    let Ok(written) = serde_json::to_value(&definition) else {
        panic!("an accepted definition does not serialize: {definition:?}");
    };
    match PolicyDefinition::parse(&written) {
        Ok(again) => assert_eq!(again, definition, "changed by a round trip: {written}"),
        Err(e) => panic!("its own serialization is refused: {e:?} in {written}"),
    }
});
