//! The live Monitor: server-sent events for the Monitor page, authenticated by the session
//! cookie (an `EventSource` cannot send `Authorization`), over the API's own live feed
//! ([`crate::api::monitor::live`]: the visitor's tenant, the same filters, lag told).
//!
//! Each new event is sent as `event: violation` whose data is the rendered `<tr>`, which
//! htmx's SSE extension puts at the top of the table; a subscriber that fell behind gets
//! `event: lagged`, on which the page reloads the table. The stream ends when the session does
//! (signed out, its key revoked, expired: checked every [`SESSION_CHECK`]) and when the server
//! shuts down.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

use super::{MonitorQuery, Row, RowTemplate, visitor_filter};
use crate::api::monitor::{Live, live};
use crate::state::AppState;
use crate::web::session::Visitor;

/// How often a stream asks whether its session still holds.
pub(crate) const SESSION_CHECK: Duration = Duration::from_secs(5);

/// The frame of one feed item; `None` when a row cannot be rendered (logged, skipped).
fn frame(live: Live) -> Option<Event> {
    match live {
        Live::Event(event) => match (RowTemplate {
            row: Row::of(&event),
        })
        .render()
        {
            // A carriage return would end an SSE line early; HTML needs none.
            Ok(html) => Some(
                Event::default()
                    .event("violation")
                    .id(event.id.clone())
                    .data(html.replace('\r', "")),
            ),
            Err(e) => {
                tracing::error!(error = %e, "rendering a live Monitor row");
                None
            }
        },
        Live::Missed(missed) => Some(Event::default().event("lagged").data(missed.to_string())),
        // The page reloads its table on `lagged` whatever the count: what was missed is there.
        Live::Gap => Some(Event::default().event("lagged").data("gap")),
    }
}

/// `GET /monitor/stream`: the Monitor's filters, as its page reads them.
pub(crate) async fn stream(State(state): State<AppState>, visitor: Visitor, uri: Uri) -> Response {
    let query = match MonitorQuery::parse(uri.query().unwrap_or_default(), state.clock.now()) {
        Ok(query) => query,
        Err(refused) => return (StatusCode::BAD_REQUEST, refused.problem).into_response(),
    };
    let filter = visitor_filter(&visitor, &query);
    let feed = match live(&state, &visitor.caller, filter).await {
        Ok(feed) => Box::pin(feed),
        Err(refused) => return (refused.status(), refused.in_words()).into_response(),
    };
    let start = tokio::time::Instant::now() + SESSION_CHECK;
    let tick = tokio::time::interval_at(start, SESSION_CHECK);
    let session = visitor.session_id;
    let frames = futures_util::stream::unfold(
        (feed, tick, state, session),
        |(mut feed, mut tick, state, session)| async move {
            loop {
                tokio::select! {
                    next = feed.next() => {
                        // The feed ends when the server shuts down.
                        if let Some(event) = frame(next?) {
                            return Some((Ok::<_, Infallible>(event), (feed, tick, state, session)));
                        }
                    }
                    _ = tick.tick() => {
                        let now = state.clock.now();
                        // Signed out, revoked, expired, or unreadable: the stream ends.
                        if !matches!(state.store.session(&session, now).await, Ok(Some(_))) {
                            return None;
                        }
                    }
                }
            }
        },
    );
    Sse::new(frames)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a frame writes on the wire.
    async fn wire(event: Event) -> String {
        use axum::response::IntoResponse as _;
        use http_body_util::BodyExt as _;
        let once = futures_util::stream::iter([Ok::<_, Infallible>(event)]);
        let body = Sse::new(once).into_response().into_body();
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_by_a_named_event_with_data() {
        // A browser drops an event without data: the count makes it one.
        let text = wire(frame(Live::Missed(7)).unwrap()).await;
        assert_eq!(text, "event: lagged\ndata: 7\n\n");
        // Other nodes' events missed while the database was away: the page reloads the same way.
        let text = wire(frame(Live::Gap).unwrap()).await;
        assert_eq!(text, "event: lagged\ndata: gap\n\n");
    }
}
