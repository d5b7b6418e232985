//! Where the relay's lines go: a channel read by another task, a pipe written from the sending
//! task itself, or a function called with each line.
//!
//! Writing a pipe from the task that produced the line saves the hand-off to a writer task (and,
//! for the agent's standard output, tokio's blocking pool) on every message: a line that fits in
//! the pipe is written at once, and only when the reader lags is the rest queued for a task that
//! waits until the pipe can take it. Lines keep their order either way.

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

/// A destination for newline-delimited messages.
#[derive(Clone)]
pub enum Outlet {
    /// Handed to whichever task reads the channel.
    Channel(mpsc::UnboundedSender<String>),
    /// Written to a pipe by the sender itself.
    #[cfg(unix)]
    Pipe(Arc<PipeWriter>),
    /// Given to a function, on the sender's task.
    Call(Arc<dyn Fn(String) + Send + Sync>),
}

impl fmt::Debug for Outlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outlet::Channel(_) => f.write_str("Outlet::Channel"),
            #[cfg(unix)]
            Outlet::Pipe(_) => f.write_str("Outlet::Pipe"),
            Outlet::Call(_) => f.write_str("Outlet::Call"),
        }
    }
}

impl From<mpsc::UnboundedSender<String>> for Outlet {
    fn from(tx: mpsc::UnboundedSender<String>) -> Outlet {
        Outlet::Channel(tx)
    }
}

impl Outlet {
    /// Sends one message (without its newline); false when the other side is gone.
    pub fn send(&self, line: String) -> bool {
        match self {
            Outlet::Channel(tx) => tx.send(line).is_ok(),
            #[cfg(unix)]
            Outlet::Pipe(pipe) => pipe.send(&line),
            Outlet::Call(call) => {
                call(line);
                true
            }
        }
    }
}

#[cfg(unix)]
pub use pipe::PipeWriter;

#[cfg(unix)]
mod pipe {
    use std::io::{self, IoSlice};
    use std::sync::{Arc, Mutex};

    use tokio::net::unix::pipe::Sender;

    use crate::lock;

    /// What could not be written yet.
    #[derive(Debug, Default)]
    struct Backlog {
        bytes: Vec<u8>,
        /// A task is writing `bytes`: later lines queue behind them.
        flushing: bool,
        broken: bool,
    }

    /// A non-blocking pipe written line by line from the sending task.
    #[derive(Debug)]
    pub struct PipeWriter {
        pipe: Sender,
        backlog: Mutex<Backlog>,
    }

    impl PipeWriter {
        /// Writes lines to `pipe`.
        pub fn new(pipe: Sender) -> Arc<PipeWriter> {
            Arc::new(PipeWriter {
                pipe,
                backlog: Mutex::new(Backlog::default()),
            })
        }

        /// Writes `line` and a newline now if the pipe takes them, else queues what is left
        /// for a task that waits until it can; false once the reader is gone.
        pub(crate) fn send(self: &Arc<Self>, line: &str) -> bool {
            let mut backlog = lock(&self.backlog);
            if backlog.broken {
                return false;
            }
            if backlog.flushing {
                backlog.bytes.extend_from_slice(line.as_bytes());
                backlog.bytes.push(b'\n');
                return true;
            }
            let total = line.len() + 1;
            let mut written = 0;
            while written < total {
                let result = if written < line.len() {
                    self.pipe.try_write_vectored(&[
                        IoSlice::new(&line.as_bytes()[written..]),
                        IoSlice::new(b"\n"),
                    ])
                } else {
                    self.pipe.try_write(b"\n")
                };
                match result {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        backlog.broken = true;
                        return false;
                    }
                }
            }
            if written == total {
                return true;
            }
            if written < line.len() {
                backlog.bytes.extend_from_slice(&line.as_bytes()[written..]);
            }
            backlog.bytes.push(b'\n');
            backlog.flushing = true;
            drop(backlog);
            let this = Arc::clone(self);
            tokio::spawn(async move { this.flush().await });
            true
        }

        /// Writes the backlog as the pipe drains, then lets senders write directly again.
        async fn flush(&self) {
            loop {
                let ready = self.pipe.writable().await;
                let mut backlog = lock(&self.backlog);
                if ready.is_err() {
                    backlog.broken = true;
                    backlog.bytes.clear();
                    backlog.flushing = false;
                    return;
                }
                loop {
                    if backlog.bytes.is_empty() {
                        backlog.flushing = false;
                        return;
                    }
                    match self.pipe.try_write(&backlog.bytes) {
                        Ok(n) => {
                            backlog.bytes.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            backlog.broken = true;
                            backlog.bytes.clear();
                            backlog.flushing = false;
                            return;
                        }
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use tokio::io::{AsyncBufReadExt as _, BufReader};
        use tokio::net::unix::pipe;

        use super::*;

        #[tokio::test]
        async fn lines_larger_than_the_pipe_arrive_whole_and_in_order() {
            let (tx, rx) = pipe::pipe().unwrap();
            let writer = PipeWriter::new(tx);
            // Far beyond a pipe's buffer (64 KiB): the rest goes through the backlog while
            // later lines queue behind it.
            let big = "x".repeat(300_000);
            assert!(writer.send(&big));
            assert!(writer.send("second"));
            assert!(writer.send("third"));
            let mut lines = BufReader::new(rx).lines();
            assert_eq!(lines.next_line().await.unwrap().unwrap(), big);
            assert_eq!(lines.next_line().await.unwrap().unwrap(), "second");
            assert_eq!(lines.next_line().await.unwrap().unwrap(), "third");
        }

        #[tokio::test]
        async fn a_closed_reader_is_reported() {
            let (tx, rx) = pipe::pipe().unwrap();
            let writer = PipeWriter::new(tx);
            drop(rx);
            // The first line may be queued (the pipe's readiness is not known yet); the
            // failure shows on a later one.
            let mut refused = false;
            for _ in 0..100 {
                if !writer.send("nobody reads this") {
                    refused = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(refused);
        }
    }
}
