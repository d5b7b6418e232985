//! The Monitor page's query (`MonitorQuery::parse`: the form's fields, `range`, times without
//! offset). The address it shows for an accepted query reads back as the same address.
#![no_main]

use charter_server::fuzzing::monitor_query;
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let now = Timestamp::from_second(1_780_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
    let Ok(href) = monitor_query(raw, now) else {
        return;
    };
    let query = href.split_once('?').map_or("", |(_, q)| q);
    match monitor_query(query, now) {
        Ok(again) => assert_eq!(again, href, "{raw:?} shows {href:?}"),
        Err(e) => panic!("{raw:?} shows {href:?}, which is refused: {e}"),
    }
});
