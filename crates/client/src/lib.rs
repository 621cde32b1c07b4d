//! # conclave-client
//!
//! What an application embeds to be a device of the Conclave system: the device's keys and
//! certificate, its anonymous mailbox and KeyPackage pool at the Delivery Service, its
//! contacts, its groups, all kept in one SQLite file whose every value is sealed under a key
//! from the owner's passphrase. It talks to the Authentication Service and the Delivery
//! Service over HTTP through the `conclave-api` types — never through their internals — and
//! to nobody else.
//!
//! The flows are DESIGN.md's: register (AS) → open a mailbox and a pool (DS, anonymous) →
//! become contacts (sealed cards through the AS relay) → create a group and add a user (one
//! KeyPackage claimed per device, checked against the AS root and the transparency
//! directory) → talk (PrivateMessages in the group log) → remove, leave, revoke.
//!
//! ```no_run
//! use conclave_client::{Config, Device, Event, StoreKey};
//! use conclave_api::auth::Authorization;
//! # async fn demo(alice_code: String, bob_code: String) -> Result<(), conclave_client::Error> {
//! let config = |file: &str| {
//!     Config::new(
//!         "http://127.0.0.1:8443",
//!         "http://127.0.0.1:8444",
//!         file,
//!         StoreKey::Passphrase("correct horse battery staple".into(), Default::default()),
//!     )
//! };
//! let alice = Device::register(config("alice.db"), Authorization::Invitation { code: alice_code }).await?;
//! let bob = Device::register(config("bob.db"), Authorization::Invitation { code: bob_code }).await?;
//!
//! alice.request_contact(bob.user_id()).await?;
//! bob.sync().await?;
//! bob.accept_contact(alice.user_id()).await?;
//! alice.sync().await?;
//!
//! let group = alice.create_group().await?;
//! alice.add_user(&group, bob.user_id()).await?;
//! alice.send(&group, b"hello, Bob").await?;
//!
//! bob.sync().await?;
//! for (id, event) in bob.events(100).await? {
//!     if let Event::Message { sender, body, .. } = event {
//!         println!("{sender}: {}", String::from_utf8_lossy(&body));
//!     }
//!     bob.ack(id).await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The test `tests/e2e.rs` runs this against real servers on loopback.
#![forbid(unsafe_code)]

mod auth;
mod contact;
mod delivery;
mod device;
mod directory;
mod error;
mod event;
mod group;
mod net;
mod seal;
mod state;
mod store;
mod stream;

pub use conclave_api::auth::Authorization;
pub use device::{Config, Contact, Device, PoolPolicy};
pub use directory::VerifiedDevice;
pub use error::{Error, Result, Service};
pub use event::{DeviceName, Event, EventId, GroupId, Message};
pub use seal::{KdfParams, StoreKey};
pub use state::ContactState;
pub use stream::EventStream;
