//! The audit chain's hashing: `hash = SHA-256(prev_hash ‖ entry)`, over the exact stored text,
//! so a verify recomputes what was written byte for byte.

use sha2::{Digest, Sha256};

use crate::model::AuditEntry;

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an entry that its hash covers, as stored.
pub(crate) struct Hashed<'a> {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) tenant_id: Option<&'a str>,
    pub(crate) actor_key_id: &'a str,
    pub(crate) actor_name: &'a str,
    pub(crate) action: &'a str,
    pub(crate) policy_id: Option<&'a str>,
    pub(crate) lineage_id: Option<&'a str>,
    pub(crate) version: Option<u32>,
    pub(crate) details: &'a str,
}

/// The hash of an entry following `prev_hash`, as lowercase hex.
pub(crate) fn hash(prev_hash: &str, entry: &Hashed<'_>) -> String {
    // A JSON array of the fixed fields: unambiguous, whatever the strings contain.
    let fields = serde_json::json!([
        entry.seq,
        entry.at_ms,
        entry.tenant_id,
        entry.actor_key_id,
        entry.actor_name,
        entry.action,
        entry.policy_id,
        entry.lineage_id,
        entry.version,
    ]);
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(fields.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(entry.details.as_bytes());
    hex(&hasher.finalize())
}

/// SHA-256 of a text, as lowercase hex (API key lookups).
pub(crate) fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Lower-case hex, two digits a byte. Every authenticated request hashes its key through
/// this: a table lookup per digit, not a formatter call per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

/// Checks one chain, in `seq` order, against the stored details text of each entry; returns
/// the first bad `seq`, if any. `anchor` is the seq and hash of the last entry retention
/// removed: the first kept entry must follow it (without one, the chain starts at 1 from
/// [`GENESIS`]).
pub(crate) fn first_bad(
    entries: &[(AuditEntry, String)],
    anchor: Option<(u64, &str)>,
) -> Option<u64> {
    let (before, mut prev) = anchor.map_or((0, GENESIS.to_owned()), |(seq, hash)| {
        (seq, hash.to_owned())
    });
    for (expected_seq, (entry, details)) in (before + 1..).zip(entries) {
        let fields = Hashed {
            seq: entry.seq,
            at_ms: entry.at.as_millisecond(),
            tenant_id: entry.tenant_id.as_deref(),
            actor_key_id: &entry.actor.key_id,
            actor_name: &entry.actor.name,
            action: &entry.action,
            policy_id: entry.policy_id.as_deref(),
            lineage_id: entry.lineage_id.as_deref(),
            version: entry.version,
            details,
        };
        if entry.seq != expected_seq
            || entry.prev_hash != prev
            || hash(&prev, &fields) != entry.hash
        {
            return Some(entry.seq);
        }
        prev.clone_from(&entry.hash);
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_as_lower_case_hex() {
        // FIPS 180-2's example for "abc".
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
