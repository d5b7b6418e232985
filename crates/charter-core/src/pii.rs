//! PII detection and masking for `output` rules (product.md §4): eight validated detectors,
//! and masks that let a person recognise a finding in the Monitor without it becoming a second leak.
//!
//! # Detectors
//!
//! Each kind is found by a constant regular expression (linear time, compiled once per process)
//! and every candidate is then checked by a validator; only validated candidates are findings.
//!
//! | kind | what is found | what is checked |
//! | --- | --- | --- |
//! | `email` | `local@domain.tld`: local part of `A-Z a-z 0-9 . _ % + -` (no leading, trailing or double dot), ASCII domain of one or more labels, an alphabetic or `xn--` top-level domain | local part ≤ 64, address ≤ 254, labels ≤ 63 bytes; image names such as `logo@2x.png` and scp-style `git@github.com:org/repo` are not addresses |
//! | `phone` | E.164 with a leading `+` (`+14155552671`, `+44 20 7946 0958`, `+1 (415) 555-2671`); North American `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1-800-555-0199`; national numbers with a trunk `0` and separators (`020 7946 0958`, `01 23 45 67 89`) | 10–15 digits. A digit run without `+`, separators or parentheses is never a phone (timestamps, IDs, card numbers); North American numbers need a `-`, `.` or parentheses, since space-separated triples are usually tables of numbers |
//! | `credit_card` | 13–19 digits, contiguous or in groups (first group of 4, then groups of 3–6) separated by single spaces or by single dashes | Luhn, not one repeated digit, and a known issuer range and length (Visa, Mastercard, Mir, Amex, Diners, JCB, Discover, `UnionPay`, Maestro, `RuPay`). Trailing space-separated groups that break the check are dropped, so a card followed by its CVV is still found |
//! | `ssn` | US `AAA-GG-SSSS` with dashes only: nine bare digits are too often something else | area not 000, 666 or 900–999; group not 00; serial not 0000 |
//! | `iban` | country code, 2 check digits, 11–30 letters or digits, contiguous or in space-separated groups of 4 (either case) | length of the country (the SWIFT registry plus the experimental African and Middle-East formats; an unknown country is no IBAN), check digits 02–98, ISO 7064 mod-97 = 1. Trailing groups that break the check are dropped, as for cards |
//! | `ip_address` | IPv4 dotted quads; IPv6 in full, compressed and IPv4-embedded forms | IPv4 octets 0–255 without leading zeros; IPv6 parses with `std::net::Ipv6Addr`. `::` alone and short compressed forms such as `1::2` or `::2` (Python slices) are ignored; `::1` is kept |
//! | `jwt` | three base64url segments separated by `.`, the first starting with `eyJ` and at least 11 long (the third may be empty: unsecured tokens) | the shape is the check |
//! | `api_key` | the prefixed secrets listed below | the prefix and the shape of the rest |
//!
//! API key families: OpenAI-style `sk-` (also `sk-proj-`, `sk-svcacct-`, `sk-admin-`, and
//! Anthropic's `sk-ant-`) with at least 20 characters after the prefix, which must look random
//! (a digit, a letter, and 16 letters or digits in a row, so a slug like `sk-learn-the-basics`
//! is no key); Stripe `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_` with 16 or more letters or digits;
//! AWS access key IDs `AKIA` / `ASIA` with 16 uppercase letters or digits; GitHub `ghp_`, `gho_`,
//! `ghu_`, `ghs_`, `ghr_` with 36 or more letters or digits, and `github_pat_` with 22 or more;
//! Slack `xoxb-`, `xoxp-`, `xoxa-` with 10 or more characters including a digit (so `xoxb-your-token`
//! in docs is no key); Google `AIza` with 35 characters; GitLab `glpat-` with 20 or more.
//!
//! # Boundaries
//!
//! A finding is never glued to an ASCII letter, digit or underscore: `x4111111111111111y`,
//! `order_4111111111111111` and `task_live_…` find nothing, because such runs are identifiers,
//! hashes or words rather than values written on their own. Non-ASCII text is a boundary, so
//! `卡号4111111111111111` and `é4111111111111111é` find the card. Numbers also may not be one
//! piece of a longer dotted or dashed number (`1.2.3.4.5`, `0123-45-6789-12`, `4111111111111111.00`).
//! An email address takes its whole local part, so the boundary rule does not apply to its left.
//!
//! # Overlaps
//!
//! [`PiiDetector::find_all`] returns findings sorted by start and non-overlapping: the earliest
//! start wins, then the longest, then the more specific validator (jwt, `api_key`, `credit_card`,
//! iban, ssn, email, `ip_address`, phone). [`PiiDetector::first`] returns the same finding as the
//! head of `find_all`. [`mask_all`] masks what `find_all` finds, then masks again whatever the
//! first masks left readable (an email domain holding a card number, chained addresses).
//!
//! # Cost
//!
//! Matching is linear in the text. The email, ssn, jwt and `api_key` patterns hold a literal
//! (`@`, `-`, `eyJ`, the key prefixes) that the regex engine jumps between, so they cost little.
//! The five digit-led patterns (phone, card, iban, IPv4, IPv6) each need a full automaton pass,
//! so a detector with two or more of them first runs one `RegexSet` pass to learn which have any
//! candidate at all: text without numbers pays for that one pass. A candidate that fails its
//! check is searched past from its next character for the short digit-led kinds (at most 64
//! bytes each), and from its `@` or its end for the others, where no valid finding can start
//! inside a failed one. `first` validates each kind's candidates only up to its first valid one,
//! stops a kind once its candidates start after the best finding so far, and, once the cheap
//! kinds have found something, searches for the digit-led ones only up to that finding.
//!
//! Measured on 100 KB of prose (release build, all kinds): about 170 µs without numbers that
//! look like PII, about 500 µs for `find_all` with a few findings of several kinds.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// A kind of personal or secret data an `output` rule can refuse to let through.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An email address.
    Email,
    /// A telephone number, international (`+…`) or in a common national format.
    Phone,
    /// A payment card number that passes the Luhn check.
    CreditCard,
    /// A US Social Security number, `AAA-GG-SSSS`.
    Ssn,
    /// An International Bank Account Number that passes mod-97.
    Iban,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A JSON Web Token.
    Jwt,
    /// A secret API key of a well-known service.
    ApiKey,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 8] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Ssn,
        PiiKind::Iban,
        PiiKind::IpAddress,
        PiiKind::Jwt,
        PiiKind::ApiKey,
    ];

    /// The kind's name as written in policies (`credit_card`, `ip_address`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Ssn => "ssn",
            PiiKind::Iban => "iban",
            PiiKind::IpAddress => "ip_address",
            PiiKind::Jwt => "jwt",
            PiiKind::ApiKey => "api_key",
        }
    }

    /// Tie-break between findings with the same span: the stricter validator is the likelier truth.
    fn rank(self) -> u8 {
        match self {
            PiiKind::Jwt => 0,
            PiiKind::ApiKey => 1,
            PiiKind::CreditCard => 2,
            PiiKind::Iban => 3,
            PiiKind::Ssn => 4,
            PiiKind::Email => 5,
            PiiKind::IpAddress => 6,
            PiiKind::Phone => 7,
        }
    }
}

/// One validated finding: its kind and byte range in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiMatch {
    /// What was found.
    pub kind: PiiKind,
    /// Byte offset of the first byte of the finding (always on a char boundary).
    pub start: usize,
    /// Byte offset one past the last byte of the finding (always on a char boundary).
    pub end: usize,
}

impl PiiMatch {
    /// The order in which overlapping findings are preferred: earliest, then longest, then rank.
    fn preference(&self) -> (usize, std::cmp::Reverse<usize>, u8) {
        (self.start, std::cmp::Reverse(self.end), self.kind.rank())
    }
}

/// A detector for a chosen set of kinds, built once (when a policy is compiled) and shared.
#[derive(Debug, Clone)]
pub struct PiiDetector {
    kinds: Vec<PiiKind>,
    /// Scanners whose patterns hold a literal (`@`, `-`, `eyJ`, key prefixes) that the regex
    /// engine jumps between: each costs little on its own.
    direct: Vec<Scanner>,
    /// Scanners of digit-led patterns, which cost a full automaton pass each.
    gated: Vec<Scanner>,
    /// One pass over the text that tells which of `gated` have any candidate at all, so text
    /// without numbers pays for one pass instead of five. `None` when there is nothing to gain
    /// (fewer than two gated scanners) or, in theory, if the set failed to build.
    gate: Option<RegexSet>,
}

impl PiiDetector {
    /// A detector for `kinds` (duplicates are ignored). Infallible: the patterns are constants.
    #[must_use]
    pub fn new(kinds: &[PiiKind]) -> PiiDetector {
        let mut kinds = kinds.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        let (gated, direct): (Vec<Scanner>, Vec<Scanner>) = Scanner::ALL
            .into_iter()
            .filter(|s| kinds.contains(&s.kind()))
            .partition(|s| s.gated());
        let gate = if gated.len() >= 2 {
            // Without the set every gated scanner simply runs, so a failure here (which the
            // tests rule out for these constant patterns) only costs time.
            RegexSet::new(gated.iter().map(|s| s.pattern())).ok()
        } else {
            None
        };
        PiiDetector {
            kinds,
            direct,
            gated,
            gate,
        }
    }

    /// The gated scanners that may find something in `text`.
    fn active_gated(&self, text: &str) -> Vec<Scanner> {
        match &self.gate {
            Some(gate) => gate
                .matches(text)
                .iter()
                .filter_map(|i| self.gated.get(i).copied())
                .collect(),
            None => self.gated.clone(),
        }
    }

    /// The kinds this detector looks for, sorted and without duplicates.
    #[must_use]
    pub fn kinds(&self) -> &[PiiKind] {
        &self.kinds
    }

    /// Every validated finding in `text`, sorted by start and non-overlapping (earliest start
    /// wins, then the longest span, then the more specific kind).
    #[must_use]
    pub fn find_all(&self, text: &str) -> Vec<PiiMatch> {
        let mut found: Vec<PiiMatch> = self
            .direct
            .iter()
            .copied()
            .chain(self.active_gated(text))
            .flat_map(|scanner| Findings::new(scanner, text, text, usize::MAX))
            .collect();
        found.sort_by_key(PiiMatch::preference);
        let mut kept: Vec<PiiMatch> = Vec::with_capacity(found.len());
        for m in found {
            if kept.last().is_none_or(|last| m.start >= last.end) {
                kept.push(m);
            }
        }
        kept
    }

    /// The first finding of [`find_all`](Self::find_all), validating no more candidates than
    /// needed to know it.
    #[must_use]
    pub fn first(&self, text: &str) -> Option<PiiMatch> {
        fn consider(best: &mut Option<PiiMatch>, scanner: Scanner, text: &str, haystack: &str) {
            let limit = best.as_ref().map_or(usize::MAX, |b| b.start);
            if let Some(m) = Findings::new(scanner, text, haystack, limit).next()
                && best
                    .as_ref()
                    .is_none_or(|b| m.preference() < b.preference())
            {
                *best = Some(m);
            }
        }
        let mut best: Option<PiiMatch> = None;
        for &scanner in &self.direct {
            consider(&mut best, scanner, text, text);
        }
        // Gated candidates are short: once something is found, only the text up to it plus one
        // longest candidate and the character after it can hold an earlier finding, so neither
        // the gate nor the scanners need to read further.
        let haystack = match &best {
            Some(found) => prefix(text, found.start + GATED_MAX_LEN + 4),
            None => text,
        };
        for scanner in self.active_gated(haystack) {
            consider(&mut best, scanner, text, haystack);
        }
        best
    }
}

/// Masks one matched value of the given kind, for display in the Monitor (it must never become a second leak).
///
/// Card numbers keep their first and last 4 digits (`4111 **** **** 1111`), email addresses the
/// domain and the first character of a local part longer than one (`j*******@acme.com`), phone
/// numbers their last 2 digits, SSNs their last 4 (`***-**-6789`), IBANs their first and last 4
/// letters or digits, IPv4 addresses their first two octets (`10.1.*.*`), IPv6 addresses their
/// first group (`fe80:*:*:*:*:*:*:*`), JWTs their first 6 characters (`eyJhbG…[jwt]`), and API
/// keys their recognised prefix and last 4 characters with at most 8 `*` between
/// (`sk-proj-********c3d4`).
/// Separators are kept. A value too short or too odd for its kind's mask is masked whole (every
/// letter and digit becomes `*`), so no input leaks more than the mask of a real finding does.
#[must_use]
pub fn mask(kind: PiiKind, value: &str) -> String {
    match kind {
        PiiKind::Email => mask_email(value),
        PiiKind::Phone => mask_keeping(value, 0, 2, char::is_ascii_digit),
        PiiKind::CreditCard => mask_keeping(value, 4, 4, char::is_ascii_digit),
        PiiKind::Ssn => mask_keeping(value, 0, 4, char::is_ascii_digit),
        PiiKind::Iban => mask_keeping(value, 4, 4, char::is_ascii_alphanumeric),
        PiiKind::IpAddress => mask_ip(value),
        PiiKind::Jwt => mask_jwt(value),
        PiiKind::ApiKey => mask_api_key(value),
    }
}

/// Masks every finding of every kind in `text` (used to scrub matching inputs of any rule).
///
/// A mask leaves part of its finding readable (an email's domain), and findings can overlap
/// (`ab@cd.ef@acme.com`, `jane@4111111111111111.com`): a second pass masks what the first left
/// readable, and a third, if still needed, replaces every letter and digit of what remains.
#[must_use]
pub fn mask_all(text: &str) -> String {
    static EVERY_KIND: LazyLock<PiiDetector> = LazyLock::new(|| PiiDetector::new(&PiiKind::ALL));
    let mut current = Cow::Borrowed(text);
    for pass in 0..3 {
        let found = EVERY_KIND.find_all(&current);
        if found.is_empty() {
            break;
        }
        let mut out = String::with_capacity(current.len());
        let mut at = 0;
        for m in found {
            let value = slice(&current, m.start, m.end);
            out.push_str(slice(&current, at, m.start));
            out.push_str(&if pass < 2 {
                mask(m.kind, value)
            } else {
                mask_whole(value)
            });
            at = m.end;
        }
        out.push_str(slice(&current, at, current.len()));
        current = Cow::Owned(out);
    }
    current.into_owned()
}

// ---------------------------------------------------------------------------------------------
// Scanning

/// One regular expression and its validator. A kind may need several (IPv4 and IPv6 never share
/// a candidate, and one alternation would hide one behind the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scanner {
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
    Ipv4,
    Ipv6,
    Jwt,
    ApiKey,
}

/// What a validator made of a candidate.
enum Outcome {
    /// A finding, possibly shorter than the candidate (trailing groups dropped).
    Found { start: usize, end: usize },
    /// No finding; search again from `resume`.
    Skip { resume: usize },
}

// `(?-u)` keeps `\d` to ASCII digits (validators read bytes) and makes `\b{...}` the ASCII word
// boundary, which the lazy DFA runs on any text; `start-half`/`end-half` look at one side only,
// so a candidate may begin or end with punctuation such as `+`, `(` or `:`.
const EMAIL: &str = r"(?-u)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+(?:xn--[A-Za-z0-9-]+|[A-Za-z]{2,})\b{end-half}";
const PHONE: &str = concat!(
    r"(?-u)\b{start-half}(?:",
    // E.164 and international notation: a country code, then groups, maybe one in parentheses.
    r"\+\d{1,3}(?:[ .-]?\(\d{1,5}\))?(?:[ .-]?\d{1,6}){1,6}",
    // North American numbering plan: area code and exchange never start with 0 or 1.
    r"|(?:1[ .-])?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .-])[2-9]\d\d[ .-]\d{4}",
    // National numbers with a trunk prefix 0 (most of Europe, much of the world).
    r"|(?:\(0\d{1,4}\) ?|0\d{1,4}[ -])\d{2,8}(?:[ -]\d{2,8}){0,3}",
    r")\b{end-half}"
);
const CARD: &str =
    r"(?-u)\b{start-half}(?:\d{13,19}|\d{4}(?: \d{3,6}){2,4}|\d{4}(?:-\d{3,6}){2,4})\b{end-half}";
const SSN: &str = r"(?-u)\b{start-half}\d{3}-\d{2}-\d{4}\b{end-half}";
const IBAN: &str = r"(?-u)(?i)\b{start-half}[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)\b{end-half}";
const IPV4: &str = r"(?-u)\b{start-half}\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b{end-half}";
// The IPv4-embedded form comes first so that its hex-and-colon head does not end the match at
// the first dot. At least two colons keep hex-only words (`cafe`, `add`) from being candidates.
const IPV6: &str = concat!(
    r"(?-u)\b{start-half}(?:",
    r"(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){1,6}:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
    r"|(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,8}",
    r")\b{end-half}"
);
const JWT: &str = r"(?-u)\b{start-half}eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*";
const API_KEY: &str = concat!(
    r"(?-u)\b{start-half}(?:",
    r"sk-[A-Za-z0-9_-]{20,}",
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
    r"|A[KS]IA[A-Z0-9]{16}",
    r"|gh[pousr]_[A-Za-z0-9]{36,}",
    r"|github_pat_[A-Za-z0-9_]{22,}",
    r"|xox[bpa]-[A-Za-z0-9-]{10,}",
    r"|AIza[A-Za-z0-9_-]{35}",
    r"|glpat-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*",
    r")\b{end-half}"
);

/// Key prefixes shown unmasked, longest first so `sk-proj-` wins over `sk-`.
const KEY_PREFIXES: [&str; 22] = [
    "sk-svcacct-",
    "github_pat_",
    "sk-admin-",
    "sk-proj-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "sk-ant-",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "AKIA",
    "ASIA",
    "AIza",
    "sk-",
];

#[expect(clippy::expect_used, reason = "constant pattern, covered by tests")]
fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("PII patterns are constants")
}

static REGEXES: LazyLock<[Regex; 9]> = LazyLock::new(|| Scanner::ALL.map(|s| compile(s.pattern())));

impl Scanner {
    const ALL: [Scanner; 9] = [
        Scanner::Email,
        Scanner::Phone,
        Scanner::Card,
        Scanner::Ssn,
        Scanner::Iban,
        Scanner::Ipv4,
        Scanner::Ipv6,
        Scanner::Jwt,
        Scanner::ApiKey,
    ];

    fn kind(self) -> PiiKind {
        match self {
            Scanner::Email => PiiKind::Email,
            Scanner::Phone => PiiKind::Phone,
            Scanner::Card => PiiKind::CreditCard,
            Scanner::Ssn => PiiKind::Ssn,
            Scanner::Iban => PiiKind::Iban,
            Scanner::Ipv4 | Scanner::Ipv6 => PiiKind::IpAddress,
            Scanner::Jwt => PiiKind::Jwt,
            Scanner::ApiKey => PiiKind::ApiKey,
        }
    }

    /// Whether the pattern has no literal for the regex engine to jump to, so that a search
    /// costs a full automaton pass over the text.
    fn gated(self) -> bool {
        matches!(
            self,
            Scanner::Phone | Scanner::Card | Scanner::Iban | Scanner::Ipv4 | Scanner::Ipv6
        )
    }

    fn pattern(self) -> &'static str {
        match self {
            Scanner::Email => EMAIL,
            Scanner::Phone => PHONE,
            Scanner::Card => CARD,
            Scanner::Ssn => SSN,
            Scanner::Iban => IBAN,
            Scanner::Ipv4 => IPV4,
            Scanner::Ipv6 => IPV6,
            Scanner::Jwt => JWT,
            Scanner::ApiKey => API_KEY,
        }
    }

    fn regex(self) -> &'static Regex {
        &REGEXES[self as usize]
    }

    fn validate(self, text: &str, start: usize, end: usize) -> Outcome {
        match self {
            Scanner::Email => validate_email(text, start, end),
            Scanner::Phone => validate_phone(text, start, end),
            Scanner::Card => validate_card(text, start, end),
            Scanner::Ssn => validate_ssn(text, start, end),
            Scanner::Iban => validate_iban(text, start, end),
            Scanner::Ipv4 => validate_ipv4(text, start, end),
            Scanner::Ipv6 => validate_ipv6(text, start, end),
            Scanner::Jwt => Outcome::Found { start, end },
            Scanner::ApiKey => validate_api_key(text, start, end),
        }
    }
}

/// The longest match of a gated pattern (the international phone number: `+`, 3 digits, a
/// parenthesised group of 5 and six groups of 6, each after a separator, is 54 bytes).
const GATED_MAX_LEN: usize = 64;

/// The validated findings of one scanner, in order, none starting after `limit`. Candidates are
/// searched for in `haystack`, a prefix of `text`; validators see all of `text`.
struct Findings<'t> {
    scanner: Scanner,
    text: &'t str,
    haystack: &'t str,
    pos: usize,
    limit: usize,
}

impl<'t> Findings<'t> {
    fn new(scanner: Scanner, text: &'t str, haystack: &'t str, limit: usize) -> Findings<'t> {
        Findings {
            scanner,
            text,
            haystack,
            pos: 0,
            limit,
        }
    }
}

impl Iterator for Findings<'_> {
    type Item = PiiMatch;

    fn next(&mut self) -> Option<PiiMatch> {
        let regex = self.scanner.regex();
        while self.pos <= self.haystack.len() {
            let candidate = regex.find_at(self.haystack, self.pos)?;
            if candidate.start() > self.limit {
                self.pos = self.haystack.len() + 1;
                return None;
            }
            // Every step moves past the candidate's first character, so the loop always ends.
            let progress = next_char(self.text, candidate.start());
            match self
                .scanner
                .validate(self.text, candidate.start(), candidate.end())
            {
                Outcome::Found { start, end } => {
                    self.pos = end.max(progress);
                    return Some(PiiMatch {
                        kind: self.scanner.kind(),
                        start,
                        end,
                    });
                }
                Outcome::Skip { resume } => self.pos = resume.max(progress),
            }
        }
        None
    }
}

/// `text[start..end]`, or "" for a range that is not one (never the case for regex matches).
fn slice(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end).unwrap_or_default()
}

/// `text` up to the first char boundary at or after `len`.
fn prefix(text: &str, len: usize) -> &str {
    let end = (len..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    slice(text, 0, end)
}

/// The byte offset of the character after the one at `at`.
fn next_char(text: &str, at: usize) -> usize {
    at + text
        .get(at..)
        .and_then(|rest| rest.chars().next())
        .map_or(1, char::len_utf8)
}

fn byte_at(text: &str, at: usize) -> Option<u8> {
    text.as_bytes().get(at).copied()
}

fn byte_before(text: &str, at: usize, back: usize) -> Option<u8> {
    at.checked_sub(back).and_then(|i| byte_at(text, i))
}

fn is_digit(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_digit())
}

/// Whether the span is one piece of a longer dotted or dashed number (`1.2.3.4.5`,
/// `0123-45-6789-12`, `4111111111111111.00`): such pieces are versions, part numbers or amounts.
fn glued(text: &str, start: usize, end: usize) -> bool {
    let joint = |b: Option<u8>| matches!(b, Some(b'-' | b'.'));
    (joint(byte_before(text, start, 1)) && is_digit(byte_before(text, start, 2)))
        || (joint(byte_at(text, end)) && is_digit(byte_at(text, end + 1)))
}

fn digits(span: &str) -> Vec<u8> {
    span.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Validators

/// Top-level domains that are really file extensions (`logo@2x.png`).
const FILE_EXTENSIONS: [&str; 9] = [
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "avif",
];

fn validate_email(text: &str, start: usize, end: usize) -> Outcome {
    let span = slice(text, start, end);
    let Some((local, domain)) = span.split_once('@') else {
        return Outcome::Skip { resume: end };
    };
    // The local part is taken whole, so no other address can start before the `@`.
    let skip = Outcome::Skip {
        resume: start + local.len() + 1,
    };
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let scp_path = byte_at(text, end) == Some(b':')
        && byte_at(text, end + 1).is_some_and(|b| !b.is_ascii_whitespace());
    if local.len() > 64
        || span.len() > 254
        || domain.split('.').any(|label| label.len() > 63)
        || FILE_EXTENSIONS
            .iter()
            .any(|ext| tld.eq_ignore_ascii_case(ext))
        || scp_path
    {
        return skip;
    }
    Outcome::Found { start, end }
}

fn validate_phone(text: &str, start: usize, end: usize) -> Outcome {
    let skip = Outcome::Skip {
        resume: next_char(text, start),
    };
    let span = slice(text, start, end);
    let count = span.bytes().filter(u8::is_ascii_digit).count();
    // Only the North American shape starts with a digit other than 0; written with spaces
    // alone, three groups of digits are far more often a row of a table than a phone number.
    let spaced_triples = span.starts_with(|c: char| matches!(c, '1'..='9'))
        && span.bytes().all(|b| b.is_ascii_digit() || b == b' ');
    if glued(text, start, end) || !(10..=15).contains(&count) || spaced_triples {
        return skip;
    }
    Outcome::Found { start, end }
}

fn validate_card(text: &str, start: usize, end: usize) -> Outcome {
    let skip = Outcome::Skip {
        resume: next_char(text, start),
    };
    if glued(text, start, end) {
        return skip;
    }
    let span = slice(text, start, end);
    // Trailing space-separated groups may be a CVV, an expiry or the next number: drop them
    // until the rest is a card. Dash-separated groups are one token, and are taken whole.
    let mut cut = span.len();
    loop {
        let prefix = slice(span, 0, cut);
        if card_number_ok(&digits(prefix)) {
            return Outcome::Found {
                start,
                end: start + cut,
            };
        }
        match prefix.rfind(' ') {
            Some(space) if slice(prefix, 0, space).contains(' ') => cut = space,
            _ => return skip,
        }
    }
}

fn card_number_ok(d: &[u8]) -> bool {
    let n = d.len();
    let first = d.first().copied().unwrap_or_default();
    (13..=19).contains(&n) && !d.iter().all(|&x| x == first) && issuer_ok(d) && luhn(d)
}

/// Whether the number lies in a known issuer range with that issuer's lengths: about halves
/// the false positives of Luhn alone on long IDs, which pass Luhn one time in ten.
fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| {
        d.iter()
            .take(k)
            .fold(0_u32, |acc, &x| acc * 10 + u32::from(x))
    };
    match d.first().copied() {
        // Mir, Mastercard 2-series.
        Some(2) => {
            matches!(prefix(4), 2200..=2204) && (16..=19).contains(&n)
                || matches!(prefix(4), 2221..=2720) && n == 16
        }
        Some(3) => match prefix(2) {
            // American Express.
            34 | 37 => n == 15,
            // JCB (and RuPay's 353, 356).
            35 => matches!(prefix(4), 3528..=3589) && (16..=19).contains(&n),
            // Diners Club.
            30 | 36 | 38 | 39 => (14..=19).contains(&n),
            _ => false,
        },
        // Visa.
        Some(4) => matches!(n, 13 | 16 | 19),
        Some(5) => match prefix(2) {
            // Mastercard.
            51..=55 => n == 16,
            // Maestro.
            50 | 56..=59 => true,
            _ => false,
        },
        // Discover, UnionPay, Maestro, RuPay.
        Some(6) => true,
        // RuPay.
        Some(8) => matches!(prefix(2), 81 | 82) && n == 16,
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let doubled = x * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn validate_ssn(text: &str, start: usize, end: usize) -> Outcome {
    // Any other candidate inside this one would start after a dash that follows a digit, and
    // so be glued: skipping the whole candidate loses nothing.
    let skip = Outcome::Skip { resume: end };
    let d = digits(slice(text, start, end));
    let number = |range: std::ops::Range<usize>| {
        d.get(range)
            .unwrap_or_default()
            .iter()
            .fold(0_u32, |acc, &x| acc * 10 + u32::from(x))
    };
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    if d.len() != 9
        || glued(text, start, end)
        || area == 0
        || area == 666
        || area >= 900
        || group == 0
        || serial == 0
    {
        return skip;
    }
    Outcome::Found { start, end }
}

fn validate_iban(text: &str, start: usize, end: usize) -> Outcome {
    let span = slice(text, start, end);
    // As for cards, a grouped IBAN may have swallowed the next short word as its last group.
    let mut cut = span.len();
    loop {
        let prefix = slice(span, 0, cut);
        if iban_ok(prefix) {
            return Outcome::Found {
                start,
                end: start + cut,
            };
        }
        match prefix.rfind(' ') {
            Some(space) => cut = space,
            None => {
                return Outcome::Skip {
                    resume: next_char(text, start),
                };
            }
        }
    }
}

fn iban_ok(candidate: &str) -> bool {
    let compact: Vec<u8> = candidate
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let Some((head, tail)) = compact.split_first_chunk::<4>() else {
        return false;
    };
    let [a, b, c, d] = *head;
    // Check digits 00, 01 and 99 pass mod-97 exactly when 97, 98 and 02 would: never issued.
    let check_ok = c.is_ascii_digit()
        && d.is_ascii_digit()
        && (2..=98).contains(&((c - b'0') * 10 + (d - b'0')));
    if !check_ok || iban_length(a, b) != Some(compact.len()) {
        return false;
    }
    // ISO 7064 MOD 97-10 over the BBAN followed by the country code and check digits, with
    // letters as 10..=35; the remainder is folded in as it goes, so no big integers are needed.
    let remainder = tail.iter().chain(head).fold(0_u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    });
    remainder == 1
}

/// IBAN lengths: the SWIFT IBAN registry, then national formats of countries outside it that
/// banks already use (much of francophone Africa, Algeria, Iran, ...).
#[rustfmt::skip]
const IBAN_LENGTHS: [([u8; 2], usize); 111] = [
    (*b"AD", 24), (*b"AE", 23), (*b"AL", 28), (*b"AT", 20), (*b"AZ", 28), (*b"BA", 20),
    (*b"BE", 16), (*b"BG", 22), (*b"BH", 22), (*b"BI", 27), (*b"BR", 29), (*b"BY", 28),
    (*b"CH", 21), (*b"CR", 22), (*b"CY", 28), (*b"CZ", 24), (*b"DE", 22), (*b"DJ", 27),
    (*b"DK", 18), (*b"DO", 28), (*b"EE", 20), (*b"EG", 29), (*b"ES", 24), (*b"FI", 18),
    (*b"FK", 18), (*b"FO", 18), (*b"FR", 27), (*b"GB", 22), (*b"GE", 22), (*b"GI", 23),
    (*b"GL", 18), (*b"GR", 27), (*b"GT", 28), (*b"HN", 28), (*b"HR", 21), (*b"HU", 28),
    (*b"IE", 22), (*b"IL", 23), (*b"IQ", 23), (*b"IS", 26), (*b"IT", 27), (*b"JO", 30),
    (*b"KW", 30), (*b"KZ", 20), (*b"LB", 28), (*b"LC", 32), (*b"LI", 21), (*b"LT", 20),
    (*b"LU", 20), (*b"LV", 21), (*b"LY", 25), (*b"MC", 27), (*b"MD", 24), (*b"ME", 22),
    (*b"MK", 19), (*b"MN", 20), (*b"MR", 27), (*b"MT", 31), (*b"MU", 30), (*b"NI", 28),
    (*b"NL", 18), (*b"NO", 15), (*b"OM", 23), (*b"PK", 24), (*b"PL", 28), (*b"PS", 29),
    (*b"PT", 25), (*b"QA", 29), (*b"RO", 24), (*b"RS", 22), (*b"RU", 33), (*b"SA", 24),
    (*b"SC", 31), (*b"SD", 18), (*b"SE", 24), (*b"SI", 19), (*b"SK", 24), (*b"SM", 27),
    (*b"SO", 23), (*b"ST", 25), (*b"SV", 28), (*b"TL", 23), (*b"TN", 24), (*b"TR", 26),
    (*b"UA", 29), (*b"VA", 22), (*b"VG", 24), (*b"XK", 20), (*b"YE", 30), (*b"AO", 25),
    (*b"BF", 28), (*b"BJ", 28), (*b"CF", 27), (*b"CG", 27), (*b"CI", 28), (*b"CM", 27),
    (*b"CV", 25), (*b"DZ", 26), (*b"GA", 27), (*b"GQ", 27), (*b"GW", 25), (*b"IR", 26),
    (*b"KM", 27), (*b"MA", 28), (*b"MG", 27), (*b"ML", 28), (*b"MZ", 25), (*b"NE", 28),
    (*b"SN", 28), (*b"TD", 27), (*b"TG", 28),
];

fn iban_length(a: u8, b: u8) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(code, _)| *code == [a, b])
        .map(|&(_, length)| length)
}

fn validate_ipv4(text: &str, start: usize, end: usize) -> Outcome {
    // A candidate inside this one would start after a dot that follows a digit: glued.
    let skip = Outcome::Skip { resume: end };
    let octets_ok = slice(text, start, end)
        .split('.')
        .all(|octet| !(octet.len() > 1 && octet.starts_with('0')) && octet.parse::<u8>().is_ok());
    if !octets_ok || glued(text, start, end) {
        return skip;
    }
    Outcome::Found { start, end }
}

fn validate_ipv6(text: &str, start: usize, end: usize) -> Outcome {
    let skip = Outcome::Skip {
        resume: next_char(text, start),
    };
    let span = slice(text, start, end);
    // A neighbouring colon or dot means the candidate is a piece of something longer.
    let cut_off = matches!(byte_before(text, start, 1), Some(b':' | b'.'))
        || byte_at(text, end) == Some(b':')
        || (byte_at(text, end) == Some(b'.') && is_digit(byte_at(text, end + 1)));
    if cut_off || span.parse::<Ipv6Addr>().is_err() {
        return skip;
    }
    let groups = span.split(':').filter(|g| !g.is_empty()).count();
    let longest = span.split(':').map(str::len).max().unwrap_or_default();
    let plausible = span.contains('.') || groups >= 3 || longest >= 3 || span == "::1";
    if !plausible {
        return skip;
    }
    Outcome::Found { start, end }
}

fn validate_api_key(text: &str, start: usize, end: usize) -> Outcome {
    let span = slice(text, start, end);
    let prefix = key_prefix(span);
    let body = slice(span, prefix.len(), span.len());
    let ok = if prefix.starts_with("sk-") {
        body.len() >= 20
            && body.bytes().any(|b| b.is_ascii_digit())
            && body.bytes().any(|b| b.is_ascii_alphabetic())
            && longest_alnum_run(body) >= 16
    } else if prefix.starts_with("xox") {
        body.bytes().any(|b| b.is_ascii_digit())
    } else {
        true
    };
    if ok {
        Outcome::Found { start, end }
    } else {
        // Any other key inside this one would have to follow a `-` within it: a piece of the
        // same non-key, not worth a quadratic rescan of long slugs.
        Outcome::Skip { resume: end }
    }
}

fn key_prefix(value: &str) -> &'static str {
    KEY_PREFIXES
        .iter()
        .find(|p| value.starts_with(**p))
        .copied()
        .unwrap_or_default()
}

fn longest_alnum_run(s: &str) -> usize {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::len)
        .max()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Masks

/// Every letter and digit becomes `*`: the fallback for values that do not look like their kind.
fn mask_whole(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_alphanumeric() { '*' } else { c })
        .collect()
}

/// Keeps the first `head` and last `tail` of the characters that `counted` picks (digits, or
/// the letters and digits of an IBAN) when at least 4 others stay hidden; every other letter or
/// digit becomes `*`, and separators stay.
fn mask_keeping(value: &str, head: usize, tail: usize, counted: fn(&char) -> bool) -> String {
    let total = value.chars().filter(counted).count();
    if total < head + tail + 4 {
        return mask_whole(value);
    }
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if counted(&c) {
                seen += 1;
                if seen <= head || seen > total - tail {
                    return c;
                }
            }
            if c.is_alphanumeric() { '*' } else { c }
        })
        .collect()
}

fn mask_email(value: &str) -> String {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return mask_whole(value);
    };
    let mut chars = local.chars();
    let Some(first) = chars.next() else {
        return mask_whole(value);
    };
    let mut out = String::with_capacity(value.len());
    // A one-character local part would be shown whole: hide it too.
    out.push(if local.len() > 1 { first } else { '*' });
    out.extend(chars.map(|_| '*'));
    out.push('@');
    out.push_str(domain);
    out
}

fn mask_ip(value: &str) -> String {
    if let Ok(v4) = value.parse::<Ipv4Addr>() {
        let [a, b, _, _] = v4.octets();
        return format!("{a}.{b}.*.*");
    }
    if let Ok(v6) = value.parse::<Ipv6Addr>() {
        let [first, ..] = v6.segments();
        return format!("{first:x}:*:*:*:*:*:*:*");
    }
    mask_whole(value)
}

fn mask_jwt(value: &str) -> String {
    // The first 6 characters of a real token spell `{"alg` or `{"typ`: nothing secret.
    match value.get(..6) {
        Some(head) if value.starts_with("eyJ") && value.len() > 12 => format!("{head}…[jwt]"),
        _ => "…[jwt]".to_owned(),
    }
}

fn mask_api_key(value: &str) -> String {
    let prefix = key_prefix(value);
    let body = slice(value, prefix.len(), value.len());
    let count = body.chars().count();
    let (hidden, shown) = if count >= 12 {
        (count - 4, body.chars().skip(count - 4).collect::<String>())
    } else {
        (count, String::new())
    };
    let mut out = String::with_capacity(prefix.len() + 8 + shown.len());
    out.push_str(prefix);
    out.extend(std::iter::repeat_n('*', hidden.min(8)));
    out.push_str(&shown);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings of `kinds` in `text`, as (kind, matched text), checking the invariants that
    /// every caller relies on along the way.
    fn scan(kinds: &[PiiKind], text: &str) -> Vec<(PiiKind, String)> {
        checked_scan(&PiiDetector::new(kinds), text)
    }

    fn checked_scan(detector: &PiiDetector, text: &str) -> Vec<(PiiKind, String)> {
        let all = detector.find_all(text);
        for pair in all.windows(2) {
            assert!(pair[0].end <= pair[1].start, "overlap in {all:?}");
        }
        for m in &all {
            assert!(m.start < m.end, "empty finding {m:?}");
            assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            assert!(detector.kinds().contains(&m.kind));
        }
        assert_eq!(
            detector.first(text),
            all.first().cloned(),
            "first() on {text:?}"
        );
        all.iter()
            .map(|m| (m.kind, text[m.start..m.end].to_owned()))
            .collect()
    }

    /// The values of `kind` that a detector for every kind finds in `text`.
    fn values(kind: PiiKind, text: &str) -> Vec<String> {
        scan(&PiiKind::ALL, text)
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v)
            .collect()
    }

    /// Asserts that `text` is found whole as `kind`, alone and inside a sentence.
    fn assert_found(kind: PiiKind, text: &str) {
        assert_eq!(
            scan(&[kind], text),
            vec![(kind, text.to_owned())],
            "{text:?}"
        );
        let sentence = format!("Here: {text}, thanks.");
        assert_eq!(
            scan(&[kind], &sentence),
            vec![(kind, text.to_owned())],
            "{sentence:?}"
        );
    }

    fn assert_not_found(kind: PiiKind, text: &str) {
        assert_eq!(scan(&[kind], text), vec![], "{kind:?} in {text:?}");
    }

    // --- kinds and detector ------------------------------------------------------------------

    #[test]
    fn kind_names_match_their_serde_names() {
        for kind in PiiKind::ALL {
            let parsed: PiiKind =
                serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<
                    serde::de::value::Error,
                >::new(kind.as_str()))
                .unwrap();
            assert_eq!(parsed, kind);
        }
        assert_eq!(PiiKind::CreditCard.as_str(), "credit_card");
        assert_eq!(PiiKind::IpAddress.as_str(), "ip_address");
        assert_eq!(PiiKind::ApiKey.as_str(), "api_key");
    }

    #[test]
    fn json_schema_lists_every_kind() {
        let schema = format!("{:?}", schemars::schema_for!(PiiKind));
        for kind in PiiKind::ALL {
            assert!(schema.contains(kind.as_str()), "{schema}");
        }
    }

    #[test]
    fn every_pattern_compiles_and_the_gate_is_built() {
        for scanner in Scanner::ALL {
            assert!(Regex::new(scanner.pattern()).is_ok(), "{scanner:?}");
        }
        let every = PiiDetector::new(&PiiKind::ALL);
        assert!(every.gate.is_some());
        assert_eq!(every.gated.len(), 5);
        assert!(PiiDetector::new(&[PiiKind::CreditCard]).gate.is_none());
        assert!(
            PiiDetector::new(&[PiiKind::Email, PiiKind::Jwt])
                .gate
                .is_none()
        );
        assert!(
            every.active_gated("just words, no numbers").is_empty(),
            "only the literal-led scanners run on text without numbers"
        );
    }

    #[test]
    fn detectors_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + Clone + std::fmt::Debug>() {}
        shareable::<PiiDetector>();
        shareable::<PiiMatch>();
    }

    #[test]
    fn kinds_are_sorted_and_deduplicated() {
        let detector = PiiDetector::new(&[PiiKind::Jwt, PiiKind::Email, PiiKind::Jwt]);
        assert_eq!(detector.kinds(), &[PiiKind::Email, PiiKind::Jwt]);
        assert!(
            PiiDetector::new(&[])
                .find_all("jane@acme.com 4111111111111111")
                .is_empty()
        );
        assert_eq!(PiiDetector::new(&[]).first("jane@acme.com"), None);
    }

    #[test]
    fn a_detector_only_finds_its_kinds() {
        let text = "card 4111 1111 1111 1111, mail jane@acme.com, ssn 123-45-6789";
        assert_eq!(
            scan(&[PiiKind::Email], text),
            vec![(PiiKind::Email, "jane@acme.com".to_owned())]
        );
        assert_eq!(
            scan(&[PiiKind::CreditCard], text),
            vec![(PiiKind::CreditCard, "4111 1111 1111 1111".to_owned())]
        );
        assert_eq!(scan(&[PiiKind::Iban, PiiKind::Jwt], text), vec![]);
    }

    #[test]
    fn findings_are_sorted_and_first_is_the_leftmost() {
        let text = "sk_live_4eC39HqLyjWDarjtT1zdp7dc then 10.0.0.1 then jane@acme.com";
        let detector = PiiDetector::new(&PiiKind::ALL);
        let kinds: Vec<PiiKind> = detector.find_all(text).iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            vec![PiiKind::ApiKey, PiiKind::IpAddress, PiiKind::Email]
        );
        assert_eq!(detector.first(text).map(|m| m.kind), Some(PiiKind::ApiKey));
        // A detector whose kinds appear only later still reports the leftmost of its own.
        let late = PiiDetector::new(&[PiiKind::Email, PiiKind::IpAddress]);
        assert_eq!(late.first(text).map(|m| m.kind), Some(PiiKind::IpAddress));
    }

    #[test]
    fn first_skips_invalid_candidates() {
        let text = "bad 4111111111111112, good 4012888888881881";
        let m = PiiDetector::new(&[PiiKind::CreditCard])
            .first(text)
            .unwrap();
        assert_eq!(&text[m.start..m.end], "4012888888881881");
    }

    #[test]
    fn overlapping_findings_keep_the_earliest_and_longest() {
        // The IPv4 tail of an IPv6 address is not a second finding.
        assert_eq!(
            scan(&PiiKind::ALL, "from ::ffff:192.168.1.1 today"),
            vec![(PiiKind::IpAddress, "::ffff:192.168.1.1".to_owned())]
        );
        // An email address whose local part is a phone-like number stays one email address.
        assert_eq!(
            scan(&PiiKind::ALL, "4155552671@txt.att.net"),
            vec![(PiiKind::Email, "4155552671@txt.att.net".to_owned())]
        );
    }

    // --- email -------------------------------------------------------------------------------

    #[test]
    fn emails_are_found() {
        for email in [
            "jane.doe@acme.com",
            "j@acme.io",
            "a+tag@sub.example.co.uk",
            "x_y-z%1@ex-ample.org",
            "JANE@ACME.COM",
            "user@example.xn--p1ai",
            "o.brien.2024@mail.example.museum",
        ] {
            assert_found(PiiKind::Email, email);
        }
        assert_eq!(
            values(PiiKind::Email, "<jane@acme.com>; mailto:bob@x.org."),
            vec!["jane@acme.com", "bob@x.org"]
        );
        assert_eq!(
            values(PiiKind::Email, "contact: jane@acme.com: she answers"),
            vec!["jane@acme.com"]
        );
    }

    #[test]
    fn email_look_alikes_are_not_found() {
        for text in [
            "logo@2x.png",
            "icon@3x.JPG",
            "git@github.com:org/repo.git",
            "user@localhost",
            "npm i lodash@4.17.21",
            "import from @scope/pkg",
            "name@domain.c",
            "image@sha256:0123abcd",
            "jane.@acme.com",
            "@acme.com",
            "jane@.com",
            "jane@acme-.com",
            "jane@acme.com_x",
        ] {
            assert_not_found(PiiKind::Email, text);
        }
        let long_local = format!("{}@acme.com", "a".repeat(65));
        assert_not_found(PiiKind::Email, &long_local);
        let long_label = format!("jane@{}.com", "a".repeat(64));
        assert_not_found(PiiKind::Email, &long_label);
    }

    #[test]
    fn email_local_part_is_taken_whole() {
        assert_eq!(
            values(PiiKind::Email, "..jane@acme.com"),
            vec!["jane@acme.com"]
        );
        assert_eq!(
            values(PiiKind::Email, "https://jane@acme.com/x"),
            vec!["jane@acme.com"]
        );
        assert_eq!(
            values(PiiKind::Email, "logo@2x.png and jane@acme.com"),
            vec!["jane@acme.com"]
        );
    }

    // --- phone -------------------------------------------------------------------------------

    #[test]
    fn phones_are_found() {
        for phone in [
            "+14155552671",
            "+44 20 7946 0958",
            "+1 (415) 555-2671",
            "+1-415-555-2671",
            "+49 30 12345678",
            "+33 1 23 45 67 89",
            "+44 (0)20 7946 0958",
            "(415) 555-2671",
            "(415)555-2671",
            "415-555-2671",
            "415.555.2671",
            "415 555-2671",
            "1-800-555-0199",
            "1 (800) 555 0199",
            "020 7946 0958",
            "(020) 7946 0958",
            "07700 900123",
            "01 23 45 67 89",
            "030 12345678",
        ] {
            assert_found(PiiKind::Phone, phone);
        }
    }

    #[test]
    fn phone_look_alikes_are_not_found() {
        for text in [
            "4155552671",
            "created 1700000000",
            "+1234567",
            "2024-01-15",
            "2024-01-15 10:30:00",
            "on 01/15/2024 at 10:30",
            "192.168.100.200",
            "255.255.255.0",
            "4111111111111111",
            "4111 1111 1111 1111",
            "123-45-6789",
            "123-555-2671",
            "415 555 2671",
            "12-415-555-2671",
            "415-555-2671-99",
            "x+14155552671",
            "+1234567890123456",
            "1 000 000 000",
            "Rows 250 300 4000 and 100 200 3000",
        ] {
            assert_not_found(PiiKind::Phone, text);
        }
    }

    #[test]
    fn a_long_international_number_still_yields_its_national_part() {
        // 16 digits is no E.164 number, but the North American number inside it is a phone.
        assert_eq!(
            values(PiiKind::Phone, "+1 415-555-2671 12345"),
            vec!["1 415-555-2671"]
        );
    }

    // --- credit card -------------------------------------------------------------------------

    #[test]
    fn test_cards_of_every_network_are_found() {
        for card in [
            "4111111111111111",
            "4012888888881881",
            "4222222222222",
            "5555555555554444",
            "5105105105105100",
            "2223003122003222",
            "378282246310005",
            "371449635398431",
            "6011111111111117",
            "6011000990139424",
            "30569309025904",
            "38520000023237",
            "3530111333300000",
            "6200000000000005",
            "6759649826438453",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "3782 822463 10005",
            "3782-822463-10005",
            "5555 5555 5555 4444",
        ] {
            assert_found(PiiKind::CreditCard, card);
        }
    }

    #[test]
    fn card_look_alikes_are_not_found() {
        for text in [
            "4111111111111112",
            "4111 1111 1111 1112",
            "0000000000000000",
            "4444444444444444",
            "1234567812345670",
            "7992739871300001",
            "411111111111",
            "41111111111111111111",
            "x4111111111111111y",
            "order_4111111111111111",
            "4111111111111111_",
            "4111111111111111.00",
            "1.4111111111111111",
            "4111-1111-1111-1111-1234",
            "4111 1111-1111 1111",
            "4111  1111  1111  1111",
            "3782822463100050",
            "411111111111111",
        ] {
            assert_not_found(PiiKind::CreditCard, text);
        }
    }

    #[test]
    fn a_card_followed_by_more_digits_is_still_found() {
        assert_eq!(
            values(PiiKind::CreditCard, "4111 1111 1111 1111 123 exp 12/27"),
            vec!["4111 1111 1111 1111"]
        );
        assert_eq!(
            values(PiiKind::CreditCard, "ref 1234 4111 1111 1111 1111"),
            vec!["4111 1111 1111 1111"]
        );
        assert_eq!(
            values(
                PiiKind::CreditCard,
                "4111 1111 1111 1111 4012 8888 8888 1881"
            ),
            vec!["4111 1111 1111 1111", "4012 8888 8888 1881"]
        );
        assert_eq!(
            values(PiiKind::CreditCard, "(4111111111111111)"),
            vec!["4111111111111111"]
        );
    }

    #[test]
    fn luhn_and_issuers() {
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("79927398710")));
        assert!(issuer_ok(&digits("2200000000000004")));
        assert!(!issuer_ok(&digits("2100000000000000")));
        assert!(!issuer_ok(&digits("341111111111111111")));
        assert!(issuer_ok(&digits("8100000000000000")));
        assert!(!issuer_ok(&digits("9100000000000000")));
    }

    // --- ssn ---------------------------------------------------------------------------------

    #[test]
    fn ssns_are_found() {
        for ssn in ["123-45-6789", "078-05-1120", "899-99-9999", "001-01-0001"] {
            assert_found(PiiKind::Ssn, ssn);
        }
    }

    #[test]
    fn invalid_ssns_are_not_found() {
        for text in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "987-65-4321",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123456789",
            "123 45 6789",
            "0123-45-6789",
            "123-45-67890",
            "123-45-6789-1",
            "9.123-45-6789",
            "a123-45-6789",
            "123-45-6789b",
        ] {
            assert_not_found(PiiKind::Ssn, text);
        }
    }

    // --- iban --------------------------------------------------------------------------------

    #[test]
    fn ibans_are_found() {
        for iban in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "DE89 3704 0044 0532 0130 00",
            "de89370400440532013000",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "NO9386011117947",
            "BE68539007547034",
            "CH9300762011623852957",
            "MT84MALT011000012345MTLCAST001S",
        ] {
            assert_found(PiiKind::Iban, iban);
        }
    }

    #[test]
    fn invalid_ibans_are_not_found() {
        for text in [
            "DE89370400440532013001",
            "DE88370400440532013000",
            "GB82WEST1234569876543",
            "GB82WEST123456987654321",
            "XX89370400440532013000",
            "DE89 3704 0044 0532 0130 0",
            "DE89 37040044 0532 0130 00",
            "xDE89370400440532013000",
            "DE89370400440532013000x",
        ] {
            assert_not_found(PiiKind::Iban, text);
        }
    }

    #[test]
    fn a_grouped_iban_does_not_swallow_the_next_word() {
        assert_eq!(
            values(PiiKind::Iban, "to BE68 5390 0754 7034 THEN pay"),
            vec!["BE68 5390 0754 7034"]
        );
        assert_eq!(
            values(PiiKind::Iban, "GB82 WEST 1234 5698 7654 32 and"),
            vec!["GB82 WEST 1234 5698 7654 32"]
        );
    }

    #[test]
    fn iban_check_digits_00_01_99_are_rejected() {
        // "DE01..." would pass mod-97 wherever "DE98..." does; no bank issues either.
        assert!(!iban_ok("DE00370400440532013000"));
        assert!(!iban_ok("DE01370400440532013000"));
        assert!(!iban_ok("DE99370400440532013000"));
        assert!(iban_ok("DE89370400440532013000"));
    }

    // --- ip address --------------------------------------------------------------------------

    #[test]
    fn ip_addresses_are_found() {
        for ip in [
            "192.168.1.1",
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "8.8.8.8",
            "::1",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:db8::1",
            "fe80::1",
            "FE80::1FF:FE23:4567:890A",
            "::ffff:192.168.1.1",
            "64:ff9b::192.0.2.33",
            "2001:db8::",
        ] {
            assert_found(PiiKind::IpAddress, ip);
        }
        assert_eq!(values(PiiKind::IpAddress, "[::1]:8080"), vec!["::1"]);
        assert_eq!(values(PiiKind::IpAddress, "fe80::1%eth0"), vec!["fe80::1"]);
        assert_eq!(
            values(PiiKind::IpAddress, "http://10.1.2.3:8080/x"),
            vec!["10.1.2.3"]
        );
        assert_eq!(values(PiiKind::IpAddress, "at 10.1.2.3."), vec!["10.1.2.3"]);
    }

    #[test]
    fn ip_look_alikes_are_not_found() {
        for text in [
            "256.1.1.1",
            "1.256.1.1",
            "1.2.3",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.4.5",
            "version 2.1.3.4.5",
            "v1.2.3.4",
            "1.2.3.4a",
            "12:30:45",
            "00:1A:2B:3C:4D:5E",
            "x[::2]",
            "a[1::2]",
            "a[::-1]",
            "foo ::",
            "de::Error",
            "1:2:3:4:5:6:7:8:9",
            "2001:db8::1::2",
            "12345::1",
            "cafe add bad face",
        ] {
            assert_not_found(PiiKind::IpAddress, text);
        }
    }

    // --- jwt ---------------------------------------------------------------------------------

    const JWT_SAMPLE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn jwts_are_found() {
        assert_found(PiiKind::Jwt, JWT_SAMPLE);
        // Unsecured tokens have an empty signature.
        assert_found(PiiKind::Jwt, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.");
        assert_eq!(
            values(PiiKind::Jwt, &format!("Authorization: Bearer {JWT_SAMPLE}")),
            vec![JWT_SAMPLE]
        );
    }

    #[test]
    fn jwt_look_alikes_are_not_found() {
        for text in [
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJhbGciOiJIUzI1NiJ9..sig",
            "abc.def.ghi",
            "eyJhbG.eyJzdWIi.sig",
            "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "hello.world.example",
        ] {
            assert_not_found(PiiKind::Jwt, text);
        }
    }

    // --- api key -----------------------------------------------------------------------------

    #[test]
    fn api_keys_of_every_family_are_found() {
        for key in [
            "sk-Tx7bQ2mK9pL4vN8wR3sY6zA1cD5fG0hJ2kM4nP7qS9tU3vW",
            "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345-_AbCdEf",
            "sk-ant-api03-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345AbCdEfAA",
            "sk-5f2b7c9e1d3a4b6c8e0f2a4b6c8d0e1f",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_51H8aBcDeFgHiJkLmNoPqRsTu",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "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",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxp-123456789012-123456789012-123456789012-0123456789abcdef0123456789abcdef",
            "xoxa-2-123456789012-abcdef",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
            "glpat-AbCdEf1234567890XyZw",
            "glpat-AbCdEf1234567890XyZw12345.01.abc123",
        ] {
            assert_found(PiiKind::ApiKey, key);
        }
        assert_eq!(
            values(
                PiiKind::ApiKey,
                "OPENAI_API_KEY=sk-5f2b7c9e1d3a4b6c8e0f2a4b6c8d0e1f\n"
            ),
            vec!["sk-5f2b7c9e1d3a4b6c8e0f2a4b6c8d0e1f"]
        );
    }

    #[test]
    fn api_key_look_alikes_are_not_found() {
        for text in [
            "sk-learn-the-basics-of-python-today",
            "sk-2024-release-notes-draft-v2-final",
            "sk-short1",
            "sk-proj-Ab3dEf6hIj9kLmN0",
            "risk-management-framework-2024-Ab3dEf6hIj9kLmN0pQrSt",
            "task_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_live_short123",
            "AKIAIOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLEX",
            "AKIAiosfodnn7example",
            "ghp_short1234",
            "ghx_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx",
            "xoxb-your-token-here",
            "xoxc-123456789012-1234567890123",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQ",
            "glpat-short",
            "my_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",
        ] {
            assert_not_found(PiiKind::ApiKey, text);
        }
    }

    // --- masking -----------------------------------------------------------------------------

    #[test]
    fn masks_follow_the_monitor_format() {
        let cases = [
            (
                PiiKind::CreditCard,
                "4111 1111 1111 1111",
                "4111 **** **** 1111",
            ),
            (PiiKind::CreditCard, "4111111111111111", "4111********1111"),
            (
                PiiKind::CreditCard,
                "4111-1111-1111-1111",
                "4111-****-****-1111",
            ),
            (
                PiiKind::CreditCard,
                "3782 822463 10005",
                "3782 ****** *0005",
            ),
            (PiiKind::Email, "jane.doe@acme.com", "j*******@acme.com"),
            (PiiKind::Email, "j@acme.com", "*@acme.com"),
            (PiiKind::Phone, "+1 (415) 555-2671", "+* (***) ***-**71"),
            (PiiKind::Phone, "+14155552671", "+*********71"),
            (PiiKind::Phone, "020 7946 0958", "*** **** **58"),
            (PiiKind::Ssn, "123-45-6789", "***-**-6789"),
            (
                PiiKind::Iban,
                "DE89370400440532013000",
                "DE89**************3000",
            ),
            (
                PiiKind::Iban,
                "GB82 WEST 1234 5698 7654 32",
                "GB82 **** **** **** **54 32",
            ),
            (PiiKind::IpAddress, "10.1.2.3", "10.1.*.*"),
            (PiiKind::IpAddress, "2001:db8::1", "2001:*:*:*:*:*:*:*"),
            (PiiKind::IpAddress, "::1", "0:*:*:*:*:*:*:*"),
            (PiiKind::IpAddress, "::ffff:192.168.1.1", "0:*:*:*:*:*:*:*"),
            (PiiKind::Jwt, JWT_SAMPLE, "eyJhbG…[jwt]"),
            (
                PiiKind::ApiKey,
                "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345-_AbCdEf",
                "sk-proj-********CdEf",
            ),
            (PiiKind::ApiKey, "AKIAIOSFODNN7EXAMPLE", "AKIA********MPLE"),
            (
                PiiKind::ApiKey,
                "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",
                "ghp_********INUx",
            ),
            (
                PiiKind::ApiKey,
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "sk_live_********p7dc",
            ),
            (
                PiiKind::ApiKey,
                "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
                "xoxb-********UvWx",
            ),
            (
                PiiKind::ApiKey,
                "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
                "AIza********ewQe",
            ),
            (
                PiiKind::ApiKey,
                "glpat-AbCdEf1234567890XyZw",
                "glpat-********XyZw",
            ),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(mask(kind, value), expected, "{kind:?} {value:?}");
        }
    }

    #[test]
    fn masks_never_show_more_of_odd_values() {
        // Values too short for their kind's mask lose every letter and digit.
        assert_eq!(mask(PiiKind::CreditCard, "4111 1111"), "**** ****");
        assert_eq!(mask(PiiKind::Phone, "555-12"), "***-**");
        assert_eq!(mask(PiiKind::Ssn, "12-34"), "**-**");
        assert_eq!(mask(PiiKind::Iban, "DE89 3704"), "**** ****");
        assert_eq!(mask(PiiKind::IpAddress, "not an ip"), "*** ** **");
        assert_eq!(mask(PiiKind::Email, "no at sign"), "** ** ****");
        assert_eq!(mask(PiiKind::Email, "@acme.com"), "@****.***");
        assert_eq!(mask(PiiKind::Jwt, "secret"), "…[jwt]");
        assert_eq!(mask(PiiKind::ApiKey, "sk-abc"), "sk-***");
        assert_eq!(
            mask(PiiKind::ApiKey, "hunter2hunter2hunter2"),
            "********ter2"
        );
        assert_eq!(mask(PiiKind::ApiKey, ""), "");
        assert_eq!(mask(PiiKind::CreditCard, "ünïcödé 4111"), "******* ****");
    }

    #[test]
    fn mask_all_scrubs_every_kind_in_a_sentence() {
        let text = "Mail jane.doe@acme.com or call +1 (415) 555-2671; card 4111 1111 1111 1111, \
                    SSN 123-45-6789, IBAN DE89370400440532013000, host 10.1.2.3, \
                    key AKIAIOSFODNN7EXAMPLE, token eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
        let expected = "Mail j*******@acme.com or call +* (***) ***-**71; card 4111 **** **** 1111, \
                        SSN ***-**-6789, IBAN DE89**************3000, host 10.1.*.*, \
                        key AKIA********MPLE, token eyJhbG…[jwt]";
        assert_eq!(mask_all(text), expected);
        assert_eq!(mask_all("nothing to see here"), "nothing to see here");
        assert_eq!(mask_all(""), "");
    }

    #[test]
    fn mask_all_is_idempotent_and_leaves_no_finding() {
        let text = "a 4111111111111111 b jane@acme.com c 2001:db8::1 d 078-05-1120";
        let once = mask_all(text);
        assert_eq!(mask_all(&once), once);
        assert!(
            PiiDetector::new(&PiiKind::ALL).find_all(&once).is_empty(),
            "{once}"
        );
    }

    // --- unicode and boundaries --------------------------------------------------------------

    #[test]
    fn unicode_around_findings_keeps_char_boundaries() {
        let text = "Müller — Karte: 4111 1111 1111 1111 ✓ 📧 jane@acme.com。卡号4012888888881881号 ⟨10.0.0.1⟩";
        assert_eq!(
            scan(&PiiKind::ALL, text),
            vec![
                (PiiKind::CreditCard, "4111 1111 1111 1111".to_owned()),
                (PiiKind::Email, "jane@acme.com".to_owned()),
                (PiiKind::CreditCard, "4012888888881881".to_owned()),
                (PiiKind::IpAddress, "10.0.0.1".to_owned()),
            ]
        );
        assert_eq!(
            mask_all(text),
            "Müller — Karte: 4111 **** **** 1111 ✓ 📧 j***@acme.com。卡号4012********1881号 ⟨10.0.*.*⟩"
        );
        assert_eq!(
            values(PiiKind::CreditCard, "é4111111111111111é"),
            vec!["4111111111111111"]
        );
    }

    #[test]
    fn non_ascii_digits_and_letters_are_not_digits() {
        // Arabic-Indic and full-width digits are not read as card or phone digits.
        assert_not_found(PiiKind::CreditCard, "٤١١١١١١١١١١١١١١١");
        assert_not_found(PiiKind::CreditCard, "４１１１１１１１１１１１１１１１");
        assert_not_found(PiiKind::Email, "jäne@äcme.com");
    }

    // --- invariants over generated text ------------------------------------------------------

    /// A small deterministic generator (no extra dependency): texts glued together from PII,
    /// near-misses, separators, words and non-ASCII characters.
    fn generated_texts(count: usize) -> Vec<String> {
        const PIECES: [&str; 48] = [
            "4111 1111 1111 1111",
            "4111111111111111",
            "4111111111111112",
            "3782-822463-10005",
            "jane.doe@acme.com",
            "a@b",
            "@",
            ".com",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
            "415-555-2671",
            "020 7946 0958",
            "123-45-6789",
            "666-12-3456",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "10.1.2.3",
            "256.1.1.1",
            "::1",
            "2001:db8::1",
            "12:30:45",
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
            "AKIAIOSFODNN7EXAMPLE",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk-learn-the-basics",
            "1",
            "12",
            "0",
            "2024",
            "-",
            ".",
            ":",
            " ",
            " ",
            "  ",
            "(",
            ")",
            "+",
            "_",
            "x",
            "AB",
            "é",
            "卡号",
            "📧",
            "\n",
            "—",
            "ab12",
            "2671",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(state >> 33).unwrap() % bound
        };
        (0..count)
            .map(|_| {
                let pieces = 1 + next(24);
                (0..pieces).map(|_| PIECES[next(PIECES.len())]).collect()
            })
            .collect()
    }

    #[test]
    fn generated_texts_keep_every_invariant() {
        let every = PiiDetector::new(&PiiKind::ALL);
        let mut detectors: Vec<PiiDetector> = PiiKind::ALL
            .iter()
            .map(|&k| PiiDetector::new(&[k]))
            .collect();
        detectors.push(every.clone());
        detectors.push(PiiDetector::new(&[
            PiiKind::Phone,
            PiiKind::Email,
            PiiKind::IpAddress,
        ]));
        for text in generated_texts(3000) {
            // checked_scan() checks order, overlaps, char boundaries and first() == find_all()[0].
            for detector in &detectors {
                let _ = checked_scan(detector, &text);
            }
            // Masking leaves nothing to find.
            let masked = mask_all(&text);
            assert!(every.find_all(&masked).is_empty(), "{text:?} -> {masked:?}");
            for scanner in Scanner::ALL.into_iter().filter(|s| s.gated()) {
                for m in scanner.regex().find_iter(&text) {
                    assert!(m.len() <= GATED_MAX_LEN, "{scanner:?} {:?}", m.as_str());
                }
            }
        }
    }

    #[test]
    fn gated_candidates_are_never_longer_than_the_bound() {
        let long = [
            format!("+{}", "123456 ".repeat(20)),
            format!("+123 (12345) {}", "123456-".repeat(20)),
            format!("(01234) {}", "12345678 ".repeat(20)),
            "4111 ".repeat(40),
            format!("DE89{}", " ABCD".repeat(20)),
            format!("DE89{}", "A".repeat(60)),
            "1234:".repeat(30),
            format!("{}1.2.3.4", "1234:".repeat(30)),
            "1.2.3.4.".repeat(10),
        ];
        for text in &long {
            for scanner in Scanner::ALL.into_iter().filter(|s| s.gated()) {
                for m in scanner.regex().find_iter(text) {
                    assert!(m.len() <= GATED_MAX_LEN, "{scanner:?} {:?}", m.as_str());
                }
            }
        }
        // The longest international shape the phone pattern admits.
        let widest = format!("+123 (12345){}", " 123456".repeat(6));
        assert_eq!(
            Scanner::Phone.regex().find(&widest).map(|m| m.len()),
            Some(54)
        );
    }

    #[test]
    fn first_reads_past_a_found_email_only_as_far_as_needed() {
        // The card ends before the email starts but is found first; the later IP is not needed.
        let text = format!(
            "4111111111111111 jane@acme.com {} 10.0.0.1",
            "x ".repeat(10_000)
        );
        let m = PiiDetector::new(&PiiKind::ALL).first(&text).unwrap();
        assert_eq!((m.kind, m.start, m.end), (PiiKind::CreditCard, 0, 16));
        // A phone number that starts just before an email address wins over it.
        let text = "+1 (415) 555-2671,jane@acme.com";
        let m = PiiDetector::new(&PiiKind::ALL).first(text).unwrap();
        assert_eq!(m.kind, PiiKind::Phone);
    }

    // --- cost --------------------------------------------------------------------------------

    #[test]
    fn adversarial_texts_are_scanned_in_linear_time() {
        // Each of these would take many minutes if failed candidates were rescanned
        // quadratically; linear, each takes well under a second in a release build and a few
        // seconds in a debug build on a loaded machine. The bound only has to tell the two apart.
        let cases = [
            "1.".repeat(30_000),
            "1:".repeat(30_000),
            "sk-a-".repeat(20_000),
            format!("{}@x.png", "a".repeat(60_000)),
            "a@b.".repeat(20_000),
            "4111 ".repeat(20_000),
            "+1 ".repeat(30_000),
            "DE89 ".repeat(20_000),
            "eyJhbGciOiJ-".repeat(10_000),
            "1".repeat(60_000),
            "123-45-".repeat(10_000),
        ];
        let detector = PiiDetector::new(&PiiKind::ALL);
        for text in &cases {
            let started = std::time::Instant::now();
            let _ = detector.find_all(text);
            let _ = detector.first(text);
            let _ = mask_all(text);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{:?}... took {:?}",
                &text[..20],
                started.elapsed()
            );
        }
    }
}
