//! `PolicyDocument::parse_many`: what `POST /v1/policies/import` and `charter import` read (one
//! document or an array). An accepted document survives export and import unchanged:
//! serialized and parsed again, it is the same document.
#![no_main]

use charter_core::PolicyDocument;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(documents) = PolicyDocument::parse_many(text) else {
        return;
    };
    for document in documents {
        let Ok(written) = serde_json::to_string(&document) else {
            panic!("an accepted document does not serialize: {document:?}");
        };
        match PolicyDocument::parse_many(&written) {
            Ok(again) => assert_eq!(again, [document], "changed by a round trip: {written}"),
            Err(e) => panic!("its own export is refused: {e:?} in {written}"),
        }
    }
});
