//! A reader for the little CBOR a pass uses (RFC 8949: definite-length arrays, maps,
//! byte strings and integers), borrowing from the input. A gate decodes three CBOR
//! items per scan; a general decoder building a value tree costs a good share of a
//! signature check, this costs next to nothing. Anything else is refused.

use crate::Deny;

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn byte(&mut self) -> Result<u8, Deny> {
        let b = *self.buf.get(self.pos).ok_or(Deny::Malformed)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Deny> {
        let end = self.pos.checked_add(n).ok_or(Deny::Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(Deny::Malformed)?;
        self.pos = end;
        Ok(s)
    }

    /// A head: (major type, argument).
    fn head(&mut self) -> Result<(u8, u64), Deny> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1F);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().map_err(|_| Deny::Malformed)?,
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().map_err(|_| Deny::Malformed)?,
            )),
            27 => u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| Deny::Malformed)?),
            // Indefinite lengths and reserved values: not in a pass.
            _ => return Err(Deny::Malformed),
        };
        Ok((major, arg))
    }

    pub fn array(&mut self) -> Result<u64, Deny> {
        match self.head()? {
            (4, n) => Ok(n),
            _ => Err(Deny::Malformed),
        }
    }

    pub fn map(&mut self) -> Result<u64, Deny> {
        match self.head()? {
            (5, n) => Ok(n),
            _ => Err(Deny::Malformed),
        }
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], Deny> {
        match self.head()? {
            (2, n) => self.take(usize::try_from(n).map_err(|_| Deny::Malformed)?),
            _ => Err(Deny::Malformed),
        }
    }

    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Deny> {
        self.bytes()?.try_into().map_err(|_| Deny::Malformed)
    }

    pub fn uint(&mut self) -> Result<u64, Deny> {
        match self.head()? {
            (0, n) => Ok(n),
            _ => Err(Deny::Malformed),
        }
    }

    /// A signed integer that fits an i64.
    pub fn int(&mut self) -> Result<i64, Deny> {
        match self.head()? {
            (0, n) => i64::try_from(n).map_err(|_| Deny::Malformed),
            (1, n) => i64::try_from(n)
                .map(|n| -1 - n)
                .map_err(|_| Deny::Malformed),
            _ => Err(Deny::Malformed),
        }
    }

    /// Nothing may follow the item.
    pub fn end(&self) -> Result<(), Deny> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Deny::Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::value::Value;
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    proptest! {
        #[test]
        fn reads_what_the_library_writes(b in proptest::collection::vec(any::<u8>(), 0..300), n in any::<u64>(), i in any::<i64>()) {
            let bytes = enc(&Value::Array(vec![
                Value::Bytes(b.clone()),
                Value::Integer(n.into()),
                Value::Integer(i.into()),
                Value::Map(vec![]),
            ]));
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.array().unwrap(), 4);
            prop_assert_eq!(r.bytes().unwrap(), &b[..]);
            prop_assert_eq!(r.uint().unwrap(), n);
            prop_assert_eq!(r.int().unwrap(), i);
            prop_assert_eq!(r.map().unwrap(), 0);
            prop_assert!(r.end().is_ok());
        }

        #[test]
        fn never_panics_on_junk(junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&junk);
            let _ = r.array().and_then(|_| r.bytes()).and_then(|_| r.uint());
        }
    }
}
