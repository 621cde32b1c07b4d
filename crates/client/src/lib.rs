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
//! ```
//! use conclave_client::{Config, Device, Event, StoreKey};
//! use conclave_api::auth::Authorization;
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // Both servers, in this process, on SQLite files in a temporary directory.
//! # let dir = tempfile::tempdir()?;
//! # let auth = conclave_as::server::start(conclave_as::server::Options::sqlite(
//! #     dir.path().join("as.db"), dir.path().join("as-keys"))).await?;
//! # let ds = conclave_ds::start(conclave_ds::config::Config {
//! #     listen: "127.0.0.1:0".parse()?, db: dir.path().join("ds.db"),
//! #     ..conclave_ds::config::Config::default() }).await?;
//! # let (auth_url, ds_url) = (auth.url(), format!("http://{}", ds.addr));
//! # let alice_code = auth.service.create_invitation("alice@example.org", None).await?;
//! # let bob_code = auth.service.create_invitation("bob@example.org", None).await?;
//! # let passphrase = |_: &str| StoreKey::Passphrase("correct horse battery staple".into(),
//! #     conclave_client::KdfParams::insecure_fast());
//! # let store = |name: &str| dir.path().join(name);
//! // The AS and the DS are at `auth_url` and `ds_url`; the operator gave each person an
//! // invitation code. Each device keeps its state in its own sealed store.
//! let config = |file: &str| Config::new(&auth_url, &ds_url, store(file), passphrase(file));
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
//! let mut heard = Vec::new();
//! for (id, event) in bob.events(100).await? {
//!     if let Event::Message { sender, body, .. } = event {
//!         println!("{sender}: {}", String::from_utf8_lossy(&body));
//!         heard.push(body);
//!     }
//!     bob.ack(id).await?;
//! }
//! assert_eq!(heard, vec![b"hello, Bob".to_vec()]);
//! # Ok(())
//! # }
//! ```
//!
//! [`Device::event_stream`] delivers the same events as the DS pushes them.
//!
//! `tests/e2e.rs` runs every flow (several devices, removals, races, restarts, revocations)
//! against real servers on loopback, on SQLite and on PostgreSQL + NATS.
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
mod tokens;
pub mod wire;

pub use conclave_api::auth::Authorization;
pub use device::{Config, Contact, Device, PoolPolicy, RegistrationChallenge, WatchPolicy};
pub use directory::VerifiedDevice;
pub use error::{Error, Result, Service};
pub use event::{DeviceName, Event, EventId, GroupId, Message};
pub use seal::{KdfParams, StoreKey};
pub use state::ContactState;
pub use stream::EventStream;
