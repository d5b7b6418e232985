//! Backends for the conformance suite, and the `both!` macro that runs a test on each.

use charter_core::policy::PolicyDefinition;
use charter_core::{PolicyDocument, TenantId};
use charter_store::{Actor, Change, Principal, Store};
use jiff::Timestamp;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;

/// Which database a test runs on (for the few raw SQL statements that differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

/// A store in a fresh database file (a file, not memory, so tests can reopen it).
pub(crate) async fn sqlite() -> Store {
    sqlite_file().await.0
}

/// A store in a fresh database file, and the file's path (to open it again).
pub(crate) async fn sqlite_file() -> (Store, std::path::PathBuf) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let dir = std::env::temp_dir().join("charter-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    // What earlier runs left more than an hour ago (a test deletes nothing of its own: a
    // failing test's files are there to look at), so runs do not fill the disk.
    SWEPT.call_once(|| sweep(&dir, std::time::Duration::from_hours(1)));
    let path = dir.join(format!("{}.db", uuid::Uuid::now_v7().simple()));
    let store = Store::open_sqlite(&path, charter_store::Sync::Normal)
        .await
        .unwrap();
    (store, path)
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

/// A store in a fresh schema, or `None` when PostgreSQL is unreachable and that is allowed.
pub(crate) async fn postgres() -> Option<(Store, String)> {
    let url = std::env::var("CHARTER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let required = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("CHARTER_TEST_POSTGRES").is_ok_and(|v| v == "1");
    let base: PgConnectOptions = url.parse().unwrap();
    let admin = match sqlx::PgPool::connect_with(base.clone()).await {
        Ok(pool) => pool,
        Err(e) if !required => {
            eprintln!("SKIPPED: PostgreSQL unreachable at {url}: {e}");
            return None;
        }
        Err(e) => panic!("PostgreSQL unreachable at {url} and required: {e}"),
    };
    let schema = format!("charter_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let store = Store::connect_postgres_with(base.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    Some((store, schema))
}

pub(crate) async fn drop_schema(schema: &str) {
    let url = std::env::var("CHARTER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

/// Runs `async fn $name(store: Store, kind: Kind)` on both backends.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::harness::sqlite().await, $crate::harness::Kind::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some((store, schema)) = $crate::harness::postgres().await {
                        super::$name(store, $crate::harness::Kind::Postgres).await;
                        $crate::harness::drop_schema(&schema).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use both;

pub(crate) const T0: i64 = 1_795_000_000_000;

pub(crate) fn at(offset_s: i64) -> Timestamp {
    Timestamp::from_millisecond(T0 + offset_s * 1000).unwrap()
}

pub(crate) fn platform() -> Change {
    Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "key_admin".into(),
            name: "admin".into(),
        },
        at: at(0),
    }
}

pub(crate) fn tenant(id: &str) -> Change {
    Change {
        principal: Principal::Tenant(TenantId::new(id).unwrap()),
        actor: Actor {
            key_id: format!("key_{id}"),
            name: format!("{id} operator"),
        },
        at: at(0),
    }
}

pub(crate) fn later(change: &Change, seconds: i64) -> Change {
    Change {
        at: at(seconds),
        ..change.clone()
    }
}

/// Two tenants, `acme` (agents support, billing) and `globex` (agent support).
pub(crate) async fn seed(store: &Store) {
    let p = platform();
    for (t, agents) in [
        ("acme", &["support", "billing"][..]),
        ("globex", &["support"][..]),
    ] {
        let tid = TenantId::new(t).unwrap();
        store
            .create_tenant(&p, &tid, &format!("{t} inc"))
            .await
            .unwrap();
        for a in agents {
            store
                .create_agent(&p, &tid, &charter_core::AgentId::new(*a).unwrap(), a, None)
                .await
                .unwrap();
        }
    }
}

pub(crate) fn definition(name: &str, scope: serde_json::Value) -> PolicyDefinition {
    let mut body = json!({
        "name": name,
        "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]
    });
    body["scope"] = scope;
    PolicyDefinition::parse(&body).unwrap()
}

pub(crate) fn acme_support() -> serde_json::Value {
    json!({"type": "agent", "tenant_id": "acme", "agent_id": "support"})
}

#[allow(dead_code, reason = "kept for tests that import documents")]
pub(crate) fn document(text: &str) -> PolicyDocument {
    PolicyDocument::parse_many(text).unwrap().remove(0)
}

/// Every audit entry the principal reads with `filter`, through pages of 3 (so paging is
/// exercised by every test that reads the log).
pub(crate) async fn all_audit(
    store: &Store,
    principal: &charter_store::Principal,
    filter: &charter_store::AuditFilter,
) -> Result<Vec<charter_store::AuditEntry>, charter_store::StoreError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.audit(principal, filter, cursor.as_deref(), 3).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}
