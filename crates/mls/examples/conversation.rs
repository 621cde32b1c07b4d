//! A small group conversation with the library's public API, printing each step: three
//! clients, a group created by one, the others added from their KeyPackages and joining from
//! the Welcome, messages in every direction, an update, a removal, and the group state saved
//! and restored. Messages pass between the clients as bytes, as a Delivery Service would
//! carry them.
//!
//! Run with `cargo run --release -p conclave-mls --example conversation`.

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::identity::BasicCredentialsOnly;
use conclave_mls::messages::{Credential, Lifetime};
use conclave_mls::{
    CipherSuite, Error, Group, Identity, KeyPackageBundle, KeyPackageOptions, MlsMessage, Received,
    RustCrypto,
};
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
    // The DS delivers the group's log to every member, the sender included: a commit's
    // sender learns that way that its commit won the epoch, and is told plainly when a
    // message is its own.
    let _ = from;
    for c in clients.iter_mut() {
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
            Received::OwnMessage { content_type } => {
                println!("  {:>5} sees its own {content_type:?} message", c.name)
            }
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

    let id = |name: &str| Identity::generate(&provider, suite, Credential::basic(name));
    let (alice, bob, carol) = (id("alice")?, id("bob")?, id("carol")?);

    let group = Group::builder(&alice, policy.clone())
        .group_id(b"conclave-demo".to_vec())
        .build(&provider)?;
    println!("alice creates the group, epoch {}", group.epoch());
    let mut clients = vec![Client {
        name: "alice",
        group,
    }];

    for identity in [&bob, &carol] {
        let bundle = KeyPackageBundle::generate(
            &provider,
            identity,
            KeyPackageOptions::new(Lifetime::starting_at(now, 86_400)),
        )?;
        // Published as bytes; alice reads it back as a KeyPackage.
        let published = wire(&bundle.message())?;
        let name = if identity.credential == bob.credential {
            "bob"
        } else {
            "carol"
        };
        println!(
            "{name} publishes a KeyPackage ({} bytes); alice adds {name}",
            published.encode()?.len()
        );
        let out = clients[0]
            .group
            .commit()
            .add_member(published.into_key_package()?)
            .build(&provider)?;
        broadcast(&provider, &mut clients, 0, &out.commit)?;
        let welcome = wire(&out.welcome.ok_or(Error::UnexpectedMessage)?)?;
        // The Welcome is checked and staged: the joiner sees who added it before accepting.
        let staged = Group::join(welcome, identity, &bundle, policy.clone()).stage(&provider)?;
        let adder = staged.added_by().map(|m| m.credential.clone());
        println!(
            "  {name} is invited by {adder:?} to a group of {}",
            staged.members().count()
        );
        let group = staged.accept();
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
    println!("  bob's group is now {:?}", bob.group.state());

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
