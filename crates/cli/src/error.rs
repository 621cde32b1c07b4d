//! What went wrong, for a person: one line saying what, and what to do next.

use serde::Serialize;
use std::fmt;

/// An error of the `conclave` command: what failed and, when there is one, what to do.
#[derive(Debug, Clone, Serialize)]
pub struct CliError {
    /// A stable, machine-readable kind (`server_unreachable`, `not_a_member`, …) for
    /// scripts reading `--json`.
    pub code: &'static str,
    /// What failed.
    pub error: String,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl CliError {
    /// An error with a hint.
    pub fn new(code: &'static str, error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            code,
            error: error.into(),
            hint: Some(hint.into()),
        }
    }

    /// An error without a hint.
    pub fn bare(code: &'static str, error: impl Into<String>) -> Self {
        Self {
            code,
            error: error.into(),
            hint: None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hint {
            Some(hint) => write!(f, "{} — {hint}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

impl std::error::Error for CliError {}

impl From<conclave_client::Error> for CliError {
    fn from(e: conclave_client::Error) -> Self {
        use conclave_client::Error as E;
        match &e {
            E::Network { service, reason } => CliError::new(
                "server_unreachable",
                format!("cannot reach the {service}: {reason}"),
                "is `conclave serve` running, and are the URLs in this profile right? (`conclave whoami` shows them)",
            ),
            E::WrongKey => CliError::new(
                "wrong_passphrase",
                "the passphrase does not open this device's store",
                "set CONCLAVE_PASSPHRASE to the passphrase given at `conclave init`",
            ),
            E::NotRegistered => CliError::new(
                "not_registered",
                "this profile has no device yet",
                "run `conclave init --code CODE` first",
            ),
            E::UnknownUser(user) => CliError::new(
                "unknown_user",
                format!("{user} is not a user of this server"),
                "check the spelling (user@domain); they must have run `conclave init`",
            ),
            E::NotAContact(user) => CliError::new(
                "not_a_contact",
                format!("{user} is not a contact yet"),
                format!("ask with `conclave contacts add {user}`; once they accept, try again"),
            ),
            E::UnknownGroup => CliError::new(
                "unknown_group",
                "no such group on this device",
                "`conclave group list` shows the groups",
            ),
            E::NotAMember => CliError::new(
                "not_a_member",
                "this device is no longer a member of the group",
                "ask a member to add you again",
            ),
            E::NoKeyPackage(user) => CliError::new(
                "no_key_package",
                format!("no device of {user} can be added right now"),
                "their devices have used up their KeyPackages: ask them to run `conclave listen --once`, then try again",
            ),
            E::Contention(_) => CliError::new(
                "contention",
                e.to_string(),
                "the group is very busy: try again in a moment",
            ),
            E::Refused { code, .. } => match code.as_str() {
                "invalid_invitation" => CliError::new(
                    "invalid_invitation",
                    "the invitation code is unknown, used or expired",
                    "ask the operator for a new one (`conclave invite USER`)",
                ),
                "invalid_id_token" => CliError::new(
                    "invalid_id_token",
                    e.to_string(),
                    "ask your identity provider for a new ID token with a new nonce: each nonce serves one attempt",
                ),
                "invalid_challenge" => CliError::new(
                    "invalid_challenge",
                    "the registration challenge is unknown, used or expired",
                    "start again: a new nonce is needed",
                ),
                "device_revoked" | "user_revoked" => CliError::new(
                    "revoked",
                    e.to_string(),
                    "this device was revoked: register a new one with `conclave init`",
                ),
                "rate_limited" => {
                    CliError::new("rate_limited", e.to_string(), "wait a minute and try again")
                }
                _ => CliError::bare("refused", e.to_string()),
            },
            E::Config(message) => CliError::bare("invalid", message.clone()),
            _ => CliError::bare("failed", e.to_string()),
        }
    }
}

impl From<crate::stack::StackError> for CliError {
    fn from(e: crate::stack::StackError) -> Self {
        match &e {
            crate::stack::StackError::Postgres(_) => CliError::new(
                "postgres",
                e.to_string(),
                "is PostgreSQL running, and does the URL name a database you may connect to?",
            ),
            _ => CliError::bare("servers", e.to_string()),
        }
    }
}
