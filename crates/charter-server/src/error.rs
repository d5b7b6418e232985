//! The one error type of the API: every failure becomes
//! `{"error": {"code", "message", "details"}}` with a fitting status. Internal details (SQL,
//! stack traces) never reach the client; they go to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use charter_core::ParseError;
use charter_store::StoreError;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The `Retry-After` of a 503: the database's outages this answers are a restart or a failover,
/// which take seconds.
const RETRY_AFTER_SECONDS: &str = "2";

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl ApiError {
    /// 400 `invalid`, naming the JSON path of the bad field.
    pub fn invalid(path: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
            details: json!({"path": path}),
        }
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: "a valid key is required: Authorization: Bearer <key>".into(),
            details: json!({}),
        }
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
            details: json!({}),
        }
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("{} not found", what.into()),
            details: json!({}),
        }
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "this route does not take that method".into(),
            details: json!({}),
        }
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            details: json!({}),
        }
    }

    /// 413 `too_large`.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!("the body is larger than {limit} bytes"),
            details: json!({"limit": limit}),
        }
    }

    /// 413 `too_large` for a streamed body that has no length limit but would no longer fit
    /// where it is kept, with `message` saying why.
    pub fn no_room(message: String, free_bytes: u64, reserve_bytes: u64) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message,
            details: json!({"free_bytes": free_bytes, "reserve_bytes": reserve_bytes}),
        }
    }

    /// 429 `too_many_requests`: the caller holds `limit` of something the server bounds per
    /// caller (the API's own protection), `message` naming it.
    pub fn too_many(message: String, limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_requests",
            message,
            details: json!({"limit": limit}),
        }
    }

    /// 503 `unavailable`: the database cannot be reached or lacks room just now. The cause is
    /// logged, not shown; nothing was acknowledged, and the request may be sent again.
    pub fn unavailable(cause: &str) -> ApiError {
        tracing::warn!(cause, "database unavailable");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: "the database is unavailable just now; retry shortly".into(),
            details: json!({}),
        }
    }

    /// 500 `internal`: the cause is logged, not shown.
    pub fn internal(cause: &str) -> ApiError {
        tracing::error!(cause, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error".into(),
            details: json!({}),
        }
    }
}

impl ApiError {
    /// The status it answers with.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The error in words for a page: `field: message`, the field named as in a query
    /// (`since`, not `query.since`).
    pub(crate) fn in_words(&self) -> String {
        let path = self.details["path"].as_str().unwrap_or_default();
        let field = path.strip_prefix("query.").unwrap_or(path);
        if field.is_empty() || field == "query" {
            self.message.clone()
        } else {
            format!("{field}: {}", self.message)
        }
    }

    /// Places a 400's path under `prefix` (an import's `runs[2]` or `line 7`).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> ApiError {
        if self.code == "invalid" {
            let path = self.details["path"].as_str().unwrap_or_default();
            let joined = match (prefix.is_empty(), path.is_empty()) {
                (_, true) => prefix.to_owned(),
                (true, _) => path.to_owned(),
                _ if path.starts_with('[') => format!("{prefix}{path}"),
                _ => format!("{prefix}.{path}"),
            };
            self.details["path"] = Value::String(joined);
        }
        self
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> ApiError {
        ApiError::invalid(&e.path, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { what } => ApiError::not_found(what),
            StoreError::Conflict {
                message,
                current_revision,
            } => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message,
                details: match current_revision {
                    Some(r) => json!({"current_revision": r}),
                    None => json!({}),
                },
            },
            StoreError::RevisionMismatch {
                message,
                current_revision,
            } => ApiError {
                status: StatusCode::PRECONDITION_FAILED,
                code: "precondition_failed",
                message,
                details: json!({"current_revision": current_revision}),
            },
            StoreError::ValidationRequired { revision } => ApiError {
                status: StatusCode::CONFLICT,
                code: "validation_required",
                message: format!(
                    "revision {revision} has not been validated: validate it, or activate with force"
                ),
                details: json!({"revision": revision}),
            },
            StoreError::Invalid { path, message } => ApiError::invalid(&path, message),
            StoreError::Forbidden(message) => ApiError::forbidden(message),
            StoreError::Unavailable(cause) => ApiError::unavailable(&cause),
            StoreError::Backend(cause) => ApiError::internal(&cause),
        }
    }
}

/// The API's error body: `{"error": {"code", "message", "details"}}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// What went wrong.
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// `invalid`, `unauthenticated`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `conflict`, `validation_required`, `precondition_failed`, `too_large`,
    /// `too_many_requests`, `unavailable` or `internal`.
    #[schema(example = "invalid")]
    code: &'a str,
    /// A human-readable explanation.
    message: &'a str,
    /// Machine-readable details: `path` (the JSON path of the bad field) for `invalid`,
    /// `current_revision` for `precondition_failed` (and for a `conflict` of a policy that
    /// changed while it was validated), `revision` for `validation_required`, `limit` (or
    /// `free_bytes` and `reserve_bytes`) for `too_large`, `limit` for `too_many_requests`;
    /// otherwise empty.
    #[schema(value_type = Object)]
    details: &'a Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                details: &self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_out_of_reach_is_a_503_with_retry_after_and_no_detail() {
        let response = ApiError::from(StoreError::Unavailable(
            "connection refused at 10.0.0.7".into(),
        ))
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(axum::http::header::RETRY_AFTER),
            Some(&axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS))
        );
        let failed = ApiError::from(StoreError::Backend("x".into())).into_response();
        assert!(
            failed
                .headers()
                .get(axum::http::header::RETRY_AFTER)
                .is_none()
        );
    }
}
