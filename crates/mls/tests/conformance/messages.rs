//! messages.json: every field decodes as its structure and re-encodes byte for byte.

use crate::common::{self, Outcome};
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::messages::{
    Add, Commit, ContentType, ExternalInit, GroupContextExtensions, GroupSecrets, MlsMessage,
    MlsMessageBody, PreSharedKey, RatchetTree, ReInit, Remove, Update, WireFormat,
};
use serde_json::Value;

/// Decodes `bytes` as `T` and checks the re-encoding is identical.
fn round_trip<T: Decode + Encode>(bytes: &[u8]) -> Result<T, String> {
    let value = T::decode(bytes).map_err(|e| e.to_string())?;
    let again = value.encode().map_err(|e| e.to_string())?;
    common::expect_eq("re-encoding", &again, bytes)?;
    Ok(value)
}

/// An MLSMessage field must round-trip and carry the expected wire format.
fn mls_message(bytes: &[u8], want: WireFormat) -> Result<MlsMessage, String> {
    let msg: MlsMessage = round_trip(bytes)?;
    let got = msg.body.wire_format();
    if got != want {
        return Err(format!("wire format {got:?}, want {want:?}"));
    }
    Ok(msg)
}

/// A PublicMessage field must also carry the expected content type.
fn public_message(bytes: &[u8], want: ContentType) -> Result<(), String> {
    let msg = mls_message(bytes, WireFormat::PUBLIC_MESSAGE)?;
    let MlsMessageBody::PublicMessage(pm) = msg.body else {
        return Err("not a PublicMessage".into());
    };
    let got = pm.content.body.content_type();
    if got != want {
        return Err(format!("content type {got:?}, want {want:?}"));
    }
    Ok(())
}

fn check_field(name: &str, bytes: &[u8]) -> Result<(), String> {
    match name {
        "mls_welcome" => mls_message(bytes, WireFormat::WELCOME).map(drop),
        "mls_group_info" => mls_message(bytes, WireFormat::GROUP_INFO).map(drop),
        "mls_key_package" => mls_message(bytes, WireFormat::KEY_PACKAGE).map(drop),
        "public_message_application" => public_message(bytes, ContentType::Application),
        "public_message_proposal" => public_message(bytes, ContentType::Proposal),
        "public_message_commit" => public_message(bytes, ContentType::Commit),
        "private_message" => mls_message(bytes, WireFormat::PRIVATE_MESSAGE).map(drop),
        "ratchet_tree" => round_trip::<RatchetTree>(bytes).map(drop),
        "group_secrets" => round_trip::<GroupSecrets>(bytes).map(drop),
        "add_proposal" => round_trip::<Add>(bytes).map(drop),
        "update_proposal" => round_trip::<Update>(bytes).map(drop),
        "remove_proposal" => round_trip::<Remove>(bytes).map(drop),
        "pre_shared_key_proposal" => round_trip::<PreSharedKey>(bytes).map(drop),
        "re_init_proposal" => round_trip::<ReInit>(bytes).map(drop),
        "external_init_proposal" => round_trip::<ExternalInit>(bytes).map(drop),
        "group_context_extensions_proposal" => {
            round_trip::<GroupContextExtensions>(bytes).map(drop)
        }
        "commit" => round_trip::<Commit>(bytes).map(drop),
        other => Err(format!("unknown field `{other}`")),
    }
}

/// Checks every field of every case; a field this runner does not know is a failure.
pub fn run(cases: &[Value]) -> Outcome {
    common::run_cases(cases, |case| {
        let obj = case.as_object().ok_or("case is not an object")?;
        if obj.is_empty() {
            return Err("empty case".into());
        }
        for name in obj.keys() {
            let bytes = common::hex_field(case, name)?;
            check_field(name, &bytes).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    })
}
