//! Globs over tool names, resource paths and argument values, translated to anchored regexes.
//!
//! `globset` does not implement the segment rules of product.md §4 (`**.send_email` must match
//! `send_email`, `corp.**` must match `corp`, and `*` must stop at `.` in tool names), so each
//! pattern is translated into a regex here. The regex text is exposed so that callers can put many
//! globs into one `regex::RegexSet` and match a name against all of them in a single pass.
//!
//! Syntax (case-sensitive, whole-string): the pattern is split into segments at the kind's
//! separators, which stay literal. `*` matches any run of non-separator characters, `?` exactly
//! one, and a segment that is exactly `**` matches any number of whole segments (none included)
//! together with the separator beside it. Everything else is literal: there are no brackets,
//! braces or backslash escapes.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};

/// The longest pattern accepted, in characters (JSON Schema's `maxLength` counts characters too).
pub const MAX_GLOB_LEN: usize = 512;

/// Caps the compiled program of one glob; a pattern of [`MAX_GLOB_LEN`] characters stays far below.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Which characters separate segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobKind {
    /// Tool names: segments are separated by `.` and by `/`.
    Name,
    /// Resource paths and argument values: segments are separated by `/` only.
    Path,
}

impl GlobKind {
    /// Whether `c` separates segments for this kind.
    fn is_separator(self, c: char) -> bool {
        match self {
            GlobKind::Name => c == '.' || c == '/',
            GlobKind::Path => c == '/',
        }
    }

    /// A regex class for one character that is not a separator.
    fn non_separator_class(self) -> &'static str {
        match self {
            GlobKind::Name => "[^./]",
            GlobKind::Path => "[^/]",
        }
    }
}

/// Why a pattern could not be turned into a [`Glob`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is the empty string.
    #[error("glob pattern is empty")]
    Empty,
    /// The pattern has more than `max` characters.
    #[error("glob pattern is longer than {max} characters")]
    TooLong {
        /// The largest number of characters allowed.
        max: usize,
    },
    /// The translated regex was rejected, normally because it exceeds the size limit.
    #[error("glob pattern could not be compiled: {reason}")]
    Compile {
        /// The regex engine's explanation.
        reason: String,
    },
}

/// A compiled glob: the pattern as written, its kind, and the anchored regex it translates to.
///
/// Two globs are equal when their kind and source text are equal; the compiled form follows from
/// those.
#[derive(Debug, Clone)]
pub struct Glob {
    /// The pattern as written.
    source: String,
    /// The separators the pattern was split with.
    kind: GlobKind,
    /// `regex_source` compiled, on first use: a policy set's globs are matched through one
    /// `RegexSet` per scope, so most globs never need their own automaton (tens of KiB each).
    /// Unused for literal patterns, which compare as strings.
    regex: OnceLock<Option<Regex>>,
    /// The anchored regex text, kept for building a `RegexSet` over many globs.
    regex_source: String,
    /// Whether the pattern has no wildcard, so that only the identical string matches.
    literal: bool,
}

impl Glob {
    /// Compiles `pattern`, splitting segments at the separators of `kind`.
    ///
    /// # Errors
    ///
    /// [`GlobError::Empty`] for an empty pattern, [`GlobError::TooLong`] for one of more than
    /// [`MAX_GLOB_LEN`] characters, and [`GlobError::Compile`] when the translated regex exceeds
    /// its size limit.
    pub fn new(pattern: &str, kind: GlobKind) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        // Checked before translating so an oversized pattern costs no allocation.
        if pattern.len() > MAX_GLOB_LEN && pattern.chars().count() > MAX_GLOB_LEN {
            return Err(GlobError::TooLong { max: MAX_GLOB_LEN });
        }
        // Every pattern within MAX_GLOB_LEN translates to a regex within the size limit (see
        // the worst-case test), so compiling can wait until a match needs it.
        let regex_source = translate(pattern, kind);
        Ok(Glob {
            source: pattern.to_owned(),
            kind,
            regex: OnceLock::new(),
            regex_source,
            literal: !pattern.contains(['*', '?']),
        })
    }

    /// Compiles the glob's own regex now rather than at its first match, so a hot path never
    /// pays for it.
    ///
    /// # Errors
    ///
    /// [`GlobError::Compile`] if the regex exceeds its size limit (no pattern within
    /// [`MAX_GLOB_LEN`] does).
    pub fn prepare(&self) -> Result<(), GlobError> {
        if self.literal || self.compiled().is_some() {
            return Ok(());
        }
        Err(GlobError::Compile {
            reason: format!("the regex of {:?} exceeds its size limit", self.source),
        })
    }

    fn compiled(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| {
                RegexBuilder::new(&self.regex_source)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The separators this glob splits segments at.
    #[must_use]
    pub fn kind(&self) -> GlobKind {
        self.kind
    }

    /// Whether the pattern has no wildcard at all, so it matches only the identical string.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Whether the whole of `candidate` matches the pattern (case-sensitively).
    #[must_use]
    pub fn is_match(&self, candidate: &str) -> bool {
        if self.literal {
            candidate == self.source
        } else {
            // A regex that cannot compile matches nothing; `prepare` reports it up front.
            self.compiled().is_some_and(|r| r.is_match(candidate))
        }
    }

    /// The anchored (`^...$`) regex this glob translates to, with any flags it needs inline, so
    /// that it means the same inside a `regex::RegexSet`.
    #[must_use]
    pub fn regex_source(&self) -> &str {
        &self.regex_source
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.source == other.source
    }
}

impl Eq for Glob {}

impl Hash for Glob {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.source.hash(state);
    }
}

impl fmt::Display for Glob {
    /// Writes the pattern as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Any run of characters, separators and line breaks included (`(?s)` is inline so the text keeps
/// its meaning in a `RegexSet` built without that flag).
const ANY_RUN: &str = "(?s:.*)";

/// Translates a non-empty pattern into an anchored regex.
fn translate(pattern: &str, kind: GlobKind) -> String {
    let (segments, separators) = split_segments(pattern, kind);
    let mut re = String::with_capacity(pattern.len() * 2 + 16);
    re.push('^');
    if segments.len() == 1 && segments[0] == "**" {
        re.push_str(ANY_RUN);
        re.push('$');
        return re;
    }
    let last = segments.len() - 1;
    // A `**` that is not last owns the separator after it, which is then not written again.
    let mut separator_taken = false;
    for (i, segment) in segments.iter().enumerate() {
        let is_deep = *segment == "**";
        if is_deep && i == last {
            // Trailing `**` (there is a segment before it: the lone `**` returned above) owns the
            // separator before it: `corp.**` is `corp` followed, optionally, by `.` and anything.
            re.push_str("(?:");
            push_literal(&mut re, separators[i - 1]);
            re.push_str(ANY_RUN);
            re.push_str(")?");
            break;
        }
        if i > 0 && !separator_taken {
            push_literal(&mut re, separators[i - 1]);
        }
        if is_deep {
            // `**.x` is `x` preceded, optionally, by anything that ends with that `.`; whatever
            // precedes the `.` starts at a segment boundary, so only whole segments are taken.
            re.push_str("(?:");
            re.push_str(ANY_RUN);
            push_literal(&mut re, separators[i]);
            re.push_str(")?");
            separator_taken = true;
        } else {
            push_segment(&mut re, segment, kind);
            separator_taken = false;
        }
    }
    re.push('$');
    re
}

/// Splits a pattern into its segments and the separators between them (one fewer than the
/// segments), merging adjacent `**` segments where that keeps the meaning.
///
/// `**.**.x` means the same as `**.x` (anything ending in `.`, twice over, is anything ending in
/// `.`), so such a pair becomes one. With different separators (`**.**/x`, tool names only) both
/// stay, each owning the separator after it. A run of `**` that ends the pattern becomes one `**`
/// owning the separator before the run: one of them can take the whole rest and the others
/// nothing, so the run means "optionally that separator and anything".
fn split_segments(pattern: &str, kind: GlobKind) -> (Vec<&str>, Vec<char>) {
    let mut raw_segments: Vec<&str> = Vec::new();
    let mut raw_separators: Vec<char> = Vec::new();
    let mut start = 0;
    for (i, c) in pattern.char_indices() {
        if kind.is_separator(c) {
            raw_segments.push(&pattern[start..i]);
            raw_separators.push(c);
            start = i + c.len_utf8();
        }
    }
    raw_segments.push(&pattern[start..]);

    let mut segments: Vec<&str> = Vec::with_capacity(raw_segments.len());
    let mut separators: Vec<char> = Vec::with_capacity(raw_separators.len());
    for (k, segment) in raw_segments.iter().enumerate() {
        let next_separator = raw_separators.get(k);
        if *segment == "**"
            && segments.last() == Some(&"**")
            && next_separator.is_some()
            && separators.last() == next_separator
        {
            continue;
        }
        segments.push(segment);
        separators.extend(next_separator);
    }
    while segments.len() >= 2 && segments[segments.len() - 2..] == ["**", "**"] {
        segments.pop();
        separators.pop();
    }
    (segments, separators)
}

/// Appends one segment without separators: `*` (and any run of `*`, which means the same) matches
/// any run of non-separators, `?` exactly one, everything else itself.
fn push_segment(re: &mut String, segment: &str, kind: GlobKind) {
    let class = kind.non_separator_class();
    let mut literal_start = 0;
    let mut last_was_star = false;
    for (i, c) in segment.char_indices() {
        if c != '*' && c != '?' {
            last_was_star = false;
            continue;
        }
        re.push_str(&regex::escape(&segment[literal_start..i]));
        literal_start = i + 1;
        if c == '?' {
            re.push_str(class);
        } else if !last_was_star {
            // `**` inside a segment is a plain `*`; one class-star keeps the regex small.
            re.push_str(class);
            re.push('*');
        }
        last_was_star = c == '*';
    }
    re.push_str(&regex::escape(&segment[literal_start..]));
}

/// Appends a separator character, escaped.
fn push_literal(re: &mut String, c: char) {
    let mut buf = [0; 4];
    re.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Normalises a data-access resource path before matching, so that `crm//customers/./42/../42/ssn`
/// cannot dodge a rule written for `crm/customers/42/ssn`.
///
/// In order:
/// - percent-decodes once: a run of `%XX` escapes is decoded where its bytes form valid UTF-8, and
///   each escape whose byte does not is left as written (`%252F` becomes `%2F`, not `/`);
/// - splits at `/` (a decoded `%2F` included), dropping empty and `.` segments;
/// - resolves `..` against the segment before it; a `..` with nothing before it is dropped;
/// - joins the rest with single `/`, so there is no leading or trailing `/`;
/// - writes `%25` for a `%` that would start an escape if decoded again (`%252F` stays
///   `%252F`, `%%33` becomes `%%2533`).
///
/// The last step makes the result its own normal form: an action is normalised when it arrives
/// and again whenever its recorded text is read (Validate, replay, a re-import), and each
/// reading must see the path the check saw.
#[must_use]
pub fn normalize_resource(path: &str) -> String {
    let decoded = percent_decode(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let joined = segments.join("/");
    match escape_decodable(&joined) {
        Cow::Borrowed(_) => joined,
        Cow::Owned(escaped) => escaped,
    }
}

/// Decodes `%XX` escapes once, keeping any escape whose byte is not part of valid UTF-8.
fn percent_decode(input: &str) -> Cow<'_, str> {
    scan_escapes(input, Escapes::Decode)
}

/// Writes `%25` for the `%` of every escape [`percent_decode`] would decode, so that decoding
/// the result gives `input` back.
fn escape_decodable(input: &str) -> Cow<'_, str> {
    scan_escapes(input, Escapes::Protect)
}

/// What [`scan_escapes`] does with the escapes it would decode.
#[derive(Clone, Copy)]
enum Escapes {
    /// Decode them.
    Decode,
    /// Keep them, their `%` written as `%25`.
    Protect,
}

/// The one reading of escapes: runs of `%XX` whose bytes form valid UTF-8 are decoded (or
/// protected), every other escape and all other text are kept as written.
fn scan_escapes(input: &str, mode: Escapes) -> Cow<'_, str> {
    if !input.contains('%') {
        return Cow::Borrowed(input);
    }
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    // Escapes are decoded a run at a time: one character may span several (`%C3%A9` is `é`).
    let mut run: Vec<u8> = Vec::new();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(byte) = escape_at(bytes, i) {
            if run.is_empty() {
                run_start = i;
            }
            run.push(byte);
            i += 3;
            continue;
        }
        flush_run(&mut out, &run, &input[run_start..i], mode);
        run.clear();
        // Copy up to the next `%`; a `%` here starts no escape, so it is copied as is. Both ends
        // sit on char boundaries: `i` follows an escape or a copied run, and `%` is ASCII.
        let end = bytes[i + 1..]
            .iter()
            .position(|&b| b == b'%')
            .map_or(bytes.len(), |p| i + 1 + p);
        out.push_str(&input[i..end]);
        i = end;
    }
    flush_run(&mut out, &run, &input[run_start..], mode);
    Cow::Owned(out)
}

/// The byte encoded by a `%XX` escape starting at `i`, if there is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let high = hex_value(*bytes.get(i + 1)?)?;
    let low = hex_value(*bytes.get(i + 2)?)?;
    Some(high << 4 | low)
}

/// The value of one hexadecimal digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends the decoded bytes of a run of escapes (or, to protect them, their escapes with `%`
/// written `%25`), putting back the original escape (three characters of `original` per byte)
/// for every byte that is not part of valid UTF-8.
fn flush_run(out: &mut String, decoded: &[u8], original: &str, mode: Escapes) {
    let mut consumed = 0;
    for chunk in decoded.utf8_chunks() {
        let valid = chunk.valid().len();
        match mode {
            Escapes::Decode => out.push_str(chunk.valid()),
            Escapes::Protect => {
                let escapes = &original[consumed * 3..(consumed + valid) * 3];
                for at in (0..escapes.len()).step_by(3) {
                    out.push_str("%25");
                    out.push_str(&escapes[at + 1..at + 3]);
                }
            }
        }
        consumed += valid;
        let invalid = chunk.invalid().len();
        if invalid > 0 {
            out.push_str(&original[consumed * 3..(consumed + invalid) * 3]);
            consumed += invalid;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::error::Error;
    use std::hash::DefaultHasher;

    use proptest::prelude::*;
    use regex::RegexSet;

    use super::*;

    type TestResult = Result<(), Box<dyn Error>>;

    fn name(pattern: &str) -> Result<Glob, GlobError> {
        Glob::new(pattern, GlobKind::Name)
    }

    fn path(pattern: &str) -> Result<Glob, GlobError> {
        Glob::new(pattern, GlobKind::Path)
    }

    /// Checks `is_match` and, because the engine matches many globs through a `RegexSet` built
    /// from `regex_source`, that the set agrees with it.
    fn check(glob: &Glob, matches: &[&str], misses: &[&str]) -> TestResult {
        let set = RegexSet::new([glob.regex_source()])?;
        for candidate in matches {
            assert!(
                glob.is_match(candidate),
                "{glob} ({:?}) should match {candidate:?}",
                glob.kind()
            );
            assert!(
                set.is_match(candidate),
                "set for {glob} should match {candidate:?}"
            );
        }
        for candidate in misses {
            assert!(
                !glob.is_match(candidate),
                "{glob} ({:?}) should not match {candidate:?}",
                glob.kind()
            );
            assert!(
                !set.is_match(candidate),
                "set for {glob} should not match {candidate:?}"
            );
        }
        Ok(())
    }

    // ---- examples from product.md §4 and the brief ----

    #[test]
    fn deep_prefix_matches_no_segment_or_many() -> TestResult {
        check(
            &name("**.send_email")?,
            &[
                "send_email",
                "a.send_email",
                "a.b.send_email",
                "a/b.send_email",
                "..send_email",
            ],
            &[
                "xsend_email",
                "send_emailx",
                "a.send_email.x",
                "send_email.",
                "a.bsend_email",
            ],
        )
    }

    #[test]
    fn deep_suffix_matches_no_segment_or_many() -> TestResult {
        check(
            &name("corp.**")?,
            &["corp", "corp.x", "corp.x.y", "corp.x/y", "corp."],
            &["corpx", "corporate.x", "xcorp", "xcorp.x", "", "cor"],
        )
    }

    #[test]
    fn deep_middle_matches_no_segment_or_many() -> TestResult {
        check(
            &name("a.**.b")?,
            &["a.b", "a.x.b", "a.x.y.b", "a.x/y.b", "a..b"],
            &["ab", "a.xb", "ax.b", "a.b.c", "b", "a", "a.b.", "x.a.b"],
        )
    }

    #[test]
    fn lone_deep_matches_everything() -> TestResult {
        for kind in [GlobKind::Name, GlobKind::Path] {
            let glob = Glob::new("**", kind)?;
            assert!(!glob.is_literal());
            check(
                &glob,
                &["", "a", "a.b/c", "/", ".", "line\nbreak/x", "日本/語"],
                &[],
            )?;
        }
        Ok(())
    }

    #[test]
    fn single_star_stays_in_one_name_segment() -> TestResult {
        check(
            &name("*.send_email")?,
            &["gmail.send_email", ".send_email", "g-mail_2.send_email"],
            &[
                "a.b.send_email",
                "a/b.send_email",
                "send_email",
                "gmail.send_emails",
            ],
        )
    }

    #[test]
    fn path_examples() -> TestResult {
        check(
            &path("files/**")?,
            &["files", "files/a", "files/a/b", "files/a.b/c.d", "files/"],
            &["filesx", "files.txt", "xfiles/a", "file"],
        )?;
        check(
            &path("**/ssn")?,
            &["ssn", "crm/x/ssn", "crm/ssn", "/ssn", "a.b/ssn"],
            &["xssn", "crm/ssnx", "crm/xssn", "ssn/x", ""],
        )?;
        check(
            &path("files/*")?,
            &["files/report.pdf", "files/", "files/a.b.c"],
            &[
                "files/a/b",
                "files",
                "files/report.pdf/",
                "other/report.pdf",
            ],
        )
    }

    #[test]
    fn dot_is_no_separator_in_paths() -> TestResult {
        check(
            &path("*@acme.com")?,
            &["john.doe@acme.com", "@acme.com", "a.b.c@acme.com"],
            &[
                "john@acme.com.evil",
                "john@acme.co",
                "a/b@acme.com",
                "john@acmexcom",
            ],
        )?;
        check(
            &path("report-*")?,
            &["report-2024.pdf", "report-", "report-a.b.c"],
            &["report", "report-2024/x.pdf", "xreport-2024.pdf"],
        )
    }

    #[test]
    fn name_globs_split_at_slash_too() -> TestResult {
        check(
            &name("mcp/*")?,
            &["mcp/send", "mcp/"],
            &["mcp/a.b", "mcp/a/b", "mcp.send"],
        )?;
        check(&name("*")?, &["send_email", ""], &["a.b", "a/b", "."])
    }

    // ---- wildcards within a segment ----

    #[test]
    fn question_mark_is_one_non_separator() -> TestResult {
        check(
            &name("a?c")?,
            &["abc", "a-c", "a*c", "a?c"],
            &["a.c", "a/c", "ac", "abbc"],
        )?;
        check(&path("a?c")?, &["abc", "a.c"], &["a/c", "ac", "abbc"])?;
        check(&path("??")?, &["ab", "é日"], &["a", "abc", "a/", "/"])
    }

    #[test]
    fn star_and_question_mark_combine() -> TestResult {
        check(&path("*?*")?, &["a", "abc"], &["", "a/b"])?;
        check(&name("?*?")?, &["ab", "abc"], &["a", "a.b"])?;
        check(
            &path("a*b*c")?,
            &["abc", "axxbyyc", "abbc"],
            &["ab", "acb", "ab/c"],
        )
    }

    #[test]
    fn double_star_inside_a_segment_is_a_single_star() -> TestResult {
        check(&name("a**b")?, &["ab", "axxb"], &["a.b", "a/b", "a.x.b"])?;
        check(&name("**x")?, &["x", "abx"], &["a.x", "a/x"])?;
        check(&name("x**")?, &["x", "xab"], &["x.a"])?;
        check(&name("***")?, &["", "abc"], &["a.b"])?;
        check(&path("***/a")?, &["x/a", "/a"], &["x/y/a", "a"])
    }

    #[test]
    fn unicode_segments() -> TestResult {
        check(
            &path("日本*")?,
            &["日本", "日本語", "日本.txt"],
            &["日", "日本/語", "にほん"],
        )?;
        check(
            &path("caf?")?,
            &["café", "cafe", "caf日"],
            &["caf", "cafée", "caf/"],
        )?;
        check(
            &name("?.émettre")?,
            &["🦀.émettre", "é.émettre"],
            &["🦀🦀.émettre", ".émettre"],
        )?;
        check(
            &name("**.émettre")?,
            &["émettre", "données.émettre"],
            &["xémettre"],
        )?;
        check(
            &path("données/**/clé")?,
            &["données/clé", "données/é/è/clé"],
            &["donnéesclé"],
        )
    }

    #[test]
    fn wildcards_match_line_breaks_within_a_segment() -> TestResult {
        check(&path("a*b")?, &["a\nb"], &["a\n/b"])?;
        check(&path("a?b")?, &["a\nb"], &[])?;
        check(&path("a/**")?, &["a/\n/x"], &[])
    }

    #[test]
    fn matching_is_case_sensitive() -> TestResult {
        check(
            &name("*.send_email")?,
            &["x.send_email"],
            &["x.Send_Email", "x.SEND_EMAIL"],
        )?;
        check(&path("Files/*")?, &["Files/a"], &["files/a"])
    }

    // ---- separators and `**` ----

    #[test]
    fn separators_are_literal() -> TestResult {
        // In names a `.` in the pattern matches only `.`, not `/`.
        check(&name("a.b")?, &["a.b"], &["a/b", "axb"])?;
        check(&name("a/*")?, &["a/x"], &["a.x"])?;
        check(&name("corp.**")?, &[], &["corp/x"])?;
        check(&name("**.send_email")?, &[], &["mcp/send_email"])
    }

    #[test]
    fn separators_next_to_deep_wildcards() -> TestResult {
        check(
            &name("**.")?,
            &["", "x.", "a.b.", "a/b."],
            &["x", ".x", "x/"],
        )?;
        check(&name(".**")?, &["", ".", ".x", ".x.y"], &["x", "/x"])?;
        check(&path("/**")?, &["", "/", "/a/b"], &["a", "a/b"])?;
        check(&path("**/")?, &["", "a/", "a/b/"], &["a", "/a"])?;
        check(
            &path("a/**/")?,
            &["a/", "a/x/", "a/x/y/"],
            &["a", "a/x", "a//x"],
        )?;
        check(&path("/**/x")?, &["/x", "/a/x", "/a/b/x"], &["x", "a/x"])
    }

    #[test]
    fn adjacent_deep_wildcards_mean_one() -> TestResult {
        check(&path("**/**")?, &["", "a", "a/b/c"], &[])?;
        check(&name("**.**/**")?, &["", "a", "a.b/c"], &[])?;
        check(
            &path("a/**/**/b")?,
            &["a/b", "a/x/b", "a/x/y/b"],
            &["ab", "a/b/c"],
        )?;
        check(&path("a/**/**")?, &["a", "a/x", "a/x/y"], &["ax", "b/a"])?;
        check(&path("**/**/z")?, &["z", "a/z", "a/b/z"], &["az"])
    }

    #[test]
    fn deep_wildcards_between_different_separators() -> TestResult {
        // With no segment in between, the separator after `**` goes with it.
        check(
            &name("a.**/b")?,
            &["a.b", "a.x/b", "a.x.y/b", "a.x/y/b"],
            &["a/b", "a.x.b", "ab"],
        )?;
        // Each `**` owns the separator after it, so either may be empty.
        check(
            &name("a.**/**.b")?,
            &["a.b", "a.x/b", "a.x.b", "a.x/y.b", "a.x.y/z.w.b"],
            &["a/b", "ab", "a.x/yb"],
        )?;
        // A run at the end is one `**` owning the separator before the run.
        check(
            &name("a.**/**")?,
            &["a", "a.x", "a.x/y", "a.x.y"],
            &["a/x", "ax"],
        )
    }

    #[test]
    fn empty_segments_are_segments() -> TestResult {
        check(&name("a..b")?, &["a..b"], &["a.b", "a...b", "a/.b"])?;
        check(&name("a.*.b")?, &["a..b", "a.x.b"], &["a.b", "a.x.y.b"])?;
        check(&path("a//b")?, &["a//b"], &["a/b"])?;
        check(&path("/")?, &["/"], &["", "//"])?;
        check(&name(".")?, &["."], &["/", ""])?;
        check(&path("a/")?, &["a/"], &["a"])
    }

    // ---- literals and escaping ----

    #[test]
    fn literal_patterns() -> TestResult {
        for pattern in [
            "send_email",
            "crm/customers/42",
            "a.b/c",
            "日本.語",
            "a+b.c(1)",
            " ",
        ] {
            let glob = name(pattern)?;
            assert!(glob.is_literal(), "{pattern}");
            check(
                &glob,
                &[pattern],
                &["", "x", &format!("{pattern}x"), &format!("x{pattern}")],
            )?;
        }
        for pattern in ["*", "?", "a*", "a?", "**", "a.**"] {
            assert!(!name(pattern)?.is_literal(), "{pattern}");
        }
        Ok(())
    }

    #[test]
    fn regex_metacharacters_are_literal() -> TestResult {
        check(
            &name("a+b.c(1)")?,
            &["a+b.c(1)"],
            &[
                "aab.c(1)",
                "ab.c(1)",
                "a+b/c(1)",
                "a+bxc(1)",
                "a+b.c1",
                "a+b.c(11)",
            ],
        )?;
        let nasty = r"^[a]{2}\d|x$.+()\\";
        check(&path(nasty)?, &[nasty], &["aa1", "x", "[a]{2}\\d|x$.+()"])?;
        check(
            &path("(*)|[?]")?,
            &["(x)|[y]", "()|[y]"],
            &["x", "(x)|[]", "(x)|y"],
        )?;
        // Brackets, braces and backslashes have no glob meaning either.
        check(&path("{a,b}")?, &["{a,b}"], &["a", "b"])?;
        check(&path("[ab]")?, &["[ab]"], &["a"])?;
        check(&path(r"\*")?, &[r"\", r"\x"], &["*", "x"])
    }

    #[test]
    fn literal_fast_path_agrees_with_regex() -> TestResult {
        let glob = name("a.b")?;
        let regex = Regex::new(glob.regex_source())?;
        for candidate in ["a.b", "a/b", "axb", "a.b.c", ""] {
            assert_eq!(
                glob.is_match(candidate),
                regex.is_match(candidate),
                "{candidate}"
            );
        }
        Ok(())
    }

    // ---- errors, limits, identity ----

    #[test]
    fn empty_pattern_is_rejected() {
        assert_eq!(name(""), Err(GlobError::Empty));
        assert_eq!(path(""), Err(GlobError::Empty));
        assert_eq!(GlobError::Empty.to_string(), "glob pattern is empty");
    }

    #[test]
    fn length_limit_counts_characters() -> TestResult {
        path(&"a".repeat(MAX_GLOB_LEN))?;
        // 512 characters of 3 bytes each: over 512 bytes, still allowed.
        path(&"日".repeat(MAX_GLOB_LEN))?;
        let too_long = Err(GlobError::TooLong { max: MAX_GLOB_LEN });
        assert_eq!(path(&"a".repeat(MAX_GLOB_LEN + 1)), too_long);
        assert_eq!(path(&"日".repeat(MAX_GLOB_LEN + 1)), too_long);
        assert_eq!(
            GlobError::TooLong { max: 512 }.to_string(),
            "glob pattern is longer than 512 characters"
        );
        Ok(())
    }

    #[test]
    fn worst_case_patterns_compile_and_match() -> TestResult {
        let questions = name(&"?".repeat(MAX_GLOB_LEN))?;
        assert!(questions.is_match(&"é".repeat(MAX_GLOB_LEN)));
        assert!(!questions.is_match(&"é".repeat(MAX_GLOB_LEN - 1)));
        let stars = path(&"*a".repeat(MAX_GLOB_LEN / 2))?;
        assert!(stars.is_match(&"xa".repeat(MAX_GLOB_LEN / 2)));
        assert!(!stars.is_match(&"x".repeat(10_000)));
        // Alternating separators keep every `**` apart: the largest number of optional groups.
        let deep = name(&"**.**/".repeat(MAX_GLOB_LEN / 6))?;
        assert!(deep.is_match(""));
        assert!(deep.is_match("a.b/c."));
        for glob in [&questions, &stars, &deep] {
            assert_eq!(glob.prepare(), Ok(()));
        }
        let deep_path = path(&"**/x/".repeat(MAX_GLOB_LEN / 5))?;
        assert_eq!(deep_path.prepare(), Ok(()));
        assert!(deep_path.is_match(&"x/".repeat(1_000)));
        assert!(!deep_path.is_match(&"x/".repeat(MAX_GLOB_LEN / 5 - 1)));
        Ok(())
    }

    #[test]
    fn accessors() -> TestResult {
        let glob = path("files/*")?;
        assert_eq!(glob.as_str(), "files/*");
        assert_eq!(glob.kind(), GlobKind::Path);
        assert_eq!(glob.to_string(), "files/*");
        assert_eq!(glob.regex_source(), "^files/[^/]*$");
        assert_eq!(name("*.x")?.regex_source(), r"^[^./]*\.x$");
        assert_eq!(name("**")?.regex_source(), "^(?s:.*)$");
        assert_eq!(name("a.**.b")?.regex_source(), r"^a\.(?:(?s:.*)\.)?b$");
        assert_eq!(name("a.**")?.regex_source(), r"^a(?:\.(?s:.*))?$");
        Ok(())
    }

    #[test]
    fn equality_and_hash_use_kind_and_source() -> TestResult {
        assert_eq!(name("a.*")?, name("a.*")?);
        assert_ne!(name("a.*")?, path("a.*")?);
        assert_ne!(name("a.*")?, name("a.?")?);
        // Hashed by hand: clippy flags `HashSet<Glob>` (the regex caches inside count as mutable).
        let hash = |glob: &Glob| {
            let mut hasher = DefaultHasher::new();
            glob.hash(&mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(&name("a.*")?), hash(&name("a.*")?));
        let distinct: HashSet<u64> = [name("a")?, name("a")?, path("a")?, name("b")?]
            .iter()
            .map(hash)
            .collect();
        assert_eq!(distinct.len(), 3);
        Ok(())
    }

    #[test]
    fn many_globs_in_one_set() -> TestResult {
        let globs = [
            name("**.send_email")?,
            name("corp.**")?,
            name("*.read")?,
            name("exact")?,
        ];
        let set = RegexSet::new(globs.iter().map(Glob::regex_source))?;
        let hits: Vec<usize> = set.matches("corp.send_email").into_iter().collect();
        assert_eq!(hits, [0, 1]);
        let hits: Vec<usize> = set.matches("x.read").into_iter().collect();
        assert_eq!(hits, [2]);
        assert!(set.matches("exact").matched(3));
        assert!(!set.is_match("nothing.here"));
        Ok(())
    }

    // ---- normalize_resource ----

    #[test]
    fn normalize_dodges_from_the_docs() {
        assert_eq!(
            normalize_resource("crm//customers/./42/../42/ssn"),
            "crm/customers/42/ssn"
        );
        assert_eq!(
            normalize_resource("crm/customers/42/ssn"),
            "crm/customers/42/ssn"
        );
    }

    #[test]
    fn normalize_slashes_and_dots() {
        assert_eq!(normalize_resource(""), "");
        assert_eq!(normalize_resource("/"), "");
        assert_eq!(normalize_resource("///"), "");
        assert_eq!(normalize_resource("/a/b/"), "a/b");
        assert_eq!(normalize_resource("a//b///c"), "a/b/c");
        assert_eq!(normalize_resource("./a/./b/."), "a/b");
        assert_eq!(normalize_resource("a/.../b"), "a/.../b");
        assert_eq!(normalize_resource("a/.b/c."), "a/.b/c.");
    }

    #[test]
    fn normalize_parent_segments() {
        assert_eq!(normalize_resource("a/b/.."), "a");
        assert_eq!(normalize_resource("a/b/../c"), "a/c");
        assert_eq!(normalize_resource("a/../../b"), "b");
        assert_eq!(normalize_resource("../../a"), "a");
        assert_eq!(normalize_resource("/../a/.."), "");
        assert_eq!(normalize_resource("a/b/c/../../d"), "a/d");
        assert_eq!(normalize_resource("a/..b/c"), "a/..b/c");
    }

    #[test]
    fn normalize_percent_decodes_before_splitting() -> TestResult {
        assert_eq!(
            normalize_resource("crm%2Fcustomers%2f42"),
            "crm/customers/42"
        );
        assert_eq!(normalize_resource("a/b/%2E%2E/c"), "a/c");
        assert_eq!(normalize_resource("a/%2e/b"), "a/b");
        assert_eq!(normalize_resource("%2F%2Fa%2F"), "a");
        assert_eq!(normalize_resource("a%20b"), "a b");
        assert_eq!(normalize_resource("caf%C3%A9/%E2%82%AC"), "café/€");
        assert_eq!(normalize_resource("données/%F0%9F%A6%80"), "données/🦀");
        assert_eq!(normalize_resource("a%00b"), "a\0b");
        // Decoded once: what an escape decodes to is not decoded again, and stays escaped so
        // that reading the path again does not decode it either.
        assert_eq!(normalize_resource("a%252Fb"), "a%252Fb");
        // So a rule on the real path catches the encoded one.
        let rule = path("crm/*/42/ssn")?;
        assert!(rule.is_match(&normalize_resource("crm%2Fcustomers/./42%2Fx%2F..%2Fssn")));
        Ok(())
    }

    /// Found by the `action` fuzz target: a path whose decoding leaves a `%` before two hex
    /// digits changed each time its recorded action was read again.
    #[test]
    fn normalize_is_its_own_normal_form() {
        for (path, normal) in [
            ("hr%%%%%%3333A7", "hr%%%%%25333A7"),
            ("a%%2541", "a%%2541"),
            ("a%2541", "a%2541"),
            ("%25%32%46", "%252F"),
            ("a%FF%41", "a%FFA"),
            ("a%FF%2541", "a%FF%2541"),
            ("%C3%25A9", "%25C3%25A9"),
            ("%25C3%25A9", "%25C3%25A9"),
            ("%25%43%33%25%41%39", "%25C3%25A9"),
        ] {
            assert_eq!(normalize_resource(path), normal, "{path:?}");
            assert_eq!(normalize_resource(normal), normal, "{normal:?}");
        }
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(path in "([a-z/.%]|%[0-9a-fA-F]{2}|é){0,24}") {
            let once = normalize_resource(&path);
            prop_assert_eq!(normalize_resource(&once), once);
        }
    }

    #[test]
    fn normalize_keeps_escapes_that_are_not_utf8() {
        assert_eq!(normalize_resource("a%FFb"), "a%FFb");
        assert_eq!(normalize_resource("a%ffb"), "a%ffb");
        assert_eq!(normalize_resource("caf%e9"), "caf%e9");
        assert_eq!(normalize_resource("%C3"), "%C3");
        assert_eq!(normalize_resource("%C3%28"), "%C3(");
        assert_eq!(normalize_resource("%E2%82%AC%FF"), "€%FF");
        assert_eq!(normalize_resource("%FF%E2%82%AC"), "%FF€");
        assert_eq!(normalize_resource("%E2%82/%AC"), "%E2%82/%AC");
        assert_eq!(normalize_resource("%C3é"), "%C3é");
    }

    #[test]
    fn normalize_keeps_malformed_escapes() {
        assert_eq!(normalize_resource("%"), "%");
        assert_eq!(normalize_resource("100%"), "100%");
        assert_eq!(normalize_resource("%2"), "%2");
        assert_eq!(normalize_resource("%zz/a"), "%zz/a");
        assert_eq!(normalize_resource("%%2F"), "%");
        assert_eq!(normalize_resource("a%%2Fb"), "a%/b");
        assert_eq!(normalize_resource("%é2F"), "%é2F");
        assert_eq!(normalize_resource("é%"), "é%");
        assert_eq!(normalize_resource("a+b"), "a+b");
    }

    // ---- properties ----

    /// An independent, backtracking reading of the segment rules, to compare the regex against.
    fn reference_match(pattern: &str, candidate: &str, kind: GlobKind) -> bool {
        let split = |text: &str| -> (Vec<Vec<char>>, Vec<char>) {
            let mut segments = vec![Vec::new()];
            let mut separators = Vec::new();
            for c in text.chars() {
                if kind.is_separator(c) {
                    separators.push(c);
                    segments.push(Vec::new());
                } else if let Some(last) = segments.last_mut() {
                    last.push(c);
                }
            }
            (segments, separators)
        };
        let (p, ps) = split(pattern);
        let (c, cs) = split(candidate);
        reference_from(&p, &ps, &c, &cs, 0, 0)
    }

    /// Whether segments `p[i..]` match `c[j..]`, the separators before both already matched.
    /// `ps[i]` is the separator after `p[i]`.
    fn reference_from(
        p: &[Vec<char>],
        ps: &[char],
        c: &[Vec<char>],
        cs: &[char],
        i: usize,
        j: usize,
    ) -> bool {
        let is_deep = |k: usize| p[k] == ['*', '*'];
        if is_deep(i) {
            if i + 1 == p.len() {
                return true;
            }
            // No segment: the `**` and the separator after it vanish.
            if reference_from(p, ps, c, cs, i + 1, j) {
                return true;
            }
            // Segments `c[j..=k]` (any separators between), then the pattern's separator.
            return (j..c.len() - 1)
                .any(|k| cs[k] == ps[i] && reference_from(p, ps, c, cs, i + 1, k + 1));
        }
        if !segment_match(&p[i], &c[j]) {
            return false;
        }
        if i + 1 == p.len() {
            return j + 1 == c.len();
        }
        if j + 1 == c.len() {
            // Only `**` left, all empty: a trailing `**` takes the separator before it along.
            return (i + 1..p.len()).all(is_deep);
        }
        ps[i] == cs[j] && reference_from(p, ps, c, cs, i + 1, j + 1)
    }

    fn segment_match(p: &[char], c: &[char]) -> bool {
        match p.split_first() {
            None => c.is_empty(),
            Some(('*', rest)) => (0..=c.len()).any(|k| segment_match(rest, &c[k..])),
            Some(('?', rest)) => !c.is_empty() && segment_match(rest, &c[1..]),
            Some((x, rest)) => c.first() == Some(x) && segment_match(rest, &c[1..]),
        }
    }

    fn kind_strategy() -> impl Strategy<Value = GlobKind> {
        prop_oneof![Just(GlobKind::Name), Just(GlobKind::Path)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn regex_agrees_with_reference(
            kind in kind_strategy(),
            pattern in "(\\*\\*|[ab.é/*?+])(\\*\\*|[ab.é/*?+]){0,7}",
            candidate in "[ab.é/*?+\n]{0,8}",
        ) {
            let glob = Glob::new(&pattern, kind)?;
            let expected = reference_match(&pattern, &candidate, kind);
            prop_assert_eq!(glob.is_match(&candidate), expected, "regex {}", glob.regex_source());
        }

        #[test]
        fn regex_agrees_with_reference_on_deep_patterns(
            kind in kind_strategy(),
            parts in prop::collection::vec(prop_oneof!["\\*\\*", "[ab*]{0,2}"], 1..5),
            separators in prop::collection::vec("[./]", 4),
            candidate in "[ab./]{0,8}",
        ) {
            let mut pattern = String::new();
            for (k, part) in parts.iter().enumerate() {
                if k > 0 {
                    pattern.push_str(&separators[k - 1]);
                }
                pattern.push_str(part);
            }
            prop_assume!(!pattern.is_empty());
            let glob = Glob::new(&pattern, kind)?;
            let expected = reference_match(&pattern, &candidate, kind);
            prop_assert_eq!(glob.is_match(&candidate), expected, "regex {}", glob.regex_source());
        }

        #[test]
        fn literal_patterns_match_only_themselves(
            kind in kind_strategy(),
            pattern in "[^*?]{1,16}",
            other in "[^*?]{0,16}",
        ) {
            let glob = Glob::new(&pattern, kind)?;
            prop_assert!(glob.is_literal());
            let regex = Regex::new(glob.regex_source())?;
            prop_assert!(regex.is_match(&pattern));
            prop_assert_eq!(regex.is_match(&other), other == pattern);
            prop_assert_eq!(glob.is_match(&other), other == pattern);
        }

        #[test]
        fn normalized_paths_are_clean(input in "[a./%2EF]{0,24}") {
            let normalized = normalize_resource(&input);
            if !normalized.is_empty() {
                prop_assert!(normalized
                    .split('/')
                    .all(|segment| !matches!(segment, "" | "." | "..")));
            }
            // Without `%` nothing is decoded, so normalising again changes nothing.
            if !normalized.contains('%') {
                prop_assert_eq!(normalize_resource(&normalized), normalized.clone());
            }
        }

        #[test]
        fn normalize_never_panics(input in "\\PC{0,32}") {
            let _ = normalize_resource(&input);
        }
    }
}
