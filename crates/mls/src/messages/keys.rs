//! Opaque key, reference and MAC values (RFC 9420 §5.1.1, §5.2, §6.1).

use crate::codec::VarBytes;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

macro_rules! opaque_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Eq,
            Hash,
            TlsSerialize,
            TlsDeserialize,
            TlsDeserializeBytes,
            TlsSize,
        )]
        pub struct $name(pub VarBytes);

        impl $name {
            /// The raw bytes, without the length prefix.
            pub fn as_slice(&self) -> &[u8] {
                self.0.as_slice()
            }
        }

        impl From<Vec<u8>> for $name {
            fn from(v: Vec<u8>) -> Self {
                Self(VarBytes::new(v))
            }
        }
    };
}

opaque_newtype!(
    /// `opaque HPKEPublicKey<V>;` — RFC 9420 §5.1.1.
    HpkePublicKey
);
opaque_newtype!(
    /// `opaque SignaturePublicKey<V>;` — RFC 9420 §5.1.1.
    SignaturePublicKey
);
opaque_newtype!(
    /// `HashReference KeyPackageRef;` (`opaque HashReference<V>`) — RFC 9420 §5.2.
    KeyPackageRef
);
opaque_newtype!(
    /// `HashReference ProposalRef;` (`opaque HashReference<V>`) — RFC 9420 §5.2.
    ProposalRef
);
opaque_newtype!(
    /// `opaque MAC<V>;` — RFC 9420 §6.1: confirmation and membership tags.
    Mac
);

/// The confirmation tag of a commit or GroupInfo — RFC 9420 §6.1, §8.2.
pub type ConfirmationTag = Mac;
/// The membership tag of a PublicMessage — RFC 9420 §6.2.
pub type MembershipTag = Mac;
