//! What a demand is made of when it comes in (收集): its kind, the channel it came by,
//! the reporter's words and photos, and the reporter's rating later on.
//!
//! The loop itself (what may happen next) is in [`crate::demand`]; this module only
//! validates input, so the API, the web forms, Open311 and imports accept and refuse
//! exactly the same things.

use crate::demand::Rating;
use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// The five kinds of demand (诉求类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandKind {
    /// 咨询
    Consultation,
    /// 求助
    Help,
    /// 投诉
    Complaint,
    /// 举报
    Report,
    /// 建议
    Suggestion,
}

impl DemandKind {
    pub const ALL: [DemandKind; 5] = [
        DemandKind::Consultation,
        DemandKind::Help,
        DemandKind::Complaint,
        DemandKind::Report,
        DemandKind::Suggestion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DemandKind::Consultation => "consultation",
            DemandKind::Help => "help",
            DemandKind::Complaint => "complaint",
            DemandKind::Report => "report",
            DemandKind::Suggestion => "suggestion",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            DemandKind::Consultation => "咨询",
            DemandKind::Help => "求助",
            DemandKind::Complaint => "投诉",
            DemandKind::Report => "举报",
            DemandKind::Suggestion => "建议",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        parse_in(&DemandKind::ALL, s, DemandKind::as_str).ok_or_else(|| {
            ValidationError::new(
                "kind",
                "invalid_kind",
                "kind must be consultation, help, complaint, report or suggestion",
            )
        })
    }
}

/// How a demand reached the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Raised in person, on a visit or at a service counter (走访/窗口).
    Visit,
    /// The web site.
    Web,
    /// Taken down by a hotline operator (热线).
    Hotline,
    /// The resident's phone page.
    Mobile,
    /// A delivery rider acting as a sentinel (骑手哨兵).
    RiderSentinel,
    /// The one-tap repair form that goes to the property company (物业报修).
    PropertyRepair,
    /// An Open311 GeoReport v2 client.
    Open311,
    /// A bulk import.
    Import,
}

impl Channel {
    pub const ALL: [Channel; 8] = [
        Channel::Visit,
        Channel::Web,
        Channel::Hotline,
        Channel::Mobile,
        Channel::RiderSentinel,
        Channel::PropertyRepair,
        Channel::Open311,
        Channel::Import,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Visit => "visit",
            Channel::Web => "web",
            Channel::Hotline => "hotline",
            Channel::Mobile => "mobile",
            Channel::RiderSentinel => "rider_sentinel",
            Channel::PropertyRepair => "property_repair",
            Channel::Open311 => "open311",
            Channel::Import => "import",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Channel::Visit => "走访",
            Channel::Web => "网站",
            Channel::Hotline => "热线",
            Channel::Mobile => "手机",
            Channel::RiderSentinel => "骑手哨兵",
            Channel::PropertyRepair => "物业报修",
            Channel::Open311 => "Open311",
            Channel::Import => "导入",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        parse_in(&Channel::ALL, s, Channel::as_str).ok_or_else(|| {
            ValidationError::new(
                "channel",
                "invalid_channel",
                "channel must be visit, web, hotline, mobile, rider_sentinel, property_repair, open311 or import",
            )
        })
    }
}

impl Rating {
    pub const ALL: [Rating; 3] = [
        Rating::Satisfied,
        Rating::BasicallySatisfied,
        Rating::Unsatisfied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Satisfied => "satisfied",
            Rating::BasicallySatisfied => "basically_satisfied",
            Rating::Unsatisfied => "unsatisfied",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Rating::Satisfied => "满意",
            Rating::BasicallySatisfied => "基本满意",
            Rating::Unsatisfied => "不满意",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        parse_in(&Rating::ALL, s, Rating::as_str).ok_or_else(|| {
            ValidationError::new(
                "rating",
                "invalid_rating",
                "rating must be satisfied, basically_satisfied or unsatisfied",
            )
        })
    }
}

fn parse_in<T: Copy>(all: &[T], s: &str, name: fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|v| name(*v) == s.trim())
}

/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// The longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 120;

/// A free-text field, trimmed, non-empty, at most `max` characters, without control
/// characters other than line breaks and tabs.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if t.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new(
            field,
            "control_characters",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(t.to_string())
}

/// A title from the description when none is given: its first line, shortened.
pub fn title_from(description: &str) -> String {
    let first = description.lines().next().unwrap_or_default().trim();
    let mut t: String = first.chars().take(40).collect();
    if first.chars().count() > 40 {
        t.push('…');
    }
    t
}

/// The largest photo accepted, in bytes.
pub const MAX_PHOTO_BYTES: usize = 5 * 1024 * 1024;
/// The most photos one demand may carry.
pub const MAX_PHOTOS: usize = 6;

/// The image formats a photo may be in, recognised by their leading bytes (a file's
/// name or declared type is not trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
    Webp,
}

impl PhotoFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "image/jpeg",
            PhotoFormat::Png => "image/png",
            PhotoFormat::Webp => "image/webp",
        }
    }

    /// Checks a photo: an image we accept, not empty, not too large.
    pub fn check(bytes: &[u8]) -> Result<PhotoFormat, ValidationError> {
        if bytes.len() > MAX_PHOTO_BYTES {
            return Err(ValidationError::new(
                "photos",
                "photo_too_large",
                format!(
                    "a photo may be at most {} MB",
                    MAX_PHOTO_BYTES / 1024 / 1024
                ),
            ));
        }
        let format = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(PhotoFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(PhotoFormat::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(PhotoFormat::Webp)
        } else {
            None
        };
        format.ok_or_else(|| {
            ValidationError::new(
                "photos",
                "not_an_image",
                "a photo must be a JPEG, PNG or WebP image",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in DemandKind::ALL {
            assert_eq!(DemandKind::parse(k.as_str()).unwrap(), k);
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), c);
        }
        for r in Rating::ALL {
            assert_eq!(Rating::parse(r.as_str()).unwrap(), r);
        }
        assert_eq!(DemandKind::parse("bogus").unwrap_err().code, "invalid_kind");
        assert_eq!(Rating::parse("").unwrap_err().field, "rating");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("description", "  路灯坏了 ", 10).unwrap(), "路灯坏了");
        assert_eq!(text("description", "   ", 10).unwrap_err().code, "required");
        assert_eq!(
            text("description", "一二三四五六", 5).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            text("description", "a\u{0}b", 5).unwrap_err().code,
            "control_characters"
        );
        assert!(text("description", "第一行\n第二行", 50).is_ok());
    }

    #[test]
    fn titles_come_from_the_first_line() {
        assert_eq!(title_from("楼道灯不亮\n已经一周了"), "楼道灯不亮");
        assert!(title_from(&"长".repeat(60)).ends_with('…'));
    }

    #[test]
    fn photos_are_sniffed_not_trusted() {
        assert_eq!(
            PhotoFormat::check(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).unwrap(),
            PhotoFormat::Jpeg
        );
        assert_eq!(
            PhotoFormat::check(b"\x89PNG\r\n\x1a\n....").unwrap(),
            PhotoFormat::Png
        );
        assert_eq!(
            PhotoFormat::check(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(),
            PhotoFormat::Webp
        );
        assert_eq!(
            PhotoFormat::check(b"<svg onload=alert(1)>")
                .unwrap_err()
                .code,
            "not_an_image"
        );
        assert_eq!(PhotoFormat::check(b"").unwrap_err().code, "not_an_image");
        let mut big = vec![0xFF, 0xD8, 0xFF];
        big.resize(MAX_PHOTO_BYTES + 1, 0);
        assert_eq!(
            PhotoFormat::check(&big).unwrap_err().code,
            "photo_too_large"
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Accepted text is trimmed, non-empty, within the limit and free of control
            /// characters other than line breaks and tabs; nothing panics.
            #[test]
            fn accepted_text_keeps_the_rules(raw in "\\PC{0,60}|[\\x00-\\x20a-z一-龥]{0,60}", max in 1usize..50) {
                if let Ok(t) = text("f", &raw, max) {
                    prop_assert_eq!(t.trim(), t.as_str());
                    prop_assert!(!t.is_empty());
                    prop_assert!(t.chars().count() <= max);
                    prop_assert!(!t.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
                }
            }

            /// Any bytes are either refused or a format whose magic bytes they start with.
            #[test]
            fn photo_check_matches_magic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                match PhotoFormat::check(&bytes) {
                    Ok(PhotoFormat::Jpeg) => prop_assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF])),
                    Ok(PhotoFormat::Png) => prop_assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n")),
                    Ok(PhotoFormat::Webp) => prop_assert!(&bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP"),
                    Err(e) => prop_assert_eq!(e.code, "not_an_image"),
                }
            }

            /// Titles made from any description are short and never empty when the
            /// first line has text.
            #[test]
            fn titles_are_bounded(d in "\\PC{1,200}") {
                let t = title_from(&d);
                prop_assert!(t.chars().count() <= 41);
                if !d.lines().next().unwrap_or_default().trim().is_empty() {
                    prop_assert!(!t.is_empty());
                }
            }
        }
    }
}
