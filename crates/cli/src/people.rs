//! The commands a person runs on their device: `init`, `whoami`, `contacts`, `group`,
//! `send`, `listen`, `revoke`. Each opens the profile's device, does one thing and prints
//! it — as text, or as one JSON object per line with `--json`.

use crate::error::CliError;
use crate::profile::Profile;
use conclave_client::{Authorization, ContactState, Device, Event, GroupId};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Where results go: text for people, JSON lines for scripts.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// JSON lines instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `text`, or `value` as one JSON line.
    pub fn print(&self, text: &str, value: Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

/// `conclave init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The Authentication Service's URL.
    #[arg(long = "as", default_value = "http://127.0.0.1:8443")]
    auth_url: String,
    /// The Delivery Service's URL.
    #[arg(long = "ds", default_value = "http://127.0.0.1:8444")]
    delivery_url: String,
    /// An invitation code from the operator. (Codes an earlier AS issued in base64url may
    /// begin with `-`; they are taken as the value, not as an option.)
    #[arg(
        long,
        allow_hyphen_values = true,
        conflicts_with = "oidc",
        required_unless_present = "oidc"
    )]
    code: Option<String>,
    /// Sign in with OpenID Connect: prints the nonce to ask your identity provider to put
    /// in the ID token (`nonce: …`, or `{"type":"oidc_nonce",…}` with --json), then reads
    /// the ID token from standard input. The nonce is the AS's registration challenge, so
    /// the token can register this one device only.
    #[arg(long)]
    oidc: bool,
}

/// `conclave contacts …`.
#[derive(Debug, clap::Subcommand)]
pub enum ContactsCommand {
    /// Ask a user to become a contact.
    Add {
        /// The user, user@domain.
        user: String,
    },
    /// Accept a user's request.
    Accept {
        /// The user.
        user: String,
    },
    /// Decline a user's request.
    Decline {
        /// The user.
        user: String,
    },
    /// List the contacts and where each stands.
    List,
}

/// `conclave group …`.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group (with your other devices in it); prints its id.
    Create,
    /// Add users (accepted contacts, all their devices) to a group.
    Add {
        /// The group (id or unique prefix).
        group: String,
        /// The users.
        #[arg(required = true, num_args = 1..)]
        users: Vec<String>,
    },
    /// Remove a user (all their devices) from a group.
    Remove {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// Leave a group.
    Leave {
        /// The group.
        group: String,
    },
    /// List your groups.
    List,
    /// List a group's members.
    Members {
        /// The group.
        group: String,
    },
    /// Show the group's verification code: compare it with another member out of band
    /// (equal codes: you share the same group state; RFC 9750 §8.4.3.1).
    Verify {
        /// The group.
        group: String,
    },
    /// Refresh your keys in the group (post-compromise security).
    Update {
        /// The group.
        group: String,
    },
}

async fn open(dir: &Path) -> Result<Device, CliError> {
    let profile = Profile::load(dir)?;
    Ok(Device::open(profile.config()?).await?)
}

/// `conclave init`.
pub async fn init(dir: &Path, args: InitArgs, out: &Output) -> Result<(), CliError> {
    let challenge = Device::registration_challenge(&args.auth_url).await?;
    let authorization = match args.code {
        Some(code) => Authorization::Invitation { code },
        None => {
            out.print(
                &format!(
                    "nonce: {}\nask your identity provider for an ID token with this nonce, \
                     then paste it here (valid until {}):",
                    challenge.oidc_nonce(),
                    challenge.expires_at()
                ),
                json!({
                    "type": "oidc_nonce",
                    "nonce": challenge.oidc_nonce(),
                    "expires_at": challenge.expires_at(),
                }),
            );
            Authorization::Oidc {
                id_token: read_id_token()?,
            }
        }
    };
    let spinner = spinner("registering: keys, certificate, mailbox, KeyPackages…");
    let registered = register(dir, &challenge, &args.delivery_url, authorization).await;
    spinner.finish_and_clear();
    let device = registered?;
    out.print(
        &format!(
            "registered {} as device {} (profile {})",
            device.user_id(),
            device.device_id(),
            dir.display()
        ),
        json!({ "user": device.user_id(), "device": device.device_id() }),
    );
    device.close().await;
    Ok(())
}

/// One line of standard input: the ID token.
fn read_id_token() -> Result<String, CliError> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::new("invalid", format!("reading the ID token: {e}"), ""))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(CliError::new(
            "invalid",
            "no ID token on standard input",
            "paste the ID token your identity provider issued with the nonce shown",
        ));
    }
    Ok(token.to_owned())
}

/// Creates the profile in `dir` for the AS of `challenge` and registers its device,
/// answering `challenge` (what `init` and the page of `conclave web` do). A failed
/// registration leaves no half-made profile behind, so it can be tried again.
pub async fn register(
    dir: &Path,
    challenge: &conclave_client::RegistrationChallenge,
    delivery_url: &str,
    authorization: Authorization,
) -> Result<Device, CliError> {
    // The AS is the one that issued the challenge.
    let profile = Profile::create(dir, challenge.auth_url(), delivery_url)?;
    match Device::register_answering(profile.config()?, challenge, authorization).await {
        Ok(device) => Ok(device),
        Err(e) => {
            // Nothing was registered: remove what `Profile::create` wrote.
            for file in [
                "settings.json",
                "store.key",
                "device.db",
                "device.db-wal",
                "device.db-shm",
            ] {
                let _ = std::fs::remove_file(dir.join(file));
            }
            Err(e.into())
        }
    }
}

/// A spinner on stderr for work that takes seconds; draws nothing when stderr is not a
/// terminal (scripts, `--json` pipelines).
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `conclave whoami`.
pub async fn whoami(dir: &Path, out: &Output) -> Result<(), CliError> {
    let profile = Profile::load(dir)?;
    let device = Device::open(profile.config()?).await?;
    let siblings = device.siblings().await?;
    out.print(
        &format!(
            "{} — device {}\nAS {}\nDS {}\nother devices: {}",
            device.user_id(),
            device.device_id(),
            profile.settings.auth_url,
            profile.settings.delivery_url,
            if siblings.is_empty() {
                "none".to_owned()
            } else {
                siblings.join(", ")
            }
        ),
        json!({
            "user": device.user_id(),
            "device": device.device_id(),
            "auth_url": profile.settings.auth_url,
            "delivery_url": profile.settings.delivery_url,
            "other_devices": siblings,
        }),
    );
    Ok(())
}

fn state_name(state: ContactState) -> &'static str {
    match state {
        ContactState::Requested => "requested",
        ContactState::Pending => "wants to be your contact",
        ContactState::Accepted => "accepted",
        ContactState::Declined => "declined",
    }
}

/// `conclave contacts …`.
pub async fn contacts(dir: &Path, command: ContactsCommand, out: &Output) -> Result<(), CliError> {
    let device = open(dir).await?;
    device.sync().await?;
    match command {
        ContactsCommand::Add { user } => {
            device.request_contact(&user).await?;
            out.print(
                &format!("asked {user}; they appear as accepted once they agree"),
                json!({ "user": user, "state": "requested" }),
            );
        }
        ContactsCommand::Accept { user } => {
            require_pending(&device, &user).await?;
            device.accept_contact(&user).await?;
            out.print(
                &format!("{user} is now a contact"),
                json!({ "user": user, "state": "accepted" }),
            );
        }
        ContactsCommand::Decline { user } => {
            require_pending(&device, &user).await?;
            device.decline_contact(&user).await?;
            out.print(
                &format!("declined {user}"),
                json!({ "user": user, "state": "declined" }),
            );
        }
        ContactsCommand::List => {
            let contacts = device.contacts().await?;
            if !out.json && contacts.is_empty() {
                println!("no contacts yet — `conclave contacts add USER`");
            }
            for c in contacts {
                out.print(
                    &format!("{:<32} {}", c.user, state_name(c.state)),
                    json!({ "user": c.user, "state": format!("{:?}", c.state).to_lowercase(), "devices": c.devices }),
                );
            }
        }
    }
    device.close().await;
    Ok(())
}

/// A typed error unless `user` has asked to be a contact and awaits an answer.
pub async fn require_pending(device: &Device, user: &str) -> Result<(), CliError> {
    let pending = device
        .contacts()
        .await?
        .into_iter()
        .any(|c| c.user == user && c.state == ContactState::Pending);
    if pending {
        Ok(())
    } else {
        Err(CliError::new(
            "no_request",
            format!("{user} has not asked to be your contact"),
            "`conclave contacts list` shows the requests waiting",
        ))
    }
}

/// Finds a group by its id or a unique prefix of it.
pub async fn resolve_group(device: &Device, text: &str) -> Result<GroupId, CliError> {
    let text = text.trim().to_ascii_lowercase();
    let find = |groups: Vec<GroupId>| -> Vec<GroupId> {
        groups
            .into_iter()
            .filter(|g| g.to_string().starts_with(&text))
            .collect()
    };
    if text.is_empty() {
        return Err(CliError::new(
            "unknown_group",
            "no group given",
            "`conclave group list` shows the groups",
        ));
    }
    let mut found = find(device.groups().await?);
    match found.len() {
        1 => return Ok(found.remove(0)),
        0 => {}
        _ => {
            return Err(CliError::new(
                "ambiguous_group",
                format!("{text} names {} groups", found.len()),
                "give more of the group id",
            ));
        }
    }
    if !find(device.former_groups().await?).is_empty() {
        return Err(CliError::from(conclave_client::Error::NotAMember));
    }
    Err(CliError::new(
        "unknown_group",
        format!("no group {text} on this device"),
        "`conclave group list` shows the groups",
    ))
}

/// `conclave group …`.
pub async fn group(dir: &Path, command: GroupCommand, out: &Output) -> Result<(), CliError> {
    let device = open(dir).await?;
    device.sync().await?;
    match command {
        GroupCommand::Create => {
            let group = device.create_group().await?;
            out.print(&group.to_string(), json!({ "group": group.to_string() }));
        }
        GroupCommand::Add { group, users } => {
            let group = resolve_group(&device, &group).await?;
            for user in users {
                device.add_user(&group, &user).await?;
                out.print(
                    &format!("added {user}"),
                    json!({ "group": group.to_string(), "added": user }),
                );
            }
        }
        GroupCommand::Remove { group, user } => {
            let group = resolve_group(&device, &group).await?;
            device
                .remove_user(&group, &user)
                .await
                .map_err(|e| match e {
                    // remove_user reports a user with no device in the group this way.
                    conclave_client::Error::NotAContact(user) => CliError::new(
                        "not_in_group",
                        format!("{user} is not in this group"),
                        "`conclave group members GROUP` shows who is",
                    ),
                    e => e.into(),
                })?;
            out.print(
                &format!("removed {user}"),
                json!({ "group": group.to_string(), "removed": user }),
            );
        }
        GroupCommand::Leave { group } => {
            let group = resolve_group(&device, &group).await?;
            device.leave(&group).await?;
            out.print(
                "asked to leave; the next member to commit removes this device",
                json!({ "group": group.to_string(), "leaving": true }),
            );
        }
        GroupCommand::List => {
            let groups = device.groups().await?;
            if !out.json && groups.is_empty() {
                println!("no groups yet — `conclave group create`");
            }
            for g in groups {
                // Each user once, however their devices sit among the leaves.
                let users: Vec<String> = users_of(&device.members(&g).await?)
                    .into_iter()
                    .map(|(user, _)| user)
                    .collect();
                out.print(
                    &format!("{g}  {}", users.join(", ")),
                    json!({ "group": g.to_string(), "users": users }),
                );
            }
        }
        GroupCommand::Members { group } => {
            let group = resolve_group(&device, &group).await?;
            for m in device.members(&group).await? {
                out.print(
                    &m.to_string(),
                    json!({ "user": m.user, "device": m.device }),
                );
            }
        }
        GroupCommand::Verify { group } => {
            let group = resolve_group(&device, &group).await?;
            let (epoch, code) = device.verification_code(&group).await?;
            out.print(
                &format!("epoch {epoch}: {code}"),
                json!({ "group": group.to_string(), "epoch": epoch, "code": code }),
            );
        }
        GroupCommand::Update { group } => {
            let group = resolve_group(&device, &group).await?;
            device.update(&group).await?;
            let epoch = device.epoch(&group).await?;
            out.print(
                &format!("keys refreshed; the group is at epoch {epoch}"),
                json!({ "group": group.to_string(), "epoch": epoch }),
            );
        }
    }
    device.close().await;
    Ok(())
}

/// `conclave send`.
pub async fn send(dir: &Path, group: &str, text: &str, out: &Output) -> Result<(), CliError> {
    let device = open(dir).await?;
    device.sync().await?;
    let group = resolve_group(&device, group).await?;
    device.send(&group, text.as_bytes()).await?;
    out.print("sent", json!({ "group": group.to_string(), "sent": text }));
    device.close().await;
    Ok(())
}

/// `conclave revoke`.
pub async fn revoke(dir: &Path, device_id: &str, out: &Output) -> Result<(), CliError> {
    let device = open(dir).await?;
    device.revoke_device(device_id).await?;
    out.print(
        &format!("revoked device {device_id}; its groups remove it as their members sync"),
        json!({ "revoked": device_id }),
    );
    device.close().await;
    Ok(())
}

/// `conclave listen`: prints and acknowledges events — those waiting, then (unless
/// `once`) every new one as the DS pushes it, until interrupted. Events up to `after`
/// (an id printed by an earlier run) are acknowledged without being printed again.
pub async fn listen(dir: &Path, once: bool, after: i64, out: &Output) -> Result<(), CliError> {
    let device = open(dir).await?;
    if once {
        device.sync().await?;
        loop {
            let events = device.events(100).await?;
            if events.is_empty() {
                break;
            }
            for (id, event) in events {
                print_and_ack(&device, id, &event, after, out).await?;
            }
        }
    } else {
        let mut events = device.event_stream();
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = tokio::signal::ctrl_c() => None,
            };
            match next {
                None => break,
                Some(Ok((id, event))) => print_and_ack(&device, id, &event, after, out).await?,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }
    device.close().await;
    Ok(())
}

/// Prints one event (with `--json`, with its `id`), then acknowledges it: a kill before
/// the acknowledgement prints that one event again, with the same id, never loses it. An
/// event at or before `after` was printed by an earlier run: it is only acknowledged.
async fn print_and_ack(
    device: &Device,
    id: conclave_client::EventId,
    event: &Event,
    after: i64,
    out: &Output,
) -> Result<(), CliError> {
    if id.get() > after {
        let mut value = event_json(event);
        if let Some(object) = value.as_object_mut() {
            object.insert("id".into(), id.get().into());
        }
        out.print(&event_line(event), value);
    }
    device.ack(id).await?;
    Ok(())
}

/// The users among `members`, in order of first appearance, with their device counts.
pub fn users_of(members: &[conclave_client::DeviceName]) -> Vec<(String, usize)> {
    let mut users: Vec<(String, usize)> = Vec::new();
    for m in members {
        match users.iter_mut().find(|(u, _)| *u == m.user) {
            Some((_, n)) => *n += 1,
            None => users.push((m.user.clone(), 1)),
        }
    }
    users
}

/// A group id as people see it: its first 8 hex digits.
pub fn short(group: &GroupId) -> String {
    group.to_string().chars().take(8).collect()
}

/// One event as a line of text.
pub fn event_line(event: &Event) -> String {
    match event {
        Event::Message {
            group,
            sender,
            body,
        } => format!(
            "[{}] {sender}: {}",
            short(group),
            String::from_utf8_lossy(body)
        ),
        Event::GroupJoined { group, added_by } => match added_by {
            Some(by) => format!("[{}] you were added by {by}", short(group)),
            None => format!("[{}] you joined", short(group)),
        },
        Event::MemberAdded { group, member } => format!("[{}] {member} joined", short(group)),
        Event::MemberRemoved { group, member } => format!("[{}] {member} left", short(group)),
        Event::RemovedFromGroup { group } => {
            format!("[{}] you were removed from the group", short(group))
        }
        Event::ContactRequest { user } => {
            format!("{user} wants to be your contact — `conclave contacts accept {user}`")
        }
        Event::ContactAccepted { user } => format!("{user} accepted you as a contact"),
        Event::ContactDeclined { user } => format!("{user} declined your contact request"),
        Event::DeviceAdded { device } => format!("new device {device}"),
        Event::DeviceRevoked { device } => format!("device {device} was revoked"),
        Event::UnknownDevice { device } => format!(
            "WARNING: the directory lists a device of yours that none of your devices added: {device} — if it is not yours, revoke it"
        ),
        other => format!("{other:?}"),
    }
}

/// One event as a JSON object with a `type`.
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::Message {
            group,
            sender,
            body,
        } => json!({
            "type": "message",
            "group": group.to_string(),
            "user": sender.user,
            "device": sender.device,
            "text": String::from_utf8_lossy(body),
        }),
        Event::GroupJoined { group, added_by } => json!({
            "type": "group_joined",
            "group": group.to_string(),
            "added_by": added_by.as_ref().map(|d| d.to_string()),
        }),
        Event::MemberAdded { group, member } => json!({
            "type": "member_added", "group": group.to_string(), "user": member.user, "device": member.device,
        }),
        Event::MemberRemoved { group, member } => json!({
            "type": "member_removed", "group": group.to_string(), "user": member.user, "device": member.device,
        }),
        Event::RemovedFromGroup { group } => {
            json!({ "type": "removed_from_group", "group": group.to_string() })
        }
        Event::ContactRequest { user } => json!({ "type": "contact_request", "user": user }),
        Event::ContactAccepted { user } => json!({ "type": "contact_accepted", "user": user }),
        Event::ContactDeclined { user } => json!({ "type": "contact_declined", "user": user }),
        Event::DeviceAdded { device } => json!({
            "type": "device_added", "user": device.user, "device": device.device,
        }),
        Event::DeviceRevoked { device } => json!({
            "type": "device_revoked", "user": device.user, "device": device.device,
        }),
        Event::UnknownDevice { device } => json!({
            "type": "unknown_device", "user": device.user, "device": device.device,
        }),
        other => json!({ "type": "other", "debug": format!("{other:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use conclave_client::DeviceName;

    #[test]
    fn users_of_counts_interleaved_devices_once_per_user() {
        let d = |user: &str, device: &str| DeviceName {
            user: user.into(),
            device: device.into(),
        };
        // Leaves in join order: Alice's second device came after Bob.
        let members = [d("alice", "1"), d("bob", "1"), d("alice", "2")];
        assert_eq!(
            super::users_of(&members),
            vec![("alice".to_owned(), 2), ("bob".to_owned(), 1)]
        );
    }
}
