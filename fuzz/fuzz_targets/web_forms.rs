//! The workspace's hand-written form readers: a `multipart/form-data` body (the first line of
//! the input is its `Content-Type`, the rest the body) and the CSRF field of a URL-encoded
//! form. A part never claims more bytes than the body holds.
#![no_main]

use charter_server::fuzzing::{csrf_form_field, multipart};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = csrf_form_field(data);
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(content_type) = std::str::from_utf8(head) else {
        return;
    };
    if let Some(parts) = multipart(content_type, body) {
        let total: usize = parts.iter().map(|(_, _, len)| len).sum();
        assert!(total <= body.len());
    }
});
