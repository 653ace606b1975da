//! The sales bench's world: the demo world on a fresh temporary SQLite database, plus its own
//! terminals and cards, made the way the demo world makes its own (`demo::demo_card`,
//! `card_account`, `opening_transfer`, `issuer_card`, `fingerprinted`, `terminal_session`).
//!
//! The bench plays the terminals and the cards, so it must know in clear what a terminal and a
//! chip know: each terminal's master key and the debit bank's issuer master key. It makes them
//! at random, imports them into the HSM and stores their tokens under the names the host looks
//! up, before the demo world is seeded (seeding keeps keys that exist). Its cards differ from
//! the demo cards in two ways that a load needs: they have no daily limit, and a balance no
//! run can spend.

use crate::BenchError;
use hsm::{Hsm, KeySpec, KeyToken, SoftHsm};
use paycrypto::{Pan, Pin, TdesKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::directory::{CardProduct, Directory, StoredKey, Terminal};
use store::{Backend, Store};

/// Terminal ids of the bench: 8 digits from here on, apart from the demo's 1xxxxxxx and
/// 2xxxxxxx.
const FIRST_TERMINAL_ID: u64 = 50_000_000;
/// Card numbers of the bench: the debit bank's BIN 621234, then 9 digits from here on (the
/// demo's cards use 000100000 to 000100006), then the Luhn digit.
const FIRST_CARD_BODY: u64 = 500_000_000;
/// The cardholder of every bench card (a demo cardholder: cards need one).
const HOLDER: &str = "CH001";
/// Opening balance of a bench card, in fen: 10 billion CNY, more than any run spends.
const CARD_OPENING_MINOR: i64 = 1_000_000_000_000;
/// Wrong PINs tried for the wrong-PIN sales, in this order; the first whose PVV differs from
/// the right PIN's is the card's (a 4-digit PVV matches a wrong PIN one time in 10,000).
const WRONG_PINS: [&str; 4] = ["000000", "999999", "111111", "888888"];

/// A temporary directory, removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: Option<&Path>) -> Result<Self, BenchError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let path = parent.join(format!(
            "easypos-bench-sales-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).map_err(|error| {
            BenchError::Setup(format!("cannot create {}: {error}", path.display()))
        })?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bench card as its terminal holds it: the number, a PIN the issuer refuses (the right one
/// is `demo::DEMO_PIN`), and the ATC of its last cryptogram.
#[derive(Clone, Debug)]
pub struct BenchCard {
    /// The card's id in the directory; its account is `demo::account_id(id)`.
    pub id: String,
    pub pan: Pan,
    pub wrong_pin: Pin,
    pub atc: u16,
}

/// A bench terminal: its id, its master key in clear (the terminal's secret), the trace
/// number of its last message, and its cards.
#[derive(Clone, Debug)]
pub struct BenchTerminal {
    pub id: String,
    pub master_key: TdesKey,
    pub last_stan: u32,
    pub cards: Vec<BenchCard>,
}

/// What the load generator must know in clear to play a provisioned world's terminals and
/// cards: the debit bank's issuer master key for application cryptograms (it personalises its
/// chips under it), and each terminal's master key and cards. These are the bench's secrets,
/// made at random for a bench database and nowhere else.
#[derive(Clone)]
pub struct Fleet {
    pub issuer_master_key: TdesKey,
    pub terminals: Vec<BenchTerminal>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fleet({} terminals, keys masked)", self.terminals.len())
    }
}

/// The fleet file's format name, checked when it is read.
const FLEET_FORMAT: &str = "easypos-bench-fleet/1";

/// The fleet file: JSON, written readable by its owner only.
#[derive(serde::Serialize, serde::Deserialize)]
struct FleetFile {
    format: String,
    warning: String,
    issuer_master_key: String,
    terminals: Vec<FleetFileTerminal>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FleetFileTerminal {
    id: String,
    master_key: String,
    #[serde(default)]
    last_stan: u32,
    cards: Vec<FleetFileCard>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FleetFileCard {
    id: String,
    pan: String,
    wrong_pin: String,
    #[serde(default)]
    atc: u16,
}

impl Fleet {
    /// Writes the fleet to `path` (replacing it), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), BenchError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = FleetFile {
            format: FLEET_FORMAT.into(),
            warning: "bench secrets: the clear keys of a bench database's terminals and issuer; \
                      never provision them into a database that serves real cards"
                .into(),
            issuer_master_key: hex::encode_upper(self.issuer_master_key.expose()),
            terminals: self
                .terminals
                .iter()
                .map(|terminal| FleetFileTerminal {
                    id: terminal.id.clone(),
                    master_key: hex::encode_upper(terminal.master_key.expose()),
                    last_stan: terminal.last_stan,
                    cards: terminal
                        .cards
                        .iter()
                        .map(|card| FleetFileCard {
                            id: card.id.clone(),
                            pan: card.pan.digits().to_owned(),
                            wrong_pin: card.wrong_pin.expose().to_string(),
                            atc: card.atc,
                        })
                        .collect(),
                })
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|error| refused("writing the fleet file", error))?;
        let cannot = |error: std::io::Error| {
            BenchError::Setup(format!("cannot write {}: {error}", path.display()))
        };
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(cannot)?;
        out.write_all(&text).map_err(cannot)?;
        out.sync_all().map_err(cannot)
    }

    /// Reads a fleet file written by [`Fleet::save`] (`easypos bench provision`).
    pub fn load(path: &Path) -> Result<Self, BenchError> {
        let bad = |why: String| {
            BenchError::Setup(format!(
                "{} is not a bench fleet file ({why}); make one with `easypos bench provision`",
                path.display()
            ))
        };
        let text = std::fs::read(path).map_err(|error| bad(error.to_string()))?;
        let file: FleetFile =
            serde_json::from_slice(&text).map_err(|error| bad(error.to_string()))?;
        if file.format != FLEET_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {FLEET_FORMAT:?}",
                file.format
            )));
        }
        let key = |what: &str, text: &str| {
            hex::decode(text)
                .ok()
                .and_then(|bytes| TdesKey::new(&bytes).ok())
                .ok_or_else(|| bad(format!("{what} is not a TDES key in hex")))
        };
        let issuer_master_key = key("the issuer master key", &file.issuer_master_key)?;
        let mut terminals = Vec::with_capacity(file.terminals.len());
        for terminal in file.terminals {
            let mut cards = Vec::with_capacity(terminal.cards.len());
            for card in terminal.cards {
                cards.push(BenchCard {
                    id: card.id,
                    pan: Pan::new(&card.pan).map_err(|error| {
                        bad(format!("a card of terminal {}: {error}", terminal.id))
                    })?,
                    wrong_pin: Pin::new(&card.wrong_pin).map_err(|error| {
                        bad(format!("a wrong PIN of terminal {}: {error}", terminal.id))
                    })?,
                    atc: card.atc,
                });
            }
            if cards.is_empty() {
                return Err(bad(format!("terminal {} has no cards", terminal.id)));
            }
            terminals.push(BenchTerminal {
                master_key: key(
                    &format!("terminal {}'s master key", terminal.id),
                    &terminal.master_key,
                )?,
                last_stan: terminal.last_stan,
                id: terminal.id,
                cards,
            });
        }
        if terminals.is_empty() {
            return Err(bad("no terminals".into()));
        }
        Ok(Self {
            issuer_master_key,
            terminals,
        })
    }
}

pub(crate) struct World {
    pub store: Arc<Store>,
    pub hsm: Arc<SoftHsm>,
    pub fleet: Fleet,
    /// Declared last: the database closes before its directory goes.
    pub dir: TempDir,
}

fn refused(what: &str, error: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("{what}: {error}"))
}

/// A clear key made here, imported into the HSM under `spec`, with its stored token.
fn known_key(
    hsm: &SoftHsm,
    spec: &KeySpec,
    name: String,
) -> Result<(TdesKey, StoredKey), BenchError> {
    let bytes = hsm::random_bytes::<16>();
    let clear = TdesKey::new(&bytes).map_err(|error| refused("a bench key", error))?;
    let token = hsm
        .import_clear_key(spec, &bytes)
        .map_err(|error| refused("importing a bench key", error))?;
    let check_value = hsm
        .key_check_value(&token)
        .map_err(|error| refused("a bench key's check value", error))?;
    Ok((
        clear,
        StoredKey {
            name,
            token: token.as_str().to_owned(),
            check_value: paycrypto::to_hex(&check_value),
        },
    ))
}

/// Builds the world for `terminals` terminals with `cards_per_terminal` cards each on a new
/// SQLite database in a new directory under `parent` (the system's temporary directory by
/// default), with an HSM of its own.
pub(crate) async fn build(
    terminals: usize,
    cards_per_terminal: usize,
    parent: Option<&Path>,
) -> Result<World, BenchError> {
    let dir = TempDir::new(parent)?;
    let store = Arc::new(
        Store::open(&Backend::Sqlite {
            path: dir.0.join("easypos.db"),
        })
        .await?,
    );
    let hsm = Arc::new(
        SoftHsm::new(&hsm::random_bytes::<32>()).map_err(|error| refused("the HSM", error))?,
    );
    let fleet = provision(&store, &hsm, terminals, cards_per_terminal).await?;
    Ok(World {
        store,
        hsm,
        fleet,
        dir,
    })
}

/// Puts the bench world into `store`, which must be new (no terminals yet): the demo world,
/// then `terminals` bench terminals with `cards_per_terminal` cards each, their keys made here
/// and imported into `hsm`. Returns what the load generator must know to play them.
///
/// The debit bank's issuer master key is made here too, before the demo world is seeded
/// (seeding keeps keys that exist), so a database that already has a world is refused: its
/// cards' key would be replaced.
pub async fn provision(
    store: &Store,
    hsm: &SoftHsm,
    terminals: usize,
    cards_per_terminal: usize,
) -> Result<Fleet, BenchError> {
    if !(1..=crate::MAX_TERMINALS).contains(&terminals) {
        return Err(BenchError::Setup(format!(
            "terminals must be 1 to {}",
            crate::MAX_TERMINALS
        )));
    }
    if cards_per_terminal == 0 {
        return Err(BenchError::Setup(
            "each terminal needs at least one card".into(),
        ));
    }
    let existing = store.load_directory().await?;
    if !existing.terminals.is_empty() || !store.keys().await?.is_empty() {
        return Err(BenchError::Setup(format!(
            "the bench provisions only a new, empty database, and this one already holds {} terminals and its keys; point the configuration at a new data directory or database",
            existing.terminals.len()
        )));
    }

    // The keys the bench must know in clear, stored before seeding so that seeding keeps them.
    let (issuer_master_key, imk) = known_key(
        hsm,
        &KeySpec::issuer_master_key(),
        format!("issuer/{}/imk-ac", demo::DEBIT_BANK.0),
    )?;
    let mut stored = vec![imk];
    let mut bench_terminals = Vec::with_capacity(terminals);
    for index in 0..terminals {
        let id = format!("{}", FIRST_TERMINAL_ID + index as u64);
        let (master_key, tmk) = known_key(
            hsm,
            &KeySpec::terminal_master_key(),
            demo::terminal_master_key_name(&id),
        )?;
        stored.push(tmk);
        bench_terminals.push(BenchTerminal {
            id,
            master_key,
            last_stan: 0,
            cards: Vec::with_capacity(cards_per_terminal),
        });
    }
    store.put_keys(stored).await?;
    demo::seed(store, hsm)
        .await
        .map_err(|error| refused("seeding the demo world", error))?;
    let keys: BTreeMap<String, KeyToken> = store
        .keys()
        .await?
        .into_iter()
        .map(|key| (key.name, KeyToken::new(key.token)))
        .collect();
    let token = |name: String| {
        keys.get(&name)
            .cloned()
            .ok_or_else(|| BenchError::Setup(format!("key {name} missing after seeding")))
    };
    let fingerprint_key = token(demo::PAN_FINGERPRINT_KEY.to_owned())?;
    let pvk = token(format!("issuer/{}/pvk", demo::DEBIT_BANK.0))?;

    let mut directory = Directory::default();
    let mut profiles = Vec::new();
    let mut accounts = Vec::new();
    let mut openings = Vec::new();
    for (terminal_index, terminal) in bench_terminals.iter_mut().enumerate() {
        directory.terminals.push(Terminal {
            id: terminal.id.clone(),
            merchant_id: demo::SHANGHAI_MERCHANT.to_owned(),
            status: "active".into(),
        });
        for card_index in 0..cards_per_terminal {
            let number = (terminal_index * cards_per_terminal + card_index) as u64;
            let pan_text = demo::with_luhn(&format!("621234{:09}", FIRST_CARD_BODY + number));
            let card = demo::demo_card(
                HOLDER,
                &format!("bench{number}"),
                &pan_text,
                demo::DEBIT_BANK,
                CardProduct::Debit,
                money::Currency::CNY,
                CARD_OPENING_MINOR,
            );
            let card_id = card.card.id.clone();
            let profile = store::cards::IssuerCard {
                daily_limit_minor: None,
                ..demo::issuer_card(hsm, &keys, &card)
                    .map_err(|error| refused("a bench card's issuer profile", error))?
            };
            let pan = Pan::new(&pan_text).map_err(|error| refused("a bench card", error))?;
            let wrong_pin = wrong_pin(hsm, &pvk, &pan, profile.pin_reference.as_deref())?;
            accounts.push(demo::card_account(&card.card));
            openings.push(demo::opening_transfer(&card));
            profiles.push(profile);
            directory.cards.push(
                demo::fingerprinted(hsm, &fingerprint_key, card)
                    .map_err(|error| refused("a bench card's fingerprint", error))?,
            );
            terminal.cards.push(BenchCard {
                id: card_id,
                pan,
                wrong_pin,
                atc: 0,
            });
        }
    }
    let sessions = directory
        .terminals
        .iter()
        .map(|terminal| demo::terminal_session(&terminal.id))
        .collect();
    store.put_directory(directory).await?;
    store.put_issuer_cards(profiles).await?;
    store.put_terminal_sessions(sessions).await?;
    for chunk in accounts.chunks(ledger::MAX_BATCH_SIZE) {
        if let Some(Err(error)) = store
            .create_accounts(chunk.to_vec())
            .await?
            .into_iter()
            .find(Result::is_err)
        {
            return Err(refused("a bench card's account", error));
        }
    }
    for chunk in openings.chunks(ledger::MAX_BATCH_SIZE) {
        if let Some(Err(error)) = store
            .submit(chunk.to_vec())
            .await?
            .into_iter()
            .find(Result::is_err)
        {
            return Err(refused("a bench card's opening balance", error));
        }
    }
    Ok(Fleet {
        issuer_master_key,
        terminals: bench_terminals,
    })
}

/// A PIN that the issuer refuses for `pan`: one whose PVV is not the card's.
fn wrong_pin(
    hsm: &SoftHsm,
    pvk: &KeyToken,
    pan: &Pan,
    pvv: Option<&str>,
) -> Result<Pin, BenchError> {
    for candidate in WRONG_PINS {
        let pin = Pin::new(candidate).map_err(|error| refused("a wrong PIN", error))?;
        let candidate_pvv = hsm
            .generate_pvv(pvk, pan, demo::DEMO_PVKI, &pin)
            .map_err(|error| refused("a wrong PIN's PVV", error))?;
        if Some(candidate_pvv.as_str()) != pvv {
            return Ok(pin);
        }
    }
    Err(BenchError::Setup(
        "no wrong PIN differs from a card's PIN by its PVV".into(),
    ))
}

/// The terminals the host serves, from the directory, as `easypos up` makes them.
pub(crate) async fn terminal_records(
    store: &Store,
) -> Result<std::collections::HashMap<String, acquirer::TerminalRecord>, BenchError> {
    let directory = store.load_directory().await?;
    Ok(acquirer::TerminalRecord::from_directory(&directory))
}
