//! The card simulator's cards: one JSON file per card, as its issuer personalised it — the
//! number, expiry, service code, the magnetic stripe's track 2 (with the CVV), and the chip:
//! PAN sequence number, application label and AID, the card's own ICC master key (so it
//! computes real ARQCs, EMV CVN 18) and its application transaction counter (ATC).
//!
//! The ATC goes up by one with every cryptogram, and the file is rewritten atomically
//! ([`crate::files::write_atomic`]) *before* the cryptogram leaves the card, so a card never
//! shows the issuer an ATC twice, even after a crash. A card file is the one place where a
//! full card number and card keys are written in clear: it plays a physical card, and is
//! created only when someone asks for it (`easypos cards issue`). Everything the card
//! simulator prints or returns for display is masked.

use crate::TerminalError;
use crate::card::ChipCard;
use crate::files::{FileError, read_bounded, write_atomic};
use paycrypto::{Pan, TdesKey};
use std::path::{Path, PathBuf};

/// The `format` field of a card file written by this version.
pub const CARD_FILE_FORMAT: &str = "easypos-card-v1";

/// Whether the card draws on the cardholder's deposit or on a credit line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardProduct {
    Debit,
    Credit,
}

impl CardProduct {
    pub fn name(self) -> &'static str {
        match self {
            CardProduct::Debit => "debit",
            CardProduct::Credit => "credit",
        }
    }
}

/// The contents of a card file.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardData {
    pub format: String,
    /// The issuer's id of the card (`card-CH001-D` in the demo world).
    pub card_id: String,
    /// The embossed name.
    pub cardholder: String,
    pub product: CardProduct,
    /// ISO 4217 alphabetic code of the card's currency.
    pub currency: String,
    /// The issuer's institution id.
    pub issuer: u32,
    pub pan: String,
    /// YYMM.
    pub expiry: String,
    /// Three digits; 2xx and 6xx say the card has a chip, so a swipe needs a failed chip
    /// read first (fallback).
    pub service_code: String,
    /// Track 2 equivalent: `PAN=YYMM service-code CVV 00000` (easypos card convention: the
    /// CVV is the first three digits of the discretionary data).
    pub track2: String,
    pub chip: Option<ChipData>,
}

/// The chip's personalisation.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipData {
    /// PAN sequence number (5F34).
    pub psn: u8,
    /// Application identifier (4F), hex.
    pub aid: String,
    /// Application label (50), printed on receipts.
    pub label: String,
    /// The ICC master key for application cryptograms (MK-AC), hex, double-length TDES.
    pub icc_master_key: String,
    /// The ATC of the last cryptogram (0 before the first).
    pub atc: u16,
    /// Whether the card can be tapped.
    pub contactless: bool,
}

impl std::fmt::Debug for ChipData {
    /// The chip holds a key: Debug shows its counter only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipData")
            .field("atc", &self.atc)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CardData {
    /// A card file holds a card number and keys: Debug shows what a receipt may.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardData")
            .field("card_id", &self.card_id)
            .field("pan", &mask(&self.pan))
            .field("product", &self.product)
            .finish_non_exhaustive()
    }
}

/// First 6 / last 4, or `****` when the number is not a number.
pub fn mask(pan: &str) -> String {
    Pan::new(pan).map_or_else(|_| "****".to_owned(), |pan| pan.masked())
}

/// What the issuer writes onto a new card.
#[derive(Debug)]
pub struct Personalisation<'a> {
    pub card_id: &'a str,
    pub cardholder: &'a str,
    pub product: CardProduct,
    pub currency: money::Currency,
    pub issuer: u32,
    pub pan: &'a Pan,
    pub expiry: &'a str,
    pub service_code: &'a str,
    pub psn: u8,
    pub aid: &'a str,
    pub label: &'a str,
    /// The issuer's EMV master key for application cryptograms; the card gets its own key
    /// derived from it, never this one.
    pub issuer_master_key: &'a TdesKey,
    /// The issuer's CVV key, for the stripe's CVV.
    pub cvk: &'a TdesKey,
}

impl CardData {
    /// A new card, with its chip personalised and its ATC at 0.
    pub fn issue(card: &Personalisation<'_>) -> Result<CardData, TerminalError> {
        let cvv = paycrypto::card::cvv(card.cvk, card.pan, card.expiry, card.service_code)?;
        let icc = paycrypto::emv::icc_master_key(card.issuer_master_key, card.pan, card.psn)?;
        let track2 = format!(
            "{}={}{}{cvv}00000",
            card.pan.digits(),
            card.expiry,
            card.service_code
        );
        Ok(CardData {
            format: CARD_FILE_FORMAT.to_owned(),
            card_id: card.card_id.to_owned(),
            cardholder: card.cardholder.to_owned(),
            product: card.product,
            currency: card.currency.alpha().to_owned(),
            issuer: card.issuer,
            pan: card.pan.digits().to_owned(),
            expiry: card.expiry.to_owned(),
            service_code: card.service_code.to_owned(),
            track2,
            chip: Some(ChipData {
                psn: card.psn,
                aid: card.aid.to_owned(),
                label: card.label.to_owned(),
                icc_master_key: paycrypto::to_hex(icc.expose()),
                atc: 0,
                contactless: true,
            }),
        })
    }

    pub fn pan(&self) -> Result<Pan, TerminalError> {
        Ok(Pan::new(&self.pan)?)
    }

    pub fn masked_pan(&self) -> String {
        mask(&self.pan)
    }

    /// Whether the stripe says the card has a chip (service code 2xx or 6xx).
    pub fn has_chip_by_service_code(&self) -> bool {
        self.service_code.starts_with('2') || self.service_code.starts_with('6')
    }

    /// The chip, ready to compute cryptograms from its stored ATC.
    pub fn chip_card(&self) -> Result<Option<ChipCard>, TerminalError> {
        let Some(chip) = &self.chip else {
            return Ok(None);
        };
        let key = hex::decode(&chip.icc_master_key)
            .map_err(|_| TerminalError::Invalid("the card's ICC master key is not hex"))?;
        let card = ChipCard::from_icc_master_key(&TdesKey::new(&key)?, self.pan()?, chip.psn)?;
        Ok(Some(card.with_atc(chip.atc)))
    }

    /// Checks what a card file must hold before the terminal uses it.
    fn check(&self) -> Result<(), String> {
        if self.format != CARD_FILE_FORMAT {
            return Err(format!(
                "is not a card file of format {CARD_FILE_FORMAT} (format {:?})",
                self.format
            ));
        }
        Pan::new(&self.pan).map_err(|_| "has no valid card number".to_owned())?;
        let digits =
            |text: &str, count| text.len() == count && text.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.expiry, 4) {
            return Err("has an expiry that is not YYMM".into());
        }
        if !digits(&self.service_code, 3) {
            return Err("has a service code that is not three digits".into());
        }
        if !self.track2.starts_with(&format!("{}=", self.pan)) {
            return Err("has a track 2 for another card number".into());
        }
        money::Currency::parse(&self.currency)
            .map_err(|_| format!("has an unknown currency {:?}", self.currency))?;
        Ok(())
    }
}

/// A card file on disk.
#[derive(Debug)]
pub struct CardFile {
    path: PathBuf,
    pub data: CardData,
}

impl CardFile {
    /// Reads and checks a card file.
    pub fn open(path: &Path) -> Result<CardFile, FileError> {
        let bytes = read_bounded(path)?;
        let data: CardData = serde_json::from_slice(&bytes).map_err(|error| {
            // serde_json's message may quote the value it choked on (a card number): only its
            // position is reported.
            FileError::content(
                path,
                format!(
                    "is not a card file (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
        })?;
        data.check()
            .map_err(|reason| FileError::content(path, reason))?;
        Ok(CardFile {
            path: path.to_owned(),
            data,
        })
    }

    /// Writes a new card file; refuses to overwrite one (a second copy of a card with the
    /// same ATC would replay cryptograms).
    pub fn create(path: &Path, data: CardData) -> Result<CardFile, FileError> {
        if path.exists() {
            return Err(FileError::content(
                path,
                "exists already; a card is issued once (remove the file to issue it again, which resets its ATC)",
            ));
        }
        let file = CardFile {
            path: path.to_owned(),
            data,
        };
        file.save()?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file atomically.
    pub fn save(&self) -> Result<(), FileError> {
        let mut text = serde_json::to_string_pretty(&self.data)
            .map_err(|error| FileError::content(&self.path, error.to_string()))?;
        text.push('\n');
        write_atomic(&self.path, text.as_bytes())
    }

    /// Records the ATC of the cryptogram the chip just computed, before it leaves the card.
    pub fn record_atc(&mut self, atc: u16) -> Result<(), FileError> {
        if let Some(chip) = &mut self.data.chip {
            chip.atc = atc;
        }
        self.save()
    }
}

/// What `easypos cards show` prints: nothing a receipt could not show.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CardSummary {
    pub card_id: String,
    pub cardholder: String,
    pub pan: String,
    pub product: CardProduct,
    pub currency: String,
    pub expiry: String,
    pub service_code: String,
    pub chip: bool,
    pub contactless: bool,
    pub application_label: Option<String>,
    pub aid: Option<String>,
    pub atc: Option<u16>,
}

impl CardData {
    pub fn summary(&self) -> CardSummary {
        CardSummary {
            card_id: self.card_id.clone(),
            cardholder: self.cardholder.clone(),
            pan: self.masked_pan(),
            product: self.product,
            currency: self.currency.clone(),
            expiry: self.expiry.clone(),
            service_code: self.service_code.clone(),
            chip: self.chip.is_some(),
            contactless: self.chip.as_ref().is_some_and(|chip| chip.contactless),
            application_label: self.chip.as_ref().map(|chip| chip.label.clone()),
            aid: self.chip.as_ref().map(|chip| chip.aid.clone()),
            atc: self.chip.as_ref().map(|chip| chip.atc),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ChipTransaction, TransactionDate};

    fn key(byte: u8) -> TdesKey {
        TdesKey::new(&[byte; 16]).unwrap()
    }

    #[test]
    fn an_issued_card_keeps_its_atc_across_opens_and_is_issued_once() {
        let dir = std::env::temp_dir().join(format!("terminal-cardfile-{}", std::process::id()));
        crate::files::create_private_dir(&dir).unwrap();
        let path = dir.join("card.json");
        let _ = std::fs::remove_file(&path);
        let pan = Pan::new("6212345000000001").unwrap();
        let (imk, cvk) = (key(0x33), key(0x44));
        let data = CardData::issue(&Personalisation {
            card_id: "card-T-D",
            cardholder: "Test Holder",
            product: CardProduct::Debit,
            currency: money::Currency::CNY,
            issuer: 20,
            pan: &pan,
            expiry: "3012",
            service_code: "201",
            psn: 1,
            aid: "A000000333010101",
            label: "TEST DEBIT",
            issuer_master_key: &imk,
            cvk: &cvk,
        })
        .unwrap();
        let cvv = paycrypto::card::cvv(&cvk, &pan, "3012", "201").unwrap();
        assert_eq!(data.track2, format!("6212345000000001=3012201{cvv}00000"));
        assert!(!format!("{data:?}").contains("6212345000000001"));
        let mut file = CardFile::create(&path, data).unwrap();
        assert!(CardFile::create(&path, file.data.clone()).is_err());

        // The file's chip computes the same ARQC as a card personalised from the issuer key.
        let transaction = ChipTransaction {
            amount_minor: 100,
            currency: money::Currency::CNY,
            country: 156,
            date: TransactionDate {
                year: 2026,
                month: 11,
                day: 25,
            },
            unpredictable_number: [1, 2, 3, 4],
        };
        let mut chip = file.data.chip_card().unwrap().unwrap();
        let read = chip.generate_arqc(&transaction).unwrap();
        let mut reference = ChipCard::new(&imk, pan, 1).unwrap();
        assert_eq!(reference.generate_arqc(&transaction).unwrap(), read);
        file.record_atc(read.atc).unwrap();

        let reopened = CardFile::open(&path).unwrap();
        assert_eq!(reopened.data.chip.as_ref().unwrap().atc, 1);
        let next = reopened
            .data
            .chip_card()
            .unwrap()
            .unwrap()
            .generate_arqc(&transaction)
            .unwrap();
        assert_eq!(next.atc, 2, "the counter continues where it stopped");
        assert_eq!(reopened.data.summary().pan, "621234******0001");
        std::fs::write(&path, b"{\"format\": \"other\"}").unwrap();
        assert!(CardFile::open(&path).is_err());
        // A card number where a number of another kind belongs is not quoted back.
        std::fs::write(
            &path,
            b"{\"format\": \"easypos-card-v1\", \"issuer\": \"6212345000000001\"}",
        )
        .unwrap();
        let error = CardFile::open(&path).unwrap_err().to_string();
        assert!(!error.contains("6212345000000001"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
