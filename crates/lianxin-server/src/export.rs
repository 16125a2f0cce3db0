//! Downloads for spreadsheets: CSV that Excel and WPS open as UTF-8 and that never
//! smuggles a formula. Every export page goes through here.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// One CSV field: quoted when it must be, and with a leading `= + - @` defused, since
/// spreadsheet programs would read it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A table as CSV: UTF-8 with a byte-order mark, CRLF line ends.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        out.push_str(
            &row.iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A download response: never cached, saved as `name`.
pub fn download(body: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_quotes_and_no_formulas() {
        let text = String::from_utf8(csv(
            &["名称".into(), "n".into()],
            &[vec!["=HYPERLINK(\"x\")".into(), "a,b".into()]],
        ))
        .unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{text}");
        assert!(text.contains("\"a,b\"\r\n"));
    }
}
