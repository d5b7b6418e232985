//! Ids (charter-core's `ids`: every id in a body, path or query), the `Authorization` header's
//! bearer key and the workspace's session cookie. An accepted id is exactly the text sent.
#![no_main]

use charter_core::{AgentId, LineageId, PolicyId, RuleId, RunId, TenantId};
use charter_server::fuzzing::{bearer_secret, session_cookie};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ids = [
        PolicyId::new(text).map(|id| id.as_str().to_owned()),
        LineageId::new(text).map(|id| id.as_str().to_owned()),
        TenantId::new(text).map(|id| id.as_str().to_owned()),
        AgentId::new(text).map(|id| id.as_str().to_owned()),
        RunId::new(text).map(|id| id.as_str().to_owned()),
        RuleId::new(text).map(|id| id.as_str().to_owned()),
    ];
    for id in ids.iter().flatten() {
        assert_eq!(id, text);
    }
    assert!(ids.iter().all(Result::is_ok) || ids.iter().all(Result::is_err));
    if let Some(secret) = bearer_secret(text) {
        assert!(text.ends_with(secret));
    }
    if let Some(token) = session_cookie(text) {
        assert!(text.contains(&token));
    }
});
