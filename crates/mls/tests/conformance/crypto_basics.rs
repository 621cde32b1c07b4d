//! crypto-basics.json: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret,
//! Sign/VerifyWithLabel and Encrypt/DecryptWithLabel (RFC 9420 §5).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, str_field, suite, u64_field};
use conclave_mls::crypto::{
    CryptoProvider, HpkePrivateKey, RustCrypto, SignaturePrivateKey, SuiteCrypto,
};
use serde_json::Value;

fn part<'a>(case: &'a Value, name: &str) -> Result<&'a Value, String> {
    case.get(name).ok_or_else(|| format!("missing `{name}`"))
}

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let c = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let e = |e: conclave_mls::crypto::CryptoError| e.to_string();

        let v = part(case, "ref_hash")?;
        let out = c
            .ref_hash(str_field(v, "label")?.as_bytes(), &hex_field(v, "value")?)
            .map_err(e)?;
        expect_eq("ref_hash", &out, &hex_field(v, "out")?)?;

        let v = part(case, "expand_with_label")?;
        let out = c
            .expand_with_label(
                &hex_field(v, "secret")?,
                str_field(v, "label")?.as_bytes(),
                &hex_field(v, "context")?,
                u64_field(v, "length")? as usize,
            )
            .map_err(e)?;
        expect_eq("expand_with_label", out.as_bytes(), &hex_field(v, "out")?)?;

        let v = part(case, "derive_secret")?;
        let out = c
            .derive_secret(&hex_field(v, "secret")?, str_field(v, "label")?.as_bytes())
            .map_err(e)?;
        expect_eq("derive_secret", out.as_bytes(), &hex_field(v, "out")?)?;

        let v = part(case, "derive_tree_secret")?;
        let out = c
            .derive_tree_secret(
                &hex_field(v, "secret")?,
                str_field(v, "label")?.as_bytes(),
                u32::try_from(u64_field(v, "generation")?).map_err(|e| e.to_string())?,
                u64_field(v, "length")? as usize,
            )
            .map_err(e)?;
        expect_eq("derive_tree_secret", out.as_bytes(), &hex_field(v, "out")?)?;

        let v = part(case, "sign_with_label")?;
        let private = SignaturePrivateKey::new(hex_field(v, "priv")?);
        let public = hex_field(v, "pub")?;
        let label = str_field(v, "label")?.as_bytes();
        let content = hex_field(v, "content")?;
        c.verify_with_label(&public, label, &content, &hex_field(v, "signature")?)
            .map_err(|err| format!("given signature: {err}"))?;
        let derived_public = provider
            .signature_public_key(c.suite(), &private)
            .map_err(e)?;
        expect_eq(
            "signature public key from private",
            &derived_public,
            &public,
        )?;
        let ours = c.sign_with_label(&private, label, &content).map_err(e)?;
        c.verify_with_label(&public, label, &content, &ours)
            .map_err(|err| format!("our signature: {err}"))?;
        if c.verify_with_label(&public, b"another label", &content, &ours)
            .is_ok()
        {
            return Err("a signature verified under the wrong label".into());
        }

        let v = part(case, "encrypt_with_label")?;
        let private = HpkePrivateKey::new(hex_field(v, "priv")?);
        let public = hex_field(v, "pub")?;
        let label = str_field(v, "label")?.as_bytes();
        let context = hex_field(v, "context")?;
        let plaintext = hex_field(v, "plaintext")?;
        let opened = c
            .decrypt_with_label(
                &private,
                label,
                &context,
                &hex_field(v, "kem_output")?,
                &hex_field(v, "ciphertext")?,
            )
            .map_err(|err| format!("given ciphertext: {err}"))?;
        expect_eq("decrypt_with_label", opened.as_bytes(), &plaintext)?;
        let sealed = c
            .encrypt_with_label(&public, label, &context, &plaintext)
            .map_err(e)?;
        let opened = c
            .decrypt_with_label(
                &private,
                label,
                &context,
                &sealed.kem_output,
                &sealed.ciphertext,
            )
            .map_err(|err| format!("our ciphertext: {err}"))?;
        expect_eq("round trip", opened.as_bytes(), &plaintext)
    })
}
