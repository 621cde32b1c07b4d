//! The messages of token type 0x0002 (RFC 9578 §6) and the three roles: the client asks
//! ([`request`]) and finishes ([`PendingToken::finish`]), the issuer signs
//! ([`IssuerKey::issue`]), the origin verifies ([`IssuerPublicKey::verify`]).

use crate::Error;
use crate::blind_rsa::{self, BlindInverse, MODULUS_LEN};
use rsa::pkcs1::{DecodeRsaPublicKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Token type Blind RSA (2048-bit) (RFC 9578 §8.2.2).
pub const TOKEN_TYPE: u16 = 0x0002;
/// `Token`: type, nonce, challenge digest, key id, authenticator (RFC 9577 §2.2).
pub const TOKEN_LEN: usize = 2 + 32 + 32 + 32 + MODULUS_LEN;
/// `TokenRequest`: type, truncated key id, blinded message (RFC 9578 §6.1).
pub const REQUEST_LEN: usize = 2 + 1 + MODULUS_LEN;
/// `TokenResponse`: the blind signature (RFC 9578 §6.2).
pub const RESPONSE_LEN: usize = MODULUS_LEN;

/// The DER prefix of an issuer key (RFC 9578 §6.5): a SubjectPublicKeyInfo whose
/// algorithm is id-RSASSA-PSS (1.2.840.113549.1.1.10) with RSASSA-PSS-params naming
/// SHA-384, MGF1 with SHA-384 and a salt length of 48 (RFC 4055 §3.1), then the BIT STRING
/// header of a 2048-bit RSAPublicKey with e = 65537 (270 bytes).
const SPKI_PREFIX: [u8; 72] = [
    0x30, 0x82, 0x01, 0x52, 0x30, 0x3d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x0a, 0x30, 0x30, 0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x02, 0x02, 0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x08, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0xa2, 0x03,
    0x02, 0x01, 0x30, 0x03, 0x82, 0x01, 0x0f, 0x00,
];
/// Length of the RSAPublicKey after [`SPKI_PREFIX`].
const RSA_PUBLIC_KEY_LEN: usize = 270;

/// A `TokenChallenge` (RFC 9577 §2.1) for token type 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChallenge {
    issuer_name: String,
    redemption_context: Option<[u8; 32]>,
    origin_info: String,
}

fn server_name_list(s: &str) -> bool {
    s.is_ascii() && !s.bytes().any(|b| b.is_ascii_whitespace() || b == b'@')
}

impl TokenChallenge {
    /// A challenge from `issuer_name` (a server name), an optional 32-byte redemption
    /// context and `origin_info` (comma-separated origin names, or empty: any origin).
    pub fn new(
        issuer_name: &str,
        redemption_context: Option<[u8; 32]>,
        origin_info: &str,
    ) -> Result<Self, Error> {
        if issuer_name.is_empty()
            || issuer_name.contains(',')
            || !server_name_list(issuer_name)
            || !server_name_list(origin_info)
            || issuer_name.len() > usize::from(u16::MAX)
            || origin_info.len() > usize::from(u16::MAX)
        {
            return Err(Error::Malformed);
        }
        Ok(Self {
            issuer_name: issuer_name.to_owned(),
            redemption_context,
            origin_info: origin_info.to_owned(),
        })
    }

    /// The TLS presentation-language encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 + self.issuer_name.len() + 32 + self.origin_info.len());
        out.extend_from_slice(&TOKEN_TYPE.to_be_bytes());
        out.extend_from_slice(&(self.issuer_name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.issuer_name.as_bytes());
        match &self.redemption_context {
            Some(c) => {
                out.push(32);
                out.extend_from_slice(c);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.origin_info.len() as u16).to_be_bytes());
        out.extend_from_slice(self.origin_info.as_bytes());
        out
    }

    /// Parses an encoded challenge of token type 2, all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        if r.u16()? != TOKEN_TYPE {
            return Err(Error::WrongType);
        }
        let n = usize::from(r.u16()?);
        let issuer = std::str::from_utf8(r.take(n)?).map_err(|_| Error::Malformed)?;
        // RFC 9577 §2.1: a context of another length than 0 or 32 MUST be ignored.
        let context = match r.u8()? {
            0 => None,
            32 => Some(r.array::<32>()?),
            _ => return Err(Error::Malformed),
        };
        let n = usize::from(r.u16()?);
        let origin = std::str::from_utf8(r.take(n)?).map_err(|_| Error::Malformed)?;
        r.end()?;
        Self::new(issuer, context, origin)
    }

    /// `SHA256(challenge)`, what a token carries (RFC 9577 §2.2).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// The issuer's name.
    pub fn issuer_name(&self) -> &str {
        &self.issuer_name
    }

    /// The origins it is valid for (empty: any).
    pub fn origin_info(&self) -> &str {
        &self.origin_info
    }
}

/// A reader of length-checked fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| Error::Malformed)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn end(&self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed)
        }
    }
}

/// An issuer's public key: what clients blind under and origins verify with.
#[derive(Clone)]
pub struct IssuerPublicKey {
    key: PublicKey,
    spki: Vec<u8>,
    token_key_id: [u8; 32],
}

impl std::fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerPublicKey")
            .field("truncated_token_key_id", &self.truncated_token_key_id())
            .finish_non_exhaustive()
    }
}

impl PartialEq for IssuerPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for IssuerPublicKey {}

impl IssuerPublicKey {
    fn from_key(key: PublicKey) -> Result<Self, Error> {
        blind_rsa::check_key(&key)?;
        let der = key.to_pkcs1_der().map_err(|_| Error::Key)?;
        if der.as_bytes().len() != RSA_PUBLIC_KEY_LEN {
            return Err(Error::Key);
        }
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(der.as_bytes());
        let token_key_id = Sha256::digest(&spki).into();
        Ok(Self {
            key,
            spki,
            token_key_id,
        })
    }

    #[cfg(test)]
    pub(crate) fn rsa(&self) -> &PublicKey {
        &self.key
    }

    /// Parses the encoding of RFC 9578 §6.5 (the issuer directory's `token-key`).
    pub fn from_spki(bytes: &[u8]) -> Result<Self, Error> {
        let Some(rsa_key) = bytes.strip_prefix(SPKI_PREFIX.as_slice()) else {
            return Err(Error::Key);
        };
        if rsa_key.len() != RSA_PUBLIC_KEY_LEN {
            return Err(Error::Key);
        }
        let key = PublicKey::from_pkcs1_der(rsa_key).map_err(|_| Error::Key)?;
        let parsed = Self::from_key(key)?;
        // Only the one DER encoding: the key id is a hash of these exact bytes.
        if parsed.spki != bytes {
            return Err(Error::Key);
        }
        Ok(parsed)
    }

    /// The encoding of RFC 9578 §6.5.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `token_key_id`: SHA-256 of [`Self::spki`].
    pub fn token_key_id(&self) -> [u8; 32] {
        self.token_key_id
    }

    /// Its last byte, what a token request names (RFC 9578 §6.1).
    pub fn truncated_token_key_id(&self) -> u8 {
        self.token_key_id[31]
    }

    /// Verifies a token's authenticator under this key (RFC 9578 §6.4), and that the
    /// token is of type 2 and names this key. Which challenges are acceptable is the
    /// origin's to check, on [`Token::challenge_digest`].
    pub fn verify(&self, token: &Token) -> Result<(), Error> {
        if token.token_key_id != self.token_key_id {
            return Err(Error::WrongKey);
        }
        blind_rsa::verify(&self.key, &token.input(), &token.authenticator)
    }
}

/// An issuer's private key (RSA 2048, e = 65537).
pub struct IssuerKey {
    key: PrivateKey,
    public: IssuerPublicKey,
    /// The modulus, big-endian, `MODULUS_LEN` bytes.
    modulus: Vec<u8>,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A fresh key (RFC 9578 §6.5: 2048 bits). Takes a fraction of a second to seconds.
    pub fn generate() -> Result<Self, Error> {
        let key = PrivateKey::new(&mut blind_rsa::rng(), 2048).map_err(|_| Error::Rng)?;
        Self::from_key(key)
    }

    fn from_key(key: PrivateKey) -> Result<Self, Error> {
        use rsa::traits::PublicKeyParts as _;
        let public = IssuerPublicKey::from_key(key.to_public_key())?;
        let modulus = key.n_bytes().to_vec();
        if modulus.len() != MODULUS_LEN {
            return Err(Error::Key);
        }
        Ok(Self {
            key,
            public,
            modulus,
        })
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        Self::from_key(PrivateKey::from_pkcs8_der(der).map_err(|_| Error::Key)?)
    }

    /// The key as PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = self.key.to_pkcs8_der().map_err(|_| Error::Key)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The public key.
    pub fn public_key(&self) -> &IssuerPublicKey {
        &self.public
    }

    /// Checks an encoded `TokenRequest` (RFC 9578 §6.3: its type, its truncated key id, the
    /// size of its blinded message, which must also be less than the modulus, RFC 9474
    /// §4.3); the blinded message.
    pub fn parse_request<'a>(&self, request: &'a [u8]) -> Result<&'a [u8], Error> {
        if request.len() != REQUEST_LEN {
            return Err(Error::Malformed);
        }
        if request[..2] != TOKEN_TYPE.to_be_bytes() {
            return Err(Error::WrongType);
        }
        if request[2] != self.public.truncated_token_key_id() {
            return Err(Error::WrongKey);
        }
        // Equal lengths, big-endian: byte order is numeric order.
        if request[3..] >= self.modulus[..] {
            return Err(Error::Malformed);
        }
        Ok(&request[3..])
    }

    /// Signs a `TokenRequest` blind: the encoded `TokenResponse` (RFC 9578 §6.3).
    pub fn issue(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let blinded = self.parse_request(request)?;
        blind_rsa::blind_sign(&self.key, blinded)
    }
}

/// A token request sent and not yet answered: what the client keeps to finish it.
#[derive(Debug)]
pub struct PendingToken {
    pub(crate) nonce: [u8; 32],
    pub(crate) challenge_digest: [u8; 32],
    pub(crate) inverse: BlindInverse,
}

/// Builds a `TokenRequest` (RFC 9578 §6.1) for the encoded `challenge` under `key`: the
/// encoded request for the issuer, and what to finish the token with.
pub fn request(key: &IssuerPublicKey, challenge: &[u8]) -> Result<(Vec<u8>, PendingToken), Error> {
    // The challenge must be one of this token type; its digest is what the token carries.
    TokenChallenge::decode(challenge)?;
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|_| Error::Rng)?;
    let challenge_digest: [u8; 32] = Sha256::digest(challenge).into();
    let input = token_input(&nonce, &challenge_digest, &key.token_key_id);
    let (blinded, inverse) = blind_rsa::blind(&key.key, &input)?;
    Ok((
        encode_request(key, &blinded),
        PendingToken {
            nonce,
            challenge_digest,
            inverse,
        },
    ))
}

pub(crate) fn encode_request(key: &IssuerPublicKey, blinded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_LEN);
    out.extend_from_slice(&TOKEN_TYPE.to_be_bytes());
    out.push(key.truncated_token_key_id());
    out.extend_from_slice(blinded);
    out
}

pub(crate) fn token_input(
    nonce: &[u8; 32],
    challenge_digest: &[u8; 32],
    token_key_id: &[u8; 32],
) -> Vec<u8> {
    let mut input = Vec::with_capacity(98);
    input.extend_from_slice(&TOKEN_TYPE.to_be_bytes());
    input.extend_from_slice(nonce);
    input.extend_from_slice(challenge_digest);
    input.extend_from_slice(token_key_id);
    input
}

impl PendingToken {
    /// Finishes the token from the issuer's encoded `TokenResponse` (RFC 9578 §6.4); an
    /// error if the issuer's answer does not verify.
    pub fn finish(self, key: &IssuerPublicKey, response: &[u8]) -> Result<Token, Error> {
        if response.len() != RESPONSE_LEN {
            return Err(Error::Malformed);
        }
        let input = token_input(&self.nonce, &self.challenge_digest, &key.token_key_id);
        let authenticator = blind_rsa::finalize(&key.key, &input, response, &self.inverse)?;
        Ok(Token {
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: key.token_key_id,
            authenticator,
        })
    }
}

/// A finished token (RFC 9577 §2.2, type 2).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    nonce: [u8; 32],
    challenge_digest: [u8; 32],
    token_key_id: [u8; 32],
    authenticator: Vec<u8>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = token_input(&self.nonce, &self.challenge_digest, &self.token_key_id);
        out.extend_from_slice(&self.authenticator);
        out
    }

    /// Parses an encoded token of type 2, all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        if r.u16()? != TOKEN_TYPE {
            return Err(Error::WrongType);
        }
        let nonce = r.array()?;
        let challenge_digest = r.array()?;
        let token_key_id = r.array()?;
        let authenticator = r.take(MODULUS_LEN)?.to_vec();
        r.end()?;
        Ok(Self {
            nonce,
            challenge_digest,
            token_key_id,
            authenticator,
        })
    }

    /// The client's nonce: unique per token, what an origin remembers to refuse a second
    /// redemption.
    pub fn nonce(&self) -> &[u8; 32] {
        &self.nonce
    }

    /// `SHA256` of the challenge the token answers.
    pub fn challenge_digest(&self) -> &[u8; 32] {
        &self.challenge_digest
    }

    /// The key id it was issued under.
    pub fn token_key_id(&self) -> &[u8; 32] {
        &self.token_key_id
    }

    fn input(&self) -> Vec<u8> {
        token_input(&self.nonce, &self.challenge_digest, &self.token_key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> IssuerKey {
        IssuerKey::from_key(crate::blind_rsa::tests::key().clone()).expect("key")
    }

    #[test]
    fn a_token_goes_from_client_to_issuer_to_origin() {
        let issuer = issuer();
        let pk = IssuerPublicKey::from_spki(issuer.public_key().spki()).expect("spki");
        assert_eq!(&pk, issuer.public_key());
        let challenge = TokenChallenge::new("issuer.example", Some([9; 32]), "origin.example")
            .expect("challenge");
        let encoded = challenge.encode();
        assert_eq!(TokenChallenge::decode(&encoded).expect("decode"), challenge);
        let (request, pending) = request(&pk, &encoded).expect("request");
        assert_eq!(request.len(), REQUEST_LEN);
        let response = issuer.issue(&request).expect("issue");
        let token = pending.finish(&pk, &response).expect("finish");
        assert_eq!(token.challenge_digest(), &challenge.digest());
        let wire = token.encode();
        assert_eq!(wire.len(), TOKEN_LEN);
        let token = Token::decode(&wire).expect("decode");
        pk.verify(&token).expect("verify");
        // Any flipped bit of the token breaks it.
        for i in [2, 40, 70, 100, 200, 353] {
            let mut bad = wire.clone();
            bad[i] ^= 0x01;
            let Ok(bad) = Token::decode(&bad) else {
                continue;
            };
            assert!(pk.verify(&bad).is_err(), "bit {i}");
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        let issuer = issuer();
        assert!(matches!(issuer.issue(&[]), Err(Error::Malformed)));
        let mut request = vec![0, 2, issuer.public_key().truncated_token_key_id()];
        request.extend([1u8; MODULUS_LEN]);
        assert!(issuer.issue(&request).is_ok());
        request[1] = 1;
        assert!(matches!(issuer.issue(&request), Err(Error::WrongType)));
        request[1] = 2;
        request[2] ^= 0xff;
        assert!(matches!(issuer.issue(&request), Err(Error::WrongKey)));
        request.push(0);
        assert!(matches!(issuer.issue(&request), Err(Error::Malformed)));
        assert!(Token::decode(&[0; TOKEN_LEN]).is_err());
        assert!(Token::decode(&[0, 2]).is_err());
        assert!(TokenChallenge::decode(&[0, 2, 0, 0, 0, 0, 0]).is_err());
        assert!(TokenChallenge::decode(&[0, 2, 0, 1, b'i', 5, 0, 0]).is_err());
        assert!(IssuerPublicKey::from_spki(&[0x30]).is_err());
        let mut spki = issuer.public_key().spki().to_vec();
        spki.push(0);
        assert!(IssuerPublicKey::from_spki(&spki).is_err());
    }
}
