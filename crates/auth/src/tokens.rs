//! Privacy Pass issuance: the AS as the issuer of publicly verifiable tokens (RFC 9578 §6,
//! token type 0x0002, blind RSA with SHA-384 and PSS, RFC 9474).
//!
//! A registered device sends blinded token requests; the AS signs them blind and counts
//! them against its user's budget. The Delivery Service verifies the finished tokens with
//! the public key alone (it holds no secret of the AS), so the two servers share nothing
//! and an operator of both cannot tell which user paid for which mailbox, pool or group:
//! the AS sees only blinded messages, the DS only unblinded tokens (RFC 9576 §3.2's split
//! of issuer and origin; RFC 9750 §8.4.1).
//!
//! The protocol messages and the blind signature are `conclave-privacy-pass`'s; this module
//! keeps the key (a file in the AS's key directory, mode 0600, like the CA key).

use crate::api;
use conclave_privacy_pass::{Error as PpError, IssuerKey, TOKEN_TYPE};
use std::path::Path;

/// Why the issuer key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file does not hold a 2048-bit RSA private key (PKCS#8 DER).
    #[error("{0}: not a 2048-bit RSA private key")]
    Malformed(String),
    /// Generating or encoding the key failed.
    #[error("issuer key: {0}")]
    Crypto(PpError),
}

/// Why one token request was refused (RFC 9578 §6.3).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// It is not a `TokenRequest` of type 0x0002 of the right size.
    #[error("not a token request of type 2")]
    Malformed,
    /// It names a key this issuer does not hold (its truncated key id).
    #[error("the request names another issuer key")]
    UnknownKey,
    /// The blinded message is not a value the key can sign.
    #[error("the blinded message is out of range")]
    Unsignable,
}

/// The issuer key.
#[derive(Debug)]
pub struct Issuer {
    key: IssuerKey,
}

impl Issuer {
    /// The key in `path` (PKCS#8 DER), created there (mode 0600) if the file does not
    /// exist.
    pub fn load_or_create(path: &Path) -> Result<Self, IssuerError> {
        let io = |source| IssuerError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(der) => Ok(Self {
                key: IssuerKey::from_pkcs8_der(&der)
                    .map_err(|_| IssuerError::Malformed(path.display().to_string()))?,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = IssuerKey::generate().map_err(IssuerError::Crypto)?;
                let der = key.to_pkcs8_der().map_err(IssuerError::Crypto)?;
                match crate::signer::write_secret_file(path, &der) {
                    Ok(()) => Ok(Self { key }),
                    // Another node sharing the key directory created it first: use its key,
                    // so that every node signs under the one key the DS trusts.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A fresh key that is kept nowhere (tests; a deployment uses [`Self::load_or_create`]).
    pub fn ephemeral() -> Result<Self, IssuerError> {
        Ok(Self {
            key: IssuerKey::generate().map_err(IssuerError::Crypto)?,
        })
    }

    /// The public key as the DS and clients take it (RFC 9578 §6.5 encoding).
    pub fn token_key(&self) -> &[u8] {
        self.key.public_key().spki()
    }

    /// The issuer directory (RFC 9578 §4).
    pub fn directory(&self) -> api::IssuerDirectory {
        use base64::Engine as _;
        api::IssuerDirectory {
            issuer_request_uri: "/v1/tokens".into(),
            token_keys: vec![api::IssuerTokenKey {
                token_type: TOKEN_TYPE,
                token_key: base64::engine::general_purpose::URL_SAFE.encode(self.token_key()),
            }],
        }
    }

    /// Checks one encoded `TokenRequest` without signing it (RFC 9578 §6.3).
    pub fn check(&self, request: &[u8]) -> Result<(), RequestError> {
        self.key.parse_request(request).map(|_| ()).map_err(refusal)
    }

    /// Signs one encoded `TokenRequest` blind; the encoded `TokenResponse`. An RSA private
    /// operation: about a millisecond.
    pub fn sign(&self, request: &[u8]) -> Result<Vec<u8>, RequestError> {
        self.key.issue(request).map_err(refusal)
    }
}

fn refusal(e: PpError) -> RequestError {
    match e {
        PpError::WrongKey => RequestError::UnknownKey,
        PpError::Malformed | PpError::WrongType => RequestError::Malformed,
        _ => RequestError::Unsignable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("privacy-pass.der");
        let first = Issuer::load_or_create(&path).expect("create");
        let again = Issuer::load_or_create(&path).expect("load");
        assert_eq!(first.token_key(), again.token_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"not a key").expect("write");
        assert!(matches!(
            Issuer::load_or_create(&path),
            Err(IssuerError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_requests_are_refused() {
        let issuer = Issuer::ephemeral().expect("key");
        assert!(matches!(issuer.sign(b""), Err(RequestError::Malformed)));
        let truncated = conclave_privacy_pass::IssuerPublicKey::from_spki(issuer.token_key())
            .expect("spki")
            .truncated_token_key_id();
        // Type 2, the right key id, a blinded message of all 0xff: larger than the modulus,
        // so not a blinded message (RFC 9474 §4.3).
        let mut request = vec![0, 2, truncated];
        request.extend([0xff; 256]);
        assert!(matches!(
            issuer.check(&request),
            Err(RequestError::Malformed)
        ));
        assert!(matches!(
            issuer.sign(&request),
            Err(RequestError::Malformed)
        ));
        request[2] = truncated.wrapping_add(1);
        assert!(matches!(
            issuer.sign(&request),
            Err(RequestError::UnknownKey)
        ));
        // Type 1 (VOPRF): not what this issuer signs.
        request[1] = 1;
        request[2] = truncated;
        assert!(matches!(
            issuer.sign(&request),
            Err(RequestError::Malformed)
        ));
        // One byte too long.
        let mut request = vec![0, 2, truncated];
        request.extend([0; 257]);
        assert!(matches!(
            issuer.check(&request),
            Err(RequestError::Malformed)
        ));
    }
}
