//! [`Bytes`]: opaque bytes on the wire of both servers, carried in JSON as unpadded base64url
//! (RFC 4648 §5), so ids fit in URL paths as they are.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Opaque bytes, carried in JSON as an unpadded base64url string.
///
/// ```
/// use conclave_api::Bytes;
/// let b = Bytes(vec![0xfb, 0xff]);
/// assert_eq!(b.to_base64(), "-_8");
/// assert_eq!(Bytes::from_base64("-_8"), Some(b));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The base64url text of these bytes (also used for ids in paths).
    pub fn to_base64(&self) -> String {
        encode_b64(&self.0)
    }

    /// Parses unpadded base64url text.
    pub fn from_base64(text: &str) -> Option<Self> {
        decode_b64(text).map(Bytes)
    }
}

/// Encodes `bytes` as base64url without padding (RFC 4648 §5).
pub fn encode_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` if `text` is not exactly that.
pub fn decode_b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", self.to_base64())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl utoipa::PartialSchema for Bytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("bytes, base64url without padding (RFC 4648 §5)"))
            .pattern(Some("^[A-Za-z0-9_-]*$"))
            .into()
    }
}

impl ToSchema for Bytes {}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Bytes::from_base64(&text)
            .ok_or_else(|| serde::de::Error::custom("invalid base64url (no padding)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let text = encode_b64(&data);
            assert!(!text.contains('='));
            assert_eq!(decode_b64(&text), Some(data));
        }
        assert_eq!(decode_b64("a+b/"), None);
        assert_eq!(decode_b64("AA=="), None);
    }
}
