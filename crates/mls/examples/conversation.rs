//! A small group conversation with the library's public API, printing each step: three
//! clients, a group created by one, the others added from their KeyPackages and joining from
//! the Welcome, messages in every direction, an update, a removal, and the group state saved
//! and restored. Messages pass between the clients as bytes, as a Delivery Service would
//! carry them.
//!
//! Run with `cargo run --release -p conclave-mls --example conversation`.

use conclave_mls::Error;
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{Group, GroupConfig, JoinRequest, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::{KeyPackageOptions, create_key_package};
use conclave_mls::messages::{Credential, Lifetime, MlsMessage, MlsMessageBody};
use std::collections::HashMap;
use std::sync::Arc;

fn hex8(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// What the Delivery Service does with a message: serialize it and hand the bytes on.
fn wire(message: &MlsMessage) -> Result<MlsMessage, Error> {
    MlsMessage::decode(&message.encode()?)
}

struct Client {
    name: &'static str,
    group: Group,
}

fn broadcast(
    provider: &RustCrypto,
    clients: &mut [Client],
    from: usize,
    message: &MlsMessage,
) -> Result<(), Error> {
    let bytes = wire(message)?;
    let is_commit = matches!(&bytes.body, MlsMessageBody::PublicMessage(m) if m.content.body.content_type() == conclave_mls::messages::ContentType::Commit);
    for (i, c) in clients.iter_mut().enumerate() {
        // The DS echoes commits to their sender (that is how it learns the commit won the
        // epoch) but not application messages, whose keys the sender has already deleted.
        if i == from && !is_commit {
            continue;
        }
        match c.group.process(provider, &bytes)? {
            Received::Application { data, sender, .. } => {
                println!(
                    "  {:>5} reads from leaf {}: {:?}",
                    c.name,
                    sender.0,
                    String::from_utf8_lossy(&data)
                )
            }
            Received::Commit(staged) => {
                println!(
                    "  {:>5} merges a commit (adds {:?}, removes {:?})",
                    c.name,
                    staged.added(),
                    staged.removed()
                );
                c.group.merge(*staged)?;
            }
            Received::OwnCommit => println!("  {:>5} sees its own commit accepted", c.name),
            other => println!("  {:>5} got {other:?}", c.name),
        }
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let provider = RustCrypto::default();
    let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
    let policy = Arc::new(BasicCredentialsOnly);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("cipher suite {suite:?}");

    let id = |name: &str| {
        Identity::generate(
            &provider,
            suite,
            Credential::Basic {
                identity: name.as_bytes().to_vec().into(),
            },
        )
    };
    let (alice, bob, carol) = (id("alice")?, id("bob")?, id("carol")?);

    let group = Group::create(
        &provider,
        &alice,
        b"conclave-demo".to_vec(),
        vec![],
        GroupConfig::default(),
        policy.clone(),
    )?;
    println!("alice creates the group, epoch {}", group.epoch());
    let mut clients = vec![Client {
        name: "alice",
        group,
    }];

    for identity in [&bob, &carol] {
        let (kp, secrets) = create_key_package(
            &provider,
            identity,
            KeyPackageOptions::new(Lifetime::starting_at(now, 86_400)),
        )?;
        let name = if identity.credential == bob.credential {
            "bob"
        } else {
            "carol"
        };
        println!(
            "{name} publishes a KeyPackage ({} bytes); alice adds {name}",
            kp.encode()?.len()
        );
        let out = clients[0]
            .group
            .commit()
            .add_member(kp.clone())
            .build(&provider)?;
        broadcast(&provider, &mut clients, 0, &out.commit)?;
        let welcome = wire(&out.welcome.ok_or(Error::UnexpectedMessage)?)?;
        let MlsMessageBody::Welcome(welcome) = welcome.body else {
            return Err(Error::UnexpectedMessage);
        };
        let group = Group::join(
            &provider,
            JoinRequest {
                identity,
                key_package: &kp,
                secrets: &secrets,
                welcome: &welcome,
                ratchet_tree: None,
                external_psks: HashMap::new(),
                resumption_psks: HashMap::new(),
                config: GroupConfig::default(),
                validator: policy.clone(),
            },
        )?;
        println!(
            "  {name} joins at leaf {} in epoch {}",
            group.own_leaf().0,
            group.epoch()
        );
        clients.push(Client { name, group });
    }
    for c in &clients {
        println!(
            "{:>5}: epoch {} authenticator {}",
            c.name,
            c.group.epoch(),
            hex8(c.group.epoch_authenticator())
        );
    }

    for from in 0..clients.len() {
        let text = format!("hello from {}", clients[from].name);
        println!("{} sends {text:?}", clients[from].name);
        let ct = clients[from]
            .group
            .encrypt_application(&provider, text.as_bytes(), b"")?;
        broadcast(&provider, &mut clients, from, &ct)?;
    }

    println!("bob refreshes his keys with an empty commit (UpdatePath)");
    let out = clients[1].group.commit().force_path().build(&provider)?;
    broadcast(&provider, &mut clients, 1, &out.commit)?;

    println!("carol removes bob");
    let bob_leaf = clients[1].group.own_leaf();
    let out = clients[2]
        .group
        .commit()
        .remove_member(bob_leaf)
        .build(&provider)?;
    broadcast(&provider, &mut clients, 2, &out.commit)?;
    let bob = clients.remove(1);
    println!("  bob is removed: {}", bob.group.is_removed());

    println!("alice saves and restores her state");
    let saved = clients[0].group.export_state()?;
    clients[0].group = Group::import_state(&saved, policy.clone())?;
    println!("  {} bytes of state (store it encrypted)", saved.len());
    let ct = clients[0]
        .group
        .encrypt_application(&provider, b"bob is gone", b"")?;
    broadcast(&provider, &mut clients, 0, &ct)?;
    for c in &clients {
        println!(
            "{:>5}: epoch {} authenticator {}",
            c.name,
            c.group.epoch(),
            hex8(c.group.epoch_authenticator())
        );
    }
    Ok(())
}
