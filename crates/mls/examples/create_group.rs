//! Creates the epoch-0 state of a one-member group (RFC 9420 §11) with the building blocks
//! the library has today, and prints each step: keys, the key schedule, transcript hashes,
//! and one application message through the secret tree.
//!
//! Run with `cargo run --release -p conclave-mls --example create_group`.

use conclave_mls::codec::Encode;
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, Secret, SuiteCrypto};
use conclave_mls::key_schedule::EpochSecrets;
use conclave_mls::messages::{GroupContext, ProtocolVersion};
use conclave_mls::secret_tree::{RatchetKind, RatchetPolicy, SecretTree};
use conclave_mls::transcript::interim_transcript_hash;
use conclave_mls::tree::{LeafIndex, TreeSize};

fn short(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{hex}… ({} bytes)", bytes.len())
}

fn main() -> Result<(), conclave_mls::Error> {
    let provider = RustCrypto::default();
    let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
    let crypto = SuiteCrypto::new(&provider, suite)?;
    println!("cipher suite {suite:?}");

    let signature_keys = provider.signature_generate_key_pair(suite)?;
    let encryption_keys = provider.hpke_generate_key_pair(suite)?;
    println!(
        "creator's signature key    {}",
        short(&signature_keys.public_key)
    );
    println!(
        "creator's encryption key   {}",
        short(&encryption_keys.public_key)
    );

    // §11: group ID a fresh random value of size Nh, epoch 0, empty confirmed transcript.
    let mut group_id = vec![0u8; crypto.hash_len()];
    provider.random_bytes(&mut group_id)?;
    // The tree hash of a one-leaf tree needs the ratchet tree (work in progress); until then
    // the hash of the creator's encryption key stands in for it in this demonstration.
    let tree_hash = crypto.hash(&encryption_keys.public_key)?;
    let context = GroupContext {
        version: ProtocolVersion::MLS10,
        cipher_suite: suite,
        group_id: group_id.clone().into(),
        epoch: 0,
        tree_hash: tree_hash.into(),
        confirmed_transcript_hash: Vec::new().into(),
        extensions: vec![],
    };
    println!("group id                   {}", short(&group_id));
    println!(
        "group context              {} encoded",
        short(&context.encode()?)
    );

    // §11: the epoch secret of epoch 0 is fresh randomness.
    let mut epoch_secret = vec![0u8; crypto.hash_len()];
    provider.random_bytes(&mut epoch_secret)?;
    let epoch_secret = Secret::new(epoch_secret);
    let secrets = EpochSecrets::from_epoch_secret(&crypto, &epoch_secret)?;
    println!(
        "epoch authenticator        {}",
        short(secrets.epoch_authenticator.as_bytes())
    );
    let external = secrets.external_key_pair(&crypto)?;
    println!("external_pub               {}", short(&external.public_key));

    let tag = secrets.confirmation_tag(&crypto, &[])?;
    let interim = interim_transcript_hash(&crypto, &[], &tag)?;
    println!("confirmation tag           {}", short(&tag));
    println!("interim transcript hash    {}", short(&interim));

    let exported = secrets.export(&crypto, b"conclave example", b"", 32)?;
    println!(
        "MLS-Exporter(\"conclave example\") {}",
        short(exported.as_bytes())
    );

    // One application message from leaf 0, sealed and opened with the secret tree's keys.
    let size = TreeSize::from_leaf_count(1).expect("one leaf");
    let mut sender = SecretTree::new(
        size,
        secrets.encryption_secret.clone(),
        RatchetPolicy::default(),
    );
    let mut receiver = sender.clone();
    let key = sender.next_key(&crypto, LeafIndex(0), RatchetKind::Application)?;
    let ciphertext = crypto.aead_seal(
        key.key.as_bytes(),
        key.nonce.as_bytes(),
        b"aad",
        b"hello, group",
    )?;
    println!(
        "generation {} ciphertext    {}",
        key.generation,
        short(&ciphertext)
    );
    let key = receiver.key_for_generation(&crypto, LeafIndex(0), RatchetKind::Application, 0)?;
    let plaintext = crypto.aead_open(
        key.key.as_bytes(),
        key.nonce.as_bytes(),
        b"aad",
        &ciphertext,
    )?;
    println!(
        "decrypted                  {:?}",
        String::from_utf8_lossy(plaintext.as_bytes())
    );
    let replay = receiver.key_for_generation(&crypto, LeafIndex(0), RatchetKind::Application, 0);
    println!(
        "replaying generation 0     {}",
        replay.err().map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(())
}
