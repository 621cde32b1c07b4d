//! Writes the seed corpus of every target into `<dir>/<target>/` (default `corpus`):
//! real messages of the fixture group, a Welcome, a GroupInfo, a KeyPackage, a ratchet tree
//! and the exported group state. Deterministic: running it twice writes the same files.

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::messages::{MlsMessage, MlsMessageBody};
use conclave_mls_fuzz::Fixture;
use std::path::Path;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let dir = Path::new(&dir);
    let fx = Fixture::build();
    assert_eq!(
        fx.receiver_state,
        Fixture::build().receiver_state,
        "the fixture must be deterministic"
    );
    let mut n = 0;
    for (name, bytes) in &fx.messages {
        write(dir, "process_message", name, bytes);
        write(dir, "decode_mls_message", name, bytes);
        n += 2;
        let m = MlsMessage::decode(bytes).unwrap();
        match &m.body {
            MlsMessageBody::Welcome(w) => write(dir, "decode_welcome", name, &w.encode().unwrap()),
            MlsMessageBody::GroupInfo(g) => {
                write(dir, "decode_group_info", name, &g.encode().unwrap())
            }
            _ => continue,
        }
        n += 1;
    }
    write(dir, "join_welcome", "welcome", &fx.welcome);
    write(
        dir,
        "decode_welcome",
        "welcome",
        &fx.welcome_body().encode().unwrap(),
    );
    let gi = MlsMessage::decode(&fx.group_info).unwrap();
    if let MlsMessageBody::GroupInfo(g) = &gi.body {
        write(dir, "decode_group_info", "group_info", &g.encode().unwrap());
    }
    write(dir, "decode_mls_message", "group_info", &fx.group_info);
    write(dir, "decode_mls_message", "welcome", &fx.welcome);
    write(
        dir,
        "decode_key_package",
        "key_package",
        &fx.joiner_key_package.key_package().encode().unwrap(),
    );
    write(
        dir,
        "decode_mls_message",
        "key_package",
        &fx.joiner_key_package.message().encode().unwrap(),
    );
    write(dir, "decode_ratchet_tree", "ratchet_tree", &fx.ratchet_tree);
    write(dir, "import_state", "receiver_state", &fx.receiver_state);
    n += 10;
    println!("wrote {n} seed files under {}", dir.display());
}
