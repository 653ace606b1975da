#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Several hosts on one PostgreSQL database (docs/scaling.md): each host here is a store of
//! its own (its connections and writer, as another process would have) and a terminal
//! handler behind its own ISO 8583 listener. One terminal's messages land on any of them, as
//! behind a TCP load balancer. Decisions must stay exact across them.

mod common;

use common::*;

/// How many hosts share the database.
const HOSTS: usize = 3;
/// Connections per host, each selling one after another.
const CONNECTIONS_PER_HOST: u32 = 4;
/// Sales per connection.
const SALES_PER_CONNECTION: u32 = 6;
/// Each sale's amount: card-CH003-D's 800.00 covers 26 of them, and 72 are asked for.
const SALE_MINOR: u64 = 3_000;

struct Host {
    world: World,
    address: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    handler: Arc<TerminalHandler>,
}

/// `HOSTS` hosts on `world`'s database (the first is `world`'s own store), listening on
/// loopback.
async fn hosts(world: World) -> Vec<Host> {
    let mut worlds = Vec::new();
    for _ in 1..HOSTS {
        worlds.push(another_host(&world).await);
    }
    worlds.insert(0, world);
    let mut hosts = Vec::new();
    for world in worlds {
        let (address, _, stop, server, handler) =
            start_listening(&world, Limits::default(), |handler| handler).await;
        hosts.push(Host {
            world,
            address,
            stop,
            server,
            handler,
        });
    }
    hosts
}

/// Stops every host; the first (which owns the database) last.
async fn stop(hosts: Vec<Host>) {
    for host in hosts.into_iter().rev() {
        let _ = host.stop.send(true);
        host.server.await.unwrap();
        drop(host.handler);
        drop(host.world);
    }
}

async fn connect(address: std::net::SocketAddr) -> Client {
    Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
        .await
        .unwrap()
}

/// The card account's posted debits and pending debits.
async fn debits(world: &World, card: &demo::DemoCard) -> (i64, i64) {
    let account = world
        .store
        .account(card.card.account)
        .await
        .unwrap()
        .unwrap();
    (account.debits_posted, account.debits_pending)
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_selling_on_one_card_at_once_never_overspend_and_post_each_approval_once() {
    let Some(url) = store::testing::postgres_url() else {
        return;
    };
    let world = world_on(store::testing::postgres(&url).await).await;
    let card = demo_card("card-CH003-D");
    let opening = available(&world, &card).await;
    let (posted_before, _) = debits(&world, &card).await;
    let hosts = hosts(world).await;
    // One sign-on, at the first host: the working keys are the terminal's session in the
    // database, which every host reads.
    let keys = Arc::new(signed_on(&mut connect(hosts[0].address).await).await);

    // Every host's connections sell on the card at once, each sale under its own trace
    // number (fallback swipes: no chip counter that would order them).
    let mut tasks = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        for connection in 0..CONNECTIONS_PER_HOST {
            let (address, keys, card) = (host.address, keys.clone(), card.clone());
            let first = 1_000 * (index as u32 + 1) + 100 * connection;
            tasks.push(tokio::spawn(async move {
                let mut client = connect(address).await;
                let mut codes = Vec::new();
                for stan in first..first + SALES_PER_CONNECTION {
                    let sale = swipe(&card, SALE_MINOR, stan, "801", &keys);
                    codes.push((stan, ask(&mut client, &sale).await.1));
                }
                codes
            }));
        }
    }
    let mut approved = Vec::new();
    for task in tasks {
        for (stan, code) in task.await.unwrap() {
            match code.as_str() {
                "00" => approved.push(stan),
                "51" => {}
                other => panic!("sale {stan} answered {other}"),
            }
        }
    }
    let sale_minor = i64::try_from(SALE_MINOR).unwrap();
    let fits = opening / sale_minor;
    assert_eq!(
        approved.len() as i64,
        fits,
        "as many approvals as the balance covers, whichever host decided"
    );
    let world = &hosts[0].world;
    assert!(available(world, &card).await >= 0, "never overspent");
    assert_eq!(available(world, &card).await, opening - fits * sale_minor);
    let (posted, pending) = debits(world, &card).await;
    assert_eq!(
        posted - posted_before,
        fits * sale_minor,
        "each approval posted once"
    );
    assert_eq!(pending, 0, "nothing half-done");
    // The journal has one approved sale per approval: no host answered one sale twice.
    let journal = world.store.journal_recent(1_000).await.unwrap();
    let mut journaled: Vec<u32> = journal
        .iter()
        .filter(|entry| entry.kind == "Sale" && entry.response.as_deref() == Some("00"))
        .map(|entry| u32::try_from(entry.stan.unwrap()).unwrap())
        .collect();
    journaled.sort_unstable();
    approved.sort_unstable();
    assert_eq!(journaled, approved);
    world.store.check_books().await.unwrap();
    stop(hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_its_duplicate_and_its_reversals_on_different_hosts_move_money_at_most_once() {
    let Some(url) = store::testing::postgres_url() else {
        return;
    };
    let world = world_on(store::testing::postgres(&url).await).await;
    let card = demo_card("card-CH002-D");
    let hosts = hosts(world).await;
    let keys = Arc::new(signed_on(&mut connect(hosts[0].address).await).await);
    let before = available(&hosts[0].world, &card).await;
    let (posted_before, _) = debits(&hosts[0].world, &card).await;

    // The sale to one host and its repeat (the terminal timed out and sent it again) to
    // another, at once; when both are answered, the reversal and its repeat to the third and
    // the first. Then the same with everything at once (a reversal overtaking its sale).
    let sends = |stan: u32, together: bool| {
        let addresses: Vec<_> = hosts.iter().map(|host| host.address).collect();
        let (card, keys) = (card.clone(), keys.clone());
        async move {
            let sale = swipe(&card, 500, stan, "801", &keys);
            let messages = [
                (addresses[stan as usize % HOSTS], sale.clone()),
                (addresses[(stan as usize + 1) % HOSTS], sale),
                (
                    addresses[(stan as usize + 2) % HOSTS],
                    reversal("0400", stan, 500, &keys),
                ),
                (
                    addresses[stan as usize % HOSTS],
                    reversal("0401", stan, 500, &keys),
                ),
            ];
            let send = |(address, message): (std::net::SocketAddr, Vec<u8>)| async move {
                ask(&mut connect(address).await, &message).await
            };
            let [sale, repeat, reversal, reversal_repeat] = messages;
            if together {
                let (a, b, c, d) = tokio::join!(
                    send(sale),
                    send(repeat),
                    send(reversal),
                    send(reversal_repeat)
                );
                vec![a, b, c, d]
            } else {
                let (a, b) = tokio::join!(send(sale), send(repeat));
                let (c, d) = tokio::join!(send(reversal), send(reversal_repeat));
                assert_eq!(a.1, b.1, "the repeat gets the sale's answer");
                vec![a, b, c, d]
            }
        }
    };
    let mut answers = Vec::new();
    for stan in 2_000..2_012 {
        answers.extend(sends(stan, false).await);
    }
    let tasks: Vec<_> = (3_000..3_012)
        .map(|stan| tokio::spawn(sends(stan, true)))
        .collect();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    for (mti, code) in &answers {
        assert!(
            ["0210", "0410", "0411"].contains(&mti.as_str()),
            "{mti} {code}: every message answered"
        );
    }

    // Every sale was reversed: the card has what it had, and nothing is left pending.
    let world = &hosts[0].world;
    assert_eq!(available(world, &card).await, before);
    let (posted, pending) = debits(world, &card).await;
    assert_eq!(pending, 0, "nothing half-done");
    // Each sale's debit of the card at most once, and each one credited back once.
    let account = card.card.account;
    let moved: Vec<_> = world
        .store
        .all_transfers()
        .await
        .unwrap()
        .into_iter()
        .filter(|transfer| transfer.amount.minor() == 500)
        .collect();
    let debited = moved
        .iter()
        .filter(|transfer| transfer.debit == account)
        .count();
    let credited = moved
        .iter()
        .filter(|transfer| transfer.credit == account)
        .count();
    assert!(
        (12..=24).contains(&debited),
        "{debited} debits for 24 sales, 12 of them answered before their reversals"
    );
    assert_eq!(debited, credited, "every debit reversed once");
    assert_eq!(
        posted - posted_before,
        i64::try_from(debited).unwrap() * 500
    );
    world.store.check_books().await.unwrap();
    stop(hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_freeze_set_through_one_host_stops_the_card_on_the_others_after_their_next_sync() {
    let Some(url) = store::testing::postgres_url() else {
        return;
    };
    let world = world_on(store::testing::postgres(&url).await).await;
    let card = demo_card("card-CH001-D");
    let hosts = hosts(world).await;
    let keys = signed_on(&mut connect(hosts[0].address).await).await;
    let mut second = connect(hosts[1].address).await;

    // The first host's API freezes the card: the store and its own memory, together.
    let freeze = store::freezes::Freeze {
        scope: "card".into(),
        target: card.card.id.clone(),
        reason: "reported stolen".into(),
        frozen_by: "shanghai.admin".into(),
        frozen_at: 1_800_000_000,
    };
    hosts[0].world.store.put_freeze(freeze).await.unwrap();
    hosts[0]
        .handler
        .freezes()
        .set(risk::FreezeScope::Card, &card.card.id, true);
    let sale = |stan| swipe(&card, 100, stan, "801", &keys);
    assert_eq!(
        ask(&mut connect(hosts[0].address).await, &sale(10)).await.1,
        "62"
    );

    // The second host takes it over from the store on its next sync (every 2 s in
    // `easypos up`), and declines the card too.
    let changed =
        acquirer::freezes::sync_freezes(&hosts[1].world.store, &hosts[1].handler.freezes())
            .await
            .unwrap();
    assert_eq!(changed, Some(1));
    assert_eq!(ask(&mut second, &sale(11)).await.1, "62");

    // Lifted through the first host: the second sells again after its next sync.
    assert!(
        hosts[0]
            .world
            .store
            .delete_freeze("card", &card.card.id)
            .await
            .unwrap()
    );
    hosts[0]
        .handler
        .freezes()
        .set(risk::FreezeScope::Card, &card.card.id, false);
    assert_eq!(
        acquirer::freezes::sync_freezes(&hosts[1].world.store, &hosts[1].handler.freezes())
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(ask(&mut second, &sale(12)).await.1, "00");

    // A freeze this host sets while it reads the store is never undone by that read.
    let freezes = hosts[1].handler.freezes();
    let seen = freezes.generation();
    freezes.set(risk::FreezeScope::Terminal, "10000001", true);
    assert_eq!(freezes.replace_all(seen, []), None);
    assert_eq!(
        freezes.frozen("10000001", "898310058120001", &card.card.id),
        Some(risk::FreezeScope::Terminal)
    );
    stop(hosts).await;
}
