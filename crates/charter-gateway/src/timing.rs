//! Where a `tools/call`'s time goes inside the gateway, for `scripts/bench-gateway`.
//!
//! With `CHARTER_GATEWAY_TIMINGS=FILE` in its environment, the gateway appends one JSON line per
//! `tools/call` to `FILE`: the stages of the call on a monotonic clock, in microseconds after the
//! request was read from the agent, and what they add up to:
//!
//! ```json
//! {"total_us": 410.2, "charter_us": 251.0, "upstream_us": 120.4, "own_us": 38.8,
//!  "stages": [["check_sent", 9.1], ["check_answered", 140.3], ["forwarded", 152.0], ...]}
//! ```
//!
//! `total_us` runs from the request read to the response written (over HTTP: handed to the
//! request's event stream); `charter_us` is the time spent awaiting Charter's answers (from each
//! check sent by the gateway's client to its answer parsed), `upstream_us` from the call written
//! to the upstream to its answer read; `own_us` is the rest, the gateway's own work. Unset,
//! nothing is timed or written: each call pays one branch.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The environment variable naming the file the timings are appended to.
pub const ENV: &str = "CHARTER_GATEWAY_TIMINGS";

static SINK: OnceLock<Option<Mutex<File>>> = OnceLock::new();

fn sink() -> Option<&'static Mutex<File>> {
    SINK.get_or_init(|| {
        let path = std::env::var_os(ENV)?;
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => Some(Mutex::new(file)),
            Err(e) => {
                tracing::warn!("{ENV}: cannot open {}: {e}", path.to_string_lossy());
                None
            }
        }
    })
    .as_ref()
}

/// The time now when timings are on.
pub fn now() -> Option<Instant> {
    sink().map(|_| Instant::now())
}

/// The stages of one call so far.
#[derive(Debug)]
pub struct CallTimes {
    read: Instant,
    stages: Vec<(&'static str, Instant)>,
}

/// A stage that starts a wait on Charter, and the one that ends it.
const CHARTER_WAITS: [(&str, &str); 2] = [
    ("check_sent", "check_answered"),
    ("output_sent", "output_answered"),
];
/// The stages around the wait on the upstream.
const UPSTREAM_WAIT: (&str, &str) = ("forwarded", "upstream_read");

impl CallTimes {
    /// A call read at `read` (from [`now`]); `None` when timings are off.
    pub fn start(read: Option<Instant>) -> Option<CallTimes> {
        read.map(|read| CallTimes {
            read,
            stages: Vec::with_capacity(10),
        })
    }

    /// Records that `stage` happens now.
    pub fn mark(times: &mut Option<CallTimes>, stage: &'static str) {
        if let Some(times) = times {
            times.stages.push((stage, Instant::now()));
        }
    }

    /// Records that `stage` happened `at`.
    pub fn mark_at(times: &mut Option<CallTimes>, stage: &'static str, at: Option<Instant>) {
        if let (Some(times), Some(at)) = (times, at) {
            times.stages.push((stage, at));
        }
    }

    /// Appends the call's line to the timings file.
    pub fn finish(times: Option<CallTimes>) {
        let (Some(times), Some(sink)) = (times, sink()) else {
            return;
        };
        let line = times.line();
        let mut file = crate::lock(sink);
        let _ = file.write_all(line.as_bytes());
    }

    fn micros(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.read).as_secs_f64() * 1e6
    }

    /// The sum of the spans from each `start` stage to the next `end` stage.
    fn waits(&self, start: &str, end: &str) -> f64 {
        let mut sum = 0.0;
        let mut since = None;
        for (stage, at) in &self.stages {
            if *stage == start {
                since = Some(*at);
            } else if *stage == end
                && let Some(since) = since.take()
            {
                sum += at.saturating_duration_since(since).as_secs_f64() * 1e6;
            }
        }
        sum
    }

    fn line(&self) -> String {
        let total = self.stages.last().map_or(0.0, |(_, at)| self.micros(*at));
        let charter: f64 = CHARTER_WAITS.iter().map(|(s, e)| self.waits(s, e)).sum();
        let upstream = self.waits(UPSTREAM_WAIT.0, UPSTREAM_WAIT.1);
        let mut line = format!(
            "{{\"total_us\":{total:.1},\"charter_us\":{charter:.1},\"upstream_us\":{upstream:.1},\"own_us\":{:.1},\"stages\":[",
            total - charter - upstream
        );
        for (i, (stage, at)) in self.stages.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(line, "{comma}[\"{stage}\",{:.1}]", self.micros(*at));
        }
        line.push_str("]}\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn own_work_is_the_total_less_the_waits() {
        let read = Instant::now();
        let at = |us: u64| read + Duration::from_micros(us);
        let times = CallTimes {
            read,
            stages: vec![
                ("check_sent", at(10)),
                ("check_answered", at(110)),
                ("forwarded", at(120)),
                ("upstream_read", at(320)),
                ("output_sent", at(330)),
                ("output_answered", at(400)),
                ("output_sent", at(405)),
                ("output_answered", at(455)),
                ("written", at(470)),
            ],
        };
        let line: serde_json::Value = serde_json::from_str(&times.line()).unwrap();
        assert_eq!(line["total_us"], 470.0);
        assert_eq!(line["charter_us"], 220.0);
        assert_eq!(line["upstream_us"], 200.0);
        assert_eq!(line["own_us"], 50.0);
        assert_eq!(
            line["stages"][3],
            serde_json::json!(["upstream_read", 320.0])
        );
    }
}
