//! The MCP gateway's readers of outside input. The input is UTF-8 text cut at NUL bytes into
//! parts (the first 12 are used); each part is read as a configuration file (`Config::parse`),
//! an upstream's name, an HTTP upstream's event stream (`sse::Decoder`), and, when it is JSON,
//! as a tool result (`output::pieces`), a decision to refuse with (`refusal`), policies read
//! from Charter (`ToolFilter`), upstreams' `initialize` results (`merge_initialize`) and
//! upstreams' lists (`Catalog`: an array of `{"resources": [...], "templates": [...]}`). The
//! first part, cut at commas, names the upstreams of the wire names; the parts are the tools,
//! URIs and templates.
//!
//! Properties: a wire name maps back to the upstream and tool it was made of, and a wire name
//! that maps to a tool is that tool's wire name; a template without `{` matches exactly
//! itself; a URI made by putting any text in a template's expressions matches it; a URI that
//! exactly one upstream listed goes to it; an event stream gives the same events however it
//! is cut into chunks; nothing panics.
#![no_main]

use charter_gateway::Config;
use charter_gateway::filter::ToolFilter;
use charter_gateway::names::{Names, check_server_name};
use charter_gateway::output::pieces;
use charter_gateway::refusal::{self, Refused};
use charter_gateway::routing::{Catalog, Route, template_matches};
use charter_gateway::session::merge_initialize;
use charter_gateway::sse::Decoder;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<&str> = text.split('\0').take(12).collect();
    for part in &parts {
        config(part, &parts);
        let _ = check_server_name(part);
        events(part);
        if let Ok(value) = serde_json::from_str::<Value>(part) {
            json(&value, &parts);
        }
    }
    names(&parts);
    for template in &parts {
        for uri in &parts {
            let matched = template_matches(template, uri);
            if !template.contains('{') {
                assert_eq!(matched, template == uri, "{template:?} {uri:?}");
            }
        }
        let uri = substituted(template, &parts);
        assert!(template_matches(template, &uri), "{template:?} {uri:?}");
    }
});

/// An accepted configuration names valid, distinct upstreams, each reached somehow.
fn config(text: &str, parts: &[&str]) {
    let Ok(config) = Config::parse(text) else {
        return;
    };
    assert!(!config.upstreams.is_empty());
    let _ = config.front.idle_timeout();
    let mut seen = std::collections::BTreeSet::new();
    for upstream in &config.upstreams {
        assert!(
            check_server_name(&upstream.name).is_ok(),
            "{:?}",
            upstream.name
        );
        assert!(seen.insert(upstream.name.clone()), "{:?}", upstream.name);
        let _ = upstream.transport();
    }
    let names = Names::new(config.upstreams.iter().map(|u| u.name.clone()).collect());
    round_trips(&names, config.upstreams.len(), parts);
}

/// The upstreams named by the first part (its valid, distinct comma-separated names).
fn names(parts: &[&str]) {
    let Some(first) = parts.first() else {
        return;
    };
    let mut servers: Vec<String> = Vec::new();
    for name in first.split(',') {
        if check_server_name(name).is_ok() && !servers.iter().any(|s| s == name) {
            servers.push(name.to_owned());
        }
    }
    if servers.is_empty() {
        return;
    }
    let count = servers.len();
    round_trips(&Names::new(servers), count, parts);
}

/// Every part as a tool of every upstream, and as a wire name.
fn round_trips(names: &Names, upstreams: usize, parts: &[&str]) {
    for upstream in 0..upstreams {
        for tool in parts {
            let wire = names.to_wire(upstream, tool);
            if !names.prefixed() || !tool.is_empty() {
                assert_eq!(names.from_wire(&wire), Some((upstream, *tool)), "{wire:?}");
            }
            assert_eq!(
                names.to_charter(upstream, tool),
                format!("{}.{tool}", names.server(upstream))
            );
        }
    }
    for wire in parts {
        if let Some((upstream, tool)) = names.from_wire(wire) {
            assert!(upstream < upstreams);
            assert_eq!(names.to_wire(upstream, tool), *wire);
        }
    }
}

/// One JSON part as a tool result, a decision, policies and upstreams' lists.
fn json(value: &Value, parts: &[&str]) {
    let found = pieces(value);
    for (i, piece) in found.iter().enumerate() {
        assert!(!piece.is_empty());
        assert!(!found[..i].contains(piece));
    }
    for tool in parts.iter().take(2) {
        for refused in [Refused::Call, Refused::Output] {
            let text = refusal::text(value, tool, refused);
            assert!(text.starts_with("Charter "));
            let result = refusal::result(value, tool, refused, true);
            assert_eq!(result["isError"], true);
            assert_eq!(result["content"][0]["text"], text.as_str());
        }
    }
    let filter = match value {
        Value::Array(policies) => ToolFilter::from_policies(policies),
        policy => ToolFilter::from_policies([policy]),
    };
    for tool in parts {
        let _ = filter.hides(tool);
    }
    if let Value::Array(upstreams) = value {
        catalog(upstreams, parts);
        let results: Vec<&Value> = upstreams.iter().collect();
        let merged = merge_initialize(&results);
        assert!(merged["capabilities"].is_object());
        assert_eq!(
            merged["protocolVersion"],
            upstreams
                .first()
                .map_or(Value::Null, |r| r["protocolVersion"].clone())
        );
    }
}

/// Upstreams' lists, each `{"resources": [...], "templates": [...]}`; every part and the first
/// listed URIs are routed (all of them would make long inputs quadratic).
fn catalog(upstreams: &[Value], parts: &[&str]) {
    let upstreams = &upstreams[..upstreams.len().min(4)];
    let mut catalog = Catalog::new(upstreams.len());
    let mut listed: Vec<Vec<String>> = Vec::new();
    for (i, lists) in upstreams.iter().enumerate() {
        let resources = array(&lists["resources"]);
        let templates = array(&lists["templates"]);
        catalog.set_resources(i, resources);
        catalog.set_templates(i, templates);
        listed.push(
            resources
                .iter()
                .filter_map(|r| r["uri"].as_str())
                .chain(templates.iter().filter_map(|t| t["uriTemplate"].as_str()))
                .map(str::to_owned)
                .collect(),
        );
    }
    let uris = parts
        .iter()
        .map(|p| (*p).to_owned())
        .chain(listed.iter().flatten().take(64).cloned());
    for uri in uris {
        match catalog.route(&uri) {
            Route::One(i) => assert!(i < upstreams.len()),
            Route::Ambiguous(owners) => {
                assert!(owners.len() >= 2);
                assert!(owners.windows(2).all(|w| w[0] < w[1]));
                assert!(owners.iter().all(|&i| i < upstreams.len()));
            }
            Route::Unknown => {}
        }
        let owners: Vec<usize> = (0..listed.len())
            .filter(|&i| listed[i].contains(&uri))
            .collect();
        if let [one] = owners.as_slice() {
            assert_eq!(catalog.route(&uri), Route::One(*one), "{uri:?}");
        }
    }
}

/// The events of `stream` fed whole, and fed in two chunks cut at about 16 character
/// boundaries spread over it (every boundary would make long inputs quadratic), then a blank
/// line to end the last event.
fn events(stream: &str) {
    let bytes = stream.as_bytes();
    let mut whole = Decoder::default();
    let mut expected = whole.feed(bytes);
    expected.extend(whole.feed(b"\n\n"));
    let step = (bytes.len() / 16).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        let mut decoder = Decoder::default();
        let mut got = decoder.feed(&bytes[..cut]);
        got.extend(decoder.feed(&bytes[cut..]));
        got.extend(decoder.feed(b"\n\n"));
        assert_eq!(got, expected, "cut at {cut}");
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// `template` with the parts, in turn, put in its expressions (each `{` up to the next `}`);
/// a template with a `{` left open has no expressions and stands for itself.
fn substituted(template: &str, parts: &[&str]) -> String {
    let mut uri = String::new();
    let mut rest = template;
    let mut fills = parts.iter().cycle();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return template.to_owned();
        };
        uri.push_str(&rest[..open]);
        uri.push_str(fills.next().copied().unwrap_or_default());
        rest = &rest[open + close + 1..];
    }
    uri.push_str(rest);
    uri
}
