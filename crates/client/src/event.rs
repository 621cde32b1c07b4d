//! What the SDK tells the application: typed events, stored with the state change that
//! produced them and handed out until acknowledged, so each is delivered exactly once
//! across crashes as long as the application acknowledges what it has handled.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An MLS group id, as the SDK names groups.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(#[serde(with = "hex_bytes")] pub Vec<u8>);

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({self})")
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for GroupId {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex_bytes::decode(s)
            .map(GroupId)
            .ok_or_else(|| crate::Error::Config(format!("not a group id: {s}")))
    }
}

/// One device of one user, as certified by the AS.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceName {
    /// The user, `user@domain`.
    pub user: String,
    /// The device id.
    pub device: String,
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user, self.device)
    }
}

/// An event for the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// A message from a member.
    Message {
        /// The group.
        group: GroupId,
        /// Who sent it (from the sender's certified credential).
        sender: DeviceName,
        /// The message.
        body: Vec<u8>,
    },
    /// This device joined a group.
    GroupJoined {
        /// The group.
        group: GroupId,
        /// Who added it.
        added_by: Option<DeviceName>,
    },
    /// A device joined a group this device is in.
    MemberAdded {
        /// The group.
        group: GroupId,
        /// The new member.
        member: DeviceName,
    },
    /// A device left or was removed from a group this device is in.
    MemberRemoved {
        /// The group.
        group: GroupId,
        /// The member.
        member: DeviceName,
    },
    /// This device was removed from a group; it can no longer read or post there.
    RemovedFromGroup {
        /// The group.
        group: GroupId,
    },
    /// A user asks to become a contact.
    ContactRequest {
        /// Who.
        user: String,
    },
    /// A user accepted this user's contact request.
    ContactAccepted {
        /// Who.
        user: String,
    },
    /// A user declined this user's contact request.
    ContactDeclined {
        /// Who.
        user: String,
    },
    /// A contact (or this user) has a new device.
    DeviceAdded {
        /// The device.
        device: DeviceName,
    },
    /// A device was revoked at the AS; it has been (or is being) removed from groups.
    DeviceRevoked {
        /// The device.
        device: DeviceName,
    },
    /// The key-transparency directory lists a device of this user that none of the user's
    /// devices added (a "ghost", RFC 9750 §8.4.3.1): unless the user knows it, the AS
    /// certified a key the user does not hold, and the device should be revoked.
    UnknownDevice {
        /// The device.
        device: DeviceName,
    },
}

/// A message of a group's history, as this device keeps it (sealed in its store) — the
/// messages it received and the ones it sent, in the order it saw them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who sent it.
    pub sender: DeviceName,
    /// The message.
    pub body: Vec<u8>,
    /// When this device received (or sent) it, Unix seconds.
    pub at: u64,
}

/// The position of an event in the device's queue, for [`crate::Device::ack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub(crate) i64);

impl EventId {
    /// The position as a number. It is assigned when the event is stored, grows with each
    /// new event, is never reused, and stays the event's until it is acknowledged: an event
    /// handed out again (its acknowledgement lost to a crash) comes with the same number,
    /// so an application that keeps the last number it handled can recognise the repeat.
    pub fn get(self) -> i64 {
        self.0
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("invalid hex"))
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        if !text.len().is_multiple_of(2) {
            return None;
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect()
    }
}
