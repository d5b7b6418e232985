//! Server-sent events, read from a byte stream, per the WHATWG framing rules: what the CLI's
//! `charter violations --follow` reads from `GET /v1/violations/stream` and what the gateway
//! reads from a Streamable HTTP upstream (`event`, `id`, `data` fields and comments).

/// What one blank-line-terminated block, or one comment line, carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An event: its type (`message` when unnamed), its id, and its data lines joined by `\n`.
    Event {
        /// The `event` field, `message` when the block has none.
        event: String,
        /// The `id` field, when the block has one.
        id: Option<String>,
        /// The `data` lines, joined by `\n`.
        data: String,
    },
    /// A comment (`: text`); the server's keep-alives are empty ones.
    Comment(String),
}

/// Cuts a byte stream into messages. Chunks may end anywhere, even inside a character, so
/// bytes wait in `pending` until their line is complete. Lines end with `\r\n`, `\n` or a lone
/// `\r`, all three of which the format allows.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    /// The last line ended with `\r` at the end of a chunk: a `\n` that starts the next chunk
    /// belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl Decoder {
    /// Takes the next chunk; returns the messages it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Message> {
        let mut chunk = chunk;
        if self.after_cr
            && let Some((first, rest)) = chunk.split_first()
        {
            self.after_cr = false;
            if *first == b'\n' {
                chunk = rest;
            }
        }
        self.pending.extend_from_slice(chunk);
        let mut messages = Vec::new();
        let mut start = 0;
        while let Some(end) = self.pending[start..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
        {
            let line = String::from_utf8_lossy(&self.pending[start..start + end]).into_owned();
            let cr = self.pending[start + end] == b'\r';
            start += end + 1;
            if cr {
                match self.pending.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if let Some(message) = self.line(&line) {
                messages.push(message);
            }
        }
        self.pending.drain(..start);
        messages
    }

    fn line(&mut self, line: &str) -> Option<Message> {
        if line.is_empty() {
            let event = self.event.take();
            let id = self.id.take();
            // A block without data dispatches nothing.
            let data = self.data.take()?;
            return Some(Message::Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                id,
                data,
            });
        }
        if let Some(comment) = line.strip_prefix(':') {
            return Some(Message::Comment(
                comment.strip_prefix(' ').unwrap_or(comment).to_owned(),
            ));
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "event" => self.event = Some(value),
            "id" => self.id = Some(value),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(&value);
                }
                None => self.data = Some(value),
            },
            // `retry` and unknown fields mean nothing to a client that does not reconnect.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Decoder, Message};

    fn event(event: &str, id: Option<&str>, data: &str) -> Message {
        Message::Event {
            event: event.to_owned(),
            id: id.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_and_comments_are_read_whatever_the_chunks() {
        let stream = "event: violation\nid: vio_1\ndata: {\"a\":\"é\"}\n\n:\n: missed 3 events\r\n\ndata: one\ndata:two\n\nid: x\n\n";
        let expected = vec![
            event("violation", Some("vio_1"), "{\"a\":\"é\"}"),
            Message::Comment(String::new()),
            Message::Comment("missed 3 events".to_owned()),
            event("message", None, "one\ntwo"),
        ];
        // Whole, then cut at every byte (inside `é` too), then in threes.
        let bytes = stream.as_bytes();
        for size in [bytes.len(), 1, 3] {
            let mut decoder = Decoder::default();
            let got: Vec<Message> = bytes.chunks(size).flat_map(|c| decoder.feed(c)).collect();
            assert_eq!(got, expected, "chunks of {size}");
        }
    }

    #[test]
    fn lines_may_end_with_a_lone_carriage_return() {
        let expected = vec![event("message", None, "a\nb"), event("message", None, "c")];
        for stream in [
            "data: a\rdata: b\r\rdata: c\r\r",
            "data: a\r\ndata: b\r\n\r\ndata: c\n\n",
        ] {
            let bytes = stream.as_bytes();
            for size in [bytes.len(), 1, 2, 3] {
                let mut decoder = Decoder::default();
                let got: Vec<Message> = bytes.chunks(size).flat_map(|c| decoder.feed(c)).collect();
                assert_eq!(got, expected, "{stream:?} in chunks of {size}");
            }
        }
        let mut decoder = Decoder::default();
        let mut got = decoder.feed(b"data: a\r");
        got.extend(decoder.feed(b""));
        got.extend(decoder.feed(b"\ndata: b\n\n"));
        assert_eq!(
            got,
            vec![event("message", None, "a\nb")],
            "an empty chunk between"
        );
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut decoder = Decoder::default();
        assert!(decoder.feed(b"event: violation\ndata: {}\n").is_empty());
        assert_eq!(decoder.feed(b"\n"), vec![event("violation", None, "{}")]);
    }
}
