//! The `If-Match` header of a draft's edit (`IfMatch`): entity tags, `*`, several field lines
//! (the input's lines). A revision it asks for is one of the tags sent.
#![no_main]

use charter_server::fuzzing::if_match;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<&str> = text.split('\n').collect();
    if let Some(Ok(Some(revision))) = if_match(&values) {
        assert!(
            revision == 0 || text.contains(&format!("\"{revision}\"")),
            "{text:?}"
        );
    }
});
