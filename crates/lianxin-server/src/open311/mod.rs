//! Open311 GeoReport v2 at `/open311/v2`: the civic-reporting standard, so apps
//! and city systems built for 311 can file demands and follow them here.
//!
//! It is another door into the same demand desk as the JSON API and the web pages:
//! a service request becomes a demand of kind `help` on channel `open311`, routed,
//! timed and counted like any other. Services are the active demand categories;
//! their attribute definitions come from the category's `attributes` JSON.
//!
//! The spec fixes the shape of everything, so this module follows it rather than the
//! `/api/v1` conventions: the format is the path suffix (`.json`, `.xml`), lists are
//! bare arrays, errors are `[{"code","description"}]` with 400/403/404, POST bodies
//! are form-encoded, and `api_key` (a Lianxin API token with the `open311` or
//! `demands:write` scope) is only needed to submit. Reading is public, so the
//! listings leave out whistle-blowing demands and all personal data. See
//! docs/open311.md for integrators.

mod format;
mod model;
mod params;

use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use format::{respond, Fail, Format, Node, Reply};
use lianxin_domain::demand::Status;
use lianxin_domain::pii::PiiKey;
use lianxin_store::accounts::{Account, ApiToken};
use lianxin_store::demands::DemandQuery;
use lianxin_store::StoreError;
use params::{comma_list, parse_time, Params};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{file}", get(top_get).post(top_post))
        .route("/services/{file}", get(service_definition))
        .route("/requests/{file}", get(one_request))
        .route("/tokens/{file}", get(token))
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(wrong_method)
}

/// When this implementation's discovery document last changed.
const CHANGESET: &str = "2025-01-01T00:00:00+08:00";
/// The most requests one `GET requests` answers with.
const MAX_RESULTS: usize = 1000;
/// The widest `start_date`..`end_date` window, and the default one.
const MAX_SPAN_DAYS: i64 = 90;
/// How many pages of the store the public listing reads at most while skipping
/// demands it may not show, so one query's cost stays bounded.
/// The scopes that let a token submit service requests.
const SUBMIT_SCOPES: [&str; 2] = ["open311", "demands:write"];

fn unknown(name: &str) -> Fail {
    Fail::not_found(format!(
        "no endpoint {name:?}; see discovery.json (paths end in .json or .xml)"
    ))
}

async fn unknown_endpoint(OriginalUri(uri): OriginalUri) -> Response {
    respond(Format::guess(uri.path()), Err(unknown(uri.path())))
}

async fn wrong_method(OriginalUri(uri): OriginalUri) -> Response {
    let fail = Fail {
        status: StatusCode::METHOD_NOT_ALLOWED,
        description: "this endpoint does not accept that method".into(),
    };
    respond(Format::guess(uri.path()), Err(fail))
}

/// The `{file}` path segment split into its name and format; a segment that is not
/// valid UTF-8 or has no known suffix is a missing resource.
fn split(file: &Result<Path<String>, PathRejection>) -> Result<(&str, Format), Fail> {
    match file {
        Ok(Path(f)) => Format::split(f).ok_or_else(|| unknown(f)),
        Err(_) => Err(Fail::not_found("no such resource")),
    }
}

/// Runs `f` for a path that names a format; errors come back in that format.
async fn with_format<'a, F, Fut>(
    file: &'a Result<Path<String>, PathRejection>,
    uri: &axum::http::Uri,
    f: F,
) -> Response
where
    F: FnOnce(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, Fail>>,
{
    match split(file) {
        Ok((name, format)) => respond(format, f(name).await),
        Err(fail) => respond(Format::guess(uri.path()), Err(fail)),
    }
}

async fn top_get(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    file: Result<Path<String>, PathRejection>,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    with_format(&file, &uri, |name| async move {
        match name {
            "discovery" => Ok(discovery(&state, &headers)),
            "services" => Ok(Reply::ok(
                "services",
                Node::List(
                    "service",
                    state.desk.categories().iter().map(model::service).collect(),
                ),
            )),
            "requests" => list_requests(&state, &params).await,
            other => Err(unknown(other)),
        }
    })
    .await
}

async fn top_post(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    file: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    with_format(&file, &uri, |name| async move {
        match name {
            "requests" => {
                let form = form_body(&headers, body)?;
                let params = form.then(Params::parse(query.unwrap_or_default().as_bytes()));
                submit(&state, &params).await
            }
            "discovery" | "services" => Err(Fail {
                status: StatusCode::METHOD_NOT_ALLOWED,
                description: format!("{name} is read with GET"),
            }),
            other => Err(unknown(other)),
        }
    })
    .await
}

/// The form body; clients that send no content type are read as form clients too.
fn form_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Params, Fail> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Fail::bad_request(
            "send the request as application/x-www-form-urlencoded",
        ));
    }
    match body {
        Ok(b) => Ok(Params::parse(&b)),
        Err(r) => Err(Fail::bad_request(format!(
            "the body could not be read: {r}"
        ))),
    }
}

/// `scheme://host/open311/v2` as the client reached us, for the discovery document.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let forwarded = state
        .settings
        .trust_proxy
        .then(|| headers.get("x-forwarded-proto")?.to_str().ok())
        .flatten()
        .filter(|p| matches!(*p, "http" | "https"));
    let scheme = forwarded.unwrap_or(if state.settings.secure_cookies {
        "https"
    } else {
        "http"
    });
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    match host {
        Some(h) => format!("{scheme}://{h}/open311/v2"),
        None => "/open311/v2".into(),
    }
}

fn discovery(state: &AppState, headers: &HeaderMap) -> Reply {
    let formats = ["text/xml", "application/json"]
        .into_iter()
        .map(Node::text)
        .collect();
    Reply::ok(
        "discovery",
        Node::Obj(vec![
            ("changeset", Node::text(CHANGESET)),
            ("contact", Node::text("联系平台管理员 Contact the platform administrator")),
            (
                "key_service",
                Node::text(
                    "api_key 是带 open311 权限的连心 API 令牌,向管理员申请 \
                     An api_key is a Lianxin API token with the open311 scope; ask an administrator",
                ),
            ),
            (
                "endpoints",
                Node::List(
                    "endpoint",
                    vec![Node::Obj(vec![
                        ("specification", Node::text("http://wiki.open311.org/GeoReport_v2")),
                        ("url", Node::text(base_url(state, headers))),
                        ("changeset", Node::text(CHANGESET)),
                        ("type", Node::text("production")),
                        ("formats", Node::List("format", formats)),
                    ])],
                ),
            ),
        ]),
    )
}

async fn service_definition(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    file: Result<Path<String>, PathRejection>,
) -> Response {
    with_format(&file, &uri, |code| async move {
        let c = state
            .desk
            .category(code)
            .map_err(|_| Fail::not_found(format!("no service {code:?}")))?;
        if model::attribute_defs(&c).is_empty() {
            // The spec defines a definition only for services with metadata=true.
            return Err(Fail::not_found(format!(
                "service {code:?} has no attributes (metadata is false), so it has no definition"
            )));
        }
        Ok(Reply::ok("service_definition", model::definition(&c)))
    })
    .await
}

/// Checks `api_key`: a live token of an enabled account with a scope that allows
/// submitting.
async fn authorize(state: &AppState, key: Option<&str>) -> Result<(ApiToken, Account), Fail> {
    let key = key.ok_or_else(|| Fail::forbidden("api_key is required to submit a request"))?;
    let found = if key.len() <= 200 {
        state
            .store
            .api_token_account(&PiiKey::token_hash(key))
            .await?
    } else {
        None
    };
    let (token, account) = found
        .ok_or_else(|| Fail::forbidden("api_key is not valid (unknown, revoked or expired)"))?;
    if !token
        .scopes
        .iter()
        .any(|s| SUBMIT_SCOPES.contains(&s.as_str()))
    {
        return Err(Fail::forbidden(
            "this api_key may not submit requests: its token needs the open311 scope",
        ));
    }
    Ok((token, account))
}

fn coordinate(params: &Params, name: &str) -> Result<Option<f64>, Fail> {
    params
        .get(name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| Fail::bad_request(format!("{name} must be a decimal number")))
        })
        .transpose()
}

/// The desk's words for a field, in the spec's.
fn open311_field(field: &str) -> &str {
    match field {
        "category" => "service_code",
        "place" => "address_id",
        "lat" | "lon" => "lat/long",
        "address" => "address_string",
        "reporter_name" => "first_name/last_name",
        "reporter_phone" => "phone",
        other => other,
    }
}

async fn submit(state: &AppState, p: &Params) -> Result<Reply, Fail> {
    let (token, account) = authorize(state, p.get("api_key")).await?;
    // jurisdiction_id is accepted and ignored: this server is one jurisdiction.
    let code = p
        .get("service_code")
        .ok_or_else(|| Fail::bad_request("service_code is required"))?;
    let category = state.desk.category(code).map_err(|_| {
        Fail::bad_request(format!(
            "service_code {code:?} is not a service here; see services.json"
        ))
    })?;

    let (lat, lon) = (coordinate(p, "lat")?, coordinate(p, "long")?);
    if lat.is_some() != lon.is_some() {
        return Err(Fail::bad_request("give both lat and long, or neither"));
    }
    let address_id = p.get("address_id");
    let address = p.get("address_string");
    if lat.is_none() && address_id.is_none() {
        // A street address alone cannot be routed: there is no geocoder, and the
        // responsible unit is found from a registry place or a point.
        return Err(Fail::bad_request(if address.is_some() {
            "address_string alone cannot be placed; also send lat and long, or address_id (a place code)"
        } else {
            "a location is required: lat and long, or address_id (a place code)"
        }));
    }

    let description = match p.get("description") {
        Some(d) if d.chars().count() > lianxin_domain::intake::MAX_DESCRIPTION_CHARS => {
            return Err(Fail::bad_request(format!(
                "description must be at most {} characters",
                lianxin_domain::intake::MAX_DESCRIPTION_CHARS
            )))
        }
        Some(d) => d.to_string(),
        // The spec makes it optional; a demand needs words, so the service names it.
        None => category.name_zh.clone(),
    };

    let mut answers = model::check_answers(&model::attribute_defs(&category), &p.attributes())
        .map_err(Fail::bad_request)?;
    if let Some(url) = p.get("media_url") {
        let url = model::check_media_url(url).map_err(Fail::bad_request)?;
        answers.insert(model::MEDIA_URL_KEY.into(), url.into());
    }

    // email, device_id and account_id are accepted but not kept: the demand needs
    // none of them, and what is not stored cannot leak.
    let intake = crate::desk::Intake {
        kind: "help".into(),
        category: category.code.clone(),
        channel: "open311".into(),
        description,
        place_code: address_id.map(str::to_string),
        lat,
        lon,
        address: address.map(str::to_string),
        attributes: (!answers.is_empty()).then_some(serde_json::Value::Object(answers)),
        reporter_name: model::full_name(p.get("first_name"), p.get("last_name")),
        reporter_phone: p.get("phone").map(str::to_string),
        ..Default::default()
    };
    // The token's account is the integration, not the resident, so it is not made
    // the reporter (it would get the resident's notices and rating rights).
    let by = crate::desk::Submitter {
        actor: format!("token:{}", token.id),
        name: account.display_name,
        account_id: None,
    };
    let s = state.desk.submit(intake, &by).await.map_err(|e| match e {
        StoreError::Invalid(v) => {
            Fail::bad_request(format!("{}: {}", open311_field(&v.field), v.message))
        }
        other => Fail::from(other),
    })?;
    let notice = format!(
        "已受理,由 {owner} 负责,办理时限 {due}。Received; {owner} is responsible; due by {due}.",
        owner = s.owner_name,
        due = model::datetime(s.deadline),
    );
    Ok(Reply::ok(
        "service_requests",
        Node::List(
            "request",
            vec![Node::Obj(vec![
                ("service_request_id", Node::text(s.id.to_string())),
                ("token", Node::text(s.tracking_token)),
                ("service_notice", Node::text(notice)),
                ("account_id", Node::Null),
            ])],
        ),
    ))
}

/// The store query for `GET requests`, from its parameters, at `now`.
fn request_query(p: &Params, now: DateTime<Utc>) -> Result<DemandQuery, Fail> {
    let mut q = DemandQuery::default();
    // service_request_id overrides every other filter (the spec says so).
    if let Some(ids) = p.get("service_request_id") {
        let ids: Vec<&str> = comma_list(ids);
        if ids.len() > MAX_RESULTS {
            return Err(Fail::bad_request(format!(
                "ask for at most {MAX_RESULTS} service_request_id values at once"
            )));
        }
        q.ids = ids
            .iter()
            .map(|i| i.parse::<i64>().ok().filter(|i| *i > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Fail::bad_request("service_request_id must be a comma list of request ids")
            })?;
        return Ok(q);
    }
    if let Some(codes) = p.get("service_code") {
        q.categories = comma_list(codes).into_iter().map(str::to_string).collect();
    }
    if let Some(statuses) = p.get("status") {
        for s in comma_list(statuses) {
            let closed = match s.to_ascii_lowercase().as_str() {
                "open" => false,
                "closed" => true,
                _ => {
                    return Err(Fail::bad_request(
                        "status must be open, closed, or both (open,closed)",
                    ))
                }
            };
            q.statuses.extend(
                Status::ALL
                    .into_iter()
                    .filter(|st| st.is_terminal() == closed),
            );
        }
    }
    let time = |name: &str| {
        p.get(name)
            .map(|raw| {
                parse_time(raw).ok_or_else(|| {
                    Fail::bad_request(format!(
                        "{name} must be an ISO 8601 time with a zone, e.g. 2024-05-01T00:00:00+08:00"
                    ))
                })
            })
            .transpose()
    };
    let span = Duration::days(MAX_SPAN_DAYS);
    let (start, end) = match (time("start_date")?, time("end_date")?) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + span),
        (None, Some(e)) => (e - span, e),
        (None, None) => (now - span, now),
    };
    if end < start {
        return Err(Fail::bad_request("end_date is before start_date"));
    }
    if end - start > span {
        return Err(Fail::bad_request(format!(
            "start_date and end_date may be at most {MAX_SPAN_DAYS} days apart"
        )));
    }
    q.received_from = Some(start);
    // end_date is inclusive; stored times have millisecond precision.
    q.received_before = Some(end + Duration::milliseconds(1));
    Ok(q)
}

async fn list_requests(state: &AppState, p: &Params) -> Result<Reply, Fail> {
    let mut q = request_query(p, state.desk.now())?;
    model::public_only(&mut q);
    q.limit = i64::try_from(MAX_RESULTS).unwrap_or(i64::MAX);
    let found = state.store.search_demands(&q).await?;
    Ok(Reply::ok(
        "service_requests",
        Node::List("request", found.iter().map(model::request).collect()),
    ))
}

async fn one_request(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    file: Result<Path<String>, PathRejection>,
) -> Response {
    with_format(&file, &uri, |id| async move {
        let missing = || Fail::not_found(format!("no service request {id:?}"));
        let id = id.parse::<i64>().map_err(|_| missing())?;
        let d = match state.store.demand(id).await {
            Ok(d) if model::is_public(&d) => d,
            Ok(_) | Err(StoreError::NotFound { .. }) => return Err(missing()),
            Err(e) => return Err(e.into()),
        };
        Ok(Reply::ok(
            "service_requests",
            Node::List("request", vec![model::request(&d)]),
        ))
    })
    .await
}

async fn token(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    file: Result<Path<String>, PathRejection>,
) -> Response {
    with_format(&file, &uri, |token| async move {
        let d = state
            .desk
            .by_token(token)
            .await?
            .ok_or_else(|| Fail::not_found("no service request has this token"))?;
        Ok(Reply::ok(
            "service_requests",
            Node::List(
                "request",
                vec![Node::Obj(vec![
                    ("service_request_id", Node::text(d.id.to_string())),
                    ("token", Node::text(token)),
                ])],
            ),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Result<DemandQuery, Fail> {
        let now = parse_time("2024-06-01T00:00:00Z").unwrap();
        request_query(&Params::parse(raw.as_bytes()), now)
    }

    #[test]
    fn ids_override_every_other_filter() {
        let q = query("service_request_id=3,%204&status=bogus&start_date=junk").unwrap();
        assert_eq!(q.ids, vec![3, 4]);
        assert!(q.statuses.is_empty() && q.received_from.is_none());
        assert!(query("service_request_id=3,x").is_err());
    }

    #[test]
    fn the_window_defaults_to_ninety_days() {
        let q = query("").unwrap();
        let (from, before) = (q.received_from.unwrap(), q.received_before.unwrap());
        assert_eq!((before - from).num_days(), 90);
        let q = query("start_date=2024-01-01T00:00:00Z").unwrap();
        assert_eq!(
            (q.received_before.unwrap() - q.received_from.unwrap()).num_days(),
            90
        );
        assert!(query("start_date=2024-01-01T00:00:00Z&end_date=2024-04-01T00:00:00Z").is_err());
        assert!(query("start_date=2024-02-01T00:00:00Z&end_date=2024-01-01T00:00:00Z").is_err());
        assert!(query("start_date=2024-01-01").is_err());
        assert!(query("start_date=&end_date=").is_ok(), "empty means absent");
    }

    #[test]
    fn statuses_map_to_the_loop() {
        let q = query("status=closed").unwrap();
        assert_eq!(
            q.statuses,
            vec![Status::Closed, Status::Rejected, Status::Merged]
        );
        assert_eq!(query("status=open,closed").unwrap().statuses.len(), 8);
        assert!(query("status=pending").is_err());
        let q = query("service_code=a,b").unwrap();
        assert_eq!(q.categories, vec!["a", "b"]);
    }
}
