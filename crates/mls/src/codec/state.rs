//! A small writer/reader for the library's own persisted state (not a wire format of the
//! RFC): big-endian integers and length-prefixed byte strings, with every read checked
//! against the bytes present.

use crate::Error;
use crate::codec::{Decode, Encode};

/// Appends state fields to a buffer.
#[derive(Default)]
pub(crate) struct StateWriter {
    pub(crate) out: Vec<u8>,
}

impl StateWriter {
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> Result<(), Error> {
        let len = u32::try_from(v.len()).map_err(|_| Error::Encode("state field too long"))?;
        self.u32(len);
        self.out.extend_from_slice(v);
        Ok(())
    }
    /// A wire structure, length-prefixed.
    pub(crate) fn encoded<T: tls_codec::Serialize>(&mut self, v: &T) -> Result<(), Error> {
        self.bytes(&v.encode()?)
    }
    pub(crate) fn count(&mut self, n: usize) -> Result<(), Error> {
        self.u32(u32::try_from(n).map_err(|_| Error::Encode("too many state entries"))?);
        Ok(())
    }
}

/// Reads state fields; every read fails cleanly on truncated input.
pub(crate) struct StateReader<'a> {
    rest: &'a [u8],
}

fn corrupt(what: &'static str) -> Error {
    Error::StateCorrupt(what)
}

impl<'a> StateReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("boolean")),
        }
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    pub(crate) fn encoded<T: tls_codec::DeserializeBytes>(&mut self) -> Result<T, Error> {
        T::decode(self.bytes()?)
    }
    /// An entry count, bounded by the bytes left (each entry takes at least `min_entry`).
    pub(crate) fn count(&mut self, min_entry: usize) -> Result<usize, Error> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_entry.max(1)) > self.rest.len() {
            return Err(corrupt("entry count beyond the data"));
        }
        Ok(n)
    }
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(corrupt("trailing bytes"))
        }
    }
}
