//! Query strings as every API route and workspace page reads them (`parse_query` into the
//! real query types, the Monitor's filters on to the store's filter).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let _ = charter_server::fuzzing::api_query(query);
});
