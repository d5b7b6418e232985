//! Nodes of two versions on one database: once a newer build has migrated it, an older build
//! still starts (its migrations are all applied; the newer ones it does not know are not an
//! error) and is ready.

use charter_store::Store;

use crate::harness::{Kind, both};

both!(an_older_build_starts_against_a_schema_a_newer_one_migrated);

async fn an_older_build_starts_against_a_schema_a_newer_one_migrated(store: Store, kind: Kind) {
    // What a newer build's migration leaves: a version this build has no migration for.
    let checksum = match kind {
        Kind::Sqlite => "X'00'",
        Kind::Postgres => "'\\x00'::bytea",
    };
    store
        .execute_raw(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from a newer build', TRUE, {checksum}, 0)"
        ))
        .await
        .unwrap();
    let restarted = store.reopen().await.unwrap();
    restarted.readiness().await.unwrap();
    assert_eq!(restarted.count_keys().await.unwrap(), 0);
}
