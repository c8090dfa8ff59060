//! Compact binary encoding of stored values: varints and length-prefixed strings.
//! Every value starts with a format byte so a layout change is detectable.

/// Appends values to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// A writer without a format byte, for parts embedded in a larger value.
    pub(crate) fn bare() -> Writer {
        Writer { buf: Vec::new() }
    }

    /// Appends bytes as they are.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn new(format: u8) -> Writer {
        Writer { buf: vec![format] }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub(crate) fn uvar(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }

    pub(crate) fn ivar(&mut self, v: i64) -> &mut Self {
        self.uvar(((v << 1) ^ (v >> 63)) as u64)
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.uvar(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub(crate) fn u64_fixed(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// A value that could not be decoded: the store is damaged or of another layout.
#[derive(Debug, thiserror::Error)]
#[error("undecodable stored value: {0}")]
pub struct DecodeError(pub &'static str);

/// Reads values written by [`Writer`].
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading a value whose format byte must be `format`.
    pub(crate) fn new(buf: &'a [u8], format: u8) -> Result<Reader<'a>, DecodeError> {
        match buf.split_first() {
            Some((&f, rest)) if f == format => Ok(Reader { buf: rest }),
            Some(_) => Err(DecodeError("unknown value format")),
            None => Err(DecodeError("empty value")),
        }
    }

    /// Reads a part written by [`Writer::bare`].
    pub(crate) fn bare(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes, as they are.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError("length past end"));
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    /// A string's bytes, validated as UTF-8 but not copied.
    pub(crate) fn str_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.str_len()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| DecodeError("bad UTF-8"))?;
        Ok(b)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError("truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn uvar(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }

    pub(crate) fn ivar(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvar()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn str_len(&mut self) -> Result<usize, DecodeError> {
        let n = self.uvar()? as usize;
        if n > self.buf.len() {
            return Err(DecodeError("length past end"));
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.str_len()?;
        let (s, rest) = self.buf.split_at(n);
        self.buf = rest;
        String::from_utf8(s.to_vec()).map_err(|_| DecodeError("bad UTF-8"))
    }

    pub(crate) fn u64_fixed(&mut self) -> Result<u64, DecodeError> {
        if self.buf.len() < 8 {
            return Err(DecodeError("truncated"));
        }
        let (b, rest) = self.buf.split_at(8);
        self.buf = rest;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.buf.is_empty()
    }

    /// Count of items to follow, bounded by the bytes left (each item takes at least one).
    pub(crate) fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.uvar()? as usize;
        if n > self.buf.len() {
            return Err(DecodeError("count past end"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut w = Writer::new(7);
        w.uvar(0)
            .uvar(300)
            .ivar(-5)
            .ivar(i64::MIN)
            .str("Văn phòng")
            .u64_fixed(u64::MAX);
        let mut r = Reader::new(&w.buf, 7).unwrap();
        assert_eq!(r.uvar().unwrap(), 0);
        assert_eq!(r.uvar().unwrap(), 300);
        assert_eq!(r.ivar().unwrap(), -5);
        assert_eq!(r.ivar().unwrap(), i64::MIN);
        assert_eq!(r.str().unwrap(), "Văn phòng");
        assert_eq!(r.u64_fixed().unwrap(), u64::MAX);
        assert!(r.u8().is_err());
    }

    #[test]
    fn wrong_format_and_garbage_are_errors_not_panics() {
        assert!(Reader::new(&[1, 2], 2).is_err());
        assert!(Reader::new(&[], 2).is_err());
        let mut r = Reader::new(&[2, 0xff, 0xff], 2).unwrap();
        assert!(r.str().is_err());
    }
}
