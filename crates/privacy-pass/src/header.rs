//! The `PrivateToken` HTTP authentication scheme (RFC 9577 §2): the `Authorization` value
//! carrying a token and the `WWW-Authenticate` value carrying a challenge. Values are
//! base64url with padding, quoted (RFC 9577 §2.1, §2.2.2); parsing takes either.

use crate::{Error, IssuerPublicKey, Token, TokenChallenge};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

/// The scheme name.
pub const SCHEME: &str = "PrivateToken";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

fn un_b64(text: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Error::Malformed)
}

/// `PrivateToken token="…"`.
pub fn authorization(token: &Token) -> String {
    format!("{SCHEME} token=\"{}\"", b64(&token.encode()))
}

/// `PrivateToken challenge="…", token-key="…"`.
pub fn www_authenticate(challenge: &TokenChallenge, key: &IssuerPublicKey) -> String {
    format!(
        "{SCHEME} challenge=\"{}\", token-key=\"{}\"",
        b64(&challenge.encode()),
        b64(key.spki())
    )
}

/// The parameters of one `PrivateToken` credential or challenge, lower-cased names.
fn params(value: &str) -> Result<Vec<(String, String)>, Error> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(Error::Malformed)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(Error::Malformed);
    }
    let mut out = Vec::new();
    for part in rest.split(',') {
        let (name, value) = part.split_once('=').ok_or(Error::Malformed)?;
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"').ok_or(Error::Malformed)?,
            None => value,
        };
        out.push((name.trim().to_ascii_lowercase(), value.to_owned()));
    }
    Ok(out)
}

/// The token of an `Authorization: PrivateToken token=…` value; unknown parameters are
/// ignored (RFC 9577 §2.2.2), a missing or repeated `token` is an error.
pub fn parse_authorization(value: &str) -> Result<Token, Error> {
    let mut tokens = params(value)?
        .into_iter()
        .filter(|(name, _)| name == "token")
        .map(|(_, v)| v);
    let (Some(token), None) = (tokens.next(), tokens.next()) else {
        return Err(Error::Malformed);
    };
    Token::decode(&un_b64(&token)?)
}

/// The encoded challenge and issuer key of a `WWW-Authenticate: PrivateToken …` value.
pub fn parse_www_authenticate(value: &str) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let mut challenge = None;
    let mut key = None;
    for (name, v) in params(value)? {
        match name.as_str() {
            "challenge" => challenge = Some(un_b64(&v)?),
            "token-key" => key = Some(un_b64(&v)?),
            _ => {}
        }
    }
    Ok((
        challenge.ok_or(Error::Malformed)?,
        key.ok_or(Error::Malformed)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip_and_refuse_garbage() {
        let issuer = crate::IssuerKey::from_pkcs8_der(
            &crate::IssuerKey::generate()
                .and_then(|k| k.to_pkcs8_der())
                .expect("key"),
        )
        .expect("key");
        let key = issuer.public_key().clone();
        let challenge = TokenChallenge::new("as.example", None, "ds.example").expect("c");
        let www = www_authenticate(&challenge, &key);
        let (c, k) = parse_www_authenticate(&www).expect("parse");
        assert_eq!((c, k), (challenge.encode(), key.spki().to_vec()));
        let (request, pending) = crate::request(&key, &challenge.encode()).expect("request");
        let token = pending
            .finish(&key, &issuer.issue(&request).expect("issue"))
            .expect("finish");
        let value = authorization(&token);
        assert_eq!(parse_authorization(&value).expect("parse"), token);
        // Unpadded, unquoted, another case, an unknown parameter: all fine.
        let bare = URL_SAFE_NO_PAD.encode(token.encode());
        let loose = format!("privatetoken  other=1, token={bare}");
        assert_eq!(parse_authorization(&loose).expect("parse"), token);
        for bad in [
            "",
            "Bearer x",
            "PrivateToken",
            "PrivateToken token=",
            "PrivateToken token=\"abc",
            "PrivateToken token=!!!",
            "PrivateToken other=1",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
        let twice = format!("PrivateToken token={bare}, token={bare}");
        assert!(parse_authorization(&twice).is_err());
    }
}
