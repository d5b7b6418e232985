//! A test server: the API and the workspace over a fresh SQLite file (or, for the tests that run on both
//! backends, a fresh PostgreSQL schema), a platform key, and a request helper.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use charter_server::{Clock, Shared};
use charter_store::{Actor, Change, KeyScope, Principal, Store, Sync};
use http_body_util::BodyExt as _;
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub(crate) struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(1_795_000_000).unwrap()
    }
}

pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) store: Store,
    pub(crate) admin: String,
    pub(crate) usage: charter_server::Usage,
    /// The server's runtime (to end its live streams as a shutdown does).
    pub(crate) runtime: charter_server::Runtime,
}

pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Value,
}

impl Response {
    /// A header's value as text (empty when absent).
    #[allow(dead_code, reason = "used by some tests only")]
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Changes to the server's settings before it starts.
pub(crate) type Configure = fn(&mut Shared);

/// The directory of the tests' database files. The first call of a test process removes what
/// earlier runs left there more than an hour ago (a test deletes nothing of its own: a failing
/// test's files are there to look at), so runs do not fill the disk.
fn scratch_dir() -> std::path::PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let dir = std::env::temp_dir().join("charter-server-tests");
    std::fs::create_dir_all(&dir).unwrap();
    SWEPT.call_once(|| sweep(&dir, std::time::Duration::from_hours(1)));
    dir
}

/// Removes the files and folders in `dir` last changed more than `age` ago.
fn sweep(dir: &std::path::Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age));
        if old {
            let path = entry.path();
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
        }
    }
}

impl App {
    pub(crate) async fn new() -> App {
        App::configured(|_| {}).await
    }

    pub(crate) async fn configured(configure: Configure) -> App {
        let store = Store::open_sqlite(
            &scratch_dir().join(format!("{}.db", uuid::Uuid::now_v7().simple())),
            Sync::Normal,
        )
        .await
        .unwrap();
        App::over(store, configure).await
    }

    /// Two tenants with agents, and a write+read key for each.
    pub(crate) async fn seeded() -> (App, String, String) {
        App::seeded_with(|_| {}).await
    }

    /// [`App::seeded`] with changed settings.
    pub(crate) async fn seeded_with(configure: Configure) -> (App, String, String) {
        App::configured(configure).await.seed().await
    }
}

/// A fresh schema on the test PostgreSQL server (`CHARTER_TEST_DATABASE_URL`, default the
/// local one), dropped by [`PgSchema::drop`].
#[allow(dead_code, reason = "used by the tests that run on both backends")]
pub(crate) struct PgSchema(String);

#[allow(dead_code, reason = "used by the tests that run on both backends")]
impl PgSchema {
    fn url() -> String {
        std::env::var("CHARTER_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    pub(crate) async fn drop(self) {
        if let Ok(pool) = sqlx::PgPool::connect(&Self::url()).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.0
            )))
            .execute(&pool)
            .await;
            pool.close().await;
        }
    }
}

#[allow(dead_code, reason = "used by the tests that run on both backends")]
impl App {
    /// The test server over a fresh PostgreSQL schema, as the store's suite makes one; `None`
    /// (with a message) when the server is unreachable, unless `CI=true` or
    /// `CHARTER_TEST_POSTGRES=1` require it, which makes that a failure.
    pub(crate) async fn postgres() -> Option<(App, PgSchema)> {
        let url = PgSchema::url();
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("CHARTER_TEST_POSTGRES").is_ok_and(|v| v == "1");
        let base: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let admin = match sqlx::PgPool::connect_with(base.clone()).await {
            Ok(pool) => pool,
            Err(e) if !required => {
                eprintln!("SKIPPED: PostgreSQL unreachable at {url}: {e}");
                return None;
            }
            Err(e) => panic!("PostgreSQL unreachable at {url} and required: {e}"),
        };
        let schema = format!("charter_server_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let store = Store::connect_postgres_with(base.options([("search_path", schema.as_str())]))
            .await
            .unwrap();
        Some((App::over(store, |_| {}).await, PgSchema(schema)))
    }
}

impl App {
    /// The test server over `store`, with a platform key holding every scope.
    pub(crate) async fn over(store: Store, configure: Configure) -> App {
        let admin = charter_store::new_key_secret();
        let change = Change {
            principal: Principal::Platform,
            actor: Actor {
                key_id: "bootstrap".into(),
                name: "bootstrap".into(),
            },
            at: Fixed.now(),
        };
        store
            .create_key(
                &change,
                "admin",
                None,
                &[KeyScope::Read, KeyScope::Write, KeyScope::Execute],
                &admin,
            )
            .await
            .unwrap();
        let mut state = Shared::new(store.clone());
        state.clock = Arc::new(Fixed);
        state.staging_dir = scratch_dir();
        configure(&mut state);
        let usage = state.usage.clone();
        let runtime = state.runtime.clone();
        App {
            router: charter_server::app(state.into()),
            store,
            admin,
            usage,
            runtime,
        }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let raw = body.map(|b| b.to_string());
        self.raw(method, path, key, raw.as_deref(), &[]).await
    }

    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_owned()));
        self.send(method, path, key, body, headers).await
    }

    /// A request whose body arrives in `chunks`, one frame each, as a client streams it.
    pub(crate) async fn streamed(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        chunks: Vec<String>,
        headers: &[(&str, &str)],
    ) -> Response {
        let frames = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        self.send(method, path, key, Body::from_stream(frames), headers)
            .await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// This server with two tenants with agents, and a write+read key for each.
    pub(crate) async fn seed(self) -> (App, String, String) {
        let app = self;
        let admin = app.admin.clone();
        for (t, agents) in [
            ("acme", &["support", "billing"][..]),
            ("globex", &["support"][..]),
        ] {
            let r = app
                .call(
                    "POST",
                    "/v1/tenants",
                    Some(&admin),
                    Some(json!({"id": t, "name": t})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            for a in agents {
                let r = app
                    .call(
                        "POST",
                        &format!("/v1/tenants/{t}/agents"),
                        Some(&admin),
                        Some(json!({"id": a, "name": a})),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            }
        }
        let key = |t: &str| json!({"name": format!("{t} ops"), "tenant_id": t, "scopes": ["read", "write", "execute"]});
        let acme = app
            .call("POST", "/v1/keys", Some(&admin), Some(key("acme")))
            .await
            .body["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let globex = app
            .call("POST", "/v1/keys", Some(&admin), Some(key("globex")))
            .await
            .body["key"]
            .as_str()
            .unwrap()
            .to_owned();
        (app, acme, globex)
    }
}

pub(crate) fn policy_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "support agents email only colleagues",
        "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
        "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]
    })
}

pub(crate) fn error_code(r: &Response) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

pub(crate) fn error_path(r: &Response) -> &str {
    r.body["error"]["details"]["path"].as_str().unwrap_or("")
}

#[allow(dead_code, reason = "used by some tests only")]
pub(crate) async fn store_ok(app: &App) -> bool {
    app.store.count_keys().await.is_ok()
}
