//! Retention in a running server: a task that runs a pruning pass (`Store::prune`) shortly
//! after start and then at an interval, beside the checks (each batch of a pass is a short
//! transaction of its own), until shutdown.

use std::sync::Arc;
use std::time::Duration;

use charter_store::{HeldBack, Pass, Retention, Store};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::state::Clock;

/// The longest pause between passes.
const MOST: Duration = Duration::from_mins(5);
/// The shortest.
const LEAST: Duration = Duration::from_secs(1);

/// How often to prune: a quarter of the shortest retention, so nothing outlives its retention
/// by more than a quarter of it (plus a pass), within [`LEAST`] and [`MOST`].
fn every(retention: &Retention) -> Duration {
    [retention.actions, retention.violations, retention.audit]
        .into_iter()
        .flatten()
        .map(|kept| kept.unsigned_abs() / 4)
        .min()
        .map_or(MOST, |d| d.clamp(LEAST, MOST))
}

/// Starts the pruning task, unless `retention` keeps everything. Aborting it (at shutdown)
/// abandons at most the transaction of one batch, which then changes nothing.
pub(crate) fn spawn(
    store: Store,
    retention: Retention,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
) -> Option<JoinHandle<()>> {
    if !retention.removes_anything() {
        return None;
    }
    let every = every(&retention);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + every.min(Duration::from_secs(10)),
            every,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut told = None;
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            match store.prune(&retention, clock.now()).await {
                Ok(Pass { pruned, held_back }) => {
                    tell_held_back(held_back.as_ref(), &mut told);
                    metrics.observe_pruned(&pruned);
                    if pruned != charter_store::Pruned::default() {
                        tracing::info!(
                            runs = pruned.runs,
                            actions = pruned.actions,
                            violations = pruned.violations,
                            audit_entries = pruned.audit_entries,
                            seconds = started.elapsed().as_secs_f64(),
                            "pruned"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pruning"),
            }
        }
    }))
}

/// Says which rule holds the actions' cutoff back: once when a rule starts or stops holding it
/// (a month's cost cap holds it for the rest of the month, passes every few minutes).
fn tell_held_back(held_back: Option<&HeldBack>, told: &mut Option<(String, String)>) {
    let holder = held_back.map(|held| (held.policy_id.clone(), held.rule_id.clone()));
    if holder == *told {
        return;
    }
    if let Some(held) = held_back {
        tracing::info!(
            kept_from = %held.from,
            policy = %held.policy_id,
            name = %held.policy_name,
            version = held.version,
            rule = %held.rule_id,
            "retention keeps older runs: an open window of this rule may still count them"
        );
    } else {
        tracing::info!("retention no longer held back by a rule's open window");
    }
    *told = holder;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use charter_store::Retention;
    use jiff::SignedDuration;

    #[test]
    fn prunes_at_a_quarter_of_the_shortest_retention_within_bounds() {
        let days = |d: i64| Some(SignedDuration::from_hours(24 * d));
        assert_eq!(super::every(&Retention::default()), super::MOST);
        let r = Retention {
            actions: days(90),
            violations: days(30),
            audit: None,
        };
        assert_eq!(super::every(&r), super::MOST);
        let r = Retention {
            actions: Some(SignedDuration::from_secs(2)),
            ..Retention::default()
        };
        assert_eq!(super::every(&r), super::LEAST);
        let r = Retention {
            audit: Some(SignedDuration::from_secs(60)),
            ..Retention::default()
        };
        assert_eq!(super::every(&r), Duration::from_secs(15));
    }
}
