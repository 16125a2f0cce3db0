//! The two wire formats of GeoReport v2, from one document model.
//!
//! Every answer is built once as a [`Node`] tree and then written as JSON or XML, so
//! the two formats cannot drift apart. XML is written by hand: the documents are
//! small and flat, and escaping is the only part that needs care — every text is
//! escaped (`& < > " '`) and characters XML 1.0 forbids (most control characters)
//! are dropped, so no user text can open, close or break an element.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// The format a client chose with the path suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// Splits `name.json` / `name.xml` at the last dot; `None` when the suffix is
    /// missing or unknown (the spec knows only these two).
    pub fn split(file: &str) -> Option<(&str, Format)> {
        let (name, suffix) = file.rsplit_once('.')?;
        let format = match suffix {
            "json" => Format::Json,
            "xml" => Format::Xml,
            _ => return None,
        };
        (!name.is_empty()).then_some((name, format))
    }

    /// The format for an error on a path we could not split: XML only when the path
    /// asks for it, JSON otherwise (what most clients read).
    pub fn guess(path: &str) -> Format {
        if path.ends_with(".xml") {
            Format::Xml
        } else {
            Format::Json
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }
}

/// One value of an answer. Keys are fixed by the spec, hence `&'static str`.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// A list; in XML each item is an element named by the first field.
    List(&'static str, Vec<Node>),
    /// Fields in the order the spec lists them.
    Obj(Vec<(&'static str, Node)>),
}

impl Node {
    pub fn text(s: impl Into<String>) -> Node {
        Node::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Node {
        s.map_or(Node::Null, |s| Node::Text(s.into()))
    }

    pub fn opt_float(f: Option<f64>) -> Node {
        f.filter(|f| f.is_finite()).map_or(Node::Null, Node::Float)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_none(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Text(t) => s.serialize_str(t),
            Node::List(_, items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Appends `s` as XML character data: markup characters escaped, characters that
/// XML 1.0 does not allow dropped (a parser would reject the whole document).
pub fn escape_xml(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

fn write_xml(out: &mut String, tag: &str, node: &Node) {
    let leaf = |out: &mut String, text: &str| {
        out.push('<');
        out.push_str(tag);
        out.push('>');
        escape_xml(out, text);
        out.push_str("</");
        out.push_str(tag);
        out.push('>');
    };
    match node {
        Node::Null => {
            out.push('<');
            out.push_str(tag);
            out.push_str("/>");
        }
        Node::Bool(b) => leaf(out, if *b { "true" } else { "false" }),
        Node::Int(i) => leaf(out, &i.to_string()),
        Node::Float(f) => leaf(out, &f.to_string()),
        Node::Text(t) => leaf(out, t),
        Node::List(item, items) => {
            out.push('<');
            out.push_str(tag);
            out.push('>');
            for i in items {
                write_xml(out, item, i);
            }
            out.push_str("</");
            out.push_str(tag);
            out.push('>');
        }
        Node::Obj(fields) => {
            out.push('<');
            out.push_str(tag);
            out.push('>');
            for (k, v) in fields {
                write_xml(out, k, v);
            }
            out.push_str("</");
            out.push_str(tag);
            out.push('>');
        }
    }
}

/// The whole XML document with `root` as its element.
pub fn xml_document(root: &str, body: &Node) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    write_xml(&mut out, root, body);
    out
}

/// An answer: the XML root element's name and the body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub root: &'static str,
    pub body: Node,
}

impl Reply {
    pub fn ok(root: &'static str, body: Node) -> Reply {
        Reply {
            status: StatusCode::OK,
            root,
            body,
        }
    }

    pub fn render(&self, format: Format) -> Response {
        let text = match format {
            Format::Json => match serde_json::to_string(&self.body) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "open311: JSON rendering failed");
                    return Fail::internal().reply().render(format);
                }
            },
            Format::Xml => xml_document(self.root, &self.body),
        };
        let mut r = (self.status, text).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        // The body echoes client text; a browser must not guess it is HTML.
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        r
    }
}

/// A GeoReport error: 404 for a missing resource, 403 for a missing or bad
/// `api_key`, 400 for everything else the client can fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub status: StatusCode,
    pub description: String,
}

impl Fail {
    pub fn bad_request(description: impl Into<String>) -> Fail {
        Fail {
            status: StatusCode::BAD_REQUEST,
            description: description.into(),
        }
    }

    pub fn forbidden(description: impl Into<String>) -> Fail {
        Fail {
            status: StatusCode::FORBIDDEN,
            description: description.into(),
        }
    }

    pub fn not_found(description: impl Into<String>) -> Fail {
        Fail {
            status: StatusCode::NOT_FOUND,
            description: description.into(),
        }
    }

    pub fn internal() -> Fail {
        Fail {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            description: "internal error; see the server log".into(),
        }
    }

    /// The spec's error array. The code is a string: the spec's own JSON examples
    /// are not valid JSON numbers, and clients compare it as text anyway.
    pub fn reply(&self) -> Reply {
        Reply {
            status: self.status,
            root: "errors",
            body: Node::List(
                "error",
                vec![Node::Obj(vec![
                    ("code", Node::text(self.status.as_u16().to_string())),
                    ("description", Node::text(self.description.clone())),
                ])],
            ),
        }
    }
}

impl From<lianxin_store::StoreError> for Fail {
    fn from(e: lianxin_store::StoreError) -> Self {
        use lianxin_store::StoreError;
        match e {
            StoreError::NotFound { entity } => Fail::not_found(format!("{entity} not found")),
            StoreError::Invalid(v) => Fail::bad_request(v.message),
            StoreError::Conflict { message, .. } => Fail::bad_request(message),
            other => {
                tracing::error!(error = %other, "open311: storage failure");
                Fail::internal()
            }
        }
    }
}

/// Renders a handler's outcome in the client's format.
pub fn respond(format: Format, outcome: Result<Reply, Fail>) -> Response {
    match outcome {
        Ok(r) => r.render(format),
        Err(f) => f.reply().render(format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_picks_the_format() {
        assert_eq!(
            Format::split("services.json"),
            Some(("services", Format::Json))
        );
        assert_eq!(Format::split("a.b.xml"), Some(("a.b", Format::Xml)));
        assert_eq!(Format::split("services.html"), None);
        assert_eq!(Format::split("services"), None);
        assert_eq!(Format::split(".json"), None);
    }

    #[test]
    fn xml_text_cannot_break_out() {
        let mut out = String::new();
        escape_xml(&mut out, "a</d><evil>&\"'\u{1}\u{0}\u{FFFF}\tz");
        assert_eq!(out, "a&lt;/d&gt;&lt;evil&gt;&amp;&quot;&apos;\tz");
    }

    #[test]
    fn documents_nest_lists_and_objects() {
        let body = Node::List(
            "service",
            vec![Node::Obj(vec![
                ("service_code", Node::text("road")),
                ("metadata", Node::Bool(true)),
                ("group", Node::Null),
                ("n", Node::Int(3)),
            ])],
        );
        assert_eq!(
            xml_document("services", &body),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><services><service>\
             <service_code>road</service_code><metadata>true</metadata><group/><n>3</n>\
             </service></services>"
        );
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"[{"service_code":"road","metadata":true,"group":null,"n":3}]"#
        );
    }

    #[test]
    fn errors_carry_string_codes() {
        let r = Fail::forbidden("no key").reply();
        assert_eq!(
            serde_json::to_string(&r.body).unwrap(),
            r#"[{"code":"403","description":"no key"}]"#
        );
        assert_eq!(
            xml_document(r.root, &r.body),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><errors><error><code>403</code>\
             <description>no key</description></error></errors>"
        );
    }
}
