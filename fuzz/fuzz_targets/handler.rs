#![no_main]
//! The acquirer host's message handler (`acquirer::TerminalHandler`, the `host::Handler` behind
//! the terminal listener) on arbitrary frames: never panic, and every answer it sends is a
//! `cup-bcd` message. The demo world is built once (SQLite in a RAM-backed directory when
//! there is one, terminal 10000001 signed on) and every input goes to the same handler, so the
//! host's state grows as it would in production.
//!
//! The first byte picks how the rest is sent: even, as it is (frames the fuzzer makes up,
//! sign-ons and echo tests among them); odd, unpacked and MACed again under the terminal's MAC
//! key, so that mutated financial messages get past the MAC check into sales, voids, refunds,
//! reversals, pre-authorizations and settlement. After a network management message (a
//! sign-on changes the keys, a sign-off forgets them) the terminal signs on again.

use acquirer::{TerminalHandler, TerminalRecord};
use hsm::{Hsm, KeySpec, SoftHsm};
use iso8583::{Message, Mti, Profile, Tpdu};
use libfuzzer_sys::fuzz_target;
use paycrypto::TdesKey;
use paycrypto::mac::Padding;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use store::directory::StoredKey;

const TERMINAL: &str = "10000001";
const MERCHANT: &str = "898310058120001";
/// The test master key of terminal 10000001 (as in the acquirer's tests).
const TEST_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The debit bank's EMV issuer master key in the acquirer's tests.
const TEST_IMK: &str = "89B07B35A1B3F47E89B07B35A1B3F47E";

struct Host {
    runtime: tokio::runtime::Runtime,
    handler: TerminalHandler,
    /// The terminal's clear MAC key of its last sign-on.
    mac_key: Mutex<TdesKey>,
    _store: Arc<store::Store>,
}

fn cup() -> &'static Profile {
    Profile::builtin("cup-bcd").expect("a built-in profile")
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

fn key_bytes(hex_text: &str) -> Vec<u8> {
    (0..hex_text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex_text[at..at + 2], 16).expect("hex"))
        .collect()
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (handler, store) = runtime.block_on(world());
        let host = Host {
            runtime,
            handler,
            mac_key: Mutex::new(TdesKey::new(&[0x11; 16]).expect("a key")),
            _store: store,
        };
        host.sign_on();
        host
    })
}

/// The demo world on a fresh SQLite file, with the test keys of terminal 10000001 and the
/// debit bank, and a handler for terminal 10000001 without the per-terminal rate.
async fn world() -> (TerminalHandler, Arc<store::Store>) {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // libFuzzer ends the process without unwinding, so each run removes the directories that
    // runs before it left (those whose process is gone).
    const PREFIX: &str = "easypos-fuzz-handler-";
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(PREFIX)
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = store::Backend::Sqlite {
        path: dir.join("easypos.db"),
    };
    let store = Arc::new(store::Store::open(&backend).await.expect("the store opens"));
    let hsm = Arc::new(SoftHsm::new(&[0x42; 32]).expect("an HSM"));
    let import = |spec: &KeySpec, key: &str| {
        hsm.import_clear_key(spec, &key_bytes(key))
            .expect("a test key")
            .as_str()
            .to_owned()
    };
    let stored = |name: String, token: String| StoredKey {
        name,
        token,
        check_value: "TEST".into(),
    };
    store
        .put_keys(vec![
            stored(
                demo::terminal_master_key_name(TERMINAL),
                import(&KeySpec::terminal_master_key(), TEST_TMK),
            ),
            stored(
                "issuer/20/imk-ac".into(),
                import(&KeySpec::issuer_master_key(), TEST_IMK),
            ),
            stored("issuer/20/cvk".into(), import(&KeySpec::cvk(), TEST_IMK)),
        ])
        .await
        .expect("the keys are stored");
    demo::seed(&store, hsm.as_ref())
        .await
        .expect("the demo world");
    // The terminal's record as the host makes it from the store.
    let (terminal, merchant) = store
        .terminal_with_merchant(TERMINAL)
        .await
        .expect("the store reads")
        .expect("the demo terminal");
    assert_eq!(merchant.id, MERCHANT);
    let terminals = HashMap::from([(
        TERMINAL.to_owned(),
        TerminalRecord::new(&terminal, &merchant),
    )]);
    let handler =
        TerminalHandler::new(cup(), terminals, store.clone(), hsm).without_terminal_rate();
    (handler, store)
}

impl Host {
    fn handle(&self, frame: &[u8]) -> Option<Vec<u8>> {
        use host::Handler;
        match self.runtime.block_on(self.handler.handle(frame, peer())) {
            host::Reply::Send(answer) => Some(answer),
            host::Reply::NoReply | host::Reply::Close => None,
        }
    }

    /// Signs terminal 10000001 on and keeps its new MAC key.
    fn sign_on(&self) {
        let mut message = Message::new(Mti::parse("0800").expect("an MTI"));
        message.tpdu = Some(Tpdu {
            id: 0x60,
            destination: 3,
            source: 1,
        });
        message.header = vec![0x60, 0x31, 0, 0x31, 0, 0].into();
        for (field, value) in [
            (11, "000001"),
            (41, TERMINAL),
            (42, MERCHANT),
            (60, "00000000003"),
            (63, "001"),
        ] {
            message.set_text(field, value);
        }
        let frame = cup().pack(&message).expect("a sign-on packs");
        let answer = self.handle(&frame).expect("the sign-on is answered");
        let answer = cup().unpack(&answer).expect("the answer unpacks");
        let keys = answer.get(62).expect("working keys").to_bytes().to_vec();
        let tmk = TdesKey::new(&key_bytes(TEST_TMK)).expect("a key");
        let mac_key = paycrypto::session::decrypt_working_key(
            &tmk,
            &paycrypto::session::EncryptedWorkingKey {
                encrypted: keys[20..36].to_vec(),
                check_value: keys[36..40].to_vec(),
            },
        )
        .expect("the MAC key opens");
        *self.mac_key.lock().expect("not poisoned") = mac_key;
    }

    /// `frame` unpacked and MACed again under the terminal's MAC key (`None`: it does not
    /// unpack, or no longer packs).
    fn remaced(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let mut message = cup().unpack(frame).ok()?.into_owned();
        message.remove(64);
        let key = self.mac_key.lock().expect("not poisoned").clone();
        acquirer::mac::pack_with_mac(cup(), &mut message, |covered| {
            paycrypto::mac::iso9797_alg3(&key, covered, Padding::Method1)
                .map(|mac| mac.to_vec())
                .unwrap_or_default()
        })
        .ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let host = host();
    let frame = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        match host.remaced(rest) {
            Some(frame) => frame,
            None => return,
        }
    };
    let network_management = cup()
        .unpack(&frame)
        .map(|message| message.mti.as_str().starts_with("08"))
        .unwrap_or(false);
    if let Some(answer) = host.handle(&frame) {
        assert!(
            cup().unpack(&answer).is_ok(),
            "every answer sent is a cup-bcd message"
        );
    }
    if network_management {
        host.sign_on();
    }
});
