//! Fresh ids: a type prefix and a time-ordered UUID (v7), so ids sort by creation.

/// A new id such as `pol_0193b0e5c2a47c3e9c1f2d4a5b6c7d8e`.
pub(crate) fn new(prefix: &str) -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    let suffix = encode_new(&mut buffer);
    let mut id = String::with_capacity(prefix.len() + 1 + suffix.len());
    id.push_str(prefix);
    id.push('_');
    id.push_str(suffix);
    id
}

/// A fresh UUID v7 as lower-case hex in `buffer`.
fn encode_new(buffer: &mut [u8; uuid::fmt::Urn::LENGTH]) -> &str {
    uuid::Uuid::now_v7().simple().encode_lower(buffer)
}

/// The smallest id with `prefix` that can have been made in the same millisecond as `id` or
/// later (ids lead with their millisecond: 12 hex digits after the prefix); every `prefix` id
/// for one unreadable as such.
pub(crate) fn made_since(prefix: &str, id: &str) -> String {
    let millisecond = id
        .split_once('_')
        .map(|(_, hex)| hex)
        .filter(|hex| hex.len() >= 12)
        .map_or("", |hex| &hex[..12]);
    format!("{prefix}_{millisecond}")
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
///
/// Made once per check: the random bits come from a thread-local generator seeded by the OS
/// (uuid's `fast-rng`), not a system call each, and the hex is written without a formatter.
pub fn new_id_suffix() -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    encode_new(&mut buffer).to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_lower_hex_and_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| super::new("evt")).collect();
        for id in &ids {
            let hex = id.strip_prefix("evt_").unwrap();
            assert_eq!(hex.len(), 32, "{id}");
            assert!(
                hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
        // Version 7: the time leads, and within one millisecond the counter keeps the order.
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids out of creation order"
        );
    }

    #[test]
    fn made_since_bounds_every_later_id() {
        let first = super::new("imp");
        let later = super::new("evt");
        let since = super::made_since("evt", &first);
        assert_eq!(since, format!("evt_{}", &first[4..16]));
        assert!(later >= since, "{later} sorts before {since}");
        assert_eq!(super::made_since("evt", "imp_short"), "evt_");
    }
}
