//! The one error type of the HTTP layer and its table of stable codes.
//!
//! Every failure a client can see is an [`ApiError`]: a status, a stable machine
//! `code`, a message for people, and the `field` at fault when there is one. The JSON
//! API answers `{"error":{"code","message","field"}}`; the web pages render the same
//! error as a page. Unexpected failures become `internal` 500s whose detail goes to
//! the log only, never to the client — and never with personal data, since store
//! errors carry none.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lianxin_domain::ValidationError;
use lianxin_store::StoreError;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// For a broken rule, which one (`visit_in_future`, `holds_no_post` …): the
    /// domain's code, so clients can tell rules apart without parsing messages.
    pub reason: Option<&'static str>,
}

/// The stable codes, their statuses and meanings; docs/api.md lists the same table.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "malformed_json",
        400,
        "the body is not valid JSON (or not UTF-8)",
    ),
    (
        "invalid_query",
        400,
        "a query-string parameter is malformed",
    ),
    (
        "invalid_path",
        400,
        "a path parameter is malformed (e.g. an id that is not a number)",
    ),
    (
        "unsupported_media_type",
        415,
        "the body must be application/json",
    ),
    (
        "payload_too_large",
        413,
        "the body is larger than the server accepts",
    ),
    ("unauthenticated", 401, "log in or send a valid API token"),
    (
        "forbidden",
        403,
        "the account's role or token scope does not allow this",
    ),
    ("csrf_failed", 403, "the CSRF token is missing or wrong"),
    ("not_found", 404, "no such record within your data scope"),
    ("unknown_route", 404, "no such endpoint"),
    (
        "method_not_allowed",
        405,
        "the endpoint does not accept this method",
    ),
    ("conflict", 409, "the record conflicts with an existing one"),
    (
        "wrong_state",
        409,
        "the demand is not in a state that allows this step",
    ),
    (
        "not_yours",
        403,
        "this step belongs to another unit, or only the reporter may rate",
    ),
    (
        "invalid_header",
        400,
        "a request header is malformed (e.g. the Idempotency-Key)",
    ),
    (
        "idempotency_key_reused",
        409,
        "the Idempotency-Key was used before with a different request",
    ),
    (
        "idempotency_key_in_flight",
        409,
        "the first request with this Idempotency-Key is still running; retry later",
    ),
    (
        "invalid_field",
        422,
        "a field's value breaks a rule; `field` names it",
    ),
    ("internal", 500, "a bug: the details are in the server log"),
];

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            reason: None,
        }
    }

    /// Puts `prefix` before the field name (`demands[0].` + `category`).
    pub fn prefix_field(&mut self, prefix: &str) {
        self.field = Some(format!("{prefix}{}", self.field.take().unwrap_or_default()));
    }

    /// Adds the stable reason code a client can branch on (`unknown_person` …).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty()).then_some(f);
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in or send a valid API token",
        )
    }
    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", why)
    }
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "the CSRF token is missing or wrong",
        )
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(v: ValidationError) -> Self {
        match v.code {
            "wrong_state" => {
                ApiError::new(StatusCode::CONFLICT, "wrong_state", v.message).with_field(v.field)
            }
            "not_yours" => {
                ApiError::new(StatusCode::FORBIDDEN, "not_yours", v.message).with_field(v.field)
            }
            _ => {
                let mut e = ApiError::invalid(&v.field, v.message);
                e.reason = Some(v.code);
                e
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { entity } => ApiError::not_found(entity),
            StoreError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message).with_field(field)
            }
            StoreError::Invalid(v) => v.into(),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body =
            json!({ "error": { "code": self.code, "message": self.message, "field": self.field } });
        if let Some(reason) = self.reason {
            body["error"]["reason"] = json!(reason);
        }
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
