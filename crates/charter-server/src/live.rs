//! The node's live feed of committed violation events, which the API's stream and the
//! workspace's live Monitor read: the events of the checks this node answers, and, on
//! PostgreSQL, those the other nodes on the same database commit (`charter_store`'s feed),
//! relayed from the first subscription on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use charter_store::{Heard, Store, ViolationEvent};
use tokio::sync::{broadcast, watch};

/// An item of the feed.
#[derive(Debug, Clone)]
pub(crate) enum Feed {
    /// A committed violation event.
    Event(Arc<ViolationEvent>),
    /// The node lost its connection to the database and made it again: events the other
    /// nodes committed meanwhile were not relayed.
    Gap,
}

/// A subscriber more than this many items behind misses the oldest (it is told).
const BACKLOG: usize = 4_096;

/// How long the relay waits before it listens again after the database went away.
const RETRY: Duration = Duration::from_secs(1);

/// How long the first subscription waits for the relay to listen: the bound for a database
/// that does not answer (its stream then starts without the other nodes' events, and is told
/// of the gap once they are relayed).
const FIRST_LISTEN: Duration = Duration::from_secs(2);

/// The feed, shared by every clone of the runtime.
#[derive(Debug, Clone)]
pub(crate) struct LiveFeed {
    sender: broadcast::Sender<Feed>,
    /// Turns true when the server shuts down: streams end then (an open stream would hold the
    /// graceful shutdown until its grace period ran out), and so does the relay.
    closing: watch::Sender<bool>,
    /// Whether the relay was started.
    relaying: Arc<AtomicBool>,
    /// Turns true once the relay listens (at once on SQLite, which has no other nodes).
    listening: watch::Sender<bool>,
}

impl Default for LiveFeed {
    fn default() -> LiveFeed {
        LiveFeed {
            sender: broadcast::channel(BACKLOG).0,
            closing: watch::channel(false).0,
            relaying: Arc::default(),
            listening: watch::channel(false).0,
        }
    }
}

impl LiveFeed {
    /// Streams an event this node committed (nobody listening is fine).
    pub(crate) fn publish(&self, event: ViolationEvent) {
        let _ = self.sender.send(Feed::Event(Arc::new(event)));
    }

    /// A new subscription, and the watch of the shutdown. The first one starts relaying the
    /// other nodes' events (until then, a node nobody watches reads nothing of them) and
    /// returns once the relay listens, so that its stream misses none of them.
    pub(crate) async fn subscribe(
        &self,
        store: &Store,
    ) -> (broadcast::Receiver<Feed>, watch::Receiver<bool>) {
        let receiver = self.sender.subscribe();
        if !self.relaying.swap(true, Ordering::AcqRel) {
            tokio::spawn(relay(
                store.clone(),
                self.sender.clone(),
                self.listening.clone(),
                self.closing.subscribe(),
            ));
        }
        let mut listening = self.listening.subscribe();
        let _ = tokio::time::timeout(FIRST_LISTEN, listening.wait_for(|listens| *listens)).await;
        (receiver, self.closing.subscribe())
    }

    /// Ends every stream and the relay: the server is shutting down.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// Relays the events the other nodes commit into `sender` until the server shuts down; when
/// the database goes away, listens again once it is back and says a gap may have opened.
/// Returns at once on SQLite (one node).
async fn relay(
    store: Store,
    sender: broadcast::Sender<Feed>,
    listening: watch::Sender<bool>,
    mut closing: watch::Receiver<bool>,
) {
    let mut lost = false;
    loop {
        let listening_to = tokio::select! {
            feed = store.violation_feed() => feed,
            _ = closing.wait_for(|closed| *closed) => return,
        };
        let error = match listening_to {
            Ok(None) => {
                listening.send_replace(true);
                return;
            }
            Err(e) => e,
            Ok(Some(mut feed)) => {
                listening.send_replace(true);
                if std::mem::take(&mut lost) {
                    tracing::info!("relaying the other nodes' violation events again");
                    let _ = sender.send(Feed::Gap);
                }
                // On an error the feed's connection goes back to the pool (a closing pool
                // waits for it), and a new one listens when the database answers.
                loop {
                    let heard = tokio::select! {
                        heard = feed.next() => heard,
                        _ = closing.wait_for(|closed| *closed) => return,
                    };
                    match heard {
                        Ok(Heard::Events(events)) => {
                            for event in events {
                                let _ = sender.send(Feed::Event(Arc::new(event)));
                            }
                        }
                        Ok(Heard::Gap) => {
                            let _ = sender.send(Feed::Gap);
                        }
                        Err(e) => break e,
                    }
                }
            }
        };
        if !std::mem::replace(&mut lost, true) {
            tracing::warn!(error = %error, "the other nodes' violation events are not relayed until the database answers");
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            _ = closing.wait_for(|closed| *closed) => return,
        }
    }
}
