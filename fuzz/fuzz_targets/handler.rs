#![no_main]
//! The acquirer host's message handler (`acquirer::TerminalHandler`, the `host::Handler` behind
//! the terminal listener) on arbitrary frames: never panic, and every answer it sends is a
//! `cup-bcd` message. The demo world is seeded once per process (SQLite in a RAM-backed
//! directory when there is one) and a world made from a copy of it (terminal 10000001 signed on)
//! answers [`INPUTS_PER_WORLD`] inputs in turn, so the host's state grows as it would in
//! production, within a bound that a run of 100,000,000 inputs can afford.
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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use store::directory::StoredKey;

const TERMINAL: &str = "10000001";
const MERCHANT: &str = "898310058120001";
/// The test master key of terminal 10000001 (as in the acquirer's tests).
const TEST_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The debit bank's EMV issuer master key in the acquirer's tests.
const TEST_IMK: &str = "89B07B35A1B3F47E89B07B35A1B3F47E";

/// Inputs one world answers before the next one starts from the seeded copy. Every input adds
/// a journal row, and the fuzzer's messages keep reusing a few trace numbers, so the duplicate
/// check of each message (which reads every row under its terminal, batch and trace number)
/// reads more the older the world is (half of the time went there after a minute), and one world
/// for a run of 100,000,000 inputs would fill the RAM disk. A new world costs about 3 ms
/// (opening the store, preparing its statements again, a sign-on). Inputs a second on the same
/// corpus for 25 s each (2026-11-26, shared 2-core machine), by inputs per world: 200, 2,280;
/// 1,000, 4,900; 10,000, 5,800; 100,000, 2,300. The state still grows far past what one input
/// needs (open batches, repeated trace numbers, holds, reversals of earlier sales).
const INPUTS_PER_WORLD: u64 = 10_000;

struct Host {
    runtime: tokio::runtime::Runtime,
    hsm: Arc<SoftHsm>,
    /// This process's directory: the seeded database (`template/`) and the current world.
    dir: PathBuf,
    world: Mutex<World>,
}

/// One store made from the seeded database, its handler and terminal 10000001's session.
struct World {
    number: u64,
    dir: PathBuf,
    handler: TerminalHandler,
    store: Arc<store::Store>,
    /// The terminal's clear MAC key of its last sign-on.
    mac_key: TdesKey,
    inputs: u64,
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
        let hsm = Arc::new(SoftHsm::new(&[0x42; 32]).expect("an HSM"));
        let dir = process_dir();
        runtime.block_on(seed(&dir.join(TEMPLATE).join(DATABASE), &hsm));
        let world = open_world(&runtime, &hsm, &dir, 1);
        Host {
            runtime,
            hsm,
            dir,
            world: Mutex::new(world),
        }
    })
}

/// The seeded database's directory, under the process's own.
const TEMPLATE: &str = "template";
/// The database file in a world's directory.
const DATABASE: &str = "easypos.db";

/// A fresh directory for this process, in RAM when there is /dev/shm.
fn process_dir() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // libFuzzer ends the process without unwinding, so each run removes the directories that
    // runs before it left (those whose process is gone).
    const PREFIX: &str = "easypos-fuzz-handler-";
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(PREFIX)
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The demo world in a fresh SQLite file at `path`, with the test keys of terminal 10000001
/// and the debit bank, closed again so that worlds can start from copies of it.
async fn seed(path: &Path, hsm: &SoftHsm) {
    let backend = store::Backend::Sqlite {
        path: path.to_path_buf(),
    };
    let store = store::Store::open(&backend).await.expect("the store opens");
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
    demo::seed(&store, hsm).await.expect("the demo world");
    store.close().await.expect("the seeded store closes");
}

/// World `number`: a copy of the seeded database, a handler for terminal 10000001 without the
/// per-terminal rate, and the terminal signed on.
fn open_world(
    runtime: &tokio::runtime::Runtime,
    hsm: &Arc<SoftHsm>,
    process_dir: &Path,
    number: u64,
) -> World {
    let dir = process_dir.join(format!("world-{number}"));
    std::fs::create_dir_all(&dir).expect("the world's directory");
    // The database and, should the last checkpoint not have finished, its WAL: together, with
    // nothing holding them open, they are the seeded database.
    for suffix in ["", "-wal"] {
        let from = process_dir
            .join(TEMPLATE)
            .join(format!("{DATABASE}{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.join(format!("{DATABASE}{suffix}")))
                .expect("the seeded database copies");
        }
    }
    let backend = store::Backend::Sqlite {
        path: dir.join(DATABASE),
    };
    let (handler, store) = runtime.block_on(async {
        let store = Arc::new(store::Store::open(&backend).await.expect("the store opens"));
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
            TerminalHandler::new(cup(), terminals, store.clone(), hsm.clone() as Arc<dyn Hsm>)
                .without_terminal_rate();
        (handler, store)
    });
    let mut world = World {
        number,
        dir,
        handler,
        store,
        mac_key: TdesKey::new(&[0x11; 16]).expect("a key"),
        inputs: 0,
    };
    world.sign_on(runtime);
    world
}

impl Host {
    /// Replaces `world` by the next one, made from the seeded database, and removes the old one.
    fn renew(&self, world: &mut World) {
        let next = open_world(&self.runtime, &self.hsm, &self.dir, world.number + 1);
        let World {
            dir,
            handler,
            store,
            ..
        } = std::mem::replace(world, next);
        drop(handler);
        if let Ok(store) = Arc::try_unwrap(store) {
            self.runtime
                .block_on(store.close())
                .expect("the old world's store closes");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl World {
    fn handle(&self, runtime: &tokio::runtime::Runtime, frame: &[u8]) -> Option<Vec<u8>> {
        use host::Handler;
        match runtime.block_on(self.handler.handle(frame, peer())) {
            host::Reply::Send(answer) => Some(answer),
            host::Reply::NoReply | host::Reply::Close => None,
        }
    }

    /// Signs terminal 10000001 on and keeps its new MAC key.
    fn sign_on(&mut self, runtime: &tokio::runtime::Runtime) {
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
        let answer = self
            .handle(runtime, &frame)
            .expect("the sign-on is answered");
        let answer = cup().unpack(&answer).expect("the answer unpacks");
        let keys = answer.get(62).expect("working keys").to_bytes().to_vec();
        let tmk = TdesKey::new(&key_bytes(TEST_TMK)).expect("a key");
        self.mac_key = paycrypto::session::decrypt_working_key(
            &tmk,
            &paycrypto::session::EncryptedWorkingKey {
                encrypted: keys[20..36].to_vec(),
                check_value: keys[36..40].to_vec(),
            },
        )
        .expect("the MAC key opens");
    }

    /// `frame` unpacked and MACed again under the terminal's MAC key (`None`: it does not
    /// unpack, or no longer packs).
    fn remaced(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let mut message = cup().unpack(frame).ok()?.into_owned();
        message.remove(64);
        acquirer::mac::pack_with_mac(cup(), &mut message, |covered| {
            paycrypto::mac::iso9797_alg3(&self.mac_key, covered, Padding::Method1)
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
    let mut world = host.world.lock().expect("not poisoned");
    if world.inputs >= INPUTS_PER_WORLD {
        host.renew(&mut world);
    }
    world.inputs += 1;
    let frame = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        match world.remaced(rest) {
            Some(frame) => frame,
            None => return,
        }
    };
    let network_management = cup()
        .unpack(&frame)
        .map(|message| message.mti.as_str().starts_with("08"))
        .unwrap_or(false);
    if let Some(answer) = world.handle(&host.runtime, &frame) {
        assert!(
            cup().unpack(&answer).is_ok(),
            "every answer sent is a cup-bcd message"
        );
    }
    if network_management {
        world.sign_on(&host.runtime);
    }
});
