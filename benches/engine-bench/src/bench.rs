//! The measuring harness: compile, build requests, check agreement, time decisions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::engines::Engine;
use crate::model::Workload;

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Timed phase of the decision measurement, per engine and scenario.
    pub decide_budget: Duration,
    /// Timed phase of the request-build measurement.
    pub build_budget: Duration,
    /// Above this projected time, the agreement check covers only a prefix of the stream.
    pub max_check: Duration,
}

/// Batches of 1,000 decisions (fewer when one decision takes over 10 µs, so that a batch stays
/// around 10 ms); at least this many batches are timed.
const MIN_BATCHES: usize = 11;
const MAX_BATCHES: usize = 4001;
const MAX_BATCH: usize = 1000;
const MIB: f64 = 1024.0 * 1024.0;

/// The engine could not build the scenario's policy set (a limit of the engine, say): reported
/// as "n/a", unlike a wrong decision, which aborts the run.
#[derive(Debug)]
pub struct CompileFailed(pub String);

impl std::fmt::Display for CompileFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not compile: {}", self.0)
    }
}

impl std::error::Error for CompileFailed {}

#[derive(Clone, Debug)]
pub struct Measured {
    pub engine: &'static str,
    /// `None`: not measured, with the reason in `note`.
    pub decide_ns: Option<f64>,
    pub build_ns: Option<f64>,
    pub compile_ms: Option<f64>,
    /// Net heap bytes allocated by `compile` and still held by the compiled set, in MiB.
    pub heap_mib: Option<f64>,
    /// The most heap `compile` had allocated at once, in MiB.
    pub peak_heap_mib: Option<f64>,
    pub note: Option<String>,
}

impl Measured {
    pub fn not_measured(engine: &'static str, why: String) -> Measured {
        Measured {
            engine,
            decide_ns: None,
            build_ns: None,
            compile_ms: None,
            heap_mib: None,
            peak_heap_mib: None,
            note: Some(why),
        }
    }
}

/// Median over timed batches of (batch time / batch size), after a warm-up.
fn median_ns_per_op(
    n_items: usize,
    est_ns: f64,
    budget: Duration,
    mut op: impl FnMut(usize) -> Result<()>,
) -> Result<(f64, usize)> {
    let batch = ((10_000_000.0 / est_ns.max(1.0)).ceil() as usize).clamp(1, MAX_BATCH);
    let mut idx = 0usize;
    let mut run_batch = |idx: &mut usize| -> Result<f64> {
        let t = Instant::now();
        for _ in 0..batch {
            op(*idx)?;
            *idx += 1;
            if *idx == n_items {
                *idx = 0;
            }
        }
        Ok(t.elapsed().as_nanos() as f64 / batch as f64)
    };
    let warm_up = Instant::now();
    while warm_up.elapsed() < budget / 10 {
        run_batch(&mut idx)?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while (start.elapsed() < budget || times.len() < MIN_BATCHES) && times.len() < MAX_BATCHES {
        times.push(run_batch(&mut idx)?);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], batch))
}

/// Compile, build every request, check the decisions against `expected` (the baseline's), and
/// time. Returns the measurement and the decisions on the checked prefix of the stream.
pub fn run<E: Engine>(
    w: &Workload,
    expected: Option<&[bool]>,
    cfg: &Config,
) -> Result<(Measured, Vec<bool>)> {
    let n = w.requests.len();
    let t = Instant::now();
    let (compiled, heap) = crate::heap::measure(|| E::compile(&w.scenario));
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let compiled = compiled.map_err(|e| anyhow::Error::new(CompileFailed(e.to_string())))?;

    let t = Instant::now();
    let inputs = w
        .requests
        .iter()
        .map(|r| E::prepare(&compiled, r))
        .collect::<Result<Vec<_>>>()?;
    let build_est = t.elapsed().as_nanos() as f64 / n as f64;

    // Agreement check (doubles as the first warm-up). A slow engine checks a prefix only.
    let probe = n.min(16);
    let t = Instant::now();
    let mut decisions = Vec::with_capacity(n);
    for input in &inputs[..probe] {
        decisions.push(E::decide(&compiled, input)?);
    }
    let est_ns = t.elapsed().as_nanos() as f64 / probe as f64;
    let affordable = (cfg.max_check.as_nanos() as f64 / est_ns.max(1.0)) as usize;
    let checked = n.min(affordable.max(100));
    for input in &inputs[probe..checked] {
        decisions.push(E::decide(&compiled, input)?);
    }
    if let Some(expected) = expected {
        for (i, (got, want)) in decisions.iter().zip(expected).enumerate() {
            if got != want {
                bail!(
                    "{} disagrees with the baseline on request #{i} ({}): {} vs baseline {}",
                    E::NAME,
                    w.requests[i].summary(),
                    verdict(*got),
                    verdict(*want)
                );
            }
        }
    }

    let (decide_ns, batch) = median_ns_per_op(n, est_ns, cfg.decide_budget, |i| {
        black_box(E::decide(&compiled, black_box(&inputs[i]))?);
        Ok(())
    })?;
    let (build_ns, _) = median_ns_per_op(n, build_est, cfg.build_budget, |i| {
        black_box(E::prepare(&compiled, black_box(&w.requests[i]))?);
        Ok(())
    })?;
    drop(inputs);
    drop(compiled);
    let mut notes = Vec::new();
    if checked < n {
        notes.push(format!(
            "agreement checked on the first {checked} of {n} requests"
        ));
    }
    if batch < MAX_BATCH {
        notes.push(format!("timed in batches of {batch} decisions"));
    }

    Ok((
        Measured {
            engine: E::NAME,
            decide_ns: Some(decide_ns),
            build_ns: Some(build_ns),
            compile_ms: Some(compile_ms),
            heap_mib: Some(heap.retained as f64 / MIB),
            peak_heap_mib: Some(heap.peak as f64 / MIB),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        },
        decisions,
    ))
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "block" }
}

/// A field of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`).
pub fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
