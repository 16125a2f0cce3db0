//! `Idempotency-Key` on POST requests: a retry gets the first response back.
//!
//! A client that did not hear the answer to a POST (a dropped connection, a timeout)
//! may send it again with the same `Idempotency-Key` header. The first request claims
//! the key in the store before it runs; the response (any status below 500) is then
//! recorded under the key. A retry with the same key and the same request (method,
//! path, body, caller) gets the recorded response, marked `Idempotent-Replayed: true`;
//! the same key with a different request is a 409, as is a retry while the first is
//! still running. A request that fails with a 500 releases its key so a retry runs.
//!
//! Keys are per caller: the hash covers the credential (token, session or Open311
//! `api_key`), so two callers cannot collide or read each other's responses. Keys are
//! kept for a day; the recorded responses are encrypted with the platform's key,
//! since some hold a secret shown once (a new API token, a tracking token).
//!
//! The claim and the work are separate transactions: if the process dies after the
//! work committed but before the response was recorded, the claim is taken over after
//! [`STALE_AFTER_SECS`] and the request runs again. See docs/decisions/0010.

use crate::error::ApiError;
use crate::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lianxin_store::demands::Claim;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
/// How long an unfinished claim blocks retries before it is taken over.
pub const STALE_AFTER_SECS: i64 = 60;
/// The largest body buffered for hashing (bodies above the route's limit fail there).
const MAX_BUFFERED: usize = 48 * 1024 * 1024;

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw_key.to_str() {
        Ok(k)
            if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            k.to_string()
        }
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .with_field("Idempotency-Key")
            .into_response()
        }
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BUFFERED).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is too large",
        )
        .into_response();
    };
    let credential = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            crate::auth::cookie(&parts.headers, crate::auth::SESSION_COOKIE).map(|c| c.into_bytes())
        })
        .or_else(|| open311_key(parts.uri.query(), &parts.headers, &bytes))
        .unwrap_or_default();
    let who = hex::encode(Sha256::digest(&credential));
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.path());
    h.update([0]);
    h.update(parts.uri.query().unwrap_or_default());
    h.update([0]);
    h.update(&bytes);
    let request_hash = hex::encode(h.finalize());
    let stored_key = format!("{who}:{key}");
    match state
        .store
        .claim_idempotency_key(&stored_key, &request_hash, STALE_AFTER_SECS)
        .await
    {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Claim::Mismatch) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            .into_response()
        }
        Ok(Claim::InFlight) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "the first request with this Idempotency-Key is still running; retry later",
            )
            .into_response()
        }
        Ok(Claim::Replay { status, body }) => {
            let Ok(body) = state.pii.decrypt(&body) else {
                tracing::error!("a recorded idempotent response cannot be decrypted");
                return ApiError::internal().into_response();
            };
            let (content_type, body) = split_stored(&body);
            let mut r = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body.to_string(),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return r;
        }
        Ok(Claim::New) => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if status.is_server_error() {
        if let Err(e) = state.store.release_idempotency_key(&stored_key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BUFFERED).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    // Responses can hold secrets shown once (a new API token, a tracking token), so
    // they are kept encrypted like personal data.
    let stored = state.pii.encrypt(&format!(
        "{content_type}\n{}",
        String::from_utf8_lossy(&bytes)
    ));
    if let Err(e) = state
        .store
        .record_idempotent_response(&stored_key, status.as_u16(), &stored)
        .await
    {
        tracing::warn!(error = %e, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Open311 clients authenticate with an `api_key` parameter (query or form body)
/// rather than a header; it identifies the caller the same way.
fn open311_key(
    query: Option<&str>,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Option<Vec<u8>> {
    let from = |pairs: Vec<(String, String)>| {
        pairs
            .into_iter()
            .find(|(k, v)| k == "api_key" && !v.is_empty())
            .map(|(_, v)| v.into_bytes())
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    query
        .and_then(|q| from(crate::extract::form_pairs(q.as_bytes())))
        .or_else(|| {
            is_form
                .then(|| from(crate::extract::form_pairs(body)))
                .flatten()
        })
}

/// A stored response is its content type, a newline, and the body.
fn split_stored(stored: &str) -> (&str, &str) {
    stored
        .split_once('\n')
        .unwrap_or(("application/json", stored))
}
