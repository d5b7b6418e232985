//! Liveness and readiness apart: `/healthz` says the process answers; `/readyz` says its
//! database answers and holds this build's migrations, and says why not (503) when the
//! database is gone, on each backend.

use axum::http::StatusCode;

use crate::app::App;

async fn ready_until_the_database_goes(app: App) {
    let ready = app.web("GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body, "ready");
    app.store.close().await;
    let gone = app.web("GET", "/readyz", &[], "").await;
    assert_eq!(
        gone.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        gone.body
    );
    assert!(gone.body.starts_with("not ready: "), "{}", gone.body);
    // Alive all the same: liveness does not depend on the database.
    let alive = app.web("GET", "/healthz", &[], "").await;
    assert_eq!(alive.status, StatusCode::OK);
}

#[tokio::test]
async fn readiness_follows_the_database_on_sqlite() {
    ready_until_the_database_goes(App::new().await).await;
}

#[tokio::test]
async fn readiness_follows_the_database_on_postgres() {
    if let Some((app, schema)) = App::postgres().await {
        ready_until_the_database_goes(app).await;
        schema.drop().await;
    }
}
