//! Secrets leave no trace: every secret-holding type wipes its bytes before the memory is
//! freed, and no `Debug` output shows them.
//!
//! Freed memory cannot be read from safe code, so this test binary installs a global
//! allocator that looks at each block as it is freed; the library itself forbids unsafe code.
#![allow(unsafe_code)]

use conclave_mls::crypto::{CipherSuite, HpkePrivateKey, RustCrypto, Secret, SignaturePrivateKey};
use conclave_mls::group::{Group, GroupConfig};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::{KeyPackageOptions, create_key_package};
use conclave_mls::messages::{Credential, Lifetime};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The marker the secrets are made of, and how many bytes of it make a hit.
const MARK: u8 = 0xA7;
const LEN: usize = 48;

static WATCHING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting freed blocks that still hold `LEN` bytes of `MARK`.
struct Inspecting;

// SAFETY: every call is forwarded to `System` with the same arguments; `dealloc` reads the
// block it is given (valid for `layout.size()` bytes until it is freed) before freeing it.
unsafe impl GlobalAlloc for Inspecting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.load(Ordering::SeqCst) && layout.size() >= LEN {
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(LEN).any(|w| w.iter().all(|&b| b == MARK)) {
                HITS.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Inspecting = Inspecting;

/// Whether any block freed while `f` ran still held the marker.
fn leaves_marker(f: impl FnOnce()) -> bool {
    HITS.store(0, Ordering::SeqCst);
    WATCHING.store(true, Ordering::SeqCst);
    f();
    WATCHING.store(false, Ordering::SeqCst);
    HITS.load(Ordering::SeqCst) > 0
}

fn marked() -> Vec<u8> {
    vec![MARK; LEN]
}

#[test]
fn secrets_are_zeroized_before_their_memory_is_freed() {
    // The detector works: plain bytes are freed with their contents intact.
    assert!(leaves_marker(|| drop(std::hint::black_box(marked()))));

    assert!(!leaves_marker(|| drop(Secret::new(marked()))), "Secret");
    let source = marked();
    assert!(
        !leaves_marker(|| drop(Secret::from_slice(&source))),
        "Secret::from_slice"
    );
    assert!(
        !leaves_marker(|| drop(HpkePrivateKey::new(marked()))),
        "HpkePrivateKey"
    );
    assert!(
        !leaves_marker(|| drop(SignaturePrivateKey::new(marked()))),
        "SignaturePrivateKey"
    );
    // Clones are wiped too.
    assert!(
        !leaves_marker(|| {
            let s = Secret::new(marked());
            let copy = s.clone();
            drop(s);
            drop(copy);
        }),
        "a cloned Secret"
    );
}

#[test]
fn debug_output_shows_no_secret() {
    let secret = Secret::new(marked());
    let shown = format!(
        "{secret:?} {:?} {:?}",
        HpkePrivateKey::new(marked()),
        SignaturePrivateKey::new(marked())
    );
    assert!(!shown.contains("167"), "a marker byte in decimal: {shown}");
    assert!(
        !shown.to_lowercase().contains("a7a7"),
        "marker bytes in hex: {shown}"
    );

    // Whole objects that hold keys: an identity, a KeyPackage's private keys, a group.
    let provider = RustCrypto::from_seed([7; 32]);
    let suite = CipherSuite(1);
    let identity = Identity::generate(
        &provider,
        suite,
        Credential::Basic {
            identity: b"alice".to_vec().into(),
        },
    )
    .unwrap();
    let (_, kp_secrets) = create_key_package(
        &provider,
        &identity,
        KeyPackageOptions::new(Lifetime::starting_at(0, u64::MAX / 2)),
    )
    .unwrap();
    let group = Group::builder(&identity, Arc::new(BasicCredentialsOnly))
        .group_id(b"g".to_vec())
        .config(GroupConfig::default())
        .build(&provider)
        .unwrap();
    let shown = format!("{identity:?} {kp_secrets:?} {group:?}");
    let private: [&[u8]; 3] = [
        identity.signer.as_bytes(),
        kp_secrets.init_private_key.as_bytes(),
        kp_secrets.encryption_private_key.as_bytes(),
    ];
    for bytes in private {
        let decimal = format!("{bytes:?}");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&decimal[1..decimal.len() - 1]));
        assert!(!shown.to_lowercase().contains(&hex));
    }
    let exported = group.export_secret(&provider, b"label", b"", 32).unwrap();
    let hex: String = exported
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!format!("{group:?} {exported:?}").contains(&hex));
}
