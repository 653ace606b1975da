//! `easypos host --role issuer`: the card issuers of this installation's database as an issuer
//! host of their own, which acquirers reach over the switch link (`iso87-ascii`, 2-byte length;
//! see `acquirer::switch`). It posts the issuers' side of each message and journals it.
//!
//! The two institutions must share their zone keys: the acquirer translates PIN blocks to the
//! issuer's zone key. Until key exchange ceremonies land (issue 16), an issuer host is started on
//! a copy of the acquirer's data directory (database and HSM master key), taken while the
//! acquirer is stopped.

use crate::config::Config;
use anyhow::Context;
use demo::Seeded;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where an issuer host listens unless told otherwise.
pub const DEFAULT_ISSUER_LISTEN: &str = "127.0.0.1:9583";

pub async fn run_issuer(config: Config, listen: SocketAddr) -> anyhow::Result<()> {
    let store = Arc::new(crate::open_store(&config).await?);
    let hsm = Arc::new(crate::up::open_hsm(&config)?);
    let seeded = demo::seed(&store, hsm.as_ref())
        .await
        .context("seeding the demo world")?;
    let listener = host::Listener::bind(
        listen,
        iso8583::LengthPrefix::Binary2,
        host::Limits::default(),
    )
    .await
    .with_context(|| {
        format!("cannot listen for acquirers on {listen} (--listen); choose another port")
    })?;
    let address = listener.local_addr()?;
    let handler = Arc::new(acquirer::TerminalHandler::issuer(
        store.clone(),
        hsm.clone(),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener.serve(handler, stopped));

    let directory = store.load_directory().await?;
    let issuers: Vec<String> = directory
        .institutions
        .iter()
        .filter(|institution| {
            directory
                .cards
                .iter()
                .any(|card| card.issuer == institution.id)
        })
        .map(|institution| format!("{} ({})", institution.name, institution.id.0))
        .collect();
    let shutdown = crate::up::Shutdown::listen();
    println!("easypos {} issuer host is up.", env!("CARGO_PKG_VERSION"));
    match &config.backend {
        store::Backend::Sqlite { path } => println!("  database  SQLite {}", path.display()),
        store::Backend::Postgres { .. } => println!("  database  PostgreSQL"),
    }
    println!(
        "  hsm       software HSM (development and testing only), master key check value {}",
        hsm::Hsm::master_key_check_value(hsm.as_ref())
    );
    println!(
        "  ISO 8583  {address} (iso87-ascii, 2-byte length): authorizations, advices and reversals from acquirers"
    );
    println!(
        "  issuers   {} ({} cards{})",
        issuers.join(", "),
        directory.cards.len(),
        match seeded {
            Seeded::Now => ", demo seeded now",
            Seeded::Already => "",
        }
    );
    println!("Press Ctrl-C to stop.");

    shutdown.wait().await;
    println!("Stopping: finishing messages in flight and committing the last writes ...");
    let _ = stop.send(true);
    server.await.context("issuer listener")?;
    let store = Arc::try_unwrap(store)
        .map_err(|_| anyhow::anyhow!("the store is still in use at shutdown"))?;
    store.close().await.context("closing the store")?;
    println!("easypos issuer host stopped cleanly.");
    Ok(())
}
