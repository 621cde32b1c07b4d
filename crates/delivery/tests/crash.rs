//! `kill -9` of the real `conclave-ds` binary in the middle of a write load loses no
//! accepted (2xx) message and leaves no half-applied commit; checked after a restart on the
//! same SQLite file and on the same PostgreSQL database, which then takes the next commit
//! of the current epoch and refuses a stale one.

mod support;

use conclave_api::delivery::*;
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::mls::Mls;
use support::*;

async fn kill_nine_loses_no_accepted_write(engine: Engine) {
    let db = Db::new(engine).await;
    let (mut child, c) = spawn_ds(&db, &[]).await;
    let mls = Mls::new();
    let gid = b"crash".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let mut keys: HashMap<u64, SigningKey> = HashMap::new();
    keys.insert(0, mls.auth_key(&alice));
    assert_eq!(c.create_group(&gid, &keys[&0]).await.status, 201);
    let (mb, mk) = c.mailbox().await;
    // What the DS acknowledged: seq -> message.
    let acked: Arc<Mutex<BTreeMap<u64, Vec<u8>>>> = Arc::default();
    let mut accepted_commits = 0u64;
    // Alice's commit sent but not acknowledged when the load stopped, if any.
    let mut pending = false;
    // The Welcome of the commit that starts each epoch.
    let mut welcomes_of: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    // Kill -9 after a while, from another task, whatever is in flight.
    let pid = child.id().expect("pid");
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    'load: for round in 0.. {
        let e = mls.epoch(&alice);
        let key = keys[&e].clone();
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| mls.encrypt(&mut alice, format!("{round}/{i}").as_bytes()))
            .collect();
        let joiner = mls.joiner(&format!("j{round}"));
        let proposed = mls.commit_add(&mut alice, &[&joiner]);
        keys.insert(e + 1, proposed.next_key.clone());
        welcomes_of.insert(e + 1, proposed.welcome.clone().expect("welcome"));
        pending = true;
        let mut tasks = Vec::new();
        for m in messages {
            let (c, key, gid, acked) = (c.clone(), key.clone(), gid.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let path = format!("/v1/groups/{}/messages", Bytes(gid.clone()).to_base64());
                let p = c.prepare(
                    "POST",
                    &path,
                    m.clone(),
                    MLS_MESSAGE_MEDIA_TYPE,
                    Sign::Group(&key, e),
                    None,
                );
                let Ok(resp) = c
                    .http
                    .post(format!("{}{}", c.base, path))
                    .headers(headers(&p))
                    .body(m.clone())
                    .send()
                    .await
                else {
                    return false;
                };
                if resp.status().as_u16() != 201 {
                    return false;
                }
                let Ok(a) = resp.json::<Appended>().await else {
                    return false;
                };
                acked.lock().unwrap().insert(a.seq, m);
                true
            }));
        }
        let request = commit_request(&proposed, &[&mb]);
        let path = format!("/v1/groups/{}/commits", Bytes(gid.clone()).to_base64());
        let body = serde_json::to_vec(&request).unwrap();
        let p = c.prepare(
            "POST",
            &path,
            body.clone(),
            "application/json",
            Sign::Group(&key, e),
            None,
        );
        let commit = c
            .http
            .post(format!("{}{}", c.base, path))
            .headers(headers(&p))
            .body(body)
            .send()
            .await;
        let mut alive = true;
        for t in tasks {
            alive &= t.await.expect("task");
        }
        match commit {
            Ok(r) if r.status().as_u16() == 201 => {
                let a: Appended = r.json().await.expect("json");
                acked.lock().unwrap().insert(a.seq, proposed.commit.clone());
                accepted_commits += 1;
                mls.accepted(&mut alice);
                pending = false;
            }
            _ => break 'load,
        }
        if !alive {
            break 'load;
        }
    }
    killer.await.expect("killer");
    let _ = child.wait().await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 40,
        "the load wrote too little before the kill: {}",
        acked.len()
    );

    // Restart on the same database.
    let (_child, c) = spawn_ds(&db, &[]).await;
    let first: LogPage = c.log(&gid, 1, &keys[&0], 0).await.json();
    let epoch = first.current_epoch;
    // The commit in flight at the kill may or may not have been applied, never in part.
    assert!(
        epoch == accepted_commits || epoch == accepted_commits + 1,
        "epoch {epoch}, accepted {accepted_commits}"
    );
    let mut stored: BTreeMap<u64, (u64, LogEntryKind, Vec<u8>)> = BTreeMap::new();
    for e in 0..=epoch {
        let key = keys.get(&e).expect("key of every epoch reached");
        let mut from = 1;
        loop {
            let page: LogPage = c.log(&gid, from, key, e).await.json();
            let Some(last) = page.entries.last() else {
                break;
            };
            from = last.seq + 1;
            for entry in page.entries {
                stored.insert(entry.seq, (entry.epoch, entry.kind, entry.message.0));
            }
        }
    }
    // Every acknowledged write is there, byte for byte.
    for (seq, message) in &acked {
        let (_, _, m) = stored
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost"));
        assert_eq!(m, message, "seq {seq}");
    }
    // Sequence numbers are gap-free; exactly one commit per epoch reached, none after.
    let seqs: Vec<u64> = stored.keys().copied().collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let commits: Vec<u64> = stored
        .values()
        .filter(|v| v.1 == LogEntryKind::Commit)
        .map(|v| v.0)
        .collect();
    assert_eq!(commits, (0..epoch).collect::<Vec<_>>());
    // Each applied commit queued its Welcome, whole, and no other Welcome exists.
    // Paged: a run can pass the default page of 100 entries.
    let mut welcomes: Vec<Vec<u8>> = Vec::new();
    let mut after = 0;
    loop {
        let page = c.entries_after(&mb, &mk, after, 1000).await;
        let Some(last) = page.last() else { break };
        after = last.id;
        welcomes.extend(page.into_iter().map(|w| w.data.0));
    }
    welcomes.sort();
    let mut expected: Vec<Vec<u8>> = (1..=epoch).map(|e| welcomes_of[&e].clone()).collect();
    expected.sort();
    assert!(
        welcomes == expected,
        "Welcomes differ from the applied commits': {} stored, {} expected, epoch {epoch}, \
         accepted {accepted_commits}",
        welcomes.len(),
        expected.len()
    );

    // The group moves on: Alice learns the fate of her commit in flight from the epoch…
    if pending {
        if epoch == accepted_commits + 1 {
            mls.accepted(&mut alice);
        } else {
            mls.refused(&mut alice);
        }
    }
    assert_eq!(mls.epoch(&alice), epoch);
    // …the next commit for the current epoch is accepted, right after the last entry…
    let last_seq = seqs.len() as u64;
    let next = mls.commit_update(&mut alice);
    let request = commit_request(&next, &[]);
    let r = c.commit(&gid, &request, &keys[&epoch], epoch).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let a: Appended = r.json();
    assert_eq!((a.seq, a.epoch), (last_seq + 1, epoch + 1));
    mls.accepted(&mut alice);
    keys.insert(epoch + 1, next.next_key.clone());
    // …a stale commit for the epoch just ended is refused with the current epoch…
    let r = c.commit(&gid, &request, &keys[&epoch], epoch).await;
    assert_eq!(r.status, 409);
    let refusal: ErrorBody = r.json();
    assert_eq!(
        (refusal.code, refusal.current_epoch),
        (ErrorCode::WrongEpoch, Some(epoch + 1))
    );
    // …and the new epoch takes messages.
    let m = mls.encrypt(&mut alice, b"after the restart");
    let r = c.post(&gid, &m, &keys[&(epoch + 1)], epoch + 1).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json::<Appended>().seq, last_seq + 2);
}

fn headers(p: &Prepared) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("content-type", p.content_type.parse().unwrap());
    for (k, v) in &p.headers {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kill_nine_loses_no_accepted_write() {
    kill_nine_loses_no_accepted_write(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_kill_nine_loses_no_accepted_write() {
    kill_nine_loses_no_accepted_write(Engine::Postgres).await;
}
