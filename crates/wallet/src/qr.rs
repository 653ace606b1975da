//! The wallet's dynamic EMVCo merchant-presented QR codes: what an order's payload carries and
//! how a scanned one is read back. Tags (STANDARDS.md §7):
//!
//! | ID | value |
//! | -- | ----- |
//! | 01 | `12`, dynamic: one code per order |
//! | 26 | merchant account template: `00` the wallet's GUI, `01` the merchant id (MID) |
//! | 52, 53, 54 | MCC, ISO 4217 numeric currency, amount in major units |
//! | 58, 59, 60 | country, merchant name (≤ 25), city (≤ 15) |
//! | 62 | `05` reference label = the order id; `07` terminal label = the terminal id |
//! | 63 | CRC-16/CCITT-FALSE |

use crate::{MAX_ORDER_ID_CHARS, WalletConfig, WalletError};
use emvqr::mpm::additional;
use emvqr::{DataObject, Initiation, MerchantAccount, MerchantQr};
use store::wallets::OrderRecord;

/// The merchant account template's ID in our codes.
pub const MERCHANT_ACCOUNT_ID: u8 = 26;
/// EMVCo's limits on the merchant name (ID 59) and city (ID 60), in characters.
const MAX_NAME_CHARS: usize = 25;
const MAX_CITY_CHARS: usize = 15;

/// What a code says about the merchant.
#[derive(Clone, Copy, Debug)]
pub struct MerchantFields<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub city: &'a str,
    pub mcc: &'a str,
}

/// An order id: 1 to 25 ASCII letters, digits or '-'.
pub fn valid_order_id(id: &str) -> bool {
    (1..=MAX_ORDER_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

/// The payload of an order: the same order and merchant always give the same text.
pub fn order_payload(
    config: &WalletConfig,
    order: &OrderRecord,
    merchant: MerchantFields<'_>,
) -> Result<String, WalletError> {
    let qr = MerchantQr {
        initiation: Some(Initiation::Dynamic),
        accounts: vec![MerchantAccount {
            id: MERCHANT_ACCOUNT_ID,
            value: String::new(),
            fields: vec![
                DataObject::primitive(0, config.gui.clone()),
                DataObject::primitive(1, merchant.id),
            ],
        }],
        mcc: merchant.mcc.to_owned(),
        currency: format!("{:03}", order.amount.currency().numeric()),
        amount: Some(order.amount.format_major()),
        country: config.country.clone(),
        name: merchant.name.chars().take(MAX_NAME_CHARS).collect(),
        city: merchant.city.chars().take(MAX_CITY_CHARS).collect(),
        additional: vec![
            DataObject::primitive(additional::REFERENCE_LABEL, order.id.clone()),
            DataObject::primitive(additional::TERMINAL_LABEL, order.terminal_id.clone()),
        ],
        ..MerchantQr::default()
    };
    Ok(qr.encode()?)
}

/// A scanned payload that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    pub order_id: String,
    payload: String,
}

impl Scanned {
    /// The payload without its four CRC characters (case of the hex digits aside, a payload
    /// whose CRC verified is determined by the rest).
    pub fn payload_without_crc(&self) -> &str {
        without_crc(&self.payload)
    }
}

/// `payload` without its last four characters (the CRC value).
pub fn without_crc(payload: &str) -> &str {
    payload
        .char_indices()
        .rev()
        .nth(3)
        .map_or("", |(index, _)| &payload[..index])
}

/// Reads a scanned payload: the CRC (a tampered code is refused here), the EMVCo structure,
/// that it is a dynamic code of this wallet institution, and the order it names.
pub fn read_payload(config: &WalletConfig, payload: &str) -> Result<Scanned, WalletError> {
    let payload = payload.trim();
    emvqr::verify_crc(payload)?;
    let qr = MerchantQr::parse(payload)?;
    let ours = qr
        .accounts
        .iter()
        .any(|account| account.gui() == Some(config.gui.as_str()));
    if !ours {
        return Err(WalletError::ForeignInstitution);
    }
    if !qr.is_dynamic() {
        return Err(WalletError::PayloadMismatch);
    }
    let order_id = qr
        .additional(additional::REFERENCE_LABEL)
        .filter(|id| valid_order_id(id))
        .ok_or(WalletError::PayloadMismatch)?;
    Ok(Scanned {
        order_id: order_id.to_owned(),
        payload: payload.to_owned(),
    })
}

/// The wallet page's deep link for a code (`{base}/wallet/scan?payload=…`): opened on the
/// consumer's phone, it shows the order to confirm, as scanning the code does.
pub fn deep_link(base_url: &str, payload: &str) -> String {
    let encoded: String = payload
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect();
    format!(
        "{}/wallet/scan?payload={encoded}",
        base_url.trim_end_matches('/')
    )
}

/// The payload as a QR code drawn with Unicode half blocks, two modules per character row, for
/// a terminal's text screen (dark modules on a light background, with the quiet zone).
pub fn render_text(payload: &str) -> Result<String, WalletError> {
    let code = qrcode::QrCode::new(payload.as_bytes())
        .map_err(|_| WalletError::Setup("the payload does not fit a QR code".into()))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use money::{Amount, Currency};
    use store::wallets::OrderStatus;

    fn order() -> OrderRecord {
        OrderRecord {
            id: "10000001-42".into(),
            merchant_id: "898310058120001".into(),
            terminal_id: "10000001".into(),
            amount: Amount::new(1_234, Currency::CNY),
            status: OrderStatus::Created,
            wallet_id: None,
            created_at: 0,
            expires_at: 120,
            updated_at: 0,
        }
    }

    fn merchant() -> MerchantFields<'static> {
        MerchantFields {
            id: "898310058120001",
            name: "Lujiazui Coffee",
            city: "Shanghai",
            mcc: "5814",
        }
    }

    #[test]
    fn an_order_payload_reads_back_and_is_checked() {
        let config = WalletConfig::demo();
        let payload = order_payload(&config, &order(), merchant()).unwrap();
        assert!(payload.starts_with("000201010212"), "{payload}");
        assert!(payload.contains("540512.34"), "{payload}");
        assert!(payload.contains("5303156"), "{payload}");
        let scanned = read_payload(&config, &payload).unwrap();
        assert_eq!(scanned.order_id, "10000001-42");

        // One changed character (the amount), CRC kept: refused as a bad CRC.
        let tampered = payload.replace("540512.34", "540512.35");
        let error = read_payload(&config, &tampered).unwrap_err();
        assert_eq!(error.code(), "bad_crc");

        // Another institution's code (other GUI), with a valid CRC.
        let other = WalletConfig {
            gui: "com.example.otherpay".into(),
            ..WalletConfig::demo()
        };
        let foreign = order_payload(&other, &order(), merchant()).unwrap();
        assert_eq!(
            read_payload(&config, &foreign).unwrap_err().code(),
            "foreign_institution"
        );
    }

    #[test]
    fn a_deep_link_carries_the_payload_encoded() {
        assert_eq!(
            deep_link("http://127.0.0.1:8080/", "0002 01中"),
            "http://127.0.0.1:8080/wallet/scan?payload=0002%2001%E4%B8%AD"
        );
    }

    #[test]
    fn order_ids_are_checked() {
        assert!(valid_order_id("10000001-1764100000000"));
        assert!(!valid_order_id(""));
        assert!(!valid_order_id("a b"));
        assert!(!valid_order_id(&"9".repeat(26)));
    }

    #[test]
    fn the_text_rendering_is_a_square_of_blocks() {
        let text = render_text("000201010212").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 10);
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|line| line.chars().count() == width));
    }
}
