//! The relay against a fake Charter (a small axum server whose answers each test chooses) and
//! an in-memory upstream: the fail-closed paths that a real server rarely produces (errors,
//! nonsense, slowness) and cancellation during a check.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::charter::Charter;
use crate::names::Names;
use crate::session::{Session, UpstreamLink};

/// How the fake Charter answers checks of one kind.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Allow,
    Block,
    Halt,
    ServerError,
    Nonsense,
    SlowAllow(u64),
}

#[derive(Default)]
struct Fake {
    tool_call: Mutex<Option<Answer>>,
    output: Mutex<Option<Answer>>,
    checks: Mutex<Vec<Value>>,
}

async fn start_run() -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"id": "run_1", "status": "running", "policy_set": {"hash": "h", "policies": []}})),
    )
        .into_response()
}

async fn check(State(fake): State<Arc<Fake>>, Json(action): Json<Value>) -> Response {
    fake.checks.lock().unwrap().push(action.clone());
    let answer = if action["kind"] == "output" {
        *fake.output.lock().unwrap()
    } else {
        *fake.tool_call.lock().unwrap()
    };
    let decision = |kind: &str| {
        Json(
            json!({"decision": kind, "run_id": "run_1", "action_id": "evt_1", "violations": [
            {"policy_id": "pol_1", "policy_name": "P", "policy_version": 3, "rule_id": "r9",
             "rule_type": "tool", "message": "no", "matching_input": "x"}]}),
        )
        .into_response()
    };
    match answer.unwrap_or(Answer::Allow) {
        Answer::Allow => Json(json!({"decision": "allow", "violations": []})).into_response(),
        Answer::SlowAllow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Json(json!({"decision": "allow", "violations": []})).into_response()
        }
        Answer::Block => decision("block"),
        Answer::Halt => decision("halt"),
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Answer::Nonsense => Json(json!({"decision": "maybe"})).into_response(),
    }
}

async fn end_run() -> Response {
    Json(json!({"id": "run_1", "status": "completed"})).into_response()
}

struct Harness {
    fake: Arc<Fake>,
    session: Arc<Session>,
    agent: mpsc::UnboundedReceiver<String>,
    upstream: mpsc::UnboundedReceiver<String>,
    /// The upstreams after the first, with several.
    others: Vec<mpsc::UnboundedReceiver<String>>,
}

async fn harness() -> Harness {
    harness_of(&["fx"]).await
}

async fn harness_of(servers: &[&str]) -> Harness {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v1/runs", post(start_run))
        .route("/v1/runs/run_1/check", post(check))
        .route("/v1/runs/run_1/end", post(end_run))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (to_agent, agent) = mpsc::unbounded_channel();
    let mut links = Vec::new();
    let mut receivers = Vec::new();
    for _ in servers {
        let (to_upstream, upstream) = mpsc::unbounded_channel();
        links.push(UpstreamLink::new(to_upstream));
        receivers.push(upstream);
    }
    let session = Arc::new(Session::new(
        Names::new(servers.iter().map(|&s| s.to_owned()).collect()),
        Charter::new(&url, "key".into()),
        "bot".into(),
        None,
        links,
        to_agent,
    ));
    let upstream = receivers.remove(0);
    Harness {
        fake,
        session,
        agent,
        upstream,
        others: receivers,
    }
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":"p"}}}"#;
const RESULT: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}"#;

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a message in time")
        .expect("an open channel")
}

async fn nothing(rx: &mut mpsc::UnboundedReceiver<String>) {
    let got = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(got.is_err(), "expected nothing, got {got:?}");
}

fn error_code(line: &str) -> i64 {
    serde_json::from_str::<Value>(line).unwrap()["error"]["code"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_allowed_call_and_its_result_pass_byte_for_byte() {
    let mut h = harness().await;
    h.session.from_agent(CALL.into());
    assert_eq!(next(&mut h.upstream).await, CALL);
    h.session.from_upstream(0, RESULT.into());
    assert_eq!(next(&mut h.agent).await, RESULT);
    let checks = h.fake.checks.lock().unwrap().clone();
    assert_eq!(
        checks,
        [
            json!({"kind": "tool_call", "tool": "fx.echo", "args": {"text": "hi"}}),
            json!({"kind": "output", "text": "hi", "channel": "mcp"}),
        ]
    );
}

#[tokio::test]
async fn charter_failing_or_talking_nonsense_fails_the_call_closed() {
    for answer in [Answer::ServerError, Answer::Nonsense] {
        let mut h = harness().await;
        *h.fake.tool_call.lock().unwrap() = Some(answer);
        h.session.from_agent(CALL.into());
        assert_eq!(error_code(&next(&mut h.agent).await), -32603, "{answer:?}");
        nothing(&mut h.upstream).await;
    }
}

#[tokio::test]
async fn an_output_charter_cannot_check_is_withheld() {
    let mut h = harness().await;
    *h.fake.output.lock().unwrap() = Some(Answer::ServerError);
    h.session.from_agent(CALL.into());
    next(&mut h.upstream).await;
    h.session.from_upstream(0, RESULT.into());
    let answer = next(&mut h.agent).await;
    assert_eq!(error_code(&answer), -32603);
    assert!(!answer.contains("\"hi\""));
}

#[tokio::test]
async fn a_blocked_output_is_replaced_by_a_tool_error() {
    let mut h = harness().await;
    *h.fake.output.lock().unwrap() = Some(Answer::Block);
    h.session.from_agent(CALL.into());
    next(&mut h.upstream).await;
    h.session.from_upstream(0, RESULT.into());
    let answer: Value = serde_json::from_str(&next(&mut h.agent).await).unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["isError"], true);
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Charter withheld the result of fx.echo"));
    assert!(text.contains("policy \"P\" (pol_1 version 3), rule r9"));
}

#[tokio::test]
async fn a_call_cancelled_while_being_checked_is_never_forwarded() {
    let mut h = harness().await;
    *h.fake.tool_call.lock().unwrap() = Some(Answer::SlowAllow(400));
    h.session.from_agent(CALL.into());
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.session.from_agent(
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#.into(),
    );
    nothing(&mut h.upstream).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    nothing(&mut h.upstream).await;
    nothing(&mut h.agent).await;
}

#[tokio::test]
async fn a_cancellation_of_a_forwarded_call_reaches_the_upstream() {
    let mut h = harness().await;
    h.session.from_agent(CALL.into());
    next(&mut h.upstream).await;
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#;
    h.session.from_agent(cancel.into());
    assert_eq!(next(&mut h.upstream).await, cancel);
    // The agent gave up on it: an answer that comes anyway is not passed on.
    h.session.from_upstream(0, RESULT.into());
    nothing(&mut h.agent).await;
}

#[tokio::test]
async fn with_several_upstreams_an_agent_cancellation_reaches_only_the_called_one() {
    let mut h = harness_of(&["a", "b"]).await;
    h.session
        .from_agent(CALL.replace("\"echo\"", "\"b__echo\""));
    let forwarded: Value = serde_json::from_str(&next(&mut h.others[0]).await).unwrap();
    assert_eq!(forwarded["id"], 7);
    assert_eq!(forwarded["params"]["name"], "echo");
    assert_eq!(forwarded["params"]["_meta"]["progressToken"], "p");
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#;
    h.session.from_agent(cancel.into());
    assert_eq!(next(&mut h.others[0]).await, cancel);
    nothing(&mut h.upstream).await;
}

#[tokio::test]
async fn an_upstream_cancelling_its_request_reaches_the_agent_under_the_agents_id() {
    let mut h = harness_of(&["a", "b"]).await;
    let ask = r#"{"jsonrpc":"2.0","id":5,"method":"elicitation/create","params":{"message":"?"}}"#;
    h.session.from_upstream(1, ask.into());
    let asked: Value = serde_json::from_str(&next(&mut h.agent).await).unwrap();
    let agent_id = asked["id"].clone();
    assert_ne!(agent_id, 5);
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5,"reason":"timeout"}}"#;
    // Upstream `a` never asked anything under 5: its cancellation concerns nothing the agent has.
    h.session.from_upstream(0, cancel.into());
    nothing(&mut h.agent).await;
    h.session.from_upstream(1, cancel.into());
    let cancelled: Value = serde_json::from_str(&next(&mut h.agent).await).unwrap();
    assert_eq!(cancelled["method"], "notifications/cancelled");
    assert_eq!(cancelled["params"]["requestId"], agent_id);
    assert_eq!(cancelled["params"]["reason"], "timeout");
}

#[tokio::test]
async fn with_several_upstreams_a_prompt_goes_to_its_owner_by_its_prefix() {
    let mut h = harness_of(&["a", "b"]).await;
    h.session.from_agent(
        r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"b__outline","arguments":{"topic":"x"}}}"#.into(),
    );
    let forwarded: Value = serde_json::from_str(&next(&mut h.others[0]).await).unwrap();
    assert_eq!(forwarded["params"]["name"], "outline");
    assert_eq!(forwarded["params"]["arguments"]["topic"], "x");
    let answer = r#"{"jsonrpc":"2.0","id":3,"result":{"messages":[]}}"#;
    h.session.from_upstream(1, answer.into());
    assert_eq!(next(&mut h.agent).await, answer);
    h.session.from_agent(
        r#"{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"outline"}}"#.into(),
    );
    assert_eq!(error_code(&next(&mut h.agent).await), -32602);
    // Params that are not an object: refused the same way, and the session goes on.
    h.session.from_agent(
        r#"{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":"b__outline"}"#.into(),
    );
    assert_eq!(error_code(&next(&mut h.agent).await), -32602);
    nothing(&mut h.upstream).await;
}

#[tokio::test]
async fn after_a_halt_calls_are_refused_without_asking_charter_again() {
    let mut h = harness().await;
    *h.fake.tool_call.lock().unwrap() = Some(Answer::Halt);
    h.session.from_agent(CALL.into());
    let first: Value = serde_json::from_str(&next(&mut h.agent).await).unwrap();
    assert!(
        first["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Charter halted this run")
    );
    *h.fake.tool_call.lock().unwrap() = Some(Answer::Allow);
    h.session.from_agent(
        CALL.replace("\"id\":7", "\"id\":8")
            .replace("echo", "other"),
    );
    let second: Value = serde_json::from_str(&next(&mut h.agent).await).unwrap();
    assert_eq!(second["id"], 8);
    assert_eq!(second["result"]["isError"], true);
    assert_eq!(h.fake.checks.lock().unwrap().len(), 1);
    nothing(&mut h.upstream).await;
}

#[tokio::test]
async fn requests_of_the_upstream_reach_the_agent_and_answers_go_back() {
    let mut h = harness().await;
    let ask =
        r#"{"jsonrpc":"2.0","id":"u1","method":"elicitation/create","params":{"message":"?"}}"#;
    h.session.from_upstream(0, ask.into());
    assert_eq!(next(&mut h.agent).await, ask);
    let answer = r#"{"jsonrpc":"2.0","id":"u1","result":{"action":"decline"}}"#;
    h.session.from_agent(answer.into());
    assert_eq!(next(&mut h.upstream).await, answer);
}
