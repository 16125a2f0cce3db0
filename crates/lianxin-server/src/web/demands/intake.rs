//! 收集: the resident's demand form (`/submit`) and the one-tap repair form (`/repair`).
//!
//! Both work signed in or not, on a phone, without JavaScript. Photos come as a
//! multipart upload straight from the phone's camera; the desk checks them (JPEG, PNG or
//! WebP, at most 5 MB each, at most 6). After a successful submission the browser is
//! sent (303) to the tracking page, which shows the tracking link once.

use super::{
    category_options, explain, from_store, keep_pre_cookie, lang, optional_caller, problem_value,
    public_csrf, public_csrf_ok, see_other, tr, Problem,
};
use crate::auth::Caller;
use crate::desk::{Intake, Submitter};
use crate::web::{error_page, Frame};
use crate::AppState;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use lianxin_domain::intake::{DemandKind, MAX_PHOTOS};
use lianxin_domain::place::PlaceLevel;
use lianxin_domain::role::DataScope;
use minijinja::{context, Value};
use std::collections::BTreeMap;

/// The most community-level places a chooser lists; a search narrows it.
const MAX_PLACE_OPTIONS: usize = 300;

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Values {
    kind: String,
    category: String,
    place: String,
    place_code: String,
    description: String,
    reporter_name: String,
    building: String,
}

impl Values {
    fn from_fields(fields: &BTreeMap<String, String>) -> Values {
        let f = |k: &str| fields.get(k).cloned().unwrap_or_default();
        Values {
            kind: f("kind"),
            category: f("category"),
            place: f("place"),
            place_code: f("place_code"),
            description: f("description"),
            reporter_name: f("reporter_name"),
            building: f("building"),
        }
    }
}

/// The places a resident picks from: communities and villages (嘎查村), each named
/// with the street or township above it, optionally narrowed by a search.
async fn place_options(state: &AppState, q: &str) -> Vec<Value> {
    let all = DataScope::everything();
    let found = match state.store.search_places(q.trim(), &all, 5000).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "listing places for the demand form");
            return Vec::new();
        }
    };
    let mut names: BTreeMap<String, String> = found
        .iter()
        .map(|p| (p.code.clone(), p.name.clone()))
        .collect();
    let villages: Vec<_> = found
        .into_iter()
        .filter(|p| p.level == PlaceLevel::Village)
        .take(MAX_PLACE_OPTIONS)
        .collect();
    let mut out = Vec::with_capacity(villages.len());
    for v in villages {
        let parent = v
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .rev()
            .nth(1)
            .map(str::to_string);
        let parent_name = match parent {
            Some(code) => match names.get(&code) {
                Some(n) => Some(n.clone()),
                None => {
                    let n = state
                        .store
                        .place_by_code(&code)
                        .await
                        .ok()
                        .flatten()
                        .map(|p| p.name);
                    if let Some(n) = &n {
                        names.insert(code, n.clone());
                    }
                    n
                }
            },
            None => None,
        };
        let label = match parent_name {
            Some(p) => format!("{p} · {}", v.name),
            None => v.name.clone(),
        };
        out.push(context! { code => v.code, label });
    }
    out
}

/// The community a signed-in resident lives in (their account's place), if it is one.
async fn home_place(state: &AppState, caller: Option<&Caller>) -> Option<(String, String)> {
    let id = caller?.account.scope_place_id?;
    let p = state.store.place(id, &DataScope::everything()).await.ok()?;
    (p.level == PlaceLevel::Village).then_some((p.code, p.name))
}

fn kind_options(lang: crate::i18n::Lang) -> Vec<Value> {
    DemandKind::ALL
        .iter()
        .map(|k| context! { code => k.as_str(), name => super::kind_label(lang, *k) })
        .collect()
}

/// Whether the browser says it runs on a phone.
fn from_phone(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| {
            [
                "Mobi",
                "Android",
                "iPhone",
                "iPad",
                "HarmonyOS",
                "MicroMessenger",
            ]
            .iter()
            .any(|m| ua.contains(m))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Submit,
    Repair,
}

impl Form {
    fn template(self) -> &'static str {
        match self {
            Form::Submit => "submit.html",
            Form::Repair => "repair.html",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Form::Submit => "/submit",
            Form::Repair => "/repair",
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct FormQuery {
    place_q: Option<String>,
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    caller: Option<&Caller>,
    form: Form,
    values: Values,
    problem: Option<Problem>,
    place_q: &str,
) -> Response {
    let mut frame = Frame::new(state, headers, form.path(), caller);
    let lang = frame.lang;
    let (csrf, pre) = public_csrf(state, headers, caller);
    frame.csrf = csrf;
    let home = home_place(state, caller).await;
    let mut values = values;
    if values.place.is_empty() && values.place_code.is_empty() {
        if let Some((code, _)) = &home {
            values.place = code.clone();
        }
    }
    let places = place_options(state, place_q).await;
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let mut resp = frame.render(
        state,
        form.template(),
        context! {
            values,
            problem => problem.as_ref().map(problem_value),
            kinds => kind_options(lang),
            categories => category_options(state, lang),
            places,
            place_q,
            home_place => home.map(|(code, name)| context! { code, name }),
            max_photos => MAX_PHOTOS,
            signed_in => caller.is_some(),
        },
    );
    *resp.status_mut() = status;
    keep_pre_cookie(state, headers, &mut resp, pre.as_deref());
    resp
}

pub async fn submit_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::QueryParams(q): crate::extract::QueryParams<FormQuery>,
) -> Response {
    let caller = match optional_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let place_q = q.place_q.unwrap_or_default();
    let values = Values {
        kind: "help".into(),
        ..Values::default()
    };
    render(
        &state,
        &headers,
        caller.as_ref(),
        Form::Submit,
        values,
        None,
        &place_q,
    )
    .await
}

pub async fn repair_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::QueryParams(q): crate::extract::QueryParams<FormQuery>,
) -> Response {
    let caller = match optional_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let place_q = q.place_q.unwrap_or_default();
    render(
        &state,
        &headers,
        caller.as_ref(),
        Form::Repair,
        Values::default(),
        None,
        &place_q,
    )
    .await
}

/// A multipart form read into its text fields and its photos. Empty file parts (a
/// file input left empty) are skipped.
pub(in crate::web) struct Upload {
    pub(in crate::web) fields: BTreeMap<String, String>,
    pub(in crate::web) photos: Vec<Vec<u8>>,
}

/// Reads the upload; on failure says why (too large, or not a form at all).
pub(in crate::web) async fn read_upload(
    req: Request,
) -> Result<Upload, (StatusCode, &'static str)> {
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| (StatusCode::BAD_REQUEST, "not_multipart"))?;
    let mut up = Upload {
        fields: BTreeMap::new(),
        photos: Vec::new(),
    };
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        } else {
            (StatusCode::BAD_REQUEST, "bad_upload")
        }
    };
    while let Some(field) = mp.next_field().await.map_err(too_large)? {
        let name = field.name().unwrap_or_default().to_string();
        if field.file_name().is_some() || name == "photos" {
            let bytes = field.bytes().await.map_err(too_large)?;
            if bytes.is_empty() {
                continue;
            }
            // One more than allowed is enough for the desk to say "too many".
            if up.photos.len() <= MAX_PHOTOS {
                up.photos.push(bytes.to_vec());
            }
        } else {
            let text = field.text().await.map_err(too_large)?;
            up.fields.insert(name, text);
        }
    }
    Ok(up)
}

pub async fn submit(State(state): State<AppState>, req: Request) -> Response {
    take(state, req, Form::Submit).await
}

pub async fn repair(State(state): State<AppState>, req: Request) -> Response {
    take(state, req, Form::Repair).await
}

/// Validates a form, hands it to the desk and sends the browser to the tracking page.
async fn take(state: AppState, req: Request, form: Form) -> Response {
    let headers = req.headers().clone();
    let lang = lang(&headers);
    let caller = match optional_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let upload = match read_upload(req).await {
        Ok(u) => u,
        Err((StatusCode::PAYLOAD_TOO_LARGE, code)) => {
            let p = explain(
                lang,
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                "photos",
                "the upload is too large",
            );
            return render(
                &state,
                &headers,
                caller.as_ref(),
                form,
                Values::default(),
                Some(p),
                "",
            )
            .await;
        }
        Err(_) => return error_page(&state, &headers, StatusCode::BAD_REQUEST),
    };
    let values = Values::from_fields(&upload.fields);
    let given_csrf = upload.fields.get("csrf").map(String::as_str).unwrap_or("");
    if !public_csrf_ok(&state, &headers, caller.as_ref(), given_csrf) {
        let p = Problem {
            status: StatusCode::FORBIDDEN,
            message: tr(lang, "err_form_expired"),
            detail: "the CSRF token is missing or wrong".into(),
            field: None,
        };
        return render(&state, &headers, caller.as_ref(), form, values, Some(p), "").await;
    }
    let field = |k: &str| {
        upload
            .fields
            .get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let place_code = field("place_code").or_else(|| field("place"));
    let intake = match form {
        Form::Submit => Intake {
            kind: values.kind.clone(),
            category: values.category.clone(),
            // A rider's own report is a sentinel report (骑手哨兵), which earns points
            // once the owner unit accepts it (`api::points`).
            channel: if caller
                .as_ref()
                .is_some_and(|c| c.role() == lianxin_domain::role::Role::Rider)
            {
                "rider_sentinel"
            } else if from_phone(&headers) {
                "mobile"
            } else {
                "web"
            }
            .into(),
            description: values.description.clone(),
            place_code,
            reporter_name: field("reporter_name"),
            reporter_phone: field("reporter_phone"),
            photos: upload.photos,
            ..Intake::default()
        },
        Form::Repair => {
            let building = field("building");
            Intake {
                kind: "help".into(),
                category: "property_repair".into(),
                channel: "property_repair".into(),
                description: values.description.clone(),
                place_code,
                address: building.clone(),
                attributes: building.map(|b| serde_json::json!({ "building": b })),
                reporter_phone: field("reporter_phone"),
                photos: upload.photos,
                ..Intake::default()
            }
        }
    };
    let by = match &caller {
        Some(c) => Submitter {
            actor: c.actor().0,
            name: c.account.display_name.clone(),
            account_id: Some(c.account.id),
        },
        None => Submitter {
            actor: "public".into(),
            name: field("reporter_name").unwrap_or_else(|| tr(lang, "anonymous_reporter")),
            account_id: None,
        },
    };
    match state.desk.submit(intake, &by).await {
        Ok(s) => see_other(&format!("/t/{}?new=1", s.tracking_token)),
        Err(e) => match from_store(lang, e) {
            Ok(p) => render(&state, &headers, caller.as_ref(), form, values, Some(p), "").await,
            Err(e) => error_page(&state, &headers, e.status),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_told_apart_by_their_user_agent() {
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
                .parse()
                .unwrap(),
        );
        assert!(from_phone(&h));
        h.insert(
            header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
                .parse()
                .unwrap(),
        );
        assert!(!from_phone(&h));
        assert!(!from_phone(&HeaderMap::new()));
    }
}
