#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Exactly-once under every ordering (issue 14): a sale, its retransmissions, its repeats and
//! its reversals arrive in any order, any number of times, and the card's money moves by the
//! sale's amount exactly when the sale stands — approved and not reversed — and never twice.
//!
//! What the host can receive of one sale (terminal 10000001, one trace number) is four distinct
//! messages, each real ISO 8583 (`cup-bcd`) under the terminal's MAC key:
//! - `Sale`: the chip sale with PIN (ATC *a*). Sent again, it is the same bytes: a
//!   retransmission, which the journal answers with the original answer.
//! - `Repeat`: the same sale read from the card again (ATC *a* + 1, a new cryptogram and MAC)
//!   under the same trace number: not a retransmission, so it is decided again.
//! - `Reversal` (0400) and `ReversalRepeat` (0401).
//!
//! A lost answer is invisible to the host (it decided and answered; the answer did not reach
//! the terminal), and a lost request is the absence of an event. So the orderings of these
//! four messages, with repetition, cover what the terminal can live through; every answer the
//! host gives is checked, whether or not the terminal would have seen it. Late issuer answers
//! need the remote-issuer path: the tests through the switch add two events, `Lost` (the
//! issuer's answer to the sale lost on the link: the acquirer answers 91 and queues its own
//! reversal) and `Late` (the issuer decides that sale after all, and its answer goes nowhere).
//!
//! The model of one sale, which every answer and the ledger must agree with:
//! - A message the host answered before (same bytes) gets that answer again.
//! - A reversal is answered 00. It undoes a posted sale once; before the sale, it marks it so
//!   that it never posts.
//! - A sale or repeat posts when nothing posted nor marked it, and is approved with an RRN and
//!   auth code; once posted and standing, it is approved again with the same RRN and auth
//!   code, and nothing moves; once marked or reversed, it is refused.

mod common;

use acquirer::effects::BusinessKey;
use common::*;
use std::collections::HashMap;

const TERMINAL: &str = "10000001";
/// The debit cards of the demo in good standing whose issuer's keys the tests know.
const CARDS: [&str; 5] = [
    "card-CH001-D",
    "card-CH002-D",
    "card-CH003-D",
    "card-CH004-D",
    "card-CH005-D",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Event {
    Sale,
    Repeat,
    Reversal,
    ReversalRepeat,
    /// Through the switch only: the sale (the same bytes as `Sale`) while the link loses the
    /// issuer's answer. The acquirer answers 91 and queues its own reversal.
    Lost,
    /// Through the switch only: the lost sale reaches the issuer now, after the acquirer gave
    /// up on it, and the issuer's (late) answer goes nowhere. The terminal sees nothing.
    Late,
}

const EVENTS: [Event; 4] = [
    Event::Sale,
    Event::Repeat,
    Event::Reversal,
    Event::ReversalRepeat,
];

/// What the terminal sees of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    mti: String,
    code: String,
    rrn: String,
    auth_code: String,
}

/// One sale's messages, built once: the same event is the same bytes.
struct SaleMessages {
    stan: u32,
    amount: u64,
    sale: Vec<u8>,
    repeat: Vec<u8>,
    reversal: Vec<u8>,
    reversal_repeat: Vec<u8>,
}

impl SaleMessages {
    /// Sale `stan` of `card` for `amount`, read from the chip at ATC `atc` (the repeat at
    /// `atc` + 1).
    fn new(
        card: &demo::DemoCard,
        stan: u32,
        amount: u64,
        atc: u16,
        keys: &(TdesKey, TdesKey),
    ) -> Self {
        SaleMessages {
            stan,
            amount,
            sale: chip_sale(card, amount, stan, atc, demo::DEMO_PIN, keys),
            repeat: chip_sale(card, amount, stan, atc + 1, demo::DEMO_PIN, keys),
            reversal: reversal("0400", stan, amount, keys),
            reversal_repeat: reversal("0401", stan, amount, keys),
        }
    }

    fn bytes(&self, event: Event) -> &[u8] {
        match event {
            Event::Sale | Event::Lost => &self.sale,
            Event::Repeat => &self.repeat,
            Event::Reversal => &self.reversal,
            Event::ReversalRepeat => &self.reversal_repeat,
            Event::Late => unreachable!("a late issuer answer is not a terminal message"),
        }
    }

    fn key(&self) -> BusinessKey {
        BusinessKey {
            terminal_id: TERMINAL.into(),
            batch: 1,
            stan: self.stan,
        }
    }
}

/// The model of one sale (see the module's comment).
#[derive(Default)]
struct Model {
    posted: bool,
    reversed: bool,
    marked: bool,
    /// The acquirer answered the sale 91 and queued its own reversal of it.
    queued: bool,
    approval: Option<(String, String)>,
    answered: HashMap<Event, Seen>,
}

impl Model {
    /// Checks `seen`, the host's answer to `event`, and moves the model on. `what` names the
    /// run for the failure message.
    fn answer(&mut self, event: Event, seen: &Seen, what: &(dyn Fn() -> String + Sync)) {
        // A lost sale is the sale's bytes: sent again, either is a retransmission of the other.
        let (event, lost) = match event {
            Event::Lost => (Event::Sale, true),
            event => (event, false),
        };
        if let Some(first) = self.answered.get(&event) {
            assert_eq!(
                seen,
                first,
                "{}: a retransmission gets the original answer",
                what()
            );
            return;
        }
        match event {
            Event::Sale if lost => {
                assert_eq!(
                    (seen.mti.as_str(), seen.code.as_str()),
                    ("0210", "91"),
                    "{}: no answer from the issuer is 91",
                    what()
                );
                self.queued = true;
            }
            Event::Sale | Event::Repeat => {
                assert_eq!(seen.mti, "0210", "{}", what());
                if self.marked || self.reversed || self.queued {
                    assert_ne!(
                        seen.code,
                        "00",
                        "{}: a sale whose reversal the host has is refused",
                        what()
                    );
                } else {
                    assert_eq!(seen.code, "00", "{}: the sale stands", what());
                    let approval = (seen.rrn.clone(), seen.auth_code.clone());
                    assert_eq!(approval.0.len(), 12, "{}: an RRN", what());
                    assert_eq!(approval.1.len(), 6, "{}: an auth code", what());
                    if let Some(original) = &self.approval {
                        assert_eq!(
                            &approval,
                            original,
                            "{}: a repeat gets the original RRN and auth code",
                            what()
                        );
                    }
                    self.approval = Some(approval);
                    self.posted = true;
                }
            }
            Event::Reversal | Event::ReversalRepeat => {
                let mti = if event == Event::Reversal {
                    "0410"
                } else {
                    "0411"
                };
                assert_eq!(
                    (seen.mti.as_str(), seen.code.as_str()),
                    (mti, "00"),
                    "{}: a reversal is acknowledged",
                    what()
                );
                if self.posted {
                    self.reversed = true;
                } else {
                    self.marked = true;
                }
            }
            Event::Lost | Event::Late => unreachable!("not an answer the terminal sees"),
        }
        self.answered.insert(event, seen.clone());
    }

    /// The sale stands: its money moved and was not given back (a reversal the acquirer
    /// queued gives it back, once forwarded).
    fn stands(&self) -> bool {
        self.posted && !self.reversed && !self.queued
    }
}

/// How long the tests' terminals wait for an answer: longer than the host may take to decide
/// (`acquirer::ANSWER_WITHIN`, 15 s), as a real terminal waits 30 to 60 s. A test machine
/// under load (PostgreSQL, two hosts through the switch) takes seconds at times.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

async fn send(client: &mut Client, request: &[u8]) -> Seen {
    let reply = client.exchange(request, ANSWER_WAIT).await.unwrap();
    let message = cup().unpack(&reply).unwrap().into_owned();
    Seen {
        mti: message.mti.as_str().to_owned(),
        code: message.response_code().unwrap(),
        rrn: message.rrn().unwrap_or_default(),
        auth_code: message.auth_code().unwrap_or_default(),
    }
}

/// Plays `events` for the sale `messages`, checking every answer against the model; returns
/// the model.
async fn play(
    client: &mut Client,
    messages: &SaleMessages,
    events: &[Event],
    what: &(dyn Fn() -> String + Sync),
) -> Model {
    let mut model = Model::default();
    for event in events {
        let seen = send(client, messages.bytes(*event)).await;
        model.answer(*event, &seen, what);
    }
    model
}

/// Plays `events` for the sale `messages` through the switch, the link losing and delivering
/// late as the events say, checking every answer against the model; then what happens after
/// the terminal's last message: the acquirer forwards its queued reversals, whatever the link
/// still held reaches the issuer (after the reversal), and the acquirer forwards again.
async fn play_through(
    client: &mut Client,
    acquirer: &TerminalHandler,
    link: &LossyLink,
    messages: &SaleMessages,
    terminal: &str,
    events: &[Event],
    what: &(dyn Fn() -> String + Sync),
) -> Model {
    let mut model = Model::default();
    for event in events {
        match event {
            Event::Late => {
                link.release(terminal, messages.stan).await;
            }
            Event::Lost => {
                link.lose(terminal, messages.stan);
                let seen = send(client, messages.bytes(*event)).await;
                link.keep(terminal, messages.stan);
                model.answer(*event, &seen, what);
            }
            _ => {
                let seen = send(client, messages.bytes(*event)).await;
                model.answer(*event, &seen, what);
            }
        }
    }
    acquirer.forward_reversals().await.unwrap();
    link.release(terminal, messages.stan).await;
    acquirer.forward_reversals().await.unwrap();
    model
}

/// Store-and-forward's passes until every queued reversal is acknowledged (at most 10 s), as
/// in production. The workers' passes interleave: one worker's pass may send another's
/// reversal while the link still loses that trace number (between the acquirer queueing it and
/// the worker's `keep`), and its next attempt then waits out its backoff (2 s), after the
/// worker's own passes.
async fn drain_reversals(acquirer: &TerminalHandler, store: &Store) {
    for _ in 0..40 {
        acquirer.forward_reversals().await.unwrap();
        let reversals = store.all_reversals().await.unwrap();
        if reversals.iter().all(|reversal| reversal.done_at.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The ledger agrees with the model for this sale: the sale's issuer transfer exists exactly
/// when it posted, and its reversal exactly when it was reversed.
async fn check_ledger(store: &Store, messages: &SaleMessages, model: &Model, what: &str) {
    let key = messages.key();
    let sale = store
        .transfer(key.transfer_id("sale/issuer"))
        .await
        .unwrap();
    assert_eq!(sale.is_some(), model.posted, "{what}: the sale posted");
    let reversal = store
        .transfer(key.transfer_id("reversal/issuer"))
        .await
        .unwrap();
    assert_eq!(
        reversal.is_some(),
        model.reversed,
        "{what}: the sale reversed"
    );
}

/// The listener's limits with a connection rate no test connection reaches.
fn unlimited() -> Limits {
    Limits {
        connection_rate: host::Rate::new(1_000_000, 1_000_000).unwrap(),
        ..Limits::default()
    }
}

/// Every sequence of 1 to `longest` events, with repetition.
fn orderings(longest: usize) -> Vec<Vec<Event>> {
    orderings_of(&EVENTS, longest)
}

/// Every sequence of 1 to `longest` of `events`, with repetition.
fn orderings_of<E: Copy>(events: &[E], longest: usize) -> Vec<Vec<E>> {
    let mut all = Vec::new();
    let mut layer: Vec<Vec<E>> = vec![Vec::new()];
    for _ in 0..longest {
        layer = layer
            .iter()
            .flat_map(|prefix| {
                events.iter().map(move |event| {
                    let mut next = prefix.clone();
                    next.push(*event);
                    next
                })
            })
            .collect();
        all.extend(layer.iter().cloned());
    }
    all
}

/// Sales of 1 to 9 minor units, so that a sum of effects tells which sales stood.
fn amount_of(stan: u32) -> u64 {
    u64::from(stan % 9) + 1
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ordering_of_a_sale_its_repeats_and_reversals_moves_money_at_most_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let orderings = orderings(6);
    assert_eq!(orderings.len(), 4 + 16 + 64 + 256 + 1_024 + 4_096);
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (address, mut client, stop, server, _handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let keys = signed_on(&mut client).await;
        // One card per worker, each running its share of the orderings one after the other
        // (a card's ATC only goes up), on its own connection; trace numbers are the
        // orderings' indexes, so no two runs share a business key.
        let mut workers = Vec::new();
        for (worker, card) in CARDS.iter().enumerate() {
            let card = demo_card(card);
            let world_store = world.store.clone();
            let keys = keys.clone();
            let mine: Vec<(usize, Vec<Event>)> = orderings
                .iter()
                .cloned()
                .enumerate()
                .filter(|(index, _)| index % CARDS.len() == worker)
                .collect();
            workers.push(tokio::spawn(async move {
                let mut client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
                    .await
                    .unwrap();
                let balance = async |store: &Store| {
                    store
                        .account(card.card.account)
                        .await
                        .unwrap()
                        .unwrap()
                        .available()
                };
                // The card is this worker's alone: its balance is known before each run.
                let mut before = balance(&world_store).await;
                for (run, (index, events)) in mine.iter().enumerate() {
                    let stan = u32::try_from(*index).unwrap() + 1;
                    let atc = u16::try_from(2 * run + 1).unwrap();
                    let messages = SaleMessages::new(&card, stan, amount_of(stan), atc, &keys);
                    let what = || format!("{name}: ordering {events:?} (trace number {stan})");
                    let model = play(&mut client, &messages, events, &what).await;
                    let after = balance(&world_store).await;
                    let moved = if model.stands() {
                        i64::try_from(messages.amount).unwrap()
                    } else {
                        0
                    };
                    assert_eq!(before - after, moved, "{}: the card's money", what());
                    before = after;
                    check_ledger(&world_store, &messages, &model, &what()).await;
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// What the host can receive of a sale and one void of it (trace number: the sale's + 1): the
/// sale; the void (sent again, the same bytes: a retransmission); the void read again under
/// its trace number (`VoidRepeat`: another local time, field 12, so decided again); and the
/// void's reversals (0400, 0401).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum VoidEvent {
    Sale,
    Void,
    VoidRepeat,
    Reversal,
    ReversalRepeat,
}

const VOID_EVENTS: [VoidEvent; 5] = [
    VoidEvent::Sale,
    VoidEvent::Void,
    VoidEvent::VoidRepeat,
    VoidEvent::Reversal,
    VoidEvent::ReversalRepeat,
];

/// One sale's and its void's messages, built once.
struct VoidMessages {
    sale_stan: u32,
    amount: u64,
    rrn: String,
    sale: Vec<u8>,
    void: Vec<u8>,
    void_repeat: Vec<u8>,
    reversal: Vec<u8>,
    reversal_repeat: Vec<u8>,
}

impl VoidMessages {
    fn new(
        card: &demo::DemoCard,
        sale_stan: u32,
        amount: u64,
        atc: u16,
        keys: &(TdesKey, TdesKey),
    ) -> Self {
        let sale_key = BusinessKey {
            terminal_id: TERMINAL.into(),
            batch: 1,
            stan: sale_stan,
        };
        // The void carries the sale's RRN, which comes from the sale's id: known beforehand, so
        // that a void may reach the host before its sale.
        let (rrn, _) = acquirer::effects::approval_codes(sale_key.transfer_id("sale/issuer"));
        let void = void(card, amount, sale_stan + 1, sale_stan, &rrn, keys);
        let void_repeat = edited(&void, keys, |message| {
            message.set_text(12, "120000");
        });
        let reversal_of = |mti: &str| common::reversal_of(&void, mti, keys);
        VoidMessages {
            sale_stan,
            amount,
            sale: chip_sale(card, amount, sale_stan, atc, demo::DEMO_PIN, keys),
            void_repeat,
            reversal: reversal_of("0400"),
            reversal_repeat: reversal_of("0401"),
            void,
            rrn,
        }
    }

    fn bytes(&self, event: VoidEvent) -> &[u8] {
        match event {
            VoidEvent::Sale => &self.sale,
            VoidEvent::Void => &self.void,
            VoidEvent::VoidRepeat => &self.void_repeat,
            VoidEvent::Reversal => &self.reversal,
            VoidEvent::ReversalRepeat => &self.reversal_repeat,
        }
    }

    /// The sale's key, under which the void's transfers are (`undo/*`, its first slot).
    fn sale_key(&self) -> BusinessKey {
        BusinessKey {
            terminal_id: TERMINAL.into(),
            batch: 1,
            stan: self.sale_stan,
        }
    }
}

/// The model of a sale and its void:
/// - a message the host answered before (same bytes) gets that answer again;
/// - the sale is approved (nothing reverses it here);
/// - the void (or its repeat) of a sale not posted yet gets 25; of a sale posted, 00 and it
///   posts, unless its reversal reached the host before (94: it is marked, or was undone);
///   a repeat of a void that stands gets 00 again and moves nothing;
/// - a reversal of the void gets 00: it undoes a posted void once, and marks one not posted.
#[derive(Default)]
struct VoidModel {
    sale: bool,
    void: bool,
    reversed: bool,
    marked: bool,
    answered: HashMap<VoidEvent, Seen>,
}

impl VoidModel {
    fn answer(
        &mut self,
        messages: &VoidMessages,
        event: VoidEvent,
        seen: &Seen,
        what: &(dyn Fn() -> String + Sync),
    ) {
        if let Some(first) = self.answered.get(&event) {
            assert_eq!(
                seen,
                first,
                "{}: a retransmission gets the original answer",
                what()
            );
            return;
        }
        let got = (seen.mti.as_str(), seen.code.as_str());
        match event {
            VoidEvent::Sale => {
                assert_eq!(got, ("0210", "00"), "{}: the sale is approved", what());
                assert_eq!(seen.rrn, messages.rrn, "{}: the sale's RRN", what());
                self.sale = true;
            }
            VoidEvent::Void | VoidEvent::VoidRepeat => {
                let expected = if !self.sale {
                    "25"
                } else if self.marked || self.reversed {
                    "94"
                } else {
                    "00"
                };
                assert_eq!(got, ("0210", expected), "{}: the void", what());
                self.void |= expected == "00";
            }
            VoidEvent::Reversal | VoidEvent::ReversalRepeat => {
                let mti = if event == VoidEvent::Reversal {
                    "0410"
                } else {
                    "0411"
                };
                assert_eq!(got, (mti, "00"), "{}: a reversal is acknowledged", what());
                if self.void {
                    self.reversed = true;
                } else {
                    self.marked = true;
                }
            }
        }
        self.answered.insert(event, seen.clone());
    }

    /// What the card paid: the sale, unless a void of it stands.
    fn paid(&self, messages: &VoidMessages) -> i64 {
        let voided = self.void && !self.reversed;
        if self.sale && !voided {
            i64::try_from(messages.amount).unwrap()
        } else {
            0
        }
    }
}

/// The ledger agrees with the model: the sale's transfer exists when it posted; the void's
/// first slot holds the void when it posted (code 23), the mark when its reversal overtook it
/// (a hold), nothing otherwise; the void's reversal exists when it was undone; and the second
/// slot is empty (one void, one slot).
async fn check_void_ledger(store: &Store, messages: &VoidMessages, model: &VoidModel, what: &str) {
    let key = messages.sale_key();
    let transfer = async |purpose: &str| store.transfer(key.transfer_id(purpose)).await.unwrap();
    assert_eq!(
        transfer("sale/issuer").await.is_some(),
        model.sale,
        "{what}: the sale posted"
    );
    let slot = transfer("undo/issuer").await;
    let found = slot
        .as_ref()
        .map(|transfer| (transfer.is_hold(), transfer.request.code));
    let expected = if model.void {
        Some((false, 23))
    } else if model.marked {
        found.filter(|(hold, _)| *hold)
    } else {
        None
    };
    assert_eq!(found, expected, "{what}: the void's slot");
    assert_eq!(
        transfer("undo-reversal/issuer").await.is_some(),
        model.reversed,
        "{what}: the void undone"
    );
    assert!(
        transfer("undo#1/issuer").await.is_none(),
        "{what}: one void takes one slot"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ordering_of_a_sale_its_void_and_the_voids_reversals_voids_at_most_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let longest = usize::try_from(env_number("EASYPOS_VOID_ORDERING_LENGTH", 5)).unwrap();
    let orderings = orderings_of(&VOID_EVENTS, longest);
    if longest == 5 {
        assert_eq!(orderings.len(), 5 + 25 + 125 + 625 + 3_125);
    }
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (address, mut client, stop, server, _handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let keys = signed_on(&mut client).await;
        // As in the sale's orderings: one card per worker; the sale of ordering `i` has trace
        // number 2i + 1 and its void 2i + 2.
        let mut workers = Vec::new();
        for (worker, card) in CARDS.iter().enumerate() {
            let card = demo_card(card);
            let world_store = world.store.clone();
            let keys = keys.clone();
            let mine: Vec<(usize, Vec<VoidEvent>)> = orderings
                .iter()
                .cloned()
                .enumerate()
                .filter(|(index, _)| index % CARDS.len() == worker)
                .collect();
            workers.push(tokio::spawn(async move {
                let mut client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
                    .await
                    .unwrap();
                let balance = async |store: &Store| {
                    store
                        .account(card.card.account)
                        .await
                        .unwrap()
                        .unwrap()
                        .available()
                };
                for (run, (index, events)) in mine.iter().enumerate() {
                    let before = balance(&world_store).await;
                    let sale_stan = 2 * u32::try_from(*index).unwrap() + 1;
                    let atc = u16::try_from(run + 1).unwrap();
                    let messages =
                        VoidMessages::new(&card, sale_stan, amount_of(sale_stan), atc, &keys);
                    let mut model = VoidModel::default();
                    for (step, event) in events.iter().enumerate() {
                        let what = || {
                            format!(
                                "{name}: ordering {events:?}, after {:?} (sale's trace number {sale_stan})",
                                &events[..=step]
                            )
                        };
                        let seen = send(&mut client, messages.bytes(*event)).await;
                        model.answer(&messages, *event, &seen, &what);
                        assert_eq!(
                            before - balance(&world_store).await,
                            model.paid(&messages),
                            "{}: the card's money",
                            what()
                        );
                        check_void_ledger(&world_store, &messages, &model, &what()).await;
                    }
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// A void that was reversed leaves its sale free for another void (a new trace number), which
/// posts once, in the next slot; the reversed void itself, repeated, never posts again. The
/// same for refunds, one standing at a time as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_reversed_void_frees_its_sale_for_another_void_and_never_posts_again() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (_address, mut client, stop, server, _handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let opening = available(&world, &card).await;
        let reversal_of = |request: &[u8], mti: &str| common::reversal_of(request, mti, &keys);
        // Read again under the same trace number: not a retransmission, decided again.
        let repeat_of = |request: &[u8]| {
            edited(request, &keys, |message| {
                message.set_text(12, "120000");
            })
        };
        let refund =
            |amount: u64, stan: u32, rrn: &str| common::refund(&card, amount, stan, 1, rrn, &keys);
        let sale = send(
            &mut client,
            &chip_sale(&card, 1_000, 1, 1, demo::DEMO_PIN, &keys),
        )
        .await;
        assert_eq!(sale.code, "00", "{name}");
        let first = void(&card, 1_000, 2, 1, &sale.rrn, &keys);
        assert_eq!(send(&mut client, &first).await.code, "00", "{name}");
        assert_eq!(available(&world, &card).await, opening);
        assert_eq!(
            send(&mut client, &reversal_of(&first, "0400")).await.code,
            "00"
        );
        assert_eq!(available(&world, &card).await, opening - 1_000);

        // The reversed void, repeated, is refused as a repeat of a reversed sale is.
        assert_eq!(
            send(&mut client, &repeat_of(&first)).await.code,
            "94",
            "{name}: a repeat of the reversed void"
        );
        assert_eq!(available(&world, &card).await, opening - 1_000);

        // The cashier voids the sale again: it posts, once.
        let second = void(&card, 1_000, 3, 1, &sale.rrn, &keys);
        assert_eq!(
            send(&mut client, &second).await.code,
            "00",
            "{name}: the sale voided again after its void was reversed"
        );
        assert_eq!(available(&world, &card).await, opening);
        assert_eq!(send(&mut client, &second).await.code, "00");
        assert_eq!(send(&mut client, &repeat_of(&second)).await.code, "00");
        assert_eq!(available(&world, &card).await, opening, "once");
        // While it stands, no other void of the sale, and the first one still does not post.
        let third = void(&card, 1_000, 4, 1, &sale.rrn, &keys);
        assert_eq!(send(&mut client, &third).await.code, "12", "{name}");
        send(&mut client, &first).await;
        send(&mut client, &repeat_of(&first)).await;
        send(&mut client, &reversal_of(&first, "0401")).await;
        assert_eq!(
            available(&world, &card).await,
            opening,
            "{name}: voided once"
        );
        let key = BusinessKey {
            terminal_id: TERMINAL.into(),
            batch: 1,
            stan: 1,
        };
        let user_data = async |purpose: &str| {
            world
                .store
                .transfer(key.transfer_id(purpose))
                .await
                .unwrap()
                .map(|transfer| transfer.request.user_data)
        };
        assert_eq!(user_data("undo/issuer").await, Some(2), "{name}: slot 0");
        assert_eq!(user_data("undo-reversal/issuer").await, Some(2));
        assert_eq!(user_data("undo#1/issuer").await, Some(3), "{name}: slot 1");
        assert_eq!(user_data("undo-reversal#1/issuer").await, None);
        assert_eq!(user_data("undo#2/issuer").await, None);

        // The second void reversed too: a refund, partial, may follow; one at a time.
        assert_eq!(
            send(&mut client, &reversal_of(&second, "0400")).await.code,
            "00"
        );
        assert_eq!(available(&world, &card).await, opening - 1_000);
        let part = refund(400, 5, &sale.rrn);
        assert_eq!(send(&mut client, &part).await.code, "00", "{name}: refund");
        assert_eq!(available(&world, &card).await, opening - 600);
        assert_eq!(
            send(&mut client, &refund(300, 6, &sale.rrn)).await.code,
            "12",
            "{name}: a second refund while the first stands"
        );
        assert_eq!(
            send(&mut client, &reversal_of(&part, "0400")).await.code,
            "00"
        );
        assert_eq!(available(&world, &card).await, opening - 1_000);
        assert_eq!(
            send(&mut client, &refund(300, 7, &sale.rrn)).await.code,
            "00",
            "{name}: a refund after the reversed one"
        );
        assert_eq!(send(&mut client, &repeat_of(&part)).await.code, "94");
        assert_eq!(available(&world, &card).await, opening - 700);
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// A void and its reversal sent at once, on two connections, over and over: whichever reaches
/// the store first, the sale stands at the end — the reversal undoes the void, or marks it so
/// that it never posts, or (the void posting between the reversal's look-up and its mark) finds
/// its mark refused and undoes the void after all.
#[tokio::test(flavor = "multi_thread")]
async fn a_void_racing_its_reversal_never_stands() {
    let rounds = u32::try_from(env_number("EASYPOS_VOID_RACE_ROUNDS", 150)).unwrap();
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (address, mut client, stop, server, _handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let keys = signed_on(&mut client).await;
        let mut other = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
            .await
            .unwrap();
        let card = demo_card("card-CH002-D");
        let opening = available(&world, &card).await;
        let mut paid = 0;
        let mut answers: HashMap<(String, String), u32> = HashMap::new();
        for round in 0..rounds {
            let sale_stan = 2 * round + 1;
            let amount = amount_of(sale_stan);
            let sale = send(
                &mut client,
                &chip_sale(
                    &card,
                    amount,
                    sale_stan,
                    u16::try_from(round + 1).unwrap(),
                    demo::DEMO_PIN,
                    &keys,
                ),
            )
            .await;
            assert_eq!(sale.code, "00", "{name}: round {round}");
            paid += i64::try_from(amount).unwrap();
            let void = void(&card, amount, sale_stan + 1, sale_stan, &sale.rrn, &keys);
            let reversal = reversal_of(&void, "0400", &keys);
            let (voided, reversed) =
                tokio::join!(send(&mut client, &void), send(&mut other, &reversal));
            assert_eq!(reversed.code, "00", "{name}: round {round}: the reversal");
            *answers
                .entry((voided.code.clone(), reversed.code.clone()))
                .or_default() += 1;
            assert_eq!(
                opening - available(&world, &card).await,
                paid,
                "{name}: round {round}: the void answered {} does not stand after its reversal",
                voided.code
            );
        }
        eprintln!("{name}: (void, reversal) answers over {rounds} rounds: {answers:?}");
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// A void and the reversal of its sale sent at once on two connections, round after round:
/// the card gets the sale's money back once, never twice (the reversal claims the sale's first
/// free void slot in its own commit; `acquirer::reversal`). Without that claim both could pass
/// their look-ups and both post.
#[tokio::test]
async fn a_void_racing_its_sales_reversal_gives_the_money_back_once() {
    let rounds = u32::try_from(env_number("EASYPOS_VOID_RACE_ROUNDS", 150)).unwrap();
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (address, mut client, stop, server, _handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let keys = signed_on(&mut client).await;
        let mut other = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
            .await
            .unwrap();
        let card = demo_card("card-CH002-D");
        let opening = available(&world, &card).await;
        let mut answers: HashMap<(String, String), u32> = HashMap::new();
        for round in 0..rounds {
            let stan = 2 * round + 1;
            let amount = amount_of(stan);
            let sale = chip_sale(
                &card,
                amount,
                stan,
                u16::try_from(round + 1).unwrap(),
                demo::DEMO_PIN,
                &keys,
            );
            let approved = send(&mut client, &sale).await;
            assert_eq!(approved.code, "00", "{name}: round {round}");
            let void = void(&card, amount, stan + 1, stan, &approved.rrn, &keys);
            let reversal = reversal_of(&sale, "0400", &keys);
            let (voided, reversed) =
                tokio::join!(send(&mut client, &void), send(&mut other, &reversal));
            assert_eq!(reversed.code, "00", "{name}: round {round}: the reversal");
            assert!(
                ["00", "25"].contains(&voided.code.as_str()),
                "{name}: round {round}: the void got {}",
                voided.code
            );
            *answers
                .entry((voided.code.clone(), reversed.code.clone()))
                .or_default() += 1;
            assert_eq!(
                available(&world, &card).await,
                opening,
                "{name}: round {round}: the void answered {} and the reversal both gave back",
                voided.code
            );
        }
        eprintln!("{name}: (void, sale reversal) answers over {rounds} rounds: {answers:?}");
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// One sale's events in the storm: three in four are a lone sale; the rest add one to three
/// retransmissions, repeats, reversals or reversal repeats, with the sale itself at a random
/// place among them (so reversals come before and after their originals). About a third of
/// the messages are not a first sale.
fn storm_events(random: &mut SplitMix) -> Vec<Event> {
    if random.below(4) != 0 {
        return vec![Event::Sale];
    }
    let mut events: Vec<Event> = (0..=random.below(3))
        .map(|_| EVENTS[random.below(EVENTS.len())])
        .collect();
    let at = random.below(events.len() + 1);
    events.insert(at, Event::Sale);
    events
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| value.parse().unwrap_or_else(|_| panic!("{name}: a number")))
        .unwrap_or(default)
}

/// The terminals of the storm: 10000001 and three more with the same test master key.
const STORM_TERMINALS: [&str; 4] = ["10000001", "10000011", "10000012", "10000013"];
/// The storm's cards: the demo's debit cards with room for a million small sales.
const STORM_CARDS: [&str; 4] = [
    "card-CH001-D",
    "card-CH002-D",
    "card-CH004-D",
    "card-CH005-D",
];
const STORM_WORKERS: usize = 32;

/// A swipe sale of `card` at `terminal`; the repeat is the same sale with the PIN entered
/// (another message under the same trace number, decided again).
fn storm_messages(
    card: &demo::DemoCard,
    terminal: &str,
    stan: u32,
    keys: &(TdesKey, TdesKey),
) -> SaleMessages {
    let amount = u64::from(stan % 2) + 1;
    let at_terminal = |request: &[u8]| {
        edited(request, keys, |message| {
            message.set_text(41, terminal.to_owned())
        })
    };
    let sale = swipe(card, amount, stan, "801", keys);
    let pan = Pan::new(&card.pan).unwrap();
    let block = pinblock::encrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&keys.0),
        &paycrypto::Pin::new(demo::DEMO_PIN).unwrap(),
        Some(&pan),
        &[0; 8],
    )
    .unwrap();
    let repeat = edited(&sale, keys, |message| {
        message.set_text(41, terminal.to_owned());
        message.set_bytes(52, block.as_bytes().to_vec());
    });
    SaleMessages {
        stan,
        amount,
        sale: at_terminal(&sale),
        repeat,
        reversal: at_terminal(&reversal("0400", stan, amount, keys)),
        reversal_repeat: at_terminal(&reversal("0401", stan, amount, keys)),
    }
}

/// The storm's terminals at the host of `world` and `handler`, signed on over `client`:
/// their keys, in the order of [`STORM_TERMINALS`].
async fn storm_terminals(
    world: &World,
    handler: &TerminalHandler,
    client: &mut Client,
) -> Vec<(TdesKey, TdesKey)> {
    let tmk = world
        .hsm
        .import_clear_key(
            &KeySpec::terminal_master_key(),
            &hex::decode(TEST_TMK).unwrap(),
        )
        .unwrap();
    let mut terminal_keys = Vec::new();
    for terminal in STORM_TERMINALS {
        world
            .store
            .put_keys(vec![StoredKey {
                name: demo::terminal_master_key_name(terminal),
                token: tmk.as_str().to_owned(),
                check_value: "TEST".into(),
            }])
            .await
            .unwrap();
        world
            .store
            .put_directory(store::directory::Directory {
                terminals: vec![store::directory::Terminal {
                    id: terminal.into(),
                    merchant_id: "898310058120001".into(),
                    status: "active".into(),
                }],
                ..store::directory::Directory::default()
            })
            .await
            .unwrap();
        world
            .store
            .put_terminal_sessions(vec![demo::terminal_session(terminal)])
            .await
            .unwrap();
        handler.set_terminal(
            terminal,
            TerminalRecord {
                merchant_id: "898310058120001".into(),
                active: true,
                acquirer: demo::ACQUIRER,
                merchant_payable: demo::account_id("merchant/898310058120001"),
                mcc: 5814,
            },
        );
        terminal_keys.push(signed_on_as(client, terminal).await);
    }
    terminal_keys
}

/// The plan of a storm: its sales' events, until `total` messages.
fn storm_plan(
    total: u64,
    seed: u64,
    events: impl Fn(&mut SplitMix) -> Vec<Event>,
) -> Arc<Vec<Vec<Event>>> {
    let mut random = SplitMix(seed);
    let mut plan: Vec<Vec<Event>> = Vec::new();
    let mut messages = 0;
    while messages < total {
        let events = events(&mut random);
        messages += u64::try_from(events.len()).unwrap();
        plan.push(events);
    }
    let extra = messages - u64::try_from(plan.len()).unwrap();
    eprintln!(
        "storm: seed {seed}, {messages} events for {} sales ({extra} retransmissions, repeats, reversals, losses and late answers)",
        plan.len()
    );
    assert!(
        plan.len() / STORM_TERMINALS.len() < 999_999,
        "trace numbers run out"
    );
    Arc::new(plan)
}

/// Where sale `index` of a storm is played: at terminal index % 4, trace number index / 4 + 1,
/// on card (index / 4 + terminal) % 4, so that terminals and cards pair in every way.
fn storm_place(index: usize) -> (usize, u32, usize) {
    let terminal = index % STORM_TERMINALS.len();
    let stan = u32::try_from(index / STORM_TERMINALS.len()).unwrap() + 1;
    let card = (index / STORM_TERMINALS.len() + terminal) % STORM_CARDS.len();
    (terminal, stan, card)
}

/// A duplicate, retry and reversal storm: `EASYPOS_STORM_MESSAGES` messages (20,000 unless
/// set; 1,000,000 for the long run) over four terminals, four cards and eight connections at
/// once, from the seed `EASYPOS_STORM_SEED`. Every answer is checked against the model of its
/// sale as it comes; afterwards each sale's transfers, each card's balance and the books.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_duplicates_repeats_and_reversals_leaves_no_double_effect() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let total = env_number("EASYPOS_STORM_MESSAGES", 20_000);
    let seed = env_number("EASYPOS_STORM_SEED", 14);
    let plan = storm_plan(total, seed, storm_events);
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (address, mut client, stop, server, handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let terminal_keys = Arc::new(storm_terminals(&world, &handler, &mut client).await);
        let mut openings = Vec::new();
        for card in STORM_CARDS {
            openings.push(available(&world, &demo_card(card)).await);
        }

        // Worker index % 32 plays sale `index`, where `storm_place` says.
        let mut workers = Vec::new();
        for worker in 0..STORM_WORKERS {
            let plan = plan.clone();
            let terminal_keys = terminal_keys.clone();
            let store = world.store.clone();
            workers.push(tokio::spawn(async move {
                let mut client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
                    .await
                    .unwrap();
                let cards: Vec<demo::DemoCard> =
                    STORM_CARDS.iter().map(|card| demo_card(card)).collect();
                // What stood, per card.
                let mut stood = vec![0_i64; STORM_CARDS.len()];
                for index in (worker..plan.len()).step_by(STORM_WORKERS) {
                    let events = &plan[index];
                    let (terminal, stan, card) = storm_place(index);
                    let keys = &terminal_keys[terminal];
                    let messages = storm_messages(
                        &cards[card],
                        STORM_TERMINALS[terminal],
                        stan,
                        keys,
                    );
                    let what = || {
                        format!(
                            "{name}: seed {seed}, sale {index} ({events:?}, terminal {}, trace number {stan})",
                            STORM_TERMINALS[terminal]
                        )
                    };
                    let model = play(&mut client, &messages, events, &what).await;
                    let key = BusinessKey {
                        terminal_id: STORM_TERMINALS[terminal].into(),
                        ..messages.key()
                    };
                    let sale = store
                        .transfer(key.transfer_id("sale/issuer"))
                        .await
                        .unwrap();
                    assert_eq!(sale.is_some(), model.posted, "{}: posted", what());
                    let reversal = store
                        .transfer(key.transfer_id("reversal/issuer"))
                        .await
                        .unwrap();
                    assert_eq!(reversal.is_some(), model.reversed, "{}: reversed", what());
                    if model.stands() {
                        stood[card] += i64::try_from(messages.amount).unwrap();
                    }
                }
                stood
            }));
        }
        let mut stood = vec![0_i64; STORM_CARDS.len()];
        for worker in workers {
            for (card, amount) in worker.await.unwrap().into_iter().enumerate() {
                stood[card] += amount;
            }
        }
        for (index, card) in STORM_CARDS.iter().enumerate() {
            assert_eq!(
                openings[index] - available(&world, &demo_card(card)).await,
                stood[index],
                "{name}: seed {seed}: {card} paid exactly for the sales that stand"
            );
        }
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// One sale's events in the storm through the switch: as [`storm_events`], with the link
/// losing the issuer's answer to the sale in one of two sales that are not alone, and the
/// late answer among the events after it, or after the acquirer's own reversal.
fn remote_storm_events(random: &mut SplitMix) -> Vec<Event> {
    let mut events = storm_events(random);
    if events.len() > 1 && random.below(2) == 0 {
        let sale = events
            .iter()
            .position(|event| *event == Event::Sale)
            .unwrap();
        events[sale] = Event::Lost;
        if random.below(2) == 0 {
            let at = sale + 1 + random.below(events.len() - sale);
            events.insert(at, Event::Late);
        }
    }
    events
}

/// The storm through the switch, late issuer answers included: `EASYPOS_SWITCH_STORM_MESSAGES`
/// events (4,000 unless set) over the storm's terminals and cards at the acquirer, whose cards'
/// issuer is a remote issuer host reached through a link that loses the issuer's answer and
/// delivers it late on cue. Every answer is checked against the model of its sale as it comes
/// (a lost answer is 91, a repeat after it 94). After each sale's events the acquirer forwards
/// its queued reversals and the link delivers whatever it still held. At the end: each card
/// paid (in the issuer's books) and the merchant was credited (in the acquirer's) exactly for
/// the sales that stand, every queued reversal was acknowledged, and both books balance.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_through_a_remote_issuer_with_late_answers_leaves_no_double_effect() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("error")
        .with_test_writer()
        .try_init();
    let total = env_number("EASYPOS_SWITCH_STORM_MESSAGES", 4_000);
    let seed = env_number("EASYPOS_STORM_SEED", 14);
    let plan = storm_plan(total, seed, remote_storm_events);
    for (issuer_backend, acquirer_backend) in store::testing::backends()
        .await
        .into_iter()
        .zip(store::testing::backends().await)
    {
        let name = issuer_backend.name;
        let (mut pair, link) =
            RemotePair::start_lossy(issuer_backend, acquirer_backend, unlimited(), |handler| {
                handler
                    .without_terminal_rate()
                    .with_reversal_grace(Duration::ZERO)
            })
            .await;
        let terminal_keys =
            Arc::new(storm_terminals(&pair.acquirer, &pair.handler, &mut pair.client).await);
        let mut openings = Vec::new();
        for card in STORM_CARDS {
            openings.push(available(&pair.issuer, &demo_card(card)).await);
        }
        let merchant_before = merchant_credited(&pair.acquirer.store).await;
        let mut workers = Vec::new();
        for worker in 0..STORM_WORKERS {
            let plan = plan.clone();
            let terminal_keys = terminal_keys.clone();
            let acquirer = pair.handler.clone();
            let link = link.clone();
            let address = pair.address;
            workers.push(tokio::spawn(async move {
                let mut client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
                    .await
                    .unwrap();
                let cards: Vec<demo::DemoCard> =
                    STORM_CARDS.iter().map(|card| demo_card(card)).collect();
                let mut stood = vec![0_i64; STORM_CARDS.len()];
                for index in (worker..plan.len()).step_by(STORM_WORKERS) {
                    let events = &plan[index];
                    let (terminal, stan, card) = storm_place(index);
                    let messages = storm_messages(
                        &cards[card],
                        STORM_TERMINALS[terminal],
                        stan,
                        &terminal_keys[terminal],
                    );
                    let what = || {
                        format!(
                            "{name}, remote issuer: seed {seed}, sale {index} ({events:?}, terminal {}, trace number {stan})",
                            STORM_TERMINALS[terminal]
                        )
                    };
                    let model = play_through(
                        &mut client,
                        &acquirer,
                        &link,
                        &messages,
                        STORM_TERMINALS[terminal],
                        events,
                        &what,
                    )
                    .await;
                    if model.stands() {
                        stood[card] += i64::try_from(messages.amount).unwrap();
                    }
                }
                stood
            }));
        }
        let mut stood = vec![0_i64; STORM_CARDS.len()];
        for worker in workers {
            for (card, amount) in worker.await.unwrap().into_iter().enumerate() {
                stood[card] += amount;
            }
        }
        drain_reversals(&pair.handler, &pair.acquirer.store).await;
        for (index, card) in STORM_CARDS.iter().enumerate() {
            assert_eq!(
                openings[index] - available(&pair.issuer, &demo_card(card)).await,
                stood[index],
                "{name}: seed {seed}: {card} paid exactly for the sales that stand"
            );
        }
        assert_eq!(
            merchant_credited(&pair.acquirer.store).await - merchant_before,
            stood.iter().sum::<i64>(),
            "{name}: seed {seed}: the merchant is credited for the sales that stand"
        );
        for reversal in pair.acquirer.store.all_reversals().await.unwrap() {
            assert!(
                reversal.done_at.is_some(),
                "{name}: seed {seed}: the acquirer's reversal of {} trace number {} was acknowledged",
                reversal.terminal_id,
                reversal.stan
            );
        }
        link.stop();
        pair.stop().await;
    }
}

/// Every event through the switch, late issuer answers included.
const REMOTE_EVENTS: [Event; 6] = [
    Event::Sale,
    Event::Lost,
    Event::Repeat,
    Event::Reversal,
    Event::ReversalRepeat,
    Event::Late,
];

/// What the merchant of the demo terminals has been credited, net, in the acquirer's books.
async fn merchant_credited(store: &Store) -> i64 {
    let account = store
        .account(demo::account_id("merchant/898310058120001"))
        .await
        .unwrap()
        .unwrap();
    account.credits_posted - account.debits_posted
}

/// The orderings of a sale, its retransmissions, its repeats, its reversals, a loss of the
/// issuer's answer on the link and that answer coming late (1 to 4 events: 1,554 of them;
/// `EASYPOS_REMOTE_ORDERING_LENGTH=5` for the 9,330 up to 5) through the switch: the acquirer
/// host routes the card to a remote issuer host over `iso87-ascii`, each institution with its
/// own books, through a link that loses and delays on cue. The answers follow the same model,
/// where a lost answer is 91 and leaves the sale reversed by the acquirer's store-and-forward
/// (a repeat after it is refused, 94); after each ordering the queued reversals are forwarded,
/// anything the link still held reaches the issuer, and the card's balance (the issuer's books)
/// must have moved exactly when the sale stands. At the end: every queued reversal was
/// acknowledged, the merchant was credited exactly for the sales that stand, and both
/// institutions' books balance.
///
/// A repeat within the same second as its original is told from a retransmission by the
/// terminal's MAC, which the acquirer passes on in field 48 (docs/protocol.md, "The switch").
#[tokio::test(flavor = "multi_thread")]
async fn every_ordering_through_a_remote_issuer_moves_money_at_most_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let longest = usize::try_from(env_number("EASYPOS_REMOTE_ORDERING_LENGTH", 4)).unwrap();
    let orderings = orderings_of(&REMOTE_EVENTS, longest);
    if longest == 4 {
        assert_eq!(orderings.len(), 6 + 36 + 216 + 1_296);
    }
    for (issuer_backend, acquirer_backend) in store::testing::backends()
        .await
        .into_iter()
        .zip(store::testing::backends().await)
    {
        let name = issuer_backend.name;
        let (mut pair, link) =
            RemotePair::start_lossy(issuer_backend, acquirer_backend, unlimited(), |handler| {
                handler
                    .without_terminal_rate()
                    .with_reversal_grace(Duration::ZERO)
            })
            .await;
        let keys = signed_on(&mut pair.client).await;
        let address = pair.address;
        let merchant_before = merchant_credited(&pair.acquirer.store).await;
        // As in the local test: one card per worker, each on its own connection.
        let mut workers = Vec::new();
        for (worker, card) in CARDS.iter().enumerate() {
            let card = demo_card(card);
            let issuer = pair.issuer.store.clone();
            let acquirer = pair.handler.clone();
            let link = link.clone();
            let keys = keys.clone();
            let mine: Vec<(usize, Vec<Event>)> = orderings
                .iter()
                .cloned()
                .enumerate()
                .filter(|(index, _)| index % CARDS.len() == worker)
                .collect();
            workers.push(tokio::spawn(async move {
                let mut client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
                    .await
                    .unwrap();
                let balance = async |store: &Store| {
                    store
                        .account(card.card.account)
                        .await
                        .unwrap()
                        .unwrap()
                        .available()
                };
                let mut before = balance(&issuer).await;
                let mut stood = 0;
                for (run, (index, events)) in mine.iter().enumerate() {
                    let stan = u32::try_from(*index).unwrap() + 1;
                    let atc = u16::try_from(2 * run + 1).unwrap();
                    let messages = SaleMessages::new(&card, stan, amount_of(stan), atc, &keys);
                    let what = || {
                        format!("{name}, remote issuer: ordering {events:?} (trace number {stan})")
                    };
                    let model = play_through(
                        &mut client,
                        &acquirer,
                        &link,
                        &messages,
                        TERMINAL,
                        events,
                        &what,
                    )
                    .await;
                    let after = balance(&issuer).await;
                    let moved = if model.stands() {
                        i64::try_from(messages.amount).unwrap()
                    } else {
                        0
                    };
                    assert_eq!(before - after, moved, "{}: the card's money", what());
                    before = after;
                    stood += moved;
                }
                stood
            }));
        }
        let mut stood = 0;
        for worker in workers {
            stood += worker.await.unwrap();
        }
        drain_reversals(&pair.handler, &pair.acquirer.store).await;
        for reversal in pair.acquirer.store.all_reversals().await.unwrap() {
            assert!(
                reversal.done_at.is_some(),
                "{name}: the acquirer's reversal of trace number {} was acknowledged",
                reversal.stan
            );
        }
        assert_eq!(
            merchant_credited(&pair.acquirer.store).await - merchant_before,
            stood,
            "{name}: the merchant is credited for the sales that stand"
        );
        link.stop();
        pair.stop().await;
    }
}

/// A link connection the issuer host closed for being idle (its `idle_timeout`) is not a
/// failed exchange: the acquirer sends the message again on a new connection, and the sale is
/// approved. Before, the terminal got 91 for the first sale after a quiet minute, and the
/// acquirer queued a reversal of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_link_connection_the_issuer_closed_while_idle_is_replaced_not_answered_91() {
    let issuer = world_on(store::testing::sqlite()).await;
    let acquirer = world_sharing_keys(store::testing::sqlite(), &issuer).await;
    let quick = Limits {
        idle_timeout: Duration::from_millis(300),
        ..unlimited()
    };
    let (address, issuer_stop, issuer_server) = start_issuer_host_with(&issuer, quick).await;
    let (terminals, mut client, stop, server, _handler) =
        start_listening(&acquirer, unlimited(), |handler| {
            remote_issuers(handler, address).without_terminal_rate()
        })
        .await;
    let keys = signed_on(&mut client).await;
    let card = demo_card("card-CH001-D");
    let before = available(&issuer, &card).await;
    for (stan, atc) in [(1, 1), (2, 2)] {
        let sale = chip_sale(&card, 100, stan, atc, demo::DEMO_PIN, &keys);
        let seen = send(&mut client, &sale).await;
        assert_eq!(seen.code, "00", "sale {stan}");
        // The issuer host closes the acquirer's pooled connection meanwhile.
        tokio::time::sleep(Duration::from_millis(800)).await;
        client = Client::connect(terminals, LengthPrefix::Binary2, TIMEOUT)
            .await
            .unwrap();
    }
    assert_eq!(before - available(&issuer, &card).await, 200);
    assert!(acquirer.store.all_reversals().await.unwrap().is_empty());
    for (stop, server) in [(stop, server), (issuer_stop, issuer_server)] {
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// A sale's money goes back to the card once, whichever of its reversal and a void or refund
/// comes first: a reversal of a sale a void stands against is answered and posts nothing, and a
/// void or refund of a reversed sale gets 25. (A terminal does neither on its own — it reverses
/// only what it got no answer to, before anything new — but the books must not depend on it.)
#[tokio::test(flavor = "multi_thread")]
async fn a_sale_or_completion_is_given_back_once_whether_voided_or_reversed_first() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (_address, mut client, stop, server, _handler) =
            start_listening(&world, unlimited(), |handler| {
                handler.without_terminal_rate()
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let opening = available(&world, &card).await;
        let reversal_of = |request: &[u8]| common::reversal_of(request, "0400", &keys);
        let refund = |amount: u64, stan: u32, original: u32, rrn: &str| {
            common::refund(&card, amount, stan, original, rrn, &keys)
        };

        // Voided, then reversed.
        let first = chip_sale(&card, 1_000, 1, 1, demo::DEMO_PIN, &keys);
        let sale = send(&mut client, &first).await;
        assert_eq!(sale.code, "00", "{name}");
        let voided = void(&card, 1_000, 2, 1, &sale.rrn, &keys);
        assert_eq!(send(&mut client, &voided).await.code, "00", "{name}");
        assert_eq!(available(&world, &card).await, opening);
        assert_eq!(
            send(&mut client, &reversal_of(&first)).await.code,
            "00",
            "{name}: the sale does not stand"
        );
        assert_eq!(
            available(&world, &card).await,
            opening,
            "{name}: the voided sale's reversal gives nothing back again"
        );

        // Reversed, then voided or refunded.
        let second = chip_sale(&card, 2_000, 5, 2, demo::DEMO_PIN, &keys);
        let sale = send(&mut client, &second).await;
        assert_eq!(sale.code, "00", "{name}");
        assert_eq!(send(&mut client, &reversal_of(&second)).await.code, "00");
        assert_eq!(available(&world, &card).await, opening);
        assert_eq!(
            send(&mut client, &void(&card, 2_000, 6, 5, &sale.rrn, &keys))
                .await
                .code,
            "25",
            "{name}: a void of a reversed sale"
        );
        assert_eq!(
            send(&mut client, &refund(500, 7, 5, &sale.rrn)).await.code,
            "25",
            "{name}: a refund of a reversed sale"
        );
        assert_eq!(available(&world, &card).await, opening, "{name}");

        // A completion voided, then reversed; another reversed, then voided.
        let held = send(&mut client, &preauthorization(&card, 3_000, 10, 3, &keys)).await;
        assert_eq!(held.code, "00", "{name}");
        let completed_first = completion(&card, 3_000, 11, 10, &held.auth_code, &keys);
        let completed = send(&mut client, &completed_first).await;
        assert_eq!(completed.code, "00", "{name}");
        assert_eq!(
            send(
                &mut client,
                &completion_void(&card, 3_000, 12, 11, &completed.rrn, &keys)
            )
            .await
            .code,
            "00"
        );
        assert_eq!(available(&world, &card).await, opening);
        assert_eq!(
            send(&mut client, &reversal_of(&completed_first)).await.code,
            "00",
            "{name}: the completion does not stand"
        );
        assert_eq!(
            available(&world, &card).await,
            opening,
            "{name}: the voided completion's reversal gives nothing back again"
        );
        let held = send(&mut client, &preauthorization(&card, 4_000, 13, 4, &keys)).await;
        let completed_second = completion(&card, 4_000, 14, 13, &held.auth_code, &keys);
        let completed = send(&mut client, &completed_second).await;
        assert_eq!(completed.code, "00", "{name}");
        assert_eq!(
            send(&mut client, &reversal_of(&completed_second))
                .await
                .code,
            "00"
        );
        assert_eq!(
            send(
                &mut client,
                &completion_void(&card, 4_000, 15, 14, &completed.rrn, &keys)
            )
            .await
            .code,
            "25",
            "{name}: a void of a reversed completion"
        );
        // The reversal placed the hold again: the pre-authorization is released by its void.
        assert_eq!(available(&world, &card).await, opening - 4_000, "{name}");
        assert_eq!(
            send(
                &mut client,
                &preauthorization_void(&card, 4_000, 16, 13, &held.rrn, &keys)
            )
            .await
            .code,
            "00"
        );
        assert_eq!(available(&world, &card).await, opening, "{name}");
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}
