//! Request extractors that turn every kind of bad input into a clear 4xx.
//!
//! axum's own extractors answer malformed input with plain-text errors; these wrap
//! the same work so that a wrong type, a missing field, invalid UTF-8, an oversized
//! body or a non-numeric id all come back as the API's JSON error, naming the field.

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body parsed into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is too large",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body could not be read",
                )
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON, telling apart syntax errors (400) from values of the wrong shape
/// (422 with the path of the offending field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid UTF-8",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    missing_field(&inner.to_string())
                } else {
                    path
                };
                ApiError::invalid(&field, strip_position(&inner.to_string()))
            }
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                strip_position(&inner.to_string()),
            ),
        }
    })
}

fn missing_field(msg: &str) -> String {
    msg.split('`').nth(1).unwrap_or_default().to_string()
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A query string parsed into `T`, with a JSON error on failure.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded_parse(q).map(QueryParams)
    }
}

fn serde_urlencoded_parse<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = form_pairs(q.as_bytes());
    // Every value is a string; query structs take strings and parse them themselves,
    // so a bad number is reported by the handler with its own field name.
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k, serde_json::Value::String(v));
    }
    let value = serde_json::Value::Object(map);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let field = e.path().to_string();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            e.into_inner().to_string(),
        )
        .with_field(field)
    })
}

/// Decodes `application/x-www-form-urlencoded` pairs (also used for forms).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let mut it = kv.splitn(2, |b| *b == b'=');
            let k = percent_decode(it.next().unwrap_or_default());
            let v = percent_decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A numeric id from the path; anything else is a 400 naming the parameter.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw): axum::extract::Path<String> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "malformed path")
                })?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Id)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    "id must be a positive integer",
                )
                .with_field("id")
            })
    }
}

/// An authenticated API caller; 401 otherwise. Session callers must send the CSRF
/// token in `X-CSRF-Token` on anything but GET/HEAD.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = auth::resolve(state, &parts.headers)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        let safe = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if !safe {
            if let Some(expected) = caller.csrf_token(&state.pii) {
                let sent = parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !auth::same(sent, &expected) {
                    return Err(ApiError::csrf());
                }
            }
        }
        Ok(ApiCaller(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        name: String,
        n: i64,
    }

    #[test]
    fn json_errors_name_fields() {
        let e = parse_json::<T>(br#"{"name": 5, "n": 1}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("name"))
        );
        let e = parse_json::<T>(br#"{"name": "x"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("n"));
        let e = parse_json::<T>(br#"{"name": "x""#).unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let e = parse_json::<T>(b"{\"name\": \"\xff\", \"n\": 1}").unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    proptest::proptest! {
        #[test]
        fn form_decoding_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = form_pairs(&body);
        }

        #[test]
        fn json_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_json::<T>(&body);
        }

        #[test]
        fn encoded_text_round_trips(text in "\\PC{0,40}") {
            let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
            let pairs = form_pairs(format!("k={encoded}").as_bytes());
            proptest::prop_assert_eq!(&pairs[0].1, &text);
        }
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_pairs(b"q=%E5%BC%80%E5%85%83&x=a+b&bad=%zz&t=%"),
            vec![
                ("q".into(), "开元".into()),
                ("x".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("t".into(), "%".into())
            ]
        );
    }
}
