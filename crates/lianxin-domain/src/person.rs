//! People's personal data as validated values.
//!
//! Phone and ID-card numbers are personal information under PIPL. These types parse
//! them, and give the only forms that may leave the storage layer: a masked phone
//! (`138****5678`) for screens, and keyed hashes (see [`crate::pii`]) for lookups.
//! Neither type implements `Display` or `Serialize`, so a raw number cannot slip into
//! a log line or a JSON body by accident; the `Debug` forms are redacted too.

use crate::ValidationError;
use std::fmt;

/// A mainland mobile number (11 digits starting 1[3-9]) or a landline with area code.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let mut digits: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        if let Some(rest) = digits.strip_prefix("+86") {
            digits = rest.to_string();
        } else if digits.len() == 13 && digits.starts_with("86") {
            digits = digits[2..].to_string();
        }
        let err = || {
            ValidationError::new(
                "phone",
                "invalid_phone",
                "phone must be an 11-digit mobile number or a landline with its area code",
            )
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let b = digits.as_bytes();
        let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
        let landline = (10..=12).contains(&b.len()) && b[0] == b'0';
        if mobile || landline {
            Ok(PhoneNumber(digits))
        } else {
            Err(err())
        }
    }

    /// The form shown on screens: the first three and last four digits.
    pub fn masked(&self) -> String {
        let s = &self.0;
        if s.len() == 11 && s.starts_with('1') {
            format!("{}****{}", &s[..3], &s[7..])
        } else {
            let keep = s.len().saturating_sub(2);
            format!("{}****{}", &s[..4.min(keep)], &s[keep..])
        }
    }

    /// The normalised digits, for hashing and encryption only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// An 18-character resident identity card number (GB 11643) with a valid check digit.
#[derive(Clone, PartialEq, Eq)]
pub struct IdCardNumber(String);

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [u8; 11] = *b"10X98765432";

impl IdCardNumber {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        let err = |msg: &str| ValidationError::new("id_card", "invalid_id_card", msg);
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
            return Err(err(
                "ID-card number must be 17 digits and a check character",
            ));
        }
        let sum: u32 = b[..17]
            .iter()
            .zip(ID_WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        if ID_CHECK[(sum % 11) as usize] != b[17] {
            return Err(err("ID-card number has a wrong check character"));
        }
        Ok(IdCardNumber(s))
    }

    /// The normalised number, for keyed hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Computes the check character for 17 leading digits (used to build test data).
    pub fn check_char(first17: &str) -> Option<char> {
        let b = first17.as_bytes();
        if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sum: u32 = b
            .iter()
            .zip(ID_WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        Some(ID_CHECK[(sum % 11) as usize] as char)
    }
}

impl fmt::Debug for IdCardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdCardNumber(<redacted>)")
    }
}

/// A person's name: 1 to 50 characters, no control characters.
pub fn parse_person_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::new("name", "required", "name is required"));
    }
    if name.chars().count() > 50 || name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "name must be at most 50 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phones_parse_and_mask() {
        let p = PhoneNumber::parse("+86 138-1234-5678").unwrap();
        assert_eq!(p.expose(), "13812345678");
        assert_eq!(p.masked(), "138****5678");
        assert_eq!(format!("{p:?}"), "PhoneNumber(138****5678)");
        let l = PhoneNumber::parse("0472-5123456").unwrap();
        assert_eq!(l.masked(), "0472****56");
        for bad in ["", "12345", "12812345678", "1381234567a", "138123456789"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_cards_check_digit() {
        // A well-known sample number from GB 11643 documentation.
        assert!(IdCardNumber::parse("11010519491231002X").is_ok());
        assert!(IdCardNumber::parse("11010519491231002x").is_ok());
        assert!(IdCardNumber::parse("110105194912310021").is_err());
        assert!(IdCardNumber::parse("1101051949123100").is_err());
        let id = IdCardNumber::parse("11010519491231002X").unwrap();
        assert!(!format!("{id:?}").contains("1101"));
    }

    proptest! {
        #[test]
        fn any_17_digits_plus_check_char_parse(d in "[0-9]{17}") {
            let c = IdCardNumber::check_char(&d).unwrap();
            let full = format!("{d}{c}");
            prop_assert!(IdCardNumber::parse(&full).is_ok());
        }

        #[test]
        fn masked_mobile_never_shows_middle_digits(rest in "[3-9][0-9]{9}") {
            let raw = format!("1{rest}");
            let p = PhoneNumber::parse(&raw).unwrap();
            let m = p.masked();
            prop_assert_eq!(m.len(), 11);
            prop_assert_eq!(&m[3..7], "****");
        }

        #[test]
        fn phone_parse_never_panics(s in "\\PC*") {
            let _ = PhoneNumber::parse(&s);
        }
    }
}
