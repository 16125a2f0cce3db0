//! Lianxin's records as GeoReport documents, and the rules a submission must meet.
//!
//! A demand category is an Open311 *service*; its `attributes` JSON holds the
//! service definition an admin wrote. A demand is a *service request*. Lianxin's
//! eight loop states collapse into the spec's two (`open`, `closed`); the precise
//! state goes into `status_notes`, in Chinese and English, so nothing is lost for a
//! client that shows it. Only what a resident could see on the public progress page
//! is written out — never the reporter's name, phone or account.

use super::format::Node;
use super::params::parse_time;
use chrono::{DateTime, Utc};
use lianxin_domain::calendar::SHANGHAI;
use lianxin_domain::demand::Status;
use lianxin_domain::intake::DemandKind;
use lianxin_store::demands::{Category, Demand};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Instants as the spec wants them: ISO 8601 with the zone, in China's time.
pub fn datetime(t: DateTime<Utc>) -> String {
    t.with_timezone(&SHANGHAI)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// One attribute of a service definition, read leniently from the admin's JSON:
/// a missing field takes the spec's obvious default rather than hiding the service.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeDef {
    /// `false`: information shown to the user, not a question.
    pub variable: bool,
    pub code: String,
    pub datatype: String,
    pub required: bool,
    pub datatype_description: Option<String>,
    pub order: i64,
    pub description: String,
    /// (key, name) for the list types.
    pub values: Vec<(String, String)>,
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_bool(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

/// The service's attributes in display order; entries without a code are skipped.
pub fn attribute_defs(c: &Category) -> Vec<AttributeDef> {
    let Some(list) = c.attributes.as_array() else {
        return Vec::new();
    };
    let mut defs: Vec<AttributeDef> = list
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let code = a.get("code").and_then(as_text).filter(|c| !c.is_empty())?;
            let values = a
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(|v| {
                            let key = v.get("key").and_then(as_text)?;
                            let name = v
                                .get("name")
                                .and_then(as_text)
                                .unwrap_or_else(|| key.clone());
                            Some((key, name))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(AttributeDef {
                variable: as_bool(a.get("variable"), true),
                code,
                datatype: a
                    .get("datatype")
                    .and_then(as_text)
                    .unwrap_or_else(|| "string".into()),
                required: as_bool(a.get("required"), false),
                datatype_description: a
                    .get("datatype_description")
                    .and_then(as_text)
                    .filter(|d| !d.is_empty()),
                order: a
                    .get("order")
                    .and_then(Value::as_i64)
                    .unwrap_or_else(|| i64::try_from(i + 1).unwrap_or(i64::MAX)),
                description: a.get("description").and_then(as_text).unwrap_or_default(),
                values,
            })
        })
        .collect();
    defs.sort_by_key(|d| d.order);
    defs
}

/// An entry of `GET services`.
pub fn service(c: &Category) -> Node {
    Node::Obj(vec![
        ("service_code", Node::text(&c.code)),
        ("service_name", Node::text(&c.name_zh)),
        ("description", Node::text(&c.description)),
        ("metadata", Node::Bool(!attribute_defs(c).is_empty())),
        // Every request is stored (and gets its id) at once.
        ("type", Node::text("realtime")),
        ("keywords", Node::text(&c.keywords)),
        ("group", Node::Null),
    ])
}

/// `GET services/{code}`.
pub fn definition(c: &Category) -> Node {
    let attrs = attribute_defs(c)
        .into_iter()
        .map(|a| {
            Node::Obj(vec![
                ("variable", Node::Bool(a.variable)),
                ("code", Node::Text(a.code)),
                ("datatype", Node::Text(a.datatype)),
                ("required", Node::Bool(a.required)),
                (
                    "datatype_description",
                    Node::opt_text(a.datatype_description),
                ),
                ("order", Node::Int(a.order)),
                ("description", Node::Text(a.description)),
                (
                    "values",
                    Node::List(
                        "value",
                        a.values
                            .into_iter()
                            .map(|(key, name)| {
                                Node::Obj(vec![
                                    ("key", Node::Text(key)),
                                    ("name", Node::Text(name)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    Node::Obj(vec![
        ("service_code", Node::text(&c.code)),
        ("attributes", Node::List("attribute", attrs)),
    ])
}

/// The longest answer to a `string` attribute (a `text` one may be as long as a
/// description).
const MAX_STRING_ANSWER: usize = 500;

/// Checks the answers against the service definition and returns what to store:
/// one string per attribute, a list for `multivaluelist`. Answers to attributes the
/// service does not define are ignored, so a client holding a slightly stale
/// definition is not refused for an attribute an admin has since removed.
pub fn check_answers(
    defs: &[AttributeDef],
    given: &BTreeMap<String, Vec<String>>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for d in defs.iter().filter(|d| d.variable) {
        let field = format!("attribute[{}]", d.code);
        let answers = given.get(&d.code).map(Vec::as_slice).unwrap_or_default();
        if answers.is_empty() {
            if d.required {
                let what = if d.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.description)
                };
                return Err(format!("{field} is required{what}"));
            }
            continue;
        }
        let known = |v: &str| d.values.iter().any(|(k, _)| k == v);
        let keys = || {
            d.values
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if d.datatype == "multivaluelist" {
            if let Some(bad) = answers.iter().find(|v| !known(v)) {
                return Err(format!("{field}: {bad:?} is not one of {}", keys()));
            }
            out.insert(
                d.code.clone(),
                Value::Array(answers.iter().cloned().map(Value::String).collect()),
            );
            continue;
        }
        let [one] = answers else {
            return Err(format!("{field} takes one value"));
        };
        match d.datatype.as_str() {
            "singlevaluelist" if !known(one) => {
                return Err(format!("{field}: {one:?} is not one of {}", keys()));
            }
            "number" if !one.parse::<f64>().is_ok_and(f64::is_finite) => {
                return Err(format!("{field} must be a number"));
            }
            "datetime" if parse_time(one).is_none() => {
                return Err(format!(
                    "{field} must be an ISO 8601 time with a zone, e.g. 2024-05-01T09:30:00+08:00"
                ));
            }
            "text" => {
                lianxin_domain::intake::text(
                    &field,
                    one,
                    lianxin_domain::intake::MAX_DESCRIPTION_CHARS,
                )
                .map_err(|e| e.message)?;
            }
            _ => {
                lianxin_domain::intake::text(&field, one, MAX_STRING_ANSWER)
                    .map_err(|e| e.message)?;
            }
        }
        out.insert(d.code.clone(), Value::String(one.clone()));
    }
    Ok(out)
}

/// The key under which a submitted `media_url` is kept with the attribute answers.
pub const MEDIA_URL_KEY: &str = "media_url";

/// A `media_url` worth keeping: an http(s) URL of sane length without spaces or
/// control characters (anything else could not be a link a client should follow).
pub fn check_media_url(raw: &str) -> Result<String, String> {
    let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
        && raw.len() <= 1000
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(raw.to_string())
    } else {
        Err("media_url must be an http or https URL of at most 1000 characters".into())
    }
}

/// Whether the demand may appear in the public GeoReport feed: only what was filed
/// through Open311 itself, where publication is the norm. Demands raised on a visit,
/// by the hotline or on the resident's own pages were told to officials, not to the
/// public, so their words and locations stay out. Whistle-blowing (举报) stays out
/// whatever its channel: publishing it could expose the person who reported.
pub fn is_public(d: &Demand) -> bool {
    d.kind != DemandKind::Report && d.channel == lianxin_domain::intake::Channel::Open311
}

/// The same rule as a store filter.
pub fn public_only(q: &mut lianxin_store::demands::DemandQuery) {
    q.channels = vec![lianxin_domain::intake::Channel::Open311];
    q.exclude_kinds = vec![DemandKind::Report];
}

/// The spec's two states. Answered demands stay open: the reporter may still
/// reject the answer and reopen the work.
pub fn open_closed(s: Status) -> &'static str {
    if s.is_terminal() {
        "closed"
    } else {
        "open"
    }
}

/// Lianxin's own state, for people: "已派单 Assigned · 承办: …".
pub fn status_notes(d: &Demand) -> String {
    let mut n = format!("{} {}", d.status.label_zh(), d.status.label_en());
    if d.status.has_handler() {
        if let Some(h) = &d.handler_name {
            n.push_str(&format!(" · 承办 Handled by: {h}"));
        }
    }
    if d.overdue && !d.status.is_terminal() {
        n.push_str(" · 已超时 Overdue");
    }
    if let (Status::Merged, Some(into)) = (d.status, d.merged_into) {
        n.push_str(&format!(" · 并入 Merged into: {into}"));
    }
    if matches!(d.status, Status::Answered | Status::Closed) {
        if let Some(a) = &d.answer {
            n.push_str(&format!(" · 答复 Answer: {a}"));
        }
    }
    n
}

/// A service request as `GET requests` shows it.
pub fn request(d: &Demand) -> Node {
    let media_url = d
        .attributes
        .as_ref()
        .and_then(|a| a.get(MEDIA_URL_KEY))
        .and_then(Value::as_str)
        .map(str::to_string);
    // Nothing is left to expect once the work is answered or closed.
    let expected =
        (!d.status.is_terminal() && d.status != Status::Answered).then(|| datetime(d.deadline));
    Node::Obj(vec![
        ("service_request_id", Node::text(d.id.to_string())),
        ("status", Node::text(open_closed(d.status))),
        ("status_notes", Node::text(status_notes(d))),
        ("service_name", Node::text(&d.category_name)),
        ("service_code", Node::text(&d.category)),
        ("description", Node::text(&d.description)),
        ("agency_responsible", Node::text(&d.owner_name)),
        ("service_notice", Node::Null),
        ("requested_datetime", Node::text(datetime(d.received_at))),
        ("updated_datetime", Node::text(datetime(d.updated_at))),
        ("expected_datetime", Node::opt_text(expected)),
        (
            "address",
            Node::text(d.address.clone().unwrap_or_else(|| d.place_name.clone())),
        ),
        ("address_id", Node::text(&d.place_code)),
        ("zipcode", Node::Null),
        ("lat", Node::opt_float(d.lat)),
        ("long", Node::opt_float(d.lon)),
        ("media_url", Node::opt_text(media_url)),
    ])
}

/// Joins the spec's split name: family name first and no space for Chinese
/// (张 + 三 → 张三), "first last" otherwise.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (Some(first), Some(last)) => {
            let cjk = |s: &str| s.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
            Some(if cjk(first) || cjk(last) {
                format!("{last}{first}")
            } else {
                format!("{first} {last}")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lianxin_domain::demand::Urgency;
    use serde_json::json;

    fn category(attributes: Value) -> Category {
        Category {
            code: "road".into(),
            name_zh: "道路".into(),
            name_en: "Roads".into(),
            description: String::new(),
            default_urgency: Urgency::Ordinary,
            attributes,
            keywords: String::new(),
            sort: 0,
            active: true,
        }
    }

    fn given(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    #[test]
    fn definitions_are_read_leniently_and_ordered() {
        let defs = attribute_defs(&category(json!([
            {"code": "b", "order": 2, "datatype": "singlevaluelist", "required": true,
             "values": [{"key": 1, "name": "one"}, {"key": "2"}]},
            {"code": "a", "order": 1},
            {"description": "no code: skipped"},
        ])));
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].code, "a");
        assert_eq!(defs[0].datatype, "string");
        assert!(defs[0].variable && !defs[0].required);
        assert_eq!(
            defs[1].values,
            vec![("1".into(), "one".into()), ("2".into(), "2".into())]
        );
        assert!(attribute_defs(&category(json!({"not": "a list"}))).is_empty());
    }

    #[test]
    fn answers_are_checked_against_the_definition() {
        let defs = attribute_defs(&category(json!([
            {"code": "kind", "datatype": "singlevaluelist", "required": true,
             "values": [{"key": "pit", "name": "坑"}, {"key": "crack", "name": "裂缝"}]},
            {"code": "tags", "datatype": "multivaluelist",
             "values": [{"key": "x", "name": "X"}, {"key": "y", "name": "Y"}]},
            {"code": "depth", "datatype": "number"},
            {"code": "seen", "datatype": "datetime"},
            {"code": "info", "variable": false, "required": true},
        ])));
        let ok = check_answers(
            &defs,
            &given(&[
                ("kind", &["pit"]),
                ("tags", &["x", "y"]),
                ("depth", &["0.5"]),
                ("other", &["?"]),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(ok),
            json!({"kind": "pit", "tags": ["x", "y"], "depth": "0.5"})
        );
        let err = |g| check_answers(&defs, &given(g)).unwrap_err();
        assert!(err(&[]).contains("attribute[kind] is required"));
        assert!(err(&[("kind", &["hole"])]).contains("not one of pit, crack"));
        assert!(err(&[("kind", &["pit", "crack"])]).contains("takes one value"));
        assert!(err(&[("kind", &["pit"]), ("tags", &["z"])]).contains("attribute[tags]"));
        assert!(err(&[("kind", &["pit"]), ("depth", &["NaN"])]).contains("number"));
        assert!(err(&[("kind", &["pit"]), ("seen", &["monday"])]).contains("ISO 8601"));
    }

    #[test]
    fn media_urls_must_be_web_links() {
        assert!(check_media_url("https://example.org/a.jpg").is_ok());
        assert!(check_media_url("javascript:alert(1)").is_err());
        assert!(check_media_url("https://example.org/a b").is_err());
    }

    #[test]
    fn names_join_by_script() {
        assert_eq!(full_name(Some("三"), Some("张")).as_deref(), Some("张三"));
        assert_eq!(
            full_name(Some("Ada"), Some("Lovelace")).as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(full_name(None, Some("张")).as_deref(), Some("张"));
        assert_eq!(full_name(None, None), None);
    }

    #[test]
    fn two_states_outside() {
        assert_eq!(open_closed(Status::Answered), "open");
        assert_eq!(open_closed(Status::Rejected), "closed");
        assert_eq!(open_closed(Status::Merged), "closed");
    }
}
