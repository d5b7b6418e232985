//! What the gateway remembers of each upstream's lists: the tools the agent was shown (so that
//! an upstream's `notifications/tools/list_changed` reaches the agent only when what it sees
//! changed) and, with several upstreams, the resources and resource templates each upstream
//! listed (so that a request about a URI goes to the upstream that owns it).
//!
//! Resource URIs are never renamed: they appear inside tool results, prompts and embedded
//! resources, where the gateway could not rewrite them all, and they are the agent's handle on
//! the resource (subscriptions, `notifications/resources/updated`). So a URI is routed by what
//! the upstreams listed: the upstream that listed it exactly, else the one with a matching
//! template, else the one whose listed URIs share its scheme (`docs://`: MCP servers mostly
//! name their own). When two upstreams claim a URI at the same step, the gateway refuses to
//! guess.

use serde_json::Value;

/// Where a URI goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this upstream.
    One(usize),
    /// Several upstreams claim it equally: the agent gets an error naming them.
    Ambiguous(Vec<usize>),
    /// No upstream lists it, nor a template or a scheme that would cover it.
    Unknown,
}

/// The lists of each upstream, as far as the gateway has seen them.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Per upstream: the tools the agent was last shown (after the filter, sorted by name);
    /// `None` until the agent lists tools.
    tools: Vec<Option<Vec<Value>>>,
    /// Per upstream: the URIs it listed; `None` until listed, or since it said they changed.
    resources: Vec<Option<Vec<String>>>,
    /// Per upstream: the URI templates it listed, likewise.
    templates: Vec<Option<Vec<String>>>,
}

impl Catalog {
    /// Nothing known yet of `upstreams` upstreams.
    pub fn new(upstreams: usize) -> Catalog {
        Catalog {
            tools: vec![None; upstreams],
            resources: vec![None; upstreams],
            templates: vec![None; upstreams],
        }
    }

    /// The tools the agent was last shown of `upstream`, if it listed them.
    pub fn shown_tools(&self, upstream: usize) -> Option<&Vec<Value>> {
        self.tools.get(upstream).and_then(Option::as_ref)
    }

    /// Records the tools of `upstream` the agent is shown (the whole list, or the first page).
    pub fn show_tools(&mut self, upstream: usize, tools: Vec<Value>) {
        if let Some(slot) = self.tools.get_mut(upstream) {
            *slot = Some(sorted(tools));
        }
    }

    /// Adds a further page of tools of `upstream` the agent is shown.
    pub fn show_more_tools(&mut self, upstream: usize, tools: Vec<Value>) {
        if let Some(slot) = self.tools.get_mut(upstream) {
            let mut all = slot.take().unwrap_or_default();
            all.extend(tools);
            *slot = Some(sorted(all));
        }
    }

    /// Records what `upstream` lists now; true when it differs from what the agent was shown
    /// (or the agent was shown nothing yet).
    pub fn tools_changed(&mut self, upstream: usize, now: Vec<Value>) -> bool {
        let now = sorted(now);
        let Some(slot) = self.tools.get_mut(upstream) else {
            return true;
        };
        let changed = slot.as_ref() != Some(&now);
        *slot = Some(now);
        changed
    }

    /// The upstreams whose resources or templates are not known.
    pub fn unknown_resources(&self) -> Vec<usize> {
        (0..self.resources.len())
            .filter(|&i| self.resources[i].is_none() || self.templates[i].is_none())
            .collect()
    }

    /// Records the URIs `upstream` lists (every page of `resources/list`).
    pub fn set_resources(&mut self, upstream: usize, resources: &[Value]) {
        if let Some(slot) = self.resources.get_mut(upstream) {
            *slot = Some(strings(resources, "uri"));
        }
    }

    /// Records the templates `upstream` lists (every page of `resources/templates/list`).
    pub fn set_templates(&mut self, upstream: usize, templates: &[Value]) {
        if let Some(slot) = self.templates.get_mut(upstream) {
            *slot = Some(strings(templates, "uriTemplate"));
        }
    }

    /// `upstream` said its resources changed: they are listed again when next needed.
    pub fn forget_resources(&mut self, upstream: usize) {
        if let Some(slot) = self.resources.get_mut(upstream) {
            *slot = None;
        }
        if let Some(slot) = self.templates.get_mut(upstream) {
            *slot = None;
        }
    }

    /// The upstream that owns `uri` (a resource's URI, or a template itself as completion
    /// names it).
    pub fn route(&self, uri: &str) -> Route {
        let upstreams = 0..self.resources.len();
        let listed = |i: &usize| {
            let mut uris = self.resources[*i].iter().flatten();
            let mut templates = self.templates[*i].iter().flatten();
            uris.any(|u| u == uri) || templates.any(|t| t == uri)
        };
        let templated = |i: &usize| {
            self.templates[*i]
                .iter()
                .flatten()
                .any(|t| template_matches(t, uri))
        };
        let scheme = scheme(uri);
        let same_scheme = |i: &usize| {
            scheme.is_some()
                && self.resources[*i]
                    .iter()
                    .flatten()
                    .chain(self.templates[*i].iter().flatten())
                    .any(|u| self::scheme(u) == scheme)
        };
        for step in [&listed as &dyn Fn(&usize) -> bool, &templated, &same_scheme] {
            let owners: Vec<usize> = upstreams.clone().filter(step).collect();
            match owners.as_slice() {
                [] => {}
                [one] => return Route::One(*one),
                _ => return Route::Ambiguous(owners),
            }
        }
        Route::Unknown
    }
}

fn sorted(mut tools: Vec<Value>) -> Vec<Value> {
    tools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    tools
}

fn strings(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| item[field].as_str().map(str::to_owned))
        .collect()
}

/// A URI's scheme with its `://` (`docs://`, `file://`), when it has one.
fn scheme(uri: &str) -> Option<&str> {
    let end = uri.find("://")? + 3;
    Some(&uri[..end])
}

/// Whether `uri` is one of the URIs of an RFC 6570 `template`: its literal text in order, each
/// `{...}` expression standing for any text (the gateway only needs to know who owns a URI,
/// not to extract the variables).
pub fn template_matches(template: &str, uri: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return template == uri;
        };
        literals.push(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    literals.push(rest);
    let Some((first, others)) = literals.split_first() else {
        return false;
    };
    let Some((last, middle)) = others.split_last() else {
        return template == uri;
    };
    let Some(mut tail) = uri.strip_prefix(first) else {
        return false;
    };
    for literal in middle {
        match tail.find(literal) {
            Some(at) => tail = &tail[at + literal.len()..],
            None => return false,
        }
    }
    tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_match_their_literal_text_in_order() {
        assert!(template_matches(
            "docs://pages/{page}",
            "docs://pages/intro"
        ));
        assert!(template_matches("docs://pages/{page}", "docs://pages/a/b"));
        assert!(!template_matches(
            "docs://pages/{page}",
            "docs://other/intro"
        ));
        assert!(template_matches(
            "test://template/{id}/data",
            "test://template/7/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template/7/meta"
        ));
        assert!(template_matches("file:///{+path}{?q}", "file:///a/b?q=1"));
        assert!(template_matches("{scheme}://x", "a://x"));
        assert!(template_matches("docs://fixed", "docs://fixed"));
        assert!(!template_matches("docs://fixed", "docs://fixed/more"));
        assert!(!template_matches("a{x}b", "ab-"));
        assert!(template_matches("a{x}b", "ab"));
    }

    fn catalog() -> Catalog {
        let mut catalog = Catalog::new(2);
        catalog.set_resources(0, &[json!({"uri": "test://greeting"})]);
        catalog.set_templates(0, &[]);
        catalog.set_resources(
            1,
            &[
                json!({"uri": "docs://readme"}),
                json!({"uri": "test://greeting"}),
            ],
        );
        catalog.set_templates(1, &[json!({"uriTemplate": "docs://pages/{page}"})]);
        catalog
    }

    #[test]
    fn a_uri_goes_to_who_listed_it_then_a_template_then_its_scheme() {
        let catalog = catalog();
        assert_eq!(catalog.route("docs://readme"), Route::One(1));
        assert_eq!(catalog.route("docs://pages/intro"), Route::One(1));
        assert_eq!(catalog.route("docs://pages/{page}"), Route::One(1));
        assert_eq!(catalog.route("docs://unlisted"), Route::One(1));
        assert_eq!(
            catalog.route("test://greeting"),
            Route::Ambiguous(vec![0, 1])
        );
        assert_eq!(catalog.route("test://other"), Route::Ambiguous(vec![0, 1]));
        assert_eq!(catalog.route("mail://inbox"), Route::Unknown);
        assert_eq!(catalog.route("no-scheme"), Route::Unknown);
    }

    #[test]
    fn forgotten_resources_are_unknown_until_listed_again() {
        let mut catalog = catalog();
        assert!(catalog.unknown_resources().is_empty());
        catalog.forget_resources(1);
        assert_eq!(catalog.unknown_resources(), vec![1]);
        assert_eq!(catalog.route("docs://readme"), Route::Unknown);
        assert_eq!(catalog.route("test://greeting"), Route::One(0));
    }

    #[test]
    fn the_tools_shown_change_only_when_the_set_does() {
        let mut catalog = Catalog::new(1);
        let a = json!({"name": "a", "description": "A"});
        let b = json!({"name": "b"});
        assert!(catalog.shown_tools(0).is_none());
        catalog.show_tools(0, vec![b.clone()]);
        catalog.show_more_tools(0, vec![a.clone()]);
        assert!(!catalog.tools_changed(0, vec![a.clone(), b.clone()]));
        assert!(catalog.tools_changed(0, vec![a.clone()]));
        let a2 = json!({"name": "a", "description": "another"});
        assert!(catalog.tools_changed(0, vec![a2]));
        assert!(catalog.tools_changed(5, vec![a]));
    }
}
