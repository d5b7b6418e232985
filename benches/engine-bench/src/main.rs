//! engine-bench: the same scenarios and request streams through Cedar, Rego (regorus) and a
//! hand-written Rust baseline (and, once plugged in, Charter), side by side.
//!
//! Run: `cargo run --release` (env: `BENCH_QUICK=1` for short budgets, `BENCH_MAX_POLICIES=N`
//! to stop the scaling series early). Prints Markdown for docs/benchmarks.md and writes the
//! generated policies (Charter JSON, Cedar text, Rego module and data) to `out/`.

mod bench;
mod charter;
mod engines;
mod glob;
mod heap;
mod model;
mod scenarios;

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use bench::{Config, Measured};
use engines::Engine;
use engines::baseline::Baseline;
use engines::cedar::{Cedar, CedarSliced};
use engines::charter::Charter;
use engines::rego::as_code::AsCode;
use engines::rego::as_data::AsData;
use engines::rego::{Encoding, RegoInterp, RegoRvm};
use model::{Action, Operation, Request, Workload};

const REQUESTS: usize = 8192;
/// Generated policies and the last results, beside this crate whatever the working directory.
const OUT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/out");

/// Scaling series: (policies, tenants, agents per tenant). One policy per agent.
const SCALE_STEPS: [(usize, usize); 4] = [(10, 10), (100, 10), (100, 100), (100, 1000)];

/// An engine whose compile time or decision time at the previous step, scaled linearly with the
/// number of policies, exceeds these is not run at the next step.
const MAX_PROJECTED_COMPILE: Duration = Duration::from_secs(300);
const MAX_PROJECTED_DECISION: Duration = Duration::from_millis(250);

fn main() -> Result<()> {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let cfg = if quick {
        Config {
            decide_budget: Duration::from_millis(200),
            build_budget: Duration::from_millis(100),
            max_check: Duration::from_secs(5),
        }
    } else {
        Config {
            decide_budget: Duration::from_millis(1500),
            build_budget: Duration::from_millis(500),
            max_check: Duration::from_secs(20),
        }
    };
    let max_policies: usize = match std::env::var("BENCH_MAX_POLICIES") {
        Ok(v) => v.parse().context("BENCH_MAX_POLICIES")?,
        Err(_) => usize::MAX,
    };

    print_header(&cfg);
    sanity_checks()?;
    std::fs::create_dir_all(OUT_DIR)?;

    let workloads = [
        scenarios::s1(REQUESTS),
        scenarios::s2(REQUESTS),
        scenarios::s3(REQUESTS),
        scenarios::s4("S4", 100, 10, REQUESTS),
    ];
    for w in &workloads {
        write_artifacts(w)?;
        let results = run_engines(w, &cfg, &[], 1.0)?;
        print_scenario(w, &results);
    }
    drop(workloads);

    println!("## Scaling: S4's shape from 100 to 100,000 policies\n");
    let mut rows: Vec<(usize, Vec<Measured>, Option<u64>)> = Vec::new();
    for (tenants, per_tenant) in SCALE_STEPS {
        let policies = tenants * per_tenant;
        if policies > max_policies {
            break;
        }
        let w = scenarios::s4(&format!("scale-{policies}"), tenants, per_tenant, REQUESTS);
        let prev = rows.last().map(|r| r.1.clone()).unwrap_or_default();
        let growth = rows.last().map_or(1.0, |r| policies as f64 / r.0 as f64);
        let results = run_engines(&w, &cfg, &prev, growth)?;
        drop(w);
        let hwm = bench::rss_kib("VmHWM:");
        eprintln!(
            "scale step {policies}: done; VmHWM {}",
            hwm.map_or("?".to_owned(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
        );
        rows.push((policies, results, hwm));
    }
    print_scaling(&rows);
    Ok(())
}

/// Runs every engine on one workload. The baseline goes first: its decisions are the expected
/// ones. To add Charter: `out.push(step::<Charter>(w, &expected, cfg, prev, growth)?);`.
fn run_engines(
    w: &Workload,
    cfg: &Config,
    prev: &[Measured],
    growth: f64,
) -> Result<Vec<Measured>> {
    let (base, expected) = bench::run::<Baseline>(w, None, cfg)?;
    let mut out = vec![base];
    out.push(step::<Charter>(w, &expected, cfg, prev, growth)?);
    out.push(step::<Cedar>(w, &expected, cfg, prev, growth)?);
    out.push(step::<CedarSliced>(w, &expected, cfg, prev, growth)?);
    out.push(step::<RegoInterp<AsData>>(w, &expected, cfg, prev, growth)?);
    out.push(step::<RegoRvm<AsData>>(w, &expected, cfg, prev, growth)?);
    out.push(step::<RegoInterp<AsCode>>(w, &expected, cfg, prev, growth)?);
    out.push(step::<RegoRvm<AsCode>>(w, &expected, cfg, prev, growth)?);
    Ok(out)
}

/// Runs one engine, unless its previous-step compile time projects past the limit. An engine
/// that cannot compile the scenario gets an "n/a (why)" row; a wrong decision aborts.
fn step<E: Engine>(
    w: &Workload,
    expected: &[bool],
    cfg: &Config,
    prev: &[Measured],
    growth: f64,
) -> Result<Measured> {
    // BENCH_ONLY=Charter,Cedar runs only engines whose names start with one of these (the
    // baseline always runs: it is the oracle).
    if let Ok(only) = std::env::var("BENCH_ONLY")
        && !only.split(',').any(|p| E::NAME.starts_with(p.trim()))
    {
        return Ok(Measured::not_measured(
            E::NAME,
            "not selected (BENCH_ONLY)".into(),
        ));
    }
    if let Some(p) = prev.iter().find(|m| m.engine == E::NAME) {
        let (Some(compile_ms), Some(decide_ns)) = (p.compile_ms, p.decide_ns) else {
            return Ok(Measured::not_measured(
                E::NAME,
                "skipped: not measurable at a smaller size".into(),
            ));
        };
        let compile = Duration::from_secs_f64(compile_ms * growth / 1e3);
        let decide = Duration::from_secs_f64(decide_ns * growth / 1e9);
        if compile > MAX_PROJECTED_COMPILE || decide > MAX_PROJECTED_DECISION {
            return Ok(Measured::not_measured(
                E::NAME,
                format!(
                    "skipped: projected from the previous size at ~{:.0} s to compile and ~{:.0} ms per decision",
                    compile.as_secs_f64(),
                    decide.as_secs_f64() * 1e3
                ),
            ));
        }
    }
    eprintln!("{}: {}", w.scenario.key, E::NAME);
    match bench::run::<E>(w, Some(expected), cfg) {
        Ok((m, _)) => Ok(m),
        Err(e) if e.downcast_ref::<bench::CompileFailed>().is_some() => {
            eprintln!("  {}: {e}", E::NAME);
            Ok(Measured::not_measured(E::NAME, e.to_string()))
        }
        Err(e) => Err(e),
    }
}

fn print_header(cfg: &Config) {
    let lock = include_str!("../../../Cargo.lock");
    let version = |name: &str| {
        let needle = format!("name = \"{name}\"\nversion = \"");
        lock.find(&needle)
            .and_then(|i| lock[i + needle.len()..].split('"').next())
            .unwrap_or("?")
            .to_owned()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# engine-bench results\n");
    println!(
        "cedar-policy {}, regorus {} (features std, arc, rvm); rustc 1.95 release build; \
         {cpu}, {cores} cores shared with other builds; single-threaded.",
        version("cedar-policy"),
        version("regorus"),
    );
    println!(
        "Decision = median over batches (up to {} decisions each, ~{:.1} s after warm-up) of batch time / \
         batch size, on pre-built engine requests; request build (engine-neutral request → the engine's \
         input) is timed separately. Compile = scenario → ready-to-evaluate set, including generating \
         the Cedar text / Rego data. {REQUESTS} requests per scenario; every engine's decision on every \
         request is checked against the baseline before timing.\n",
        1000,
        cfg.decide_budget.as_secs_f64()
    );
}

fn fmt_ns(ns: Option<f64>) -> String {
    match ns {
        None => "n/a".to_owned(),
        Some(v) if v < 10.0 => format!("{v:.1}"),
        Some(v) => group_thousands(v.round() as u64),
    }
}

fn fmt_ms(ms: Option<f64>) -> String {
    match ms {
        None => "n/a".to_owned(),
        Some(v) if v < 1.0 => format!("{v:.3}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => group_thousands(v.round() as u64),
    }
}

fn fmt_mib(mib: Option<f64>) -> String {
    match mib {
        None => "n/a".to_owned(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn group_thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(m: &Measured, base: &Measured) -> String {
    match (m.decide_ns, base.decide_ns) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        _ => "n/a".to_owned(),
    }
}

fn print_scenario(w: &Workload, results: &[Measured]) {
    let n = w.requests.len();
    let base = &results[0];
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", w.scenario.title);
    let allowed = allowed_share(w);
    let _ = writeln!(
        out,
        "{n} requests, {:.1}% allowed. Every engine below made the baseline's decision on every checked request.\n",
        allowed * 100.0
    );
    let _ = writeln!(
        out,
        "| engine | decision, median (ns) | vs baseline | request build (ns) | compile (ms) | heap held by compiled set (MiB) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for m in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            m.engine,
            fmt_ns(m.decide_ns),
            ratio(m, base),
            fmt_ns(m.build_ns),
            fmt_ms(m.compile_ms),
            fmt_mib(m.heap_mib),
        );
    }
    let _ = writeln!(out);
    let charter = results.iter().find(|m| m.engine == Charter::NAME);
    for family in ["Cedar", "regorus"] {
        if let Some(best) = fastest(results, family) {
            let _ = writeln!(
                out,
                "- fastest {family}: {} ns ({}), {} the baseline",
                fmt_ns(best.decide_ns),
                best.engine,
                ratio(best, base)
            );
            if let Some((c, b)) = charter.and_then(|c| Some((c.decide_ns?, best.decide_ns?))) {
                let _ = writeln!(
                    out,
                    "- Charter/{family} = {:.3} (Charter {:.1}× faster than {family}'s fastest mode)",
                    c / b,
                    b / c
                );
            }
        }
    }
    for m in results.iter().filter(|m| m.note.is_some()) {
        let _ = writeln!(out, "- {}: {}", m.engine, m.note.as_deref().unwrap_or(""));
    }
    println!("{out}");
}

/// The fastest measured engine whose name starts with `family`.
fn fastest<'a>(results: &'a [Measured], family: &str) -> Option<&'a Measured> {
    results
        .iter()
        .filter(|m| m.engine.starts_with(family) && m.decide_ns.is_some())
        .min_by(|a, b| {
            a.decide_ns
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.decide_ns.unwrap_or(f64::INFINITY))
        })
}

fn allowed_share(w: &Workload) -> f64 {
    // Recomputed with the baseline so the figure does not depend on any engine under test.
    match Baseline::compile(&w.scenario) {
        Ok(set) => {
            let allowed = w
                .requests
                .iter()
                .filter(|r| Baseline::decide(&set, r).unwrap_or(false))
                .count();
            allowed as f64 / w.requests.len().max(1) as f64
        }
        Err(_) => f64::NAN,
    }
}

fn print_scaling(rows: &[(usize, Vec<Measured>, Option<u64>)]) {
    let Some((_, first, _)) = rows.first() else {
        return;
    };
    let names: Vec<&str> = first.iter().map(|m| m.engine).collect();
    let header = |unit: &str| {
        let mut h = format!(
            "| policies | {} |\n|---:|",
            names
                .iter()
                .map(|n| format!("{n} {unit}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        h.push_str(&"---:|".repeat(names.len()));
        h
    };
    println!(
        "Decision, median ns (request build excluded):\n\n{}",
        header("(ns)")
    );
    for (policies, ms, _) in rows {
        let cells: Vec<String> = ms.iter().map(|m| fmt_ns(m.decide_ns)).collect();
        println!(
            "| {} | {} |",
            group_thousands(*policies as u64),
            cells.join(" | ")
        );
    }
    println!("\nCompile, ms:\n\n{}", header("(ms)"));
    for (policies, ms, _) in rows {
        let cells: Vec<String> = ms.iter().map(|m| fmt_ms(m.compile_ms)).collect();
        println!(
            "| {} | {} |",
            group_thousands(*policies as u64),
            cells.join(" | ")
        );
    }
    println!(
        "\nMemory (MiB): heap held by each engine's compiled set, in brackets the peak heap while \
         compiling it; and the process peak RSS (VmHWM) after the step:\n"
    );
    println!(
        "| policies | {} | VmHWM after step (MiB) |\n|---:|{}---:|",
        names.join(" | "),
        "---:|".repeat(names.len())
    );
    for (policies, ms, hwm) in rows {
        let cells: Vec<String> = ms
            .iter()
            .map(|m| match m.peak_heap_mib {
                Some(_) => format!("{} ({})", fmt_mib(m.heap_mib), fmt_mib(m.peak_heap_mib)),
                None => "n/a".to_owned(),
            })
            .collect();
        println!(
            "| {} | {} | {} |",
            group_thousands(*policies as u64),
            cells.join(" | "),
            hwm.map_or("?".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0))
        );
    }
    let charter_at = |policies: usize| {
        rows.iter()
            .find(|(p, _, _)| *p == policies)
            .and_then(|(_, ms, _)| ms.iter().find(|m| m.engine == Charter::NAME))
    };
    if let (Some(small), Some(large)) = (charter_at(100), charter_at(100_000)) {
        if let (Some(a), Some(b)) = (small.decide_ns, large.decide_ns) {
            println!("\n- Charter at 100,000 policies / at 100: {:.2}×", b / a);
        }
        if let Some(mib) = large.heap_mib {
            println!(
                "- Charter's compiled set at 100,000 policies: {:.0} bytes per policy",
                mib * 1024.0 * 1024.0 / 100_000.0
            );
        }
    }
    let notes: Vec<String> = rows
        .iter()
        .flat_map(|(p, ms, _)| {
            ms.iter().filter_map(move |m| {
                m.note
                    .as_ref()
                    .map(|n| format!("- {} at {}: {n}", m.engine, group_thousands(*p as u64)))
            })
        })
        .collect();
    if !notes.is_empty() {
        println!("\n{}", notes.join("\n"));
    }
    println!();
}

fn write_artifacts(w: &Workload) -> Result<()> {
    let key = &w.scenario.key;
    let docs = charter::charter_policies(&w.scenario);
    std::fs::write(
        format!("{OUT_DIR}/{key}.charter.json"),
        serde_json::to_string_pretty(&docs)?,
    )?;
    std::fs::write(
        format!("{OUT_DIR}/{key}.cedar"),
        engines::cedar::policy_set_text(&w.scenario)?.0,
    )?;
    let rego = AsData::encode(&w.scenario)?;
    std::fs::write(format!("{OUT_DIR}/{key}.as-data.rego"), rego.module)?;
    std::fs::write(
        format!("{OUT_DIR}/{key}.as-data.json"),
        serde_json::to_string_pretty(&rego.data)?,
    )?;
    std::fs::write(
        format!("{OUT_DIR}/{key}.as-code.rego"),
        AsCode::encode(&w.scenario)?.module,
    )?;
    Ok(())
}

/// Hand-verified expectations for the baseline (the oracle the other engines are checked against).
fn sanity_checks() -> Result<()> {
    use serde_json::json;
    let tool = |agent: &str, tool: &str, args: serde_json::Value| Request {
        tenant: "t1".into(),
        agent: agent.into(),
        action: Action::ToolCall {
            tool: tool.into(),
            args,
        },
    };
    let data = |resource: &str, operation| Request {
        tenant: "t1".into(),
        agent: "a1".into(),
        action: Action::DataAccess {
            resource: resource.into(),
            operation,
        },
    };
    let cases: Vec<(Workload, Vec<(Request, bool)>)> = vec![
        (
            scenarios::s1(1),
            vec![
                (tool("a1", "kb.search", json!({})), true),
                (tool("a1", "kb.search_v2", json!({})), false),
                (tool("a1", "KB.search", json!({})), false),
                (tool("a1", "crm.lookup_customer.raw", json!({})), false),
                (tool("a2", "shell.exec", json!({})), true),
            ],
        ),
        (
            scenarios::s2(1),
            vec![
                (
                    tool("a1", "gmail.send_email", json!({"to": "x@acme.com"})),
                    true,
                ),
                (
                    tool("a1", "gmail.send_email", json!({"to": "x@gmail.com"})),
                    false,
                ),
                (
                    tool("a1", "outlook.send_email", json!({"to": "x@ACME.COM"})),
                    false,
                ),
                (
                    tool("a1", "corp.gmail.send_email", json!({"to": "x@gmail.com"})),
                    true,
                ),
                (
                    tool("a1", "gmail.send_email", json!({"subject": "no recipient"})),
                    true,
                ),
                (tool("a1", "gmail.send_email", json!({"to": 42})), false),
            ],
        ),
        (
            scenarios::s3(1),
            vec![
                (data("crm/customers/42/ssn", Operation::Read), false),
                (data("crm/customers/42/ssn", Operation::Write), true),
                (data("crm/customers/42/notes/ssn", Operation::Read), true),
                (data("hr", Operation::Read), false),
                (data("hr", Operation::Write), false),
                (data("hrx/notes/1", Operation::Read), false),
                (data("kb", Operation::Delete), true),
                (data("crm", Operation::Read), true),
            ],
        ),
    ];
    for (w, checks) in cases {
        let set = Baseline::compile(&w.scenario)?;
        for (r, want) in checks {
            if Baseline::decide(&set, &r)? != want {
                bail!(
                    "baseline sanity check failed: {} should be {}",
                    r.summary(),
                    if want { "allowed" } else { "blocked" }
                );
            }
        }
    }
    Ok(())
}
