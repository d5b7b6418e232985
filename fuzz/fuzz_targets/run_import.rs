//! One line of an NDJSON run import (`POST /v1/runs/import`), as a platform key and as a tenant
//! key send it. Each action of an accepted run, stored and read again, is the same action.
#![no_main]

use charter_core::Action;
use charter_server::fuzzing::run_import_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run_import_line(data, None);
    let Ok(run) = run_import_line(data, Some("acme")) else {
        return;
    };
    for imported in run.actions {
        let Ok(written) = serde_json::to_string(&imported.action) else {
            panic!(
                "an imported action does not serialize: {:?}",
                imported.action
            );
        };
        match Action::from_json(&written) {
            Ok(again) => assert_eq!(again, imported.action, "changed by a round trip: {written}"),
            Err(e) => panic!("its own serialization is refused: {e:?} in {written}"),
        }
    }
});
