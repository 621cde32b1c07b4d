//! Wire encoding: the TLS presentation language of RFC 9420 §2.1, with `tls_codec`.
//!
//! Variable-length vectors (`<V>`) carry the MLS varint length (§2.1.2): `tls_codec`'s
//! `mls` feature limits them to 2^30 − 1 bytes and rejects non-minimal length encodings, and
//! its decoders never reserve memory for more elements than the input holds.

use crate::Error;
use crate::error::DecodeError;

mod bytes;
pub(crate) mod state;

pub use bytes::VarBytes;
#[doc(hidden)]
pub use tls_codec::{
    Deserialize as TlsDeserializeTrait, DeserializeBytes, Serialize as TlsSerializeTrait, Size,
};

/// Encoding of any wire structure to bytes.
pub trait Encode {
    /// The structure's wire encoding.
    fn encode(&self) -> Result<Vec<u8>, Error>;
}

impl<T: tls_codec::Serialize> Encode for T {
    fn encode(&self) -> Result<Vec<u8>, Error> {
        self.tls_serialize_detached()
            .map_err(|_| Error::Encode("a vector longer than 2^30 - 1 bytes"))
    }
}

/// Decoding of any wire structure from bytes.
pub trait Decode: Sized {
    /// Decodes one value that must span all of `bytes` (trailing bytes are an error).
    fn decode(bytes: &[u8]) -> Result<Self, Error>;
    /// Decodes one value from the front of `bytes` and returns the rest.
    fn decode_prefix(bytes: &[u8]) -> Result<(Self, &[u8]), Error>;
}

impl<T: tls_codec::DeserializeBytes> Decode for T {
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (value, rest) = T::tls_deserialize_bytes(bytes)?;
        if !rest.is_empty() {
            return Err(Error::Decode(DecodeError::TrailingBytes(rest.len())));
        }
        Ok(value)
    }
    fn decode_prefix(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        Ok(T::tls_deserialize_bytes(bytes)?)
    }
}

/// Reads an MLS varint (RFC 9420 §2.1.2) from the front of `bytes`: returns the value and
/// the number of bytes it took. Rejects the reserved `11` prefix and non-minimal encodings.
pub fn read_varint(bytes: &[u8]) -> Result<(u32, usize), Error> {
    let first = *bytes
        .first()
        .ok_or(Error::Decode(DecodeError::EndOfInput))?;
    let len = match first >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return Err(Error::Decode(DecodeError::VarintReservedPrefix)),
    };
    if bytes.len() < len {
        return Err(Error::Decode(DecodeError::EndOfInput));
    }
    let mut value = u32::from(first & 0x3f);
    for b in &bytes[1..len] {
        value = (value << 8) | u32::from(*b);
    }
    let minimal = match value {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        _ => 4,
    };
    if minimal != len {
        return Err(Error::Decode(DecodeError::NonMinimalVarint));
    }
    Ok((value, len))
}

/// Writes an MLS varint (RFC 9420 §2.1.2) in its minimal form.
pub fn write_varint(value: u32, out: &mut Vec<u8>) -> Result<(), Error> {
    match value {
        0..=0x3f => out.push(value as u8),
        0x40..=0x3fff => out.extend_from_slice(&(0x4000 | value as u16).to_be_bytes()),
        0x4000..=0x3fff_ffff => out.extend_from_slice(&(0x8000_0000 | value).to_be_bytes()),
        _ => return Err(Error::Encode("a length beyond 2^30 - 1")),
    }
    Ok(())
}

/// Whether `value` is one of the GREASE code points of RFC 9420 §13.5: `0x0A0A`, `0x1A1A`,
/// …, `0xEAEA` (`0xFAFA` is private use, not GREASE). They are registered in every open
/// registry (cipher suites, extension, proposal and credential types) and must be treated
/// like any other unknown value; the open newtypes keep them intact through a decode.
/// A GREASE value (RFC 9420 §13.5) chosen by `seed`: one of the fifteen reserved values.
pub fn grease(seed: u8) -> u16 {
    let nibble = u16::from(seed % 15);
    0x0a0a | (nibble << 12) | (nibble << 4)
}

/// Whether `value` is one of RFC 9420's GREASE values (§13.5).
pub fn is_grease(value: u16) -> bool {
    let [hi, lo] = value.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a && lo != 0xfa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values() {
        let all: Vec<u16> = (0..=u16::MAX).filter(|v| is_grease(*v)).collect();
        assert_eq!(all.len(), 15);
        assert_eq!(all[0], 0x0a0a);
        assert_eq!(all[14], 0xeaea);
        assert!(!is_grease(0xfafa) && !is_grease(0x0001) && !is_grease(0x0a1a));
    }

    #[test]
    fn grease_values_are_the_fifteen_reserved_ones() {
        let all: std::collections::BTreeSet<u16> = (0..=255u8).map(grease).collect();
        assert_eq!(all.len(), 15);
        assert!(all.iter().all(|v| is_grease(*v)));
        assert!(all.contains(&0x0a0a) && all.contains(&0xeaea) && !all.contains(&0xfafa));
    }

    #[test]
    fn varint_round_trip_and_rejections() {
        for v in [0u32, 1, 63, 64, 16383, 16384, (1 << 30) - 1] {
            let mut out = Vec::new();
            write_varint(v, &mut out).unwrap();
            assert_eq!(read_varint(&out).unwrap(), (v, out.len()));
        }
        assert!(write_varint(1 << 30, &mut Vec::new()).is_err());
        assert!(
            read_varint(&[0x40, 0x01]).is_err(),
            "1 in two bytes is not minimal"
        );
        assert!(read_varint(&[0x80, 0x00, 0x00, 0x3f]).is_err());
        assert!(
            read_varint(&[0xc0, 0, 0, 0, 0, 0, 0, 1]).is_err(),
            "0b11 prefix is reserved"
        );
        assert!(read_varint(&[0x80, 0x01]).is_err(), "truncated");
    }
}
