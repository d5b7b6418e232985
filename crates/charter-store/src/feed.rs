//! Violation events between the nodes that share one PostgreSQL database.
//!
//! A node streams the events of the checks it answers itself (the Monitor's live stream reads
//! them from its runtime). Every other node learns of them here: the group commit sends the
//! ids of its events with `pg_notify` inside its transaction, which PostgreSQL delivers only
//! once the transaction has committed, and each node listens on the channel, skips its own
//! announcements, and reads the announced events back from the violations table. Ids, not the
//! events, travel: a notification's payload is limited to 8,000 bytes, and an event carries
//! its matching input. SQLite serves one node, so it has no feed.
//!
//! Notifications are not kept while a listener is disconnected: the feed says when it may have
//! missed some ([`Heard::Gap`]), and the reader of the stream is told to read the list.

use sqlx::postgres::PgListener;
use sqlx::{Pool, Postgres};

use crate::audit::sha256_hex;
use crate::error::StoreError;
use crate::runs::ViolationEvent;

/// Sends one announcement on a channel; delivered at commit, dropped with a rollback.
pub(crate) const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The most event ids one announcement carries: each is about 40 bytes, and a payload must
/// stay under PostgreSQL's 8,000 bytes.
const IDS_PER_PAYLOAD: usize = 100;

/// The announcements of `ids` by `node`: the node's tag, then the ids, separated by spaces
/// (neither holds one); nothing when there are no ids.
pub(crate) fn payloads(node: &str, ids: &[&str]) -> Vec<String> {
    ids.chunks(IDS_PER_PAYLOAD)
        .map(|chunk| {
            let mut payload = String::with_capacity(node.len() + chunk.len() * 41);
            payload.push_str(node);
            for id in chunk {
                payload.push(' ');
                payload.push_str(id);
            }
            payload
        })
        .collect()
}

/// The ids of an announcement by a node other than `node`; `None` for its own (or an empty
/// one).
fn others<'a>(node: &str, payload: &'a str) -> Option<Vec<&'a str>> {
    let mut words = payload.split(' ');
    let from = words.next()?;
    let ids: Vec<&str> = words.filter(|id| !id.is_empty()).collect();
    (from != node && !ids.is_empty()).then_some(ids)
}

/// The channel of the database schema `schema`: nodes share a channel exactly when they share
/// the tables (notifications are database-wide, so two schemas of one database, as tests use,
/// must not hear each other). A channel name is an identifier of at most 63 bytes.
pub(crate) fn channel(schema: &str) -> String {
    let name = format!("charter_violations:{schema}");
    if name.len() <= 63 {
        return name;
    }
    format!("charter_violations:{}", &sha256_hex(schema)[..32])
}

/// What a node hears from the others.
#[derive(Debug)]
pub enum Heard {
    /// Violation events another node committed, in the order they were announced.
    Events(Vec<ViolationEvent>),
    /// The connection to the database was lost and made again: events announced meanwhile
    /// were not heard.
    Gap,
}

/// The violation events other nodes commit, as they commit ([`crate::Store::violation_feed`]).
#[derive(Debug)]
pub struct ViolationFeed {
    listener: PgListener,
    pool: Pool<Postgres>,
    node: String,
}

impl ViolationFeed {
    /// Listens on `channel` for the other nodes' announcements (one connection of `pool`,
    /// held while the feed lives).
    pub(crate) async fn listen(
        pool: &Pool<Postgres>,
        channel: &str,
        node: &str,
    ) -> Result<ViolationFeed, StoreError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(ViolationFeed {
            listener,
            pool: pool.clone(),
            node: node.to_owned(),
        })
    }

    /// The next events another node committed, or a gap. An error means the database is away
    /// (the next call tries again) or the store was closed.
    pub async fn next(&mut self) -> Result<Heard, StoreError> {
        loop {
            let Some(notification) = self.listener.try_recv().await? else {
                return Ok(Heard::Gap);
            };
            let Some(ids) = others(&self.node, notification.payload()) else {
                continue;
            };
            let events = read(&self.pool, &ids).await?;
            if !events.is_empty() {
                return Ok(Heard::Events(events));
            }
        }
    }
}

/// The violation events of `ids` still stored (retention may have removed one meanwhile), in
/// the order of `ids`.
async fn read(pool: &Pool<Postgres>, ids: &[&str]) -> Result<Vec<ViolationEvent>, StoreError> {
    let rows = sqlx::query("SELECT * FROM violations WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    let mut events = rows
        .iter()
        .map(crate::postgres::ops::monitor::violation_row)
        .collect::<Result<Vec<_>, _>>()?;
    events.sort_by_key(|e| ids.iter().position(|id| *id == e.id));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_hears_the_others_and_never_itself() {
        let ids: Vec<String> = (0..250).map(|i| format!("vio_{i:036}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let sent = payloads("node-a", &ids);
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|p| p.len() < 8_000), "under the limit");
        let heard: Vec<&str> = sent
            .iter()
            .flat_map(|p| others("node-b", p).unwrap())
            .collect();
        assert_eq!(heard, ids, "every id, in order");
        assert!(sent.iter().all(|p| others("node-a", p).is_none()));
        assert!(payloads("node-a", &[]).is_empty());
        assert_eq!(others("node-b", "node-a"), None, "no ids");
        assert_eq!(others("node-b", ""), None);
    }

    #[test]
    fn channels_are_identifiers_per_schema() {
        assert_eq!(channel("public"), "charter_violations:public");
        let long = "s".repeat(63);
        let a = channel(&long);
        assert!(a.len() <= 63, "{a}");
        assert_ne!(a, channel(&"t".repeat(63)));
    }
}
