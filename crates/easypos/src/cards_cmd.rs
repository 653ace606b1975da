//! `easypos cards …`: the card simulator's cards for the demo world.
//!
//! - `list` shows the demo world's cards, masked, with their state at the issuer;
//! - `issue CARD_ID --out FILE` (or `--all --dir DIR`) personalises card files the way the
//!   demo issuers would: track 2 with the CVV under the issuer's CVV key, the chip's ICC master
//!   key derived from the issuer's EMV master key, ATC 0. The demo issuers' keys are published
//!   test keys (`demo::demo_test_key`), so this needs no database. A card file is the only
//!   output with a full card number and card keys, and it is written only on this request;
//! - `show FILE` prints what a receipt could show: masked number, product, expiry, ATC.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use terminal::cardfile::{CardData, CardFile, CardProduct, Personalisation};

#[derive(Debug, Args)]
pub struct CardsArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CardsCommand,
}

#[derive(Debug, Subcommand)]
enum CardsCommand {
    /// The demo world's cards (numbers masked), their products, expiry and status.
    List,
    /// Write a card file for a demo card (full card number and chip keys: keep it like a card).
    Issue {
        /// The demo card's id (`easypos cards list`), e.g. card-CH001-D.
        #[arg(required_unless_present = "all")]
        card_id: Option<String>,
        /// Where to write the card file [default: CARD_ID.json].
        #[arg(long, value_name = "FILE", conflicts_with = "all")]
        out: Option<PathBuf>,
        /// Issue every demo card, as DIR/CARD_ID.json.
        #[arg(long, requires = "dir")]
        all: bool,
        /// The directory for --all.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// A card file's masked summary.
    Show {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(args: CardsArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: CardsArgs) -> anyhow::Result<()> {
    match args.command {
        CardsCommand::List => list(args.json),
        CardsCommand::Issue {
            card_id,
            out,
            all,
            dir,
        } => {
            let targets: Vec<(demo::DemoCard, PathBuf)> = if all {
                let dir = dir.context("--all needs --dir")?;
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                demo::cards()
                    .into_iter()
                    .map(|card| {
                        let path = dir.join(format!("{}.json", card.card.id));
                        (card, path)
                    })
                    .collect()
            } else {
                let id = card_id.context("name the card to issue")?;
                let card = demo_card(&id)?;
                let path = out.unwrap_or_else(|| PathBuf::from(format!("{id}.json")));
                vec![(card, path)]
            };
            let mut issued = Vec::new();
            for (card, path) in targets {
                let file = CardFile::create(&path, personalise(&card)?)?;
                issued.push((file.data.summary(), path));
            }
            if args.json {
                let out: Vec<_> = issued
                    .iter()
                    .map(|(summary, path)| {
                        serde_json::json!({"file": path.display().to_string(), "card": summary})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for (summary, path) in issued {
                    println!(
                        "issued {} {} ({} {}) to {}",
                        summary.card_id,
                        summary.pan,
                        summary.product.name(),
                        summary.currency,
                        path.display()
                    );
                }
                println!(
                    "PIN of every demo card: {} (a published test PIN)",
                    demo::DEMO_PIN
                );
            }
            Ok(())
        }
        CardsCommand::Show { file } => show(&file, args.json),
    }
}

fn demo_card(id: &str) -> anyhow::Result<demo::DemoCard> {
    demo::cards()
        .into_iter()
        .find(|card| card.card.id == id)
        .with_context(|| format!("{id} is not a demo card (see `easypos cards list`)"))
}

fn list(json: bool) -> anyhow::Result<()> {
    let directory = demo::directory();
    let rows: Vec<serde_json::Value> = demo::cards()
        .iter()
        .map(|card| {
            let holder = directory
                .cardholders
                .iter()
                .find(|holder| holder.id == card.card.cardholder_id)
                .map(|holder| holder.name.clone())
                .unwrap_or_default();
            serde_json::json!({
                "card_id": card.card.id,
                "cardholder": holder,
                "pan": card.card.masked_pan(),
                "product": card.card.product.as_str(),
                "currency": card.card.currency.alpha(),
                "expiry": card.card.expiry,
                "status": card.status,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<11} {:<17} {:<7} {:<4} {:<6} status",
        "card", "cardholder", "number", "product", "cur", "expiry"
    );
    for row in &rows {
        let text = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
        println!(
            "{:<14} {:<11} {:<17} {:<7} {:<4} {:<6} {}",
            text("card_id"),
            text("cardholder"),
            text("pan"),
            text("product"),
            text("currency"),
            text("expiry"),
            text("status")
        );
    }
    println!("PIN of every demo card: {}", demo::DEMO_PIN);
    Ok(())
}

/// The card file the demo issuer would personalise for `card`.
pub fn personalise(card: &demo::DemoCard) -> anyhow::Result<CardData> {
    let issuer = card.card.issuer.0;
    let key = |name: String| -> anyhow::Result<paycrypto::TdesKey> {
        let bytes = demo::demo_test_key(&name)
            .with_context(|| format!("{name} is not a published demo key"))?;
        Ok(paycrypto::TdesKey::new(&bytes)?)
    };
    let imk = key(format!("issuer/{issuer}/imk-ac"))?;
    let cvk = key(format!("issuer/{issuer}/cvk"))?;
    let pan = paycrypto::Pan::new(&card.pan)?;
    let holder = demo::directory()
        .cardholders
        .into_iter()
        .find(|holder| holder.id == card.card.cardholder_id)
        .map(|holder| holder.name)
        .unwrap_or_default();
    let (product, aid, label) = match card.card.product {
        store::directory::CardProduct::Debit => {
            (CardProduct::Debit, "A000000333010101", "HUANGPU DEBIT")
        }
        store::directory::CardProduct::Credit => {
            (CardProduct::Credit, "A000000333010102", "YANGTZE CREDIT")
        }
    };
    Ok(CardData::issue(&Personalisation {
        card_id: &card.card.id,
        cardholder: &holder,
        product,
        currency: card.card.currency,
        issuer,
        pan: &pan,
        expiry: &card.card.expiry,
        // The demo issuers' profile of every card (demo::issuer_card): chip, international.
        service_code: "201",
        psn: 1,
        aid,
        label,
        issuer_master_key: &imk,
        cvk: &cvk,
    })?)
}

fn show(path: &Path, json: bool) -> anyhow::Result<()> {
    let file = CardFile::open(path)?;
    let summary = file.data.summary();
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!("card         {}", summary.card_id);
    println!("cardholder   {}", summary.cardholder);
    println!("number       {}", summary.pan);
    println!(
        "product      {} ({})",
        summary.product.name(),
        summary.currency
    );
    println!("expiry       {}", summary.expiry);
    println!("service code {}", summary.service_code);
    println!(
        "chip         {}",
        match (&summary.application_label, &summary.aid, summary.atc) {
            (Some(label), Some(aid), Some(atc)) => format!(
                "{label}, AID {aid}, ATC {atc}{}",
                if summary.contactless {
                    ", contactless"
                } else {
                    ""
                }
            ),
            _ => "none".to_owned(),
        }
    );
    Ok(())
}
