//! After-sale (issue 9): what keeps a payment voucher useful after the payment (R12, R13).
//!
//! Every approved sale's receipt carries a [`receipt::Statement`] signed by the acquirer with
//! Ed25519: RRN, terminal and merchant ids, the masked card number, amount, currency, time,
//! auth code and the id of the signing key. Its QR payload ([`receipt::Statement::payload`],
//! documented in `docs/aftersale.md`) is checked by anyone with the acquirer's public keys:
//! the console's `/verify` page, `POST /api/v1/receipts/verify`, or offline.
//!
//! [`ReceiptKeys`] keeps the signing keys: generated inside the HSM (TR-31 usage S0, never
//! exportable), stored as tokens with their public keys (`store::receipt_keys`), rotated on
//! request; a rotated-out key still verifies the receipts it signed. A busy host signs through
//! [`ReceiptBatcher`]: one signature per batch of approvals answered together, each receipt
//! with its Merkle proof to the signed root (version 2 of the payload).
//!
//! ```
//! # async fn demo(store: std::sync::Arc<store::Store>, hsm: std::sync::Arc<dyn hsm::Hsm>) -> Result<(), aftersale::ReceiptError> {
//! use aftersale::{ReceiptKeys, receipt::Statement};
//! let keys = ReceiptKeys::load(store, hsm, 1_764_000_000).await?;
//! let statement = Statement {
//!     rrn: "000000012345".into(), terminal_id: "10000001".into(),
//!     merchant_id: "898310058120001".into(), card: "621234******0003".into(),
//!     amount_minor: 1234, currency: "CNY".into(), time: 1_764_000_000,
//!     auth_code: "654321".into(), key_id: String::new(),
//! };
//! let payload = keys.sign(statement)?;
//! assert!(keys.verify(&payload).await.is_ok());
//! # Ok(()) }
//! ```
//!
//! [`refunds::Refunds`] refunds card sales from the console and the API, in parts, with a
//! supervisor's approval above a threshold, through the acquirer's refund path;
//! [`disputes::Disputes`] takes a cardholder's dispute through the issuer's review, the
//! chargeback, the merchant's answer before its deadline and the issuer's decision.

pub mod alerts;
pub mod batcher;
pub mod certificate;
pub mod disputes;
pub mod evidence;
pub mod paper;
pub mod receipt;
pub mod refunds;
pub mod signer;
pub mod statement;
pub mod timeline;

pub use batcher::{BatchStats, ReceiptBatcher};
pub use signer::{ReceiptError, ReceiptKeys, Rejection, Verified};
