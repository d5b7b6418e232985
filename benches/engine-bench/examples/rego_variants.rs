//! Experiment: how fast can regorus decide S1-like requests with different Rego formulations?
//! `cargo run --release --example rego_variants [--features rego-regex]`
use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::RegoVM;

const TOOLS: [&str; 4] = [
    "kb.search",
    "crm.lookup_customer",
    "tickets.create",
    "jira.search",
];

fn bench(name: &str, module: &str, data: &str, entry: &str) -> Result<()> {
    let mut engine = regorus::Engine::new();
    engine.add_policy("p.rego".into(), module.into())?;
    let data = regorus::Value::from_json_str(data)?;
    engine.add_data(data.clone())?;
    let compiled = engine.compile_with_entrypoint(&entry.into())?;
    let program = Compiler::compile_from_policy(&compiled, &[entry])?;
    let mut vm = RegoVM::new();
    vm.load_program(program);
    vm.set_data(data)?;
    let inputs: Vec<regorus::Value> = (0..64)
        .map(|i| {
            let tool = if i % 2 == 0 { TOOLS[i % 4] } else { "shell.exec" };
            regorus::Value::from_json_str(&format!(
                r#"{{"tenant":"t1","agent":"a1","kind":"tool","tool":"{tool}","args":{{"query":"x","limit":10}}}}"#
            ))
        })
        .collect::<Result<_>>()?;
    for (mode, f) in [("rvm", 0), ("interp", 1), ("compiled.eval_with_input", 2)] {
        let n = 20_000;
        let mut allowed = 0;
        let t = Instant::now();
        for i in 0..n {
            let input = inputs[i % inputs.len()].clone();
            let v = match f {
                0 => {
                    vm.set_input(input);
                    vm.execute()?
                }
                1 => {
                    engine.set_input(input);
                    engine.eval_rule(entry.to_owned())?
                }
                _ => compiled.eval_with_input(input)?,
            };
            if v == regorus::Value::Bool(true) {
                allowed += 1;
            }
            black_box(&v);
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{name:40} {mode:26} {ns:>9.0} ns  allowed {allowed}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let set: String = TOOLS
        .iter()
        .map(|t| format!("\"{t}\": true"))
        .collect::<Vec<_>>()
        .join(",");
    let list: String = TOOLS
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(",");
    let data_set = format!(r#"{{"allowed": {{{set}}}}}"#);
    bench(
        "floor: allow if data.allowed[input.tool]",
        "package p\nimport rego.v1\ndefault allow := false\nallow if data.allowed[input.tool]\n",
        &data_set,
        "data.p.allow",
    )?;
    bench(
        "scoped, not-violated, data set",
        "package p\nimport rego.v1\ndefault allow := false\nallow if not violated\nviolated if {\n input.tenant == \"t1\"\n input.agent == \"a1\"\n input.kind == \"tool\"\n not data.allowed[input.tool]\n}\n",
        &data_set,
        "data.p.allow",
    )?;
    bench(
        "scoped, not-violated, inline set",
        &format!(
            "package p\nimport rego.v1\ndefault allow := false\nallow if not violated\nviolated if {{\n input.tenant == \"t1\"\n input.agent == \"a1\"\n input.kind == \"tool\"\n not input.tool in {{{list}}}\n}}\n"
        ),
        "{}",
        "data.p.allow",
    )?;
    bench(
        "data-driven per agent, flat fields",
        "package p\nimport rego.v1\ndefault allow := false\nallow if not violated\np := data.agents[input.tenant][input.agent]\nviolated if {\n input.kind == \"tool\"\n some r in p\n r.effect == \"allow\"\n not r.exact[input.tool]\n}\n",
        &format!(r#"{{"agents": {{"t1": {{"a1": [{{"effect":"allow","exact":{{{set}}}}}]}}}}}}"#),
        "data.p.allow",
    )?;
    if cfg!(feature = "rego-regex") {
        regex_variants()?;
    } else {
        println!("(regex.match variants skipped: they need --features rego-regex)");
    }
    bench(
        "floor: string builtins one glob",
        "package p\nimport rego.v1\ndefault allow := false\nallow if { startswith(input.tool, \"kb.\"); mid := substring(input.tool, 3, -1); not contains(mid, \".\"); not contains(mid, \"/\") }\n",
        "{}",
        "data.p.allow",
    )?;
    bench(
        "flat per-agent data, no iteration",
        "package p\nimport rego.v1\ndefault allow := false\nallow if not violated\np := data.agents[input.tenant][input.agent]\nviolated if {\n input.kind == \"tool\"\n p.ta\n not p.ta.e[input.tool]\n}\n",
        &format!(r#"{{"agents": {{"t1": {{"a1": {{"ta": {{"e": {{{set}}}, "r": []}}}}}}}}}}"#),
        "data.p.allow",
    )?;
    bench(
        "flat per-agent data, inline lookup, no rule p",
        "package q\nimport rego.v1\ndefault allow := false\nallow if not violated\nviolated if {\n input.kind == \"tool\"\n a := data.agents[input.tenant][input.agent].ta\n not a.e[input.tool]\n}\n",
        &format!(r#"{{"agents": {{"t1": {{"a1": {{"ta": {{"e": {{{set}}}, "r": []}}}}}}}}}}"#),
        "data.q.allow",
    )?;
    bench(
        "flat, rule named agent_rules",
        "package q\nimport rego.v1\ndefault allow := false\nallow if not violated\nagent_rules := data.agents[input.tenant][input.agent]\nviolated if {\n input.kind == \"tool\"\n not agent_rules.ta.e[input.tool]\n}\n",
        &format!(r#"{{"agents": {{"t1": {{"a1": {{"ta": {{"e": {{{set}}}, "r": []}}}}}}}}}}"#),
        "data.q.allow",
    )?;
    Ok(())
}

fn regex_variants() -> Result<()> {
    bench(
        "floor: regex.match one glob",
        "package p\nimport rego.v1\ndefault allow := false\nallow if regex.match(`^kb\\.[^./]*$`, input.tool)\n",
        "{}",
        "data.p.allow",
    )?;
    bench(
        "floor: regex from data, some re in",
        "package p\nimport rego.v1\ndefault allow := false\nallow if { some re in data.rs; regex.match(re, input.tool) }\n",
        r#"{"rs": ["^kb\\.[^./]*$"]}"#,
        "data.p.allow",
    )?;
    Ok(())
}
