//! Fresh ids: a type prefix and a time-ordered UUID (v7), so ids sort by creation.

/// A new id such as `pol_0193b0e5c2a47c3e9c1f2d4a5b6c7d8e`.
pub(crate) fn new(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A new API key: `chk_` and 64 hex characters (256 random bits from the OS).
pub fn new_key_secret() -> String {
    use rand::RngExt as _;
    let bytes: [u8; 32] = rand::rng().random();
    let mut key = String::with_capacity(68);
    key.push_str("chk_");
    for b in bytes {
        use std::fmt::Write as _;
        let _ = write!(key, "{b:02x}");
    }
    key
}

/// A fresh time-ordered id suffix (UUID v7, hex), for ids made outside the store (`evt_...`).
pub fn new_id_suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
