//! Running the server: the bootstrap key of a fresh install, and serving until a shutdown
//! signal, finishing the requests in flight.

use std::future::Future;

use charter_store::{Actor, Change, KeyScope, Principal, Store, StoreError};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// On a store with no keys, creates a platform key with every scope: `preset` (from
/// `CHARTER_BOOTSTRAP_KEY`) or a random one. Returns the key when one was created.
pub async fn bootstrap(
    store: &Store,
    preset: Option<String>,
    at: jiff::Timestamp,
) -> Result<Option<String>, StoreError> {
    if store.count_keys().await? > 0 {
        return Ok(None);
    }
    let key = preset.unwrap_or_else(charter_store::new_key_secret);
    let change = Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "bootstrap".into(),
            name: "bootstrap".into(),
        },
        at,
    };
    store
        .create_key(
            &change,
            "bootstrap",
            None,
            &[KeyScope::Read, KeyScope::Write, KeyScope::Execute],
            &key,
        )
        .await?;
    Ok(Some(key))
}

/// How long requests in flight may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves API v1 and the workspace ([`crate::app`]) on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let usage = state.usage.clone();
    let store = state.store.clone();
    let flusher = {
        let (usage, store) = (usage.clone(), store.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = usage.flush(&store).await {
                    tracing::warn!(error = %e, "flushing key usage");
                }
            }
        })
    };
    let pruner = crate::pruning::spawn(
        store.clone(),
        state.retention,
        state.clock.clone(),
        state.metrics.clone(),
    );
    let state_runtime = state.runtime.clone();
    let app = crate::web::app(state).layer(
        TraceLayer::new_for_http()
            .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO))
            .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
    );
    // Requests in flight get a grace period to finish; a client that never completes its
    // request cannot hold the process up past it.
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = state_runtime;
    let signal = async move {
        shutdown.await;
        // Live streams never finish on their own: end them, or they hold the shutdown.
        runtime.close_streams();
        let _ = stopping.send(());
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let deadline = async {
        if stopped.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!("requests still open after the shutdown grace period; stopping anyway");
            Ok(())
        }
    };
    flusher.abort();
    if let Some(pruner) = pruner {
        pruner.abort();
    }
    // What was counted since the last tick is not lost on a clean shutdown.
    if let Err(e) = usage.flush(&store).await {
        tracing::warn!(error = %e, "flushing key usage at shutdown");
    }
    served
}
