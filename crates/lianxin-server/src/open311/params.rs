//! Reading what GeoReport clients send: form-encoded bodies and query strings,
//! `attribute[CODE]` / `attribute[CODE][]` answers, comma lists and ISO 8601 times.
//!
//! Parsed by hand rather than with a serde extractor because the spec needs what
//! those make awkward: repeated keys, bracketed keys, the same parameter arriving in
//! the body or the query, and every failure answered in the spec's error format
//! instead of a framework rejection. An empty value counts as absent (the spec says
//! so for optional parameters, and clients send empty fields).

use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeMap;

/// Decoded `name=value` pairs, in the order they came.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a
/// stray `%` stays as it is and invalid UTF-8 becomes U+FFFD rather than an error.
fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(
            raw.split(|&b| b == b'&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| match pair.iter().position(|&b| b == b'=') {
                    Some(eq) => (decode(&pair[..eq]), decode(&pair[eq + 1..])),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    /// Appends `more` after these (so these win in [`Params::get`]).
    pub fn then(mut self, more: Params) -> Params {
        self.0.extend(more.0);
        self
    }

    /// The first non-empty value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// The answers to service attributes, by attribute code. `attribute[CODE]=v` and
    /// `attribute[CODE][]=v` both add to CODE's list; empty values are dropped.
    pub fn attributes(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix("attribute[") else {
                continue;
            };
            let Some((code, tail)) = rest.split_once(']') else {
                continue;
            };
            if code.is_empty() || !(tail.is_empty() || tail == "[]") {
                continue;
            }
            let v = v.trim();
            let answers = out.entry(code.to_string()).or_default();
            if !v.is_empty() {
                answers.push(v.to_string());
            }
        }
        out
    }
}

/// The items of a comma list, trimmed, empty items dropped.
pub fn comma_list(raw: &str) -> Vec<&str> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// An ISO 8601 date and time with a zone (`Z`, `+08:00` or `+0800`).
///
/// A client that forgot to percent-encode the `+` of an offset sends a space
/// (`…T00:00:00 08:00`); that is read as the `+` it meant, since a space can never
/// be valid there. Years are limited to 1–9999 so that date arithmetic on the
/// result (the 90-day window) can never overflow.
pub fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let try_parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| (1..=9999).contains(&t.year()))
    };
    let s = raw.trim();
    try_parse(s).or_else(|| {
        let (time, offset) = s.rsplit_once(' ')?;
        try_parse(&format!("{time}+{offset}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_like_browsers_send_them() {
        let p = Params::parse(b"a=1+2&b=%E8%B7%AF%E7%81%AF&c=&c=x&d&e=100%&f=%zz");
        assert_eq!(p.get("a"), Some("1 2"));
        assert_eq!(p.get("b"), Some("路灯"));
        assert_eq!(p.get("c"), Some("x"), "an empty value is absent");
        assert_eq!(p.get("d"), None);
        assert_eq!(p.get("e"), Some("100%"));
        assert_eq!(p.get("f"), Some("%zz"));
        assert_eq!(Params::parse(b"x=%FF").get("x"), Some("\u{FFFD}"));
    }

    #[test]
    fn body_wins_over_query() {
        let p = Params::parse(b"api_key=body").then(Params::parse(b"api_key=query&j=1"));
        assert_eq!(p.get("api_key"), Some("body"));
        assert_eq!(p.get("j"), Some("1"));
        let p = Params::parse(b"api_key=").then(Params::parse(b"api_key=query"));
        assert_eq!(p.get("api_key"), Some("query"));
    }

    #[test]
    fn attributes_take_both_spellings() {
        let p = Params::parse(
            b"attribute%5Bsize%5D=big&attribute[kinds][]=a&attribute[kinds][]=b&attribute[e]=&\
              attribute[]=x&attribute[bad]x=1&attributes[no]=1",
        );
        let a = p.attributes();
        assert_eq!(a["size"], vec!["big"]);
        assert_eq!(a["kinds"], vec!["a", "b"]);
        assert!(a["e"].is_empty());
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn times_need_a_zone() {
        let want = parse_time("2024-03-01T00:00:00Z").unwrap();
        assert_eq!(parse_time("2024-03-01T08:00:00+08:00"), Some(want));
        assert_eq!(parse_time("2024-03-01T08:00:00+0800"), Some(want));
        assert_eq!(parse_time("2024-03-01T08:00:00 08:00"), Some(want));
        assert_eq!(parse_time("2024-03-01T08:00:00.000+08:00"), Some(want));
        assert_eq!(parse_time("2024-03-01T08:00:00"), None);
        assert_eq!(parse_time("2024-03-01"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("262143-12-31T00:00:00+0000"), None);
        assert_eq!(parse_time("+262143-12-31T00:00:00+0000"), None);
    }

    #[test]
    fn comma_lists_skip_blanks() {
        assert_eq!(comma_list(" a, ,b,"), vec!["a", "b"]);
        assert!(comma_list("").is_empty());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Percent-encodes every byte, as a strict client would.
        fn encode(s: &str) -> String {
            s.bytes().map(|b| format!("%{b:02X}")).collect()
        }

        proptest! {
            /// Whatever arrives, parsing never panics, and every parser answers.
            #[test]
            fn any_bytes_parse(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
                let p = Params::parse(&raw);
                let _ = p.get("api_key");
                let _ = p.attributes();
                let text = String::from_utf8_lossy(&raw);
                let _ = parse_time(&text);
                let _ = comma_list(&text);
            }

            /// Encoded pairs decode to exactly what was sent, whatever the text.
            #[test]
            fn encoded_pairs_round_trip(
                pairs in proptest::collection::vec(("[a-z_]{1,10}", "\\PC{1,20}"), 1..6)
            ) {
                let body = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                let p = Params::parse(body.as_bytes());
                for (k, _) in &pairs {
                    let first = pairs.iter().find(|(k2, v2)| k2 == k && !v2.trim().is_empty());
                    prop_assert_eq!(p.get(k), first.map(|(_, v)| v.trim()));
                }
            }

            /// Attribute answers in either spelling land under their code.
            #[test]
            fn attributes_collect_both_spellings(code in "[a-z]{1,8}", a in "[a-z0-9]{1,8}", b in "[a-z0-9]{1,8}") {
                let body = format!("attribute[{code}]={a}&attribute%5B{code}%5D%5B%5D={b}");
                let got = Params::parse(body.as_bytes()).attributes();
                prop_assert_eq!(got.get(&code), Some(&vec![a, b]));
            }

            /// A time that parses is within the years date arithmetic can handle.
            #[test]
            fn parsed_times_are_in_range(s in "[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:?[0-9]{2})") {
                if let Some(t) = parse_time(&s) {
                    prop_assert!((1..=9999).contains(&t.year()));
                }
            }
        }
    }
}
