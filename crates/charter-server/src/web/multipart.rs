//! A `multipart/form-data` body, read whole: what a form with a file input sends. The body is
//! already bounded by the server's body limit, so it is buffered and split in place; no part is
//! streamed to disk.

use axum::http::{HeaderMap, header};

/// One field of the form.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part<'b> {
    /// The field's `name`.
    pub(crate) name: String,
    /// The file's name, for a file input.
    pub(crate) filename: Option<String>,
    /// The field's bytes as sent.
    pub(crate) data: &'b [u8],
}

/// The boundary of a `multipart/form-data` request; `None` for any other body.
pub(crate) fn boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A parameter (`name="..."`) of a `Content-Disposition` header.
fn param(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body` delimited by `boundary`; `None` when the body is not well formed.
pub(crate) fn parts<'b>(body: &'b [u8], boundary: &str) -> Option<Vec<Part<'b>>> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(at..)?;
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        if !rest.starts_with(b"\r\n") {
            return None;
        }
        let head_start = at + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let head = std::str::from_utf8(body.get(head_start..head_end)?).ok()?;
        let data_start = head_end + 4;
        let data_end = find(body, next_delimiter.as_bytes(), data_start)?;
        let disposition = head.split("\r\n").find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value.trim())
        })?;
        parts.push(Part {
            name: param(disposition, "name")?,
            filename: param(disposition, "filename"),
            data: body.get(data_start..data_end)?,
        });
        at = data_end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_with_a_file_splits_into_its_fields() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let boundary = boundary(&headers).unwrap();
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.json\"\r\n\
Content-Type: application/json\r\n\r\n{\"a\":\r\n1}\r\n--XyZ--\r\n";
        let parts = parts(body, &boundary).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("p.json"));
        assert_eq!(parts[1].data, b"{\"a\":\r\n1}");
        assert!(super::parts(b"--XyZ\r\nno head", "XyZ").is_none());
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(super::boundary(&headers).is_none());
    }
}
