//! [`Device`]: one device of the Conclave system, and its set-up (register, mailbox, pool,
//! self group), contacts and synchronisation. Group operations are in [`crate::group`].

use crate::auth::{AuthClient, DeviceSigner};
use crate::contact::{self, CONTACT_SUITE, ContactBody, ContactKind};
use crate::delivery::DeliveryClient;
use crate::directory::{self, Anchors, VerifiedDevice};
use crate::error::Error;
use crate::event::{DeviceName, Event, EventId, GroupId};
use crate::net::{now, random};
use crate::seal::StoreKey;
use crate::state::*;
use crate::store::{Batch, Kind, Store};
use conclave_api::auth::{self as as_api, Authorization};
use conclave_api::delivery::{Bytes, MailboxEntryKind, SealedKeyPackage};
use conclave_mls::codec::{Decode as _, Encode as _};
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::{Lifetime, MlsMessageBody};
use conclave_mls::{
    CipherSuite, CryptoProvider as _, Identity, KeyPackageBundle, KeyPackageOptions, MlsMessage,
    RustCrypto,
};
use ed25519_dalek::{Signer as _, SigningKey};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The cipher suite of every group (RFC 9420 §17.1, the mandatory one).
pub(crate) const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
/// The AEAD that seals KeyPackages for a pool (ChaCha20-Poly1305, 256-bit key).
const POOL_SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519;

/// How many KeyPackages a device keeps in its pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolPolicy {
    /// Refill up to this many.
    pub target: u32,
    /// Refill when fewer than this many are left.
    pub low_water: u32,
    /// Lifetime of each KeyPackage, seconds.
    pub lifetime_secs: u64,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self {
            target: 20,
            low_water: 10,
            lifetime_secs: 30 * 86_400,
        }
    }
}

/// Where the servers are, where the device keeps its state and how it behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The AS, `http://host:port`.
    pub auth_url: String,
    /// The DS, `http://host:port`.
    pub delivery_url: String,
    /// The device's store (one SQLite file).
    pub store: PathBuf,
    /// The key that seals the store.
    pub store_key: StoreKey,
    /// The KeyPackage pool.
    pub pool: PoolPolicy,
    /// Accept every contact request at once (bots, the demo); otherwise each becomes an
    /// [`Event::ContactRequest`] for [`Device::accept_contact`].
    pub auto_accept_contacts: bool,
    /// How this device watches its own user's directory entry for devices none of the
    /// user's devices added.
    pub watch: WatchPolicy,
}

/// How a device watches its own user's entry in the key-transparency directory (RFC 9750
/// §8.4.3.1: a malicious or compromised AS could certify and publish a "ghost" device of
/// the user, to be added to every group the user's contacts share with them). A device the
/// directory proves that no sibling has announced (its card, DESIGN flow 6) within
/// `grace_secs` of being first seen raises [`Event::UnknownDevice`] once.
#[derive(Clone, Debug)]
pub struct WatchPolicy {
    /// Seconds between two looks at the directory during [`Device::sync`] (0: every sync).
    pub interval_secs: u64,
    /// Seconds a new device has to announce itself to its siblings before it is reported;
    /// a device that just registered announces itself within seconds.
    pub grace_secs: u64,
}

impl Default for WatchPolicy {
    fn default() -> Self {
        Self {
            interval_secs: 60,
            grace_secs: 300,
        }
    }
}

/// What the watch of the user's own directory entry remembers.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct OwnWatch {
    /// When the directory was last looked at.
    checked_at: u64,
    /// Devices of the directory that no sibling announced: when each was first seen, and
    /// whether it was reported.
    unknown: Vec<(String, u64, bool)>,
}

/// The store record of [`OwnWatch`].
const OWN_WATCH_ID: &[u8] = b"own-directory-watch";

impl Config {
    /// A configuration with the default pool policy and no auto-accept.
    pub fn new(
        auth_url: impl Into<String>,
        delivery_url: impl Into<String>,
        store: impl Into<PathBuf>,
        store_key: StoreKey,
    ) -> Self {
        Self {
            auth_url: auth_url.into(),
            delivery_url: delivery_url.into(),
            store: store.into(),
            store_key,
            pool: PoolPolicy::default(),
            auto_accept_contacts: false,
            watch: WatchPolicy::default(),
        }
    }
}

/// A contact, as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The user.
    pub user: String,
    /// Where the relationship stands.
    pub state: ContactState,
    /// The devices this device can add to groups.
    pub devices: Vec<String>,
}

/// A registration challenge of the AS, to answer with [`Device::register_answering`].
#[derive(Clone, Debug)]
pub struct RegistrationChallenge {
    auth_url: String,
    challenge: conclave_api::auth::Challenge,
}

impl RegistrationChallenge {
    /// The `nonce` to ask the identity provider to put in the ID token: the challenge's
    /// nonce, base64url without padding.
    pub fn oidc_nonce(&self) -> String {
        conclave_api::encode_b64(&self.challenge.nonce.0)
    }

    /// Unix time after which the AS refuses the challenge.
    pub fn expires_at(&self) -> u64 {
        self.challenge.expires_at
    }

    /// The AS that issued it.
    pub fn auth_url(&self) -> &str {
        &self.auth_url
    }
}

/// One device of the Conclave system: its keys, mailbox, pool, contacts and groups, kept in
/// an encrypted local store. Cheap to clone; clones share one state.
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Arc<Mutex<Inner>>,
    user_id: String,
    device_id: String,
}

/// The state behind the lock.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) auth: AuthClient,
    pub(crate) ds: DeliveryClient,
    pub(crate) record: DeviceRecord,
    pub(crate) provider: RustCrypto,
    pub(crate) config: Config,
    pub(crate) validator: Arc<X509Validator>,
}

impl Device {
    /// Registers a new device with the AS (sign-in by `authorization`), then opens its
    /// mailbox and KeyPackage pool at the DS — anonymously, with nothing linking the two —
    /// and joins the user's other devices (DESIGN flows 1, 2, 6).
    ///
    /// An OpenID Connect ID token cannot be given here: it must carry the nonce of the
    /// challenge it answers, which exists only once asked for. Use
    /// [`Device::registration_challenge`] and [`Device::register_answering`].
    pub async fn register(config: Config, authorization: Authorization) -> Result<Device, Error> {
        if matches!(authorization, Authorization::Oidc { .. }) {
            return Err(Error::Config(
                "an ID token must carry the nonce of a registration challenge: \
                 use Device::registration_challenge, then Device::register_answering"
                    .into(),
            ));
        }
        let challenge = Self::registration_challenge(&config.auth_url).await?;
        Self::register_answering(config, &challenge, authorization).await
    }

    /// Asks the AS at `auth_url` for a registration challenge. For a sign-in with OpenID
    /// Connect, the identity provider is asked for an ID token whose `nonce` is
    /// [`RegistrationChallenge::oidc_nonce`] (OpenID Connect Core §3.1.2.1), which binds
    /// the token to this one registration; then [`Device::register_answering`].
    pub async fn registration_challenge(auth_url: &str) -> Result<RegistrationChallenge, Error> {
        let challenge = AuthClient::new(auth_url)?.challenge().await?;
        Ok(RegistrationChallenge {
            auth_url: auth_url.to_owned(),
            challenge,
        })
    }

    /// Registers a new device as [`Device::register`] does, answering `challenge` (from
    /// the same AS as `config`'s). The challenge is spent whatever the outcome.
    pub async fn register_answering(
        config: Config,
        challenge: &RegistrationChallenge,
        authorization: Authorization,
    ) -> Result<Device, Error> {
        if challenge.auth_url != config.auth_url {
            return Err(Error::Config(format!(
                "the challenge is from {}, not from {}",
                challenge.auth_url, config.auth_url
            )));
        }
        let store = Store::open(&config.store, &config.store_key).await?;
        if store
            .get::<DeviceRecord>(Kind::Device, DEVICE_ID)
            .await?
            .is_some()
        {
            return Err(Error::Config(format!(
                "{} already holds a registered device",
                config.store.display()
            )));
        }
        let auth = AuthClient::new(&config.auth_url)?;
        let provider = RustCrypto::default();
        let seed = random::<32>()?;
        let key = SigningKey::from_bytes(&seed);
        let root = auth.root().await?;
        let head = auth.kt_head().await?;
        let registered = auth
            .register_answering(&key, &challenge.challenge, authorization)
            .await?;
        let contact = provider.hpke_generate_key_pair(CONTACT_SUITE)?;
        let record = DeviceRecord {
            user_id: registered.user_id,
            device_id: registered.device_id,
            signature_seed: Bytes(seed.to_vec()),
            certificates: registered.certificate.certificates,
            contact_private: Bytes(contact.private_key.as_bytes().to_vec()),
            contact_public: Bytes(contact.public_key.clone()),
            anchors: Anchors {
                root,
                vrf_public_key: head.vrf_public_key.0,
            },
            mailbox: None,
            mailbox_cursor: 0,
            revocation_cursor: 0,
            self_group: None,
            setup_complete: false,
        };
        // Recorded before anything else happens: the registration is the one step that
        // cannot be repeated with the same authorization.
        let mut batch = Batch::default();
        batch.put(Kind::Device, DEVICE_ID, &record)?;
        store.apply(batch).await?;
        let device = Self::from_parts(store, auth, record, config, provider)?;
        device.inner.lock().await.finish_setup().await?;
        Ok(device)
    }

    /// Opens a registered device from its store and completes any set-up step a crash
    /// interrupted.
    pub async fn open(config: Config) -> Result<Device, Error> {
        let store = Store::open(&config.store, &config.store_key).await?;
        let record: DeviceRecord = store
            .get(Kind::Device, DEVICE_ID)
            .await?
            .ok_or(Error::NotRegistered)?;
        let auth = AuthClient::new(&config.auth_url)?;
        let provider = RustCrypto::default();
        let device = Self::from_parts(store, auth, record, config, provider)?;
        device.inner.lock().await.finish_setup().await?;
        Ok(device)
    }

    fn from_parts(
        store: Store,
        auth: AuthClient,
        record: DeviceRecord,
        config: Config,
        provider: RustCrypto,
    ) -> Result<Device, Error> {
        let validator = Arc::new(directory::validator(&record.anchors)?);
        let ds = DeliveryClient::new(&config.delivery_url)?;
        let user_id = record.user_id.clone();
        let device_id = record.device_id.clone();
        Ok(Device {
            inner: Arc::new(Mutex::new(Inner {
                store,
                auth,
                ds,
                record,
                provider,
                config,
                validator,
            })),
            user_id,
            device_id,
        })
    }

    /// The user, `user@domain`.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Asks `user` to become a contact: sends each of their devices this user's device cards,
    /// sealed to the device's contact key, through the AS relay.
    pub async fn request_contact(&self, user: &str) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        inner.request_contact(user).await
    }

    /// Accepts `user`'s contact request.
    pub async fn accept_contact(&self, user: &str) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        inner.answer_contact(user, true).await
    }

    /// Declines `user`'s contact request.
    pub async fn decline_contact(&self, user: &str) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        inner.answer_contact(user, false).await
    }

    /// The contacts.
    pub async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        let inner = self.inner.lock().await;
        let mut out: Vec<Contact> = inner
            .store
            .list::<ContactRecord>(Kind::Contact)
            .await?
            .into_iter()
            .map(|c| Contact {
                user: c.user_id,
                state: c.state,
                devices: c.cards.into_iter().map(|c| c.device_id).collect(),
            })
            .collect();
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }

    /// The user's other devices this device knows.
    pub async fn siblings(&self) -> Result<Vec<String>, Error> {
        let inner = self.inner.lock().await;
        Ok(inner
            .siblings()
            .await?
            .into_iter()
            .map(|c| c.device_id)
            .collect())
    }

    /// The devices of `user` (this user included) as the AS serves them, verified before
    /// they are returned: each certificate chain leads to the AS root pinned at
    /// registration and names that user and device, each contact key is signed by its
    /// device's certified key, and the key-transparency proof shows these are exactly the
    /// user's devices in the directory (RFC 9750 §7, §8.4.3.1). An application shows them
    /// to let people compare devices out of band; any failed check is an
    /// [`Error::Verification`], a user without current devices [`Error::UnknownUser`].
    pub async fn user_devices(&self, user: &str) -> Result<Vec<VerifiedDevice>, Error> {
        let inner = self.inner.lock().await;
        inner.lookup(user).await
    }

    /// Fetches and handles everything waiting: contact messages, Welcomes, every group's
    /// new log entries, revocations; resubmits or rebuilds commits a crash or a lost race
    /// left pending; tops the KeyPackage pool up. New events wait in [`Device::events`].
    pub async fn sync(&self) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        inner.sync().await
    }

    /// Up to `limit` events not yet acknowledged, oldest first.
    pub async fn events(&self, limit: u32) -> Result<Vec<(EventId, Event)>, Error> {
        self.events_after(0, limit).await
    }

    /// Up to `limit` stored events after `after`, oldest first.
    pub(crate) async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(EventId, Event)>, Error> {
        let inner = self.inner.lock().await;
        Ok(inner
            .store
            .events::<Event>(after, limit)
            .await?
            .into_iter()
            .map(|(id, e)| (EventId(id), e))
            .collect())
    }

    /// The DS this device talks to.
    pub(crate) async fn delivery_url(&self) -> String {
        self.inner.lock().await.config.delivery_url.clone()
    }

    /// What to subscribe to for pushes: the mailbox (id and key), and each group this
    /// device is in with its epoch and that epoch's group auth key.
    pub(crate) async fn subscriptions(
        &self,
    ) -> Result<
        (
            Option<(String, SigningKey)>,
            Vec<(Vec<u8>, u64, SigningKey)>,
        ),
        Error,
    > {
        let inner = self.inner.lock().await;
        let mailbox = inner.mailbox().ok().map(|(m, key)| (m.id.clone(), key));
        Ok((mailbox, inner.group_keys().await?))
    }

    /// Acknowledges every event up to and including `id`: they are not handed out again.
    pub async fn ack(&self, id: EventId) -> Result<(), Error> {
        let inner = self.inner.lock().await;
        inner.store.ack_events(id.0).await
    }

    /// Revokes one of this user's devices (or this one) at the AS; the other members of its
    /// groups remove it when they see the revocation.
    pub async fn revoke_device(&self, device_id: &str) -> Result<(), Error> {
        let inner = self.inner.lock().await;
        let key = inner.signing_key();
        let signer = DeviceSigner {
            device_id: &inner.record.device_id,
            key: &key,
        };
        inner
            .auth
            .revoke_device(&signer, device_id, Some("revoked by its user".into()))
            .await
    }

    /// Closes the store.
    pub async fn close(self) {
        let inner = self.inner.lock().await;
        inner.store.close().await;
    }
}

impl Inner {
    pub(crate) fn signing_key(&self) -> SigningKey {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&self.record.signature_seed.0[..32]);
        SigningKey::from_bytes(&seed)
    }

    /// The MLS identity: the certified key and its chain.
    pub(crate) fn identity(&self) -> Identity {
        let certificates: Vec<Vec<u8>> = self
            .record
            .certificates
            .iter()
            .map(|c| c.0.clone())
            .collect();
        let key = self.signing_key();
        Identity {
            suite: SUITE,
            credential: directory::credential(&certificates),
            signature_key: key.verifying_key().to_bytes().to_vec().into(),
            signer: conclave_mls::crypto::SignaturePrivateKey::from_slice(
                &self.record.signature_seed.0,
            ),
        }
    }

    pub(crate) fn mailbox(&self) -> Result<(&Mailbox, SigningKey), Error> {
        let mailbox = self.record.mailbox.as_ref().ok_or(Error::NotRegistered)?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&mailbox.key_seed.0[..32]);
        Ok((mailbox, SigningKey::from_bytes(&seed)))
    }

    /// This device's card.
    pub(crate) fn own_card(&self) -> Result<Card, Error> {
        let (mailbox, _) = self.mailbox()?;
        Ok(Card {
            user_id: self.record.user_id.clone(),
            device_id: self.record.device_id.clone(),
            mailbox_id: mailbox.id.clone(),
            pool_id: mailbox.pool_id.clone(),
            pool_key: mailbox.pool_key.clone(),
            claim_secret: mailbox.claim_secret.clone(),
        })
    }

    pub(crate) async fn siblings(&self) -> Result<Vec<Card>, Error> {
        Ok(self
            .store
            .get::<Vec<Card>>(Kind::Meta, SIBLINGS_ID)
            .await?
            .unwrap_or_default())
    }

    /// Cards of every device of this user (this one first).
    pub(crate) async fn user_cards(&self) -> Result<Vec<Card>, Error> {
        let mut cards = vec![self.own_card()?];
        cards.extend(self.siblings().await?);
        Ok(cards)
    }

    pub(crate) async fn save_record(&self) -> Result<(), Error> {
        let mut batch = Batch::default();
        batch.put(Kind::Device, DEVICE_ID, &self.record)?;
        self.store.apply(batch).await
    }

    /// The steps after registration, each recorded when done: contact key, mailbox and
    /// pool, first KeyPackages, self group or a request to join it.
    async fn finish_setup(&mut self) -> Result<(), Error> {
        if self.record.setup_complete {
            return Ok(());
        }
        if self.record.mailbox.is_none() {
            self.open_mailbox().await?;
        }
        // The user's devices share a self group: the first creates it, later ones ask a
        // sibling to be added (DESIGN flow 6).
        let siblings = self.lookup(&self.record.user_id.clone()).await?;
        let others: Vec<&VerifiedDevice> = siblings
            .iter()
            .filter(|d| d.device_id != self.record.device_id)
            .collect();
        if others.is_empty() {
            if self.record.self_group.is_none() {
                let group = self.create_group_inner().await?;
                self.record.self_group = Some(Bytes(group.0));
            }
        } else {
            let card = self.own_card()?;
            for other in others {
                self.send_contact(other, ContactKind::Sibling, vec![card.clone()])
                    .await?;
            }
        }
        self.record.setup_complete = true;
        self.save_record().await
    }

    /// Publishes the contact key, opens the mailbox and the pool and fills the pool.
    async fn open_mailbox(&mut self) -> Result<(), Error> {
        let key = self.signing_key();
        let contact_key = as_api::ContactKey {
            key: self.record.contact_public.0.clone().into(),
            signature: key
                .sign(&as_api::contact_key_message(
                    &self.record.user_id,
                    &self.record.device_id,
                    &self.record.contact_public.0,
                ))
                .to_bytes()
                .to_vec()
                .into(),
        };
        let signer = DeviceSigner {
            device_id: &self.record.device_id,
            key: &key,
        };
        self.auth.put_contact_key(&signer, &contact_key).await?;
        // The DS side: anonymous, with fresh keys that appear nowhere at the AS.
        let mailbox_seed = random::<32>()?;
        let mailbox_key = SigningKey::from_bytes(&mailbox_seed);
        let claim_secret = random::<32>()?;
        // Each costs a Privacy Pass token when the DS asks for them (crate::tokens).
        let (ds, key) = (&self.ds, &mailbox_key);
        let mailbox_id = self
            .paid(|token| async move { ds.create_mailbox(key, token.as_ref()).await })
            .await?;
        let (mailbox, secret) = (&mailbox_id, &claim_secret);
        let pool_id = self
            .paid(|token| async move { ds.create_pool(mailbox, key, secret, token.as_ref()).await })
            .await?;
        self.record.mailbox = Some(Mailbox {
            id: mailbox_id,
            key_seed: Bytes(mailbox_seed.to_vec()),
            pool_id,
            pool_key: Bytes(random::<32>()?.to_vec()),
            claim_secret: Bytes(claim_secret.to_vec()),
        });
        self.save_record().await?;
        self.top_up_pool().await
    }

    /// Looks a user up at the AS and verifies the answer.
    pub(crate) async fn lookup(&self, user: &str) -> Result<Vec<VerifiedDevice>, Error> {
        let key = self.signing_key();
        let signer = DeviceSigner {
            device_id: &self.record.device_id,
            key: &key,
        };
        let answer = match self.auth.user_devices(&signer, user).await {
            Err(Error::Refused { status: 404, .. }) => {
                return Err(Error::UnknownUser(user.to_owned()));
            }
            other => other?,
        };
        let devices = directory::verify_user(&self.record.anchors, user, &answer)?;
        if devices.is_empty() {
            // Registered once, every device since revoked: nobody to talk to.
            return Err(Error::UnknownUser(user.to_owned()));
        }
        Ok(devices)
    }

    /// Seals and relays one contact message to `to`.
    pub(crate) async fn send_contact(
        &self,
        to: &VerifiedDevice,
        kind: ContactKind,
        cards: Vec<Card>,
    ) -> Result<(), Error> {
        let Some(contact_key) = &to.contact_key else {
            tracing::warn!(device = %to.device_id, "no contact key published; skipped");
            return Ok(());
        };
        let key = self.signing_key();
        let body = ContactBody {
            kind,
            from_user: self.record.user_id.clone(),
            from_device: self.record.device_id.clone(),
            to_user: to.user_id.clone(),
            to_device: to.device_id.clone(),
            cards,
            sent_at: now(),
        };
        let sealed = contact::seal(&self.provider, &key, &body, contact_key)?;
        let signer = DeviceSigner {
            device_id: &self.record.device_id,
            key: &key,
        };
        self.auth.relay_post(&signer, &to.device_id, sealed).await
    }

    /// Sends `kind` with this user's cards to every device of `user`.
    async fn send_to_user(&self, user: &str, kind: ContactKind) -> Result<(), Error> {
        let devices = self.lookup(user).await?;
        let cards = self.user_cards().await?;
        for device in &devices {
            self.send_contact(device, kind.clone(), cards.clone())
                .await?;
        }
        Ok(())
    }

    async fn request_contact(&mut self, user: &str) -> Result<(), Error> {
        if user == self.record.user_id {
            return Err(Error::Config("a user is not their own contact".into()));
        }
        let existing: Option<ContactRecord> =
            self.store.get(Kind::Contact, user.as_bytes()).await?;
        if let Some(c) = &existing {
            if c.state == ContactState::Pending {
                // They asked first: asking back is accepting.
                return self.answer_contact(user, true).await;
            }
        }
        self.send_to_user(user, ContactKind::Request).await?;
        let record = ContactRecord {
            user_id: user.to_owned(),
            state: ContactState::Requested,
            cards: existing.map(|c| c.cards).unwrap_or_default(),
        };
        let mut batch = Batch::default();
        batch.put(Kind::Contact, user.as_bytes(), &record)?;
        self.store.apply(batch).await?;
        self.share_with_siblings().await
    }

    async fn answer_contact(&mut self, user: &str, accept: bool) -> Result<(), Error> {
        let mut record: ContactRecord = self
            .store
            .get(Kind::Contact, user.as_bytes())
            .await?
            .ok_or_else(|| Error::NotAContact(user.to_owned()))?;
        let kind = if accept {
            ContactKind::Accept
        } else {
            ContactKind::Decline
        };
        self.send_to_user(user, kind).await?;
        record.state = if accept {
            ContactState::Accepted
        } else {
            ContactState::Declined
        };
        if !accept {
            record.cards.clear();
        }
        let mut batch = Batch::default();
        batch.put(Kind::Contact, user.as_bytes(), &record)?;
        self.store.apply(batch).await?;
        self.share_with_siblings().await
    }

    /// Everything this device does, in order; each step records its own progress.
    async fn sync(&mut self) -> Result<(), Error> {
        self.finish_setup().await?;
        // Groups before contact messages: what a sibling says in the self group (a request
        // it sent) explains the answers that follow.
        self.read_mailbox().await?;
        for group in self.group_ids().await? {
            self.sync_group(&group).await?;
            self.finish_pending(&group).await?;
        }
        self.read_relay().await?;
        self.read_revocations().await?;
        self.watch_own_devices().await?;
        self.top_up_pool().await?;
        Ok(())
    }

    /// Looks at this user's own directory entry (proven by key transparency) for devices
    /// that no device of the user added: see [`WatchPolicy`].
    async fn watch_own_devices(&mut self) -> Result<(), Error> {
        let policy = self.config.watch.clone();
        let mut watch: OwnWatch = self
            .store
            .get(Kind::Meta, OWN_WATCH_ID)
            .await?
            .unwrap_or_default();
        let now = now();
        if watch.checked_at != 0 && now < watch.checked_at.saturating_add(policy.interval_secs) {
            return Ok(());
        }
        let user = self.record.user_id.clone();
        let listed = match self.lookup(&user).await {
            // Every device of the user revoked: the revocation feed says the rest.
            Err(Error::UnknownUser(_)) => Vec::new(),
            other => other?,
        };
        let known = self.siblings().await?;
        let announced =
            |id: &str| id == self.record.device_id || known.iter().any(|c| c.device_id == id);
        // Forget what was announced since, or left the directory (revoked).
        watch
            .unknown
            .retain(|(id, _, _)| !announced(id) && listed.iter().any(|d| &d.device_id == id));
        let mut batch = Batch::default();
        for device in listed.iter().filter(|d| !announced(&d.device_id)) {
            let at = match watch
                .unknown
                .iter()
                .position(|(id, _, _)| id == &device.device_id)
            {
                Some(at) => at,
                None => {
                    watch.unknown.push((device.device_id.clone(), now, false));
                    watch.unknown.len() - 1
                }
            };
            let (_, first_seen, reported) = &mut watch.unknown[at];
            if !*reported && now >= first_seen.saturating_add(policy.grace_secs) {
                *reported = true;
                tracing::warn!(device = %device.device_id, "a device of this user that none of its devices added");
                batch.event(&Event::UnknownDevice {
                    device: DeviceName {
                        user: user.clone(),
                        device: device.device_id.clone(),
                    },
                })?;
            }
        }
        watch.checked_at = now;
        batch.put(Kind::Meta, OWN_WATCH_ID, &watch)?;
        self.store.apply(batch).await
    }

    /// Contact messages from the AS relay. The relay deletes what it hands out, so the
    /// batch is recorded before any of it is handled (write-ahead), then handled one by
    /// one, each removal recorded with its effects.
    async fn read_relay(&mut self) -> Result<(), Error> {
        const QUEUE: &[u8] = b"relay-queue";
        let mut queue: Vec<Bytes> = self.store.get(Kind::Meta, QUEUE).await?.unwrap_or_default();
        let key = self.signing_key();
        let signer = DeviceSigner {
            device_id: &self.record.device_id,
            key: &key,
        };
        let fetched = self.auth.relay_fetch(&signer).await?;
        if !fetched.is_empty() {
            queue.extend(fetched.into_iter().map(|m| Bytes(m.sealed.0)));
            let mut batch = Batch::default();
            batch.put(Kind::Meta, QUEUE, &queue)?;
            self.store.apply(batch).await?;
        }
        while let Some(sealed) = queue.first().cloned() {
            let mut batch = Batch::default();
            let follow_up = match self.handle_contact_message(&sealed.0, &mut batch).await {
                Ok(follow_up) => follow_up,
                Err(e) => {
                    // A message that does not open or verify is dropped: it can only be
                    // forged or garbled, and keeping it would block the queue.
                    tracing::warn!("contact message dropped: {e}");
                    None
                }
            };
            queue.remove(0);
            batch.put(Kind::Meta, QUEUE, &queue)?;
            self.store.apply(batch).await?;
            match follow_up {
                Some(FollowUp::Accept(user)) => self.answer_contact(&user, true).await?,
                Some(FollowUp::AddSibling(card)) => self.add_sibling(card).await?,
                Some(FollowUp::ShareWithSiblings) => self.share_with_siblings().await?,
                None => {}
            }
        }
        Ok(())
    }

    async fn handle_contact_message(
        &mut self,
        sealed: &[u8],
        batch: &mut Batch,
    ) -> Result<Option<FollowUp>, Error> {
        let (body, body_bytes, signature) = contact::open(
            &self.provider,
            &self.record.contact_private.0,
            &self.record.device_id,
            sealed,
        )?;
        // The sender must be a current, transparency-proven device of the user it names.
        let devices = self.lookup(&body.from_user).await?;
        let sender = devices
            .iter()
            .find(|d| d.device_id == body.from_device)
            .ok_or_else(|| Error::Verification {
                subject: body.from_user.clone(),
                reason: "the sending device is not one of the user's devices".into(),
            })?;
        if !contact::verify(&sender.signature_key, &body_bytes, &signature) {
            return Err(Error::Verification {
                subject: body.from_user.clone(),
                reason: "contact message signature".into(),
            });
        }
        // Every card must be of a device of the sending user.
        let cards: Vec<Card> = body
            .cards
            .into_iter()
            .filter(|c| c.user_id == body.from_user)
            .collect();
        let user = body.from_user.clone();
        if body.kind == ContactKind::Sibling {
            if user != self.record.user_id || self.record.self_group.is_none() {
                return Ok(None);
            }
            return Ok(cards
                .into_iter()
                .find(|c| c.device_id == body.from_device)
                .map(FollowUp::AddSibling));
        }
        if user == self.record.user_id {
            return Ok(None);
        }
        let existing: Option<ContactRecord> =
            self.store.get(Kind::Contact, user.as_bytes()).await?;
        let mut record = existing.clone().unwrap_or(ContactRecord {
            user_id: user.clone(),
            state: ContactState::Pending,
            cards: Vec::new(),
        });
        merge_cards(&mut record.cards, cards);
        let mut follow_up = None;
        match body.kind {
            ContactKind::Request => match record.state {
                ContactState::Requested | ContactState::Accepted => {
                    // Both asked, or a new device of theirs asks again: answer with ours.
                    if record.state == ContactState::Requested {
                        batch.event(&Event::ContactAccepted { user: user.clone() })?;
                    }
                    record.state = ContactState::Accepted;
                    follow_up = Some(FollowUp::Accept(user.clone()));
                }
                ContactState::Pending | ContactState::Declined => {
                    if existing.is_none() || record.state == ContactState::Declined {
                        record.state = ContactState::Pending;
                        batch.event(&Event::ContactRequest { user: user.clone() })?;
                    }
                    if self.config.auto_accept_contacts {
                        follow_up = Some(FollowUp::Accept(user.clone()));
                    }
                }
            },
            ContactKind::Accept => {
                if record.state == ContactState::Requested {
                    record.state = ContactState::Accepted;
                    batch.event(&Event::ContactAccepted { user: user.clone() })?;
                    follow_up = Some(FollowUp::ShareWithSiblings);
                } else if existing.is_none() {
                    // A sibling asked; until it tells us so, treat it as their request.
                    batch.event(&Event::ContactRequest { user: user.clone() })?;
                }
            }
            ContactKind::Decline => {
                if record.state == ContactState::Requested {
                    record.state = ContactState::Declined;
                    record.cards.clear();
                    batch.event(&Event::ContactDeclined { user: user.clone() })?;
                }
            }
            ContactKind::DeviceAdded => {
                if existing.is_none() {
                    return Ok(None);
                }
                batch.event(&Event::DeviceAdded {
                    device: DeviceName {
                        user: user.clone(),
                        device: body.from_device.clone(),
                    },
                })?;
            }
            ContactKind::Sibling => {}
        }
        batch.put(Kind::Contact, user.as_bytes(), &record)?;
        Ok(follow_up)
    }

    /// Welcomes from the mailbox: join each group, then acknowledge the entries.
    async fn read_mailbox(&mut self) -> Result<(), Error> {
        loop {
            let (mailbox, key) = self.mailbox()?;
            let mailbox_id = mailbox.id.clone();
            let entries = self
                .ds
                .entries(&mailbox_id, &key, self.record.mailbox_cursor)
                .await?;
            if entries.is_empty() {
                return Ok(());
            }
            let mut handled = Vec::new();
            for entry in entries {
                let mut batch = Batch::default();
                if entry.kind == MailboxEntryKind::Welcome {
                    if let Err(e) = self.join_from_welcome(&entry.data.0, &mut batch).await {
                        tracing::warn!("Welcome not usable: {e}");
                        batch = Batch::default();
                    }
                }
                self.record.mailbox_cursor = self.record.mailbox_cursor.max(entry.id);
                batch.put(Kind::Device, DEVICE_ID, &self.record)?;
                self.store.apply(batch).await?;
                handled.push(entry.id);
            }
            self.ds.ack(&mailbox_id, &key, handled).await?;
        }
    }

    /// Tops the pool up to the policy's target when it is below its low-water mark.
    pub(crate) async fn top_up_pool(&mut self) -> Result<(), Error> {
        let (mailbox, key) = self.mailbox()?;
        let mailbox = mailbox.clone();
        let status = self
            .ds
            .pool_status(&mailbox.id, &key, &mailbox.pool_id)
            .await?;
        let policy = self.config.pool;
        let missing = if status.available < u64::from(policy.low_water) {
            u64::from(policy.target).saturating_sub(status.available)
        } else {
            0
        };
        let need_last_resort = !status.last_resort;
        if missing == 0 && !need_last_resort {
            return Ok(());
        }
        let identity = self.identity();
        let issued = now();
        let mut batch = Batch::default();
        let mut blobs = Vec::new();
        let crypto = conclave_mls::crypto::SuiteCrypto::new(&self.provider, SUITE)?;
        for i in 0..missing + u64::from(need_last_resort) {
            let last_resort = need_last_resort && i == missing;
            let bundle = KeyPackageBundle::generate(
                &self.provider,
                &identity,
                KeyPackageOptions::new(Lifetime::starting_at(
                    issued.saturating_sub(300),
                    policy.lifetime_secs,
                )),
            )?;
            let reference = bundle.key_package().reference(&crypto)?;
            batch.put(
                Kind::KeyPackage,
                reference.as_slice(),
                &KeyPackageRecord {
                    bundle: Bytes(bundle.to_bytes()?),
                    last_resort,
                },
            )?;
            let plaintext = bundle.message().encode()?;
            blobs.push(SealedKeyPackage {
                sealed: Bytes(seal_key_package(
                    &self.provider,
                    &mailbox.pool_key.0,
                    &mailbox.pool_id,
                    &plaintext,
                )?),
                last_resort,
            });
        }
        // The private halves are kept before the public ones are published.
        self.store.apply(batch).await?;
        self.ds
            .upload(
                &mailbox.id,
                &key,
                &mailbox.pool_id,
                blobs,
                issued + policy.lifetime_secs,
            )
            .await
    }

    /// Tells the user's other devices what this one knows: siblings and contacts.
    pub(crate) async fn share_with_siblings(&mut self) -> Result<(), Error> {
        let Some(self_group) = self.record.self_group.clone() else {
            return Ok(());
        };
        let contacts: Vec<ContactRecord> = self.store.list(Kind::Contact).await?;
        let payload = crate::group::Payload::SelfSync {
            siblings: self.user_cards().await?,
            contacts,
        };
        self.send_payload(&GroupId(self_group.0), &payload).await
    }

    /// Handles a sibling's [`crate::group::Payload::SelfSync`].
    pub(crate) async fn merge_self_sync(
        &mut self,
        group: &[u8],
        siblings: Vec<Card>,
        contacts: Vec<ContactRecord>,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        if self.record.self_group.is_none() {
            self.record.self_group = Some(Bytes(group.to_vec()));
            batch.put(Kind::Device, DEVICE_ID, &self.record)?;
        }
        let mut known = self.siblings().await?;
        let own = self.record.device_id.clone();
        let mut new_devices = Vec::new();
        for card in siblings {
            if card.user_id == self.record.user_id
                && card.device_id != own
                && !known.iter().any(|k| k.device_id == card.device_id)
            {
                new_devices.push(card.device_id.clone());
                known.push(card);
            }
        }
        batch.put(Kind::Meta, SIBLINGS_ID, &known)?;
        for device in new_devices {
            batch.event(&Event::DeviceAdded {
                device: DeviceName {
                    user: self.record.user_id.clone(),
                    device,
                },
            })?;
        }
        for theirs in contacts {
            if theirs.user_id == self.record.user_id {
                continue;
            }
            let mine: Option<ContactRecord> = self
                .store
                .get(Kind::Contact, theirs.user_id.as_bytes())
                .await?;
            let merged = match mine {
                None => theirs,
                Some(mut mine) => {
                    merge_cards(&mut mine.cards, theirs.cards);
                    mine.state = match (mine.state, theirs.state) {
                        (_, ContactState::Accepted) => ContactState::Accepted,
                        (ContactState::Pending, ContactState::Requested) => ContactState::Accepted,
                        (ContactState::Accepted, _) => ContactState::Accepted,
                        (_, s) => s,
                    };
                    mine
                }
            };
            batch.put(Kind::Contact, merged.user_id.as_bytes(), &merged)?;
        }
        Ok(())
    }

    /// Revocations from the AS feed: each revoked device is removed from every group this
    /// device shares with it (the first member to see it commits; DESIGN flow 7).
    async fn read_revocations(&mut self) -> Result<(), Error> {
        loop {
            let key = self.signing_key();
            let signer = DeviceSigner {
                device_id: &self.record.device_id,
                key: &key,
            };
            let feed = self
                .auth
                .revocations(&signer, self.record.revocation_cursor)
                .await?;
            if feed.revocations.is_empty() {
                return Ok(());
            }
            for revocation in &feed.revocations {
                let device = DeviceName {
                    user: revocation.user_id.clone(),
                    device: revocation.device_id.clone(),
                };
                let mut touched = false;
                for group in self.group_ids().await? {
                    if self
                        .remove_keys(&group, vec![revocation.signature_key.0.clone().into()])
                        .await?
                    {
                        touched = true;
                    }
                }
                let mut batch = Batch::default();
                if let Some(mut c) = self
                    .store
                    .get::<ContactRecord>(Kind::Contact, revocation.user_id.as_bytes())
                    .await?
                {
                    c.cards
                        .retain(|card| card.device_id != revocation.device_id);
                    batch.put(Kind::Contact, revocation.user_id.as_bytes(), &c)?;
                    touched = true;
                }
                if revocation.user_id == self.record.user_id {
                    let mut siblings = self.siblings().await?;
                    siblings.retain(|card| card.device_id != revocation.device_id);
                    batch.put(Kind::Meta, SIBLINGS_ID, &siblings)?;
                    touched = true;
                }
                if touched {
                    batch.event(&Event::DeviceRevoked { device })?;
                }
                self.record.revocation_cursor = revocation.seq;
                batch.put(Kind::Device, DEVICE_ID, &self.record)?;
                self.store.apply(batch).await?;
            }
            self.record.revocation_cursor = self.record.revocation_cursor.max(feed.next);
            self.save_record().await?;
        }
    }

    /// Adds a new device of this user: to the self group, then to every other group this
    /// device is in, then announces it to every contact (DESIGN flow 6).
    async fn add_sibling(&mut self, card: Card) -> Result<(), Error> {
        let Some(self_group) = self.record.self_group.clone() else {
            return Ok(());
        };
        let mut siblings = self.siblings().await?;
        if !siblings.iter().any(|c| c.device_id == card.device_id) {
            siblings.push(card.clone());
            let mut batch = Batch::default();
            batch.put(Kind::Meta, SIBLINGS_ID, &siblings)?;
            batch.event(&Event::DeviceAdded {
                device: DeviceName {
                    user: card.user_id.clone(),
                    device: card.device_id.clone(),
                },
            })?;
            self.store.apply(batch).await?;
        }
        let devices = self.lookup(&self.record.user_id.clone()).await?;
        let Some(verified) = devices.iter().find(|d| d.device_id == card.device_id) else {
            return Ok(());
        };
        let self_group = GroupId(self_group.0);
        self.add_devices(&self_group, &[(verified.clone(), card.clone())])
            .await?;
        self.share_with_siblings().await?;
        for group in self.group_ids().await? {
            if group != self_group {
                self.add_devices(&group, &[(verified.clone(), card.clone())])
                    .await?;
            }
        }
        for contact in self.store.list::<ContactRecord>(Kind::Contact).await? {
            if contact.state != ContactState::Accepted {
                continue;
            }
            for device in self.lookup(&contact.user_id).await? {
                self.send_contact(&device, ContactKind::DeviceAdded, vec![card.clone()])
                    .await?;
            }
        }
        Ok(())
    }

    /// Finds the stored KeyPackage a Welcome is for and joins the group.
    async fn join_from_welcome(&mut self, bytes: &[u8], batch: &mut Batch) -> Result<(), Error> {
        let message = MlsMessage::decode(bytes)?;
        let MlsMessageBody::Welcome(welcome) = &message.body else {
            return Err(Error::Verification {
                subject: "a mailbox entry".into(),
                reason: "not a Welcome".into(),
            });
        };
        let mut found = None;
        for secrets in &welcome.secrets {
            if let Some(record) = self
                .store
                .get::<KeyPackageRecord>(Kind::KeyPackage, secrets.new_member.as_slice())
                .await?
            {
                found = Some((secrets.new_member.as_slice().to_vec(), record));
                break;
            }
        }
        let Some((reference, record)) = found else {
            return Err(Error::Verification {
                subject: "a Welcome".into(),
                reason: "for none of this device's KeyPackages (already used?)".into(),
            });
        };
        let bundle = KeyPackageBundle::from_bytes(&record.bundle.0)?;
        let identity = self.identity();
        let staged = conclave_mls::Group::join(message, &identity, &bundle, self.validator.clone())
            .config(crate::group::config())
            .stage(&self.provider)?;
        let added_by = staged
            .added_by()
            .and_then(|m| directory::identity_of(m.credential))
            .map(|(user, device)| DeviceName { user, device });
        let group = staged.accept();
        let group_id = group.group_id().to_vec();
        if self
            .store
            .get::<GroupRecord>(Kind::Group, &group_id)
            .await?
            .is_some_and(|g| !g.removed)
        {
            return Ok(());
        }
        if !record.last_resort {
            batch.delete(Kind::KeyPackage, &reference);
        }
        let record = GroupRecord {
            group_id: Bytes(group_id.clone()),
            state: Bytes(group.export_state()?),
            next_seq: 1,
            pending: None,
            retry: None,
            removed: false,
            leaving: None,
        };
        batch.put(Kind::Group, &group_id, &record)?;
        batch.event(&Event::GroupJoined {
            group: GroupId(group_id),
            added_by,
        })?;
        Ok(())
    }
}

enum FollowUp {
    Accept(String),
    AddSibling(Card),
    ShareWithSiblings,
}

fn merge_cards(into: &mut Vec<Card>, cards: Vec<Card>) {
    for card in cards {
        match into.iter_mut().find(|c| c.device_id == card.device_id) {
            Some(existing) => *existing = card,
            None => into.push(card),
        }
    }
}

/// Seals a KeyPackage for a pool (the DS cannot open it; contacts hold the key): a random
/// 12-byte nonce, then ChaCha20-Poly1305 under the pool key with the pool id as associated
/// data, so a blob cannot be moved to another pool.
pub(crate) fn seal_key_package(
    provider: &RustCrypto,
    pool_key: &[u8],
    pool_id: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let nonce = random::<12>()?;
    let mut out = nonce.to_vec();
    out.extend(provider.aead_seal(POOL_SUITE, pool_key, &nonce, pool_id.as_bytes(), plaintext)?);
    Ok(out)
}

/// Opens a KeyPackage claimed from a contact's pool.
pub(crate) fn open_key_package(
    provider: &RustCrypto,
    card: &Card,
    sealed: &[u8],
) -> Result<Vec<u8>, Error> {
    open_pool_blob(provider, &card.pool_key.0, &card.pool_id, sealed).ok_or_else(|| {
        Error::Verification {
            subject: card.user_id.clone(),
            reason: "a claimed KeyPackage does not open with the pool key".into(),
        }
    })
}

/// The inverse of [`seal_key_package`]; `None` if the blob is short or does not open.
pub(crate) fn open_pool_blob(
    provider: &RustCrypto,
    pool_key: &[u8],
    pool_id: &str,
    sealed: &[u8],
) -> Option<Vec<u8>> {
    if sealed.len() < 12 {
        return None;
    }
    provider
        .aead_open(
            POOL_SUITE,
            pool_key,
            &sealed[..12],
            pool_id.as_bytes(),
            &sealed[12..],
        )
        .ok()
        .map(|s| s.as_bytes().to_vec())
}
