//! `opaque data<V>`: a variable-length byte string with an MLS varint length (RFC 9420
//! §2.1.2), as every wire structure's byte fields hold it.

use std::fmt;
use tls_codec::VLBytes;

/// A variable-length byte string of a wire structure (`opaque data<V>`, RFC 9420 §2.1.2).
///
/// Our own type, so that no dependency's type appears in the public API; it converts from
/// and to `Vec<u8>` and reads as a slice.
///
/// ```
/// use conclave_mls::codec::{Decode, Encode, VarBytes};
/// let v = VarBytes::from(b"hi".to_vec());
/// assert_eq!(v.encode()?, [2, b'h', b'i']);
/// assert_eq!(VarBytes::decode(&[2, b'h', b'i'])?.as_slice(), b"hi");
/// # Ok::<(), conclave_mls::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarBytes(VLBytes);

impl VarBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(VLBytes::new(bytes))
    }
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
    /// The bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.0.into()
    }
    /// How many bytes.
    pub fn len(&self) -> usize {
        self.0.as_slice().len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }
}

impl Default for VarBytes {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl fmt::Debug for VarBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<Vec<u8>> for VarBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<&[u8]> for VarBytes {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }
}

impl From<VarBytes> for Vec<u8> {
    fn from(bytes: VarBytes) -> Self {
        bytes.into_vec()
    }
}

impl AsRef<[u8]> for VarBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl tls_codec::Size for VarBytes {
    fn tls_serialized_len(&self) -> usize {
        self.0.tls_serialized_len()
    }
}

impl tls_codec::Serialize for VarBytes {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        self.0.tls_serialize(writer)
    }
}

impl tls_codec::Deserialize for VarBytes {
    fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        VLBytes::tls_deserialize(bytes).map(Self)
    }
}

impl tls_codec::DeserializeBytes for VarBytes {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        VLBytes::tls_deserialize_bytes(bytes).map(|(v, rest)| (Self(v), rest))
    }
}
