//! Base45 (RFC 9285): bytes as text in the 45 characters of QR alphanumeric mode,
//! so a pass fits a smaller QR than base64 would (QR packs two alphanumeric
//! characters in 11 bits).

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

const NOT_BASE45: u8 = 0xFF;

/// Each byte's value in the alphabet, or `NOT_BASE45`: a gate decodes every scan.
const VALUE: [u8; 256] = {
    let mut t = [NOT_BASE45; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Why a text is not Base45.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base45Error {
    #[error("a character outside the Base45 alphabet")]
    BadCharacter,
    #[error("a length that no byte string encodes to")]
    BadLength,
    #[error("a group whose value does not fit its bytes")]
    Overflow,
}

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 / 2 + 2);
    let digit = |v: u32| ALPHABET[v as usize] as char;
    for pair in bytes.chunks(2) {
        match *pair {
            [a, b] => {
                let n = u32::from(a) * 256 + u32::from(b);
                out.push(digit(n % 45));
                out.push(digit(n / 45 % 45));
                out.push(digit(n / 2025));
            }
            [a] => {
                let n = u32::from(a);
                out.push(digit(n % 45));
                out.push(digit(n / 45));
            }
            _ => unreachable!("chunks(2) yields one or two bytes"),
        }
    }
    out
}

pub fn decode(text: &str) -> Result<Vec<u8>, Base45Error> {
    let values: Vec<u32> = text
        .bytes()
        .map(|c| match VALUE[usize::from(c)] {
            NOT_BASE45 => Err(Base45Error::BadCharacter),
            v => Ok(u32::from(v)),
        })
        .collect::<Result<_, _>>()?;
    if values.len() % 3 == 1 {
        return Err(Base45Error::BadLength);
    }
    let mut out = Vec::with_capacity(values.len() * 2 / 3);
    for group in values.chunks(3) {
        match *group {
            [c, d, e] => {
                let n = c + d * 45 + e * 2025;
                if n > 0xFFFF {
                    return Err(Base45Error::Overflow);
                }
                out.push((n >> 8) as u8);
                out.push((n & 0xFF) as u8);
            }
            [c, d] => {
                let n = c + d * 45;
                if n > 0xFF {
                    return Err(Base45Error::Overflow);
                }
                out.push(n as u8);
            }
            _ => unreachable!("a length of 1 mod 3 was refused above"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_9285_examples() {
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").unwrap(), b"ietf!");
        assert_eq!(decode("GGW").unwrap_err(), Base45Error::Overflow);
        assert_eq!(decode("A").unwrap_err(), Base45Error::BadLength);
        assert_eq!(decode("ab").unwrap_err(), Base45Error::BadCharacter);
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn decoding_any_text_never_panics(text in ".{0,200}") {
            let _ = decode(&text);
        }
    }
}
