//! HTTP plumbing shared by the two server clients: one request, its status, its error body.

use crate::error::{Error, Service};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The timeout of one request: long enough for a commit adding many members.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one server at a base URL.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    service: Service,
    base: String,
    client: reqwest::Client,
}

/// One answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// What every error body of both APIs has in common.
#[derive(serde::Deserialize)]
struct ErrorBody {
    code: serde_json::Value,
    #[serde(default)]
    message: String,
}

impl Http {
    /// A client of `base` (`http://host:port`, no trailing slash).
    pub(crate) fn new(service: Service, base: &str) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            service,
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// Sends a request; transport failures are [`Error::Network`].
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        headers: &[(&str, String)],
    ) -> Result<Answer, Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::Config(e.to_string()))?;
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| self.network(e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.network(e))?;
        Ok(Answer {
            status,
            body: body.to_vec(),
        })
    }

    fn network(&self, e: reqwest::Error) -> Error {
        Error::Network {
            service: self.service,
            reason: e.to_string(),
        }
    }

    /// `answer`'s JSON body when its status is 2xx, else the error it carries.
    pub(crate) fn json<T: DeserializeOwned>(&self, answer: Answer) -> Result<T, Error> {
        let answer = self.ok(answer)?;
        serde_json::from_slice(&answer.body).map_err(|e| Error::Network {
            service: self.service,
            reason: format!("unexpected answer: {e}"),
        })
    }

    /// `answer` when its status is 2xx, else [`Error::Refused`].
    pub(crate) fn ok(&self, answer: Answer) -> Result<Answer, Error> {
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&answer.body) {
            Ok(body) => (
                body.code.as_str().unwrap_or("unknown").to_owned(),
                body.message,
            ),
            Err(_) => (
                "unknown".to_owned(),
                String::from_utf8_lossy(&answer.body).into_owned(),
            ),
        };
        Err(Error::Refused {
            service: self.service,
            status: answer.status,
            code,
            message,
        })
    }
}

/// Random bytes from the OS.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Config(format!("randomness: {e}")))?;
    Ok(bytes)
}

/// Unix time in seconds.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
