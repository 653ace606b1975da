//! A chip card, as far as an online authorization sees it: the first GENERATE AC (an ARQC over
//! the CDOL1 data, EMV CVN 18) and the issuer's answer to it (the ARPC, ARPC method 2).
//!
//! The card holds its ICC master key, derived from the issuer master key with the PAN and the
//! PAN sequence number (EMV Book 2 A1.4, option A up to 16 digits), and its application
//! transaction counter (ATC), which goes up by one before every cryptogram and never wraps.
//! The data the ARQC covers is laid out in the order the acquirer reads it back
//! (`acquirer::chip::ARQC_DATA_TAGS`), so the host can rebuild it from field 55.

use crate::TerminalError;
use emv::field55;
use emv::tlv::Tag;
use money::Currency;
use paycrypto::emv::{self as cryptogram, CryptogramVersion};
use paycrypto::mac::PreparedTdesKey;
use paycrypto::{Pan, TdesKey};

/// easypos cards compute their cryptograms the Visa CVN 18 way (common session key, padding
/// method 2, ARPC method 2).
const VERSION: CryptogramVersion = CryptogramVersion::Visa18;
/// Application interchange profile (82): SDA, DDA, cardholder verification, terminal risk
/// management, issuer authentication supported.
const AIP: [u8; 2] = [0x5C, 0x00];
/// Terminal verification results (95): only "transaction exceeds floor limit", which is why
/// the terminal goes online.
const TVR: [u8; 5] = [0x00, 0x00, 0x00, 0x80, 0x00];
/// Issuer application data (9F10), Visa format: length 6, key index 01, CVN 18 (0x12), and
/// the card verification results of an ARQC with online PIN.
const ISSUER_APPLICATION_DATA: [u8; 7] = [0x06, 0x01, 0x12, 0x03, 0xA0, 0x00, 0x00];
/// Cryptogram information data (9F27): an ARQC.
const CID_ARQC: u8 = 0x80;
/// CVM results (9F34): online PIN (enciphered PIN verified online), always, successful.
const CVM_ONLINE_PIN: [u8; 3] = [0x42, 0x03, 0x00];
/// Transaction type (9C): goods and services.
const TRANSACTION_TYPE_PURCHASE: u8 = 0x00;
/// Bytes of an ARPC method 2 answer in tag 91: the ARPC, then the card status update.
const ARPC_BYTES: usize = 4;
const CSU_BYTES: usize = 4;
/// The card status update's approval bit (byte 4, bit 8): the issuer approved.
const CSU_APPROVED: u8 = 0x80;

/// The terminal's date of a transaction (9A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransactionDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl TransactionDate {
    /// YYMMDD in packed BCD, as tag 9A carries it.
    fn bcd(self) -> Result<[u8; 3], TerminalError> {
        if !(1..=12).contains(&self.month) || !(1..=31).contains(&self.day) {
            return Err(TerminalError::Invalid("the transaction date is not a date"));
        }
        let bcd = |value: u8| (value / 10) << 4 | (value % 10);
        Ok([bcd((self.year % 100) as u8), bcd(self.month), bcd(self.day)])
    }
}

/// What the terminal tells the card about a transaction (the card's CDOL1 asks for these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChipTransaction {
    /// Amount authorised (9F02), in minor units of `currency`.
    pub amount_minor: u64,
    /// Transaction currency (5F2A).
    pub currency: Currency,
    /// Terminal country code (9F1A), ISO 3166 numeric (156 for China).
    pub country: u16,
    pub date: TransactionDate,
    /// Unpredictable number (9F37): fresh per transaction, from the terminal's randomness.
    pub unpredictable_number: [u8; 4],
}

/// What a card answered to one transaction: field 55 for the request, and what the card needs
/// to check the issuer's answer to it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChipRead {
    pub field55: Vec<u8>,
    pub atc: u16,
    arqc: [u8; 8],
}

impl std::fmt::Debug for ChipRead {
    /// Chip data is card data: Debug shows the ATC only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipRead")
            .field("atc", &self.atc)
            .finish_non_exhaustive()
    }
}

/// An EMV card (CVN 18) with its ICC master key and ATC.
pub struct ChipCard {
    pan: Pan,
    psn: u8,
    icc_master_key: PreparedTdesKey,
    atc: u16,
    /// The session key of the last ARQC, with its ATC: the issuer's answer to that ARQC is
    /// checked under the same key, so a card derives and prepares it once per transaction, as
    /// a real card keeps its session key until the second GENERATE AC. Boxed: the prepared key
    /// schedules are large.
    session: Option<(u16, Box<PreparedTdesKey>)>,
}

impl std::fmt::Debug for ChipCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipCard")
            .field("pan", &self.pan)
            .field("atc", &self.atc)
            .finish_non_exhaustive()
    }
}

/// BCD of a number of `N` bytes (2·N digits), as EMV numeric data objects carry it.
fn bcd<const N: usize>(mut value: u64) -> Result<[u8; N], TerminalError> {
    let mut out = [0u8; N];
    for byte in out.iter_mut().rev() {
        let low = (value % 10) as u8;
        value /= 10;
        let high = (value % 10) as u8;
        value /= 10;
        *byte = high << 4 | low;
    }
    if value == 0 {
        Ok(out)
    } else {
        Err(TerminalError::Invalid(
            "a number does not fit its EMV data object",
        ))
    }
}

impl ChipCard {
    /// The card `pan` with PAN sequence number `psn`, personalised under the issuer master key
    /// for application cryptograms; its ATC starts at 0, so its first cryptogram has ATC 1.
    pub fn new(issuer_master_key: &TdesKey, pan: Pan, psn: u8) -> Result<Self, TerminalError> {
        if psn > 99 {
            return Err(TerminalError::Invalid(
                "the PAN sequence number has two digits",
            ));
        }
        let icc = cryptogram::icc_master_key(issuer_master_key, &pan, psn)?;
        Ok(Self {
            pan,
            psn,
            icc_master_key: PreparedTdesKey::new(&icc)?,
            atc: 0,
            session: None,
        })
    }

    /// The card as personalised: it holds its own ICC master key (derived by the issuer with
    /// [`paycrypto::emv::icc_master_key`]), never the issuer master key.
    pub fn from_icc_master_key(
        icc_master_key: &TdesKey,
        pan: Pan,
        psn: u8,
    ) -> Result<Self, TerminalError> {
        if psn > 99 {
            return Err(TerminalError::Invalid(
                "the PAN sequence number has two digits",
            ));
        }
        Ok(Self {
            pan,
            psn,
            icc_master_key: PreparedTdesKey::new(icc_master_key)?,
            atc: 0,
            session: None,
        })
    }

    /// The card with its counter at `atc` (a card's counter survives between sessions).
    pub fn with_atc(mut self, atc: u16) -> Self {
        self.atc = atc;
        self
    }

    pub fn pan(&self) -> &Pan {
        &self.pan
    }

    /// The ATC of the last cryptogram (0 before the first).
    pub fn atc(&self) -> u16 {
        self.atc
    }

    fn session_key(&self, atc: u16) -> Result<PreparedTdesKey, TerminalError> {
        let derivation = VERSION.session_derivation([0; 4]);
        let session =
            cryptogram::session_key_prepared(&self.icc_master_key, atc.to_be_bytes(), derivation)?;
        Ok(PreparedTdesKey::new(&session)?)
    }

    /// The first GENERATE AC of an online transaction: the ATC goes up by one, and the card
    /// answers with an ARQC over the CDOL1 data. Field 55 carries the ARQC, the data it covers
    /// and the PAN sequence number.
    pub fn generate_arqc(
        &mut self,
        transaction: &ChipTransaction,
    ) -> Result<ChipRead, TerminalError> {
        let atc = self.atc.checked_add(1).ok_or(TerminalError::AtcExhausted)?;
        let amount: [u8; 6] = bcd(transaction.amount_minor)?;
        let country: [u8; 2] = bcd(u64::from(transaction.country))?;
        let currency: [u8; 2] = bcd(u64::from(transaction.currency.numeric()))?;
        let date = transaction.date.bcd()?;
        let atc_bytes = atc.to_be_bytes();
        // The order the ARQC covers (acquirer::chip::ARQC_DATA_TAGS).
        let covered: [(u32, &[u8]); 11] = [
            (0x9F02, &amount),
            (0x9F03, &[0; 6]),
            (0x9F1A, &country),
            (0x95, &TVR),
            (0x5F2A, &currency),
            (0x9A, &date),
            (0x9C, &[TRANSACTION_TYPE_PURCHASE]),
            (0x9F37, &transaction.unpredictable_number),
            (0x82, &AIP),
            (0x9F36, &atc_bytes),
            (0x9F10, &ISSUER_APPLICATION_DATA),
        ];
        debug_assert_eq!(
            covered.map(|(tag, _)| tag),
            acquirer::chip::ARQC_DATA_TAGS,
            "the card covers what the host reads back"
        );
        let data: Vec<u8> = covered
            .iter()
            .flat_map(|(_, value)| value.iter().copied())
            .collect();
        let session = Box::new(self.session_key(atc)?);
        let arqc = session.retail_mac(&data, VERSION.padding());
        let psn: [u8; 1] = bcd(u64::from(self.psn))?;
        let mut objects: Vec<(Tag, &[u8])> = vec![(Tag(0x9F26), &arqc), (Tag(0x9F27), &[CID_ARQC])];
        objects.extend(covered.iter().map(|(tag, value)| (Tag(*tag), *value)));
        objects.push((Tag(0x9F34), &CVM_ONLINE_PIN));
        objects.push((Tag(0x5F34), &psn));
        let field55 = field55::build(&objects)?;
        self.atc = atc;
        self.session = Some((atc, session));
        Ok(ChipRead { field55, atc, arqc })
    }

    /// Whether field 55 of the issuer's answer carries a genuine ARPC for `read` (tag 91: ARPC
    /// method 2 under the session key of the ARQC's ATC, then the card status update), and
    /// whether the issuer approved. `Ok(None)` when the answer has no tag 91.
    pub fn check_arpc(
        &self,
        read: &ChipRead,
        issuer_data: &[u8],
    ) -> Result<Option<ArpcCheck>, TerminalError> {
        let objects = field55::parse(issuer_data)?;
        let Some(tag91) = objects.iter().find(|object| object.tag == Tag(0x91)) else {
            return Ok(None);
        };
        if tag91.value.len() != ARPC_BYTES + CSU_BYTES {
            return Err(TerminalError::Answer(
                "carries a tag 91 that is not ARPC method 2 (8 bytes)".into(),
            ));
        }
        let (arpc, csu) = tag91.value.split_at(ARPC_BYTES);
        let csu: [u8; CSU_BYTES] = csu
            .try_into()
            .map_err(|_| TerminalError::Invalid("card status update"))?;
        let expected = match &self.session {
            Some((atc, session)) if *atc == read.atc => {
                cryptogram::arpc_method2_prepared(session, &read.arqc, &csu, &[])?
            }
            // A read from before the card's last ARQC (or from another session of the card).
            _ => {
                let session = self.session_key(read.atc)?;
                cryptogram::arpc_method2_prepared(&session, &read.arqc, &csu, &[])?
            }
        };
        Ok(Some(ArpcCheck {
            genuine: paycrypto::mac::macs_equal(arpc, &expected),
            approved: csu[3] & CSU_APPROVED != 0,
        }))
    }
}

/// What the card made of the issuer's ARPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpcCheck {
    /// The ARPC was made under this card's key, for this ARQC and status update.
    pub genuine: bool,
    /// The card status update says the issuer approved.
    pub approved: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn transaction(amount_minor: u64) -> ChipTransaction {
        ChipTransaction {
            amount_minor,
            currency: Currency::CNY,
            country: 156,
            date: TransactionDate {
                year: 2026,
                month: 11,
                day: 26,
            },
            unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
        }
    }

    /// The ARPC method 2 answer (tag 91) to `read`, made the issuer's way from the issuer
    /// master key, each key derived afresh.
    fn issuer_answer(imk: &TdesKey, pan: &Pan, read: &ChipRead, csu: [u8; 4]) -> Vec<u8> {
        let icc = cryptogram::icc_master_key(imk, pan, 1).unwrap();
        let session = cryptogram::session_key(
            &icc,
            read.atc.to_be_bytes(),
            VERSION.session_derivation([0; 4]),
        )
        .unwrap();
        let arpc = cryptogram::arpc_method2(&session, &read.arqc, &csu, &[]).unwrap();
        field55::build(&[(Tag(0x91), &[arpc.as_slice(), &csu].concat())]).unwrap()
    }

    #[test]
    fn the_kept_session_key_is_the_one_derived_for_the_atc() {
        // The card keeps its last ARQC's session key for the ARPC check. Its ARQC must be the
        // one a key derived the paycrypto way makes, and an ARPC must check the same under
        // the kept key and under one derived again (an older read, or a card loaded afresh).
        let imk = TdesKey::new(&[0x33; 16]).unwrap();
        let pan = Pan::new("6212345000000001").unwrap();
        let mut card = ChipCard::new(&imk, pan.clone(), 1).unwrap();
        let first = card.generate_arqc(&transaction(1_200)).unwrap();
        let second = card.generate_arqc(&transaction(3_400)).unwrap();
        let session = cryptogram::session_key(
            &cryptogram::icc_master_key(&imk, &pan, 1).unwrap(),
            second.atc.to_be_bytes(),
            VERSION.session_derivation([0; 4]),
        )
        .unwrap();
        let covered = field55::parse(&second.field55).unwrap();
        let data: Vec<u8> = acquirer::chip::ARQC_DATA_TAGS
            .iter()
            .flat_map(|tag| {
                let object = covered
                    .iter()
                    .find(|object| object.tag == Tag(*tag))
                    .unwrap();
                object.value.to_vec()
            })
            .collect();
        assert_eq!(
            cryptogram::generate_arqc(&session, &data, VERSION.padding()).unwrap(),
            second.arqc
        );

        let reloaded = ChipCard::new(&imk, pan.clone(), 1).unwrap().with_atc(2);
        for (read, csu, approved) in [
            (&second, [0, 0, 0, CSU_APPROVED], true),
            (&second, [0; 4], false),
            (&first, [0, 0, 0, CSU_APPROVED], true),
        ] {
            let answer = issuer_answer(&imk, &pan, read, csu);
            let expected = Some(ArpcCheck {
                genuine: true,
                approved,
            });
            assert_eq!(card.check_arpc(read, &answer).unwrap(), expected);
            assert_eq!(reloaded.check_arpc(read, &answer).unwrap(), expected);
        }
        // The answer to one ARQC does not pass for the other's.
        let answer = issuer_answer(&imk, &pan, &first, [0, 0, 0, CSU_APPROVED]);
        assert!(!card.check_arpc(&second, &answer).unwrap().unwrap().genuine);
    }
}
