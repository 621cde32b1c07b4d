//! `conclave chat GROUP`: an interactive chat in the terminal. It shows the group's members
//! and recent history, then every line typed is sent and everything that arrives is printed
//! as it comes (pushed by the DS over WebSocket). Lines starting with `/` are commands:
//! `/members`, `/verify`, `/add USER`, `/remove USER`, `/update`, `/help`, `/quit`.

use crate::error::CliError;
use crate::people::{event_line, resolve_group, short, users_of};
use crate::profile::Profile;
use conclave_client::{Device, Event, GroupId};
use std::io::Write as _;
use std::path::Path;

/// How many past messages are shown on start.
const HISTORY: u32 = 20;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn members_line(device: &Device, group: &GroupId) -> Result<String, CliError> {
    Ok(users_of(&device.members(group).await?)
        .into_iter()
        .map(|(u, n)| {
            if n == 1 {
                u
            } else {
                format!("{u} ({n} devices)")
            }
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// Runs the chat until `/quit`, end of input, or Ctrl-C.
pub async fn run(dir: &Path, group: &str) -> Result<(), CliError> {
    let profile = Profile::load(dir)?;
    let device = Device::open(profile.config()?).await?;
    device.sync().await?;
    let group = resolve_group(&device, group).await?;
    say(&format!(
        "── group {} · members: {}",
        short(&group),
        members_line(&device, &group).await?
    ));
    for m in device.history(&group, HISTORY).await? {
        let who = if m.sender.user == device.user_id() && m.sender.device == device.device_id() {
            "you".to_owned()
        } else {
            m.sender.to_string()
        };
        say(&format!("{who}: {}", String::from_utf8_lossy(&m.body)));
    }
    say("── type a message and press Enter; /help for commands");

    // Live updates, pushed by the DS: print, then acknowledge, each event.
    let receiver = {
        let device = device.clone();
        let group = group.clone();
        tokio::spawn(async move {
            let mut events = device.event_stream();
            while let Some(next) = events.next().await {
                match next {
                    Ok((id, event)) => {
                        say(&chat_line(&group, &event));
                        if let Err(e) = device.ack(id).await {
                            say(&format!("(error: {})", CliError::from(e)));
                        }
                    }
                    Err(e) => say(&format!("(error: {})", CliError::from(e))),
                }
            }
        })
    };

    // The terminal is read by a thread of its own (a blocking read), line by line.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<String>>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let result = loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = tokio::signal::ctrl_c() => None,
        };
        let line = match line {
            Some(Ok(line)) => line,
            None => break Ok(()),
            Some(Err(e)) => break Err(CliError::bare("io", e.to_string())),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match command(&device, &group, line).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            // A failed command is shown and the chat goes on.
            Err(e) => say(&format!("(error: {e})")),
        }
    };
    receiver.abort();
    let _ = receiver.await;
    device.close().await;
    result
}

/// Handles one typed line; `false` to quit.
async fn command(device: &Device, group: &GroupId, line: &str) -> Result<bool, CliError> {
    let (verb, rest) = match line.strip_prefix('/') {
        Some(c) => c.split_once(' ').unwrap_or((c, "")),
        None => {
            device.send(group, line.as_bytes()).await?;
            return Ok(true);
        }
    };
    let rest = rest.trim();
    match verb {
        "quit" | "q" | "exit" => return Ok(false),
        "members" => say(&format!("members: {}", members_line(device, group).await?)),
        "verify" => {
            let (epoch, code) = device.verification_code(group).await?;
            say(&format!("epoch {epoch}: {code}"));
        }
        "add" if !rest.is_empty() => {
            device.add_user(group, rest).await?;
            say(&format!("added {rest}"));
        }
        "remove" if !rest.is_empty() => {
            device.remove_user(group, rest).await?;
            say(&format!("removed {rest}"));
        }
        "update" => {
            device.update(group).await?;
            say("keys refreshed");
        }
        _ => say(
            "commands: /members, /verify, /add USER, /remove USER, /update, /quit (text without / is sent)",
        ),
    }
    Ok(true)
}

/// Events of this group without the group tag; others with it.
fn chat_line(group: &GroupId, event: &Event) -> String {
    let line = event_line(event);
    let tag = format!("[{}] ", short(group));
    match line.strip_prefix(&tag) {
        Some(rest) => rest.to_owned(),
        None => line,
    }
}
