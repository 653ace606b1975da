//! The payment voucher (支付凭证, R6, R13): a merchant copy and a cardholder copy with the
//! fields the cardholder needs to check a charge later — merchant name and city, MID, TID,
//! operator, the card number masked (first 6 / last 4), card type and entry mode, transaction
//! type, batch and trace number, date and time, RRN, auth code, amount, CVM, and the chip's
//! application label and AID. "REPRINT" marks a reprint.
//!
//! Rendered as plain text (screen, `--json`, files) in English or Chinese, and as ESC/POS
//! bytes for a receipt printer. Pure: the caller passes everything, including the time.

use crate::config::Language;
use crate::transactions::TransactionType;

/// Characters per line: a 58 mm receipt printer's 32 columns.
pub const RECEIPT_COLUMNS: usize = 32;

/// How the card was read, as the receipt names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entry {
    Chip,
    Contactless,
    Swipe,
    /// Swiped after the chip could not be read.
    FallbackSwipe,
    /// The card's number only (voids, refunds, completions).
    Manual,
}

/// How the cardholder was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cvm {
    /// Online PIN, verified by the issuer.
    PinVerified,
    /// Contactless under the CVM limit.
    NoCvm,
    /// No PIN: the cardholder signs the merchant copy.
    Signature,
}

/// Which copy is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    Merchant,
    Cardholder,
}

/// Everything a receipt shows. The card number is masked before it gets here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub merchant_name: String,
    pub merchant_city: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub operator: String,
    /// First 6 / last 4.
    pub card: String,
    pub card_product: String,
    pub entry: Entry,
    pub transaction: TransactionType,
    pub batch: u32,
    pub stan: u32,
    /// YYYY-MM-DD, terminal local time.
    pub date: String,
    /// hh:mm:ss, terminal local time.
    pub time: String,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    pub amount_minor: u64,
    pub currency: String,
    /// Major units, e.g. "12.34".
    pub amount: String,
    pub response_code: String,
    pub approved: bool,
    pub cvm: Cvm,
    pub application_label: Option<String>,
    pub aid: Option<String>,
    /// The trace number of the sale a void or refund undoes, or of the pre-authorization a
    /// completion takes.
    pub original_stan: Option<u32>,
    /// The available balance of a balance inquiry, major units.
    pub balance: Option<String>,
    /// The acquirer's signed receipt statement (field 62 of the approval), printed as a QR
    /// code and as text: anyone can check it at the console's `/verify` page
    /// (docs/aftersale.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
}

/// The words of one language.
struct Words {
    merchant_copy: &'static str,
    cardholder_copy: &'static str,
    reprint: &'static str,
    merchant_name: &'static str,
    merchant_id: &'static str,
    terminal_id: &'static str,
    operator: &'static str,
    card: &'static str,
    card_type: &'static str,
    entry: &'static str,
    transaction: &'static str,
    batch: &'static str,
    trace: &'static str,
    original: &'static str,
    date_time: &'static str,
    rrn: &'static str,
    auth_code: &'static str,
    label: &'static str,
    amount: &'static str,
    balance: &'static str,
    signature: &'static str,
    acknowledge: &'static str,
    declined: &'static str,
    verify: &'static str,
}

const ENGLISH: Words = Words {
    merchant_copy: "MERCHANT COPY",
    cardholder_copy: "CARDHOLDER COPY",
    reprint: "*** REPRINT ***",
    merchant_name: "MERCHANT",
    merchant_id: "MERCHANT ID",
    terminal_id: "TERMINAL ID",
    operator: "OPERATOR",
    card: "CARD NO",
    card_type: "CARD TYPE",
    entry: "ENTRY",
    transaction: "TYPE",
    batch: "BATCH NO",
    trace: "TRACE NO",
    original: "ORIG TRACE",
    date_time: "DATE/TIME",
    rrn: "REF NO",
    auth_code: "AUTH NO",
    label: "APP",
    amount: "AMOUNT",
    balance: "BALANCE",
    signature: "CARDHOLDER SIGNATURE",
    acknowledge: "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES",
    declined: "DECLINED",
    verify: "VERIFY AT /verify (SIGNED):",
};

const CHINESE: Words = Words {
    merchant_copy: "商户存根",
    cardholder_copy: "持卡人存根",
    reprint: "*** 重打印凭证 ***",
    merchant_name: "商户名称",
    merchant_id: "商户编号",
    terminal_id: "终端编号",
    operator: "操作员号",
    card: "卡号",
    card_type: "卡类型",
    entry: "读卡方式",
    transaction: "交易类型",
    batch: "批次号",
    trace: "凭证号",
    original: "原凭证号",
    date_time: "日期/时间",
    rrn: "参考号",
    auth_code: "授权码",
    label: "应用",
    amount: "金额",
    balance: "余额",
    signature: "持卡人签名",
    acknowledge: "本人确认以上交易，同意将其记入本卡账户",
    declined: "交易失败",
    verify: "凭证验证 /verify（收单签名）:",
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::English => &ENGLISH,
        Language::Chinese => &CHINESE,
    }
}

/// The transaction's name on a receipt and on screen.
pub fn transaction_name(kind: TransactionType, language: Language) -> &'static str {
    match (language, kind) {
        (Language::English, TransactionType::Sale) => "SALE",
        (Language::English, TransactionType::Void) => "VOID",
        (Language::English, TransactionType::Refund) => "REFUND",
        (Language::English, TransactionType::PreAuthorization) => "PRE-AUTH",
        (Language::English, TransactionType::Completion) => "PRE-AUTH COMPLETION",
        (Language::English, TransactionType::BalanceInquiry) => "BALANCE INQUIRY",
        (Language::Chinese, TransactionType::Sale) => "消费",
        (Language::Chinese, TransactionType::Void) => "消费撤销",
        (Language::Chinese, TransactionType::Refund) => "退货",
        (Language::Chinese, TransactionType::PreAuthorization) => "预授权",
        (Language::Chinese, TransactionType::Completion) => "预授权完成",
        (Language::Chinese, TransactionType::BalanceInquiry) => "余额查询",
    }
}

fn entry_name(entry: Entry, language: Language) -> &'static str {
    match (language, entry) {
        (Language::English, Entry::Chip) => "CHIP",
        (Language::English, Entry::Contactless) => "CONTACTLESS",
        (Language::English, Entry::Swipe) => "SWIPE",
        (Language::English, Entry::FallbackSwipe) => "FALLBACK SWIPE",
        (Language::English, Entry::Manual) => "MANUAL",
        (Language::Chinese, Entry::Chip) => "插卡",
        (Language::Chinese, Entry::Contactless) => "挥卡",
        (Language::Chinese, Entry::Swipe) => "刷卡",
        (Language::Chinese, Entry::FallbackSwipe) => "降级刷卡",
        (Language::Chinese, Entry::Manual) => "手输",
    }
}

fn cvm_name(cvm: Cvm, language: Language) -> &'static str {
    match (language, cvm) {
        (Language::English, Cvm::PinVerified) => "PIN VERIFIED",
        (Language::English, Cvm::NoCvm) => "NO CARDHOLDER VERIFICATION",
        (Language::English, Cvm::Signature) => "SIGNATURE REQUIRED",
        (Language::Chinese, Cvm::PinVerified) => "密码验证",
        (Language::Chinese, Cvm::NoCvm) => "免密免签",
        (Language::Chinese, Cvm::Signature) => "需持卡人签名",
    }
}

fn product_name(product: &str, language: Language) -> String {
    match (language, product) {
        (Language::Chinese, "debit") => "借记卡".into(),
        (Language::Chinese, "credit") => "贷记卡".into(),
        (_, other) => other.to_uppercase(),
    }
}

/// Whether a character takes two columns on screen and on a printer (the PDF lays its text
/// out by the same rule).
pub use pdf::is_wide;

/// Display width in columns.
pub fn width(text: &str) -> usize {
    text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

/// `label` left, `value` right on one line, or on two when they do not fit.
fn pair(label: &str, value: &str) -> String {
    let used = width(label) + width(value);
    if used < RECEIPT_COLUMNS {
        format!("{label}{}{value}", " ".repeat(RECEIPT_COLUMNS - used))
    } else {
        format!(
            "{label}\n{}{value}",
            " ".repeat(RECEIPT_COLUMNS.saturating_sub(width(value)))
        )
    }
}

/// `text` in lines at most [`RECEIPT_COLUMNS`] wide, each after `indent`: broken at the last
/// space that fits, or anywhere in a run without one (Chinese has no spaces).
fn wrapped(indent: &str, text: &str) -> Vec<String> {
    let room = RECEIPT_COLUMNS.saturating_sub(width(indent)).max(1);
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while !rest.is_empty() {
        let mut columns = 0;
        let mut fits = 0;
        while fits < rest.len() && columns + width(&rest[fits].to_string()) <= room {
            columns += width(&rest[fits].to_string());
            fits += 1;
        }
        let cut = if fits == rest.len() {
            fits
        } else {
            match rest[..fits].iter().rposition(|c| *c == ' ') {
                Some(space) if space > 0 => space,
                _ => fits.max(1),
            }
        };
        let line: String = rest[..cut].iter().collect();
        lines.push(format!("{indent}{}", line.trim_end()));
        rest.drain(..cut);
        while rest.first() == Some(&' ') {
            rest.remove(0);
        }
    }
    lines
}

fn centred(text: &str) -> String {
    let pad = RECEIPT_COLUMNS.saturating_sub(width(text)) / 2;
    format!("{}{text}", " ".repeat(pad))
}

impl Receipt {
    /// The receipt as lines of text, at most [`RECEIPT_COLUMNS`] wide (longer values wrap
    /// onto their own line).
    pub fn lines(&self, copy: Copy, reprint: bool, language: Language) -> Vec<String> {
        let w = words(language);
        let rule = "-".repeat(RECEIPT_COLUMNS);
        let mut out = vec![centred(match copy {
            Copy::Merchant => w.merchant_copy,
            Copy::Cardholder => w.cardholder_copy,
        })];
        if reprint {
            out.push(centred(w.reprint));
        }
        out.push(rule.clone());
        out.push(w.merchant_name.to_owned());
        out.extend(wrapped("  ", &self.merchant_name));
        out.extend(wrapped("  ", &self.merchant_city));
        out.push(pair(w.merchant_id, &self.merchant_id));
        out.push(pair(w.terminal_id, &self.terminal_id));
        out.push(pair(w.operator, &self.operator));
        out.push(rule.clone());
        out.push(pair(w.card, &self.card));
        out.push(pair(
            w.card_type,
            &product_name(&self.card_product, language),
        ));
        out.push(pair(w.entry, entry_name(self.entry, language)));
        out.push(pair(
            w.transaction,
            transaction_name(self.transaction, language),
        ));
        out.push(pair(w.batch, &format!("{:06}", self.batch)));
        out.push(pair(w.trace, &format!("{:06}", self.stan)));
        if let Some(original) = self.original_stan {
            out.push(pair(w.original, &format!("{original:06}")));
        }
        out.push(pair(w.date_time, &format!("{} {}", self.date, self.time)));
        if let Some(rrn) = &self.rrn {
            out.push(pair(w.rrn, rrn));
        }
        if let Some(code) = &self.auth_code {
            out.push(pair(w.auth_code, code));
        }
        if let (Some(label), Some(aid)) = (&self.application_label, &self.aid) {
            out.push(pair(w.label, label));
            out.push(pair("AID", aid));
        }
        out.push(rule.clone());
        if let Some(balance) = &self.balance {
            out.push(pair(w.balance, &format!("{} {balance}", self.currency)));
        } else {
            let sign = if self.transaction.settlement_direction() == Some(false) {
                "-"
            } else {
                ""
            };
            out.push(pair(
                w.amount,
                &format!("{} {sign}{}", self.currency, self.amount),
            ));
        }
        if !self.approved {
            out.push(pair(w.declined, &self.response_code));
        }
        out.push(cvm_name(self.cvm, language).to_owned());
        if copy == Copy::Merchant && self.cvm == Cvm::Signature {
            out.push(String::new());
            out.push(w.signature.to_owned());
            out.push(String::new());
            out.push("_".repeat(RECEIPT_COLUMNS));
        }
        if copy == Copy::Merchant {
            out.extend(wrapped("", w.acknowledge));
        }
        if let Some(payload) = &self.verification {
            out.push(rule);
            out.push(w.verify.to_owned());
            // ASCII only, so every character is one column.
            out.extend(
                payload
                    .as_bytes()
                    .chunks(RECEIPT_COLUMNS)
                    .map(|chunk| String::from_utf8_lossy(chunk).into_owned()),
            );
        }
        out
    }

    /// The receipt as text, one line per line.
    pub fn text(&self, copy: Copy, reprint: bool, language: Language) -> String {
        let mut text = self.lines(copy, reprint, language).join("\n");
        text.push('\n');
        text
    }

    /// Both copies, merchant first, separated by a cut mark.
    pub fn both_copies(&self, reprint: bool, language: Language) -> String {
        format!(
            "{}\n{}\n\n{}",
            self.text(Copy::Merchant, reprint, language),
            "- - - - - - - - - - - - - - - - ",
            self.text(Copy::Cardholder, reprint, language)
        )
    }

    /// Both copies as ESC/POS commands for a receipt printer: initialise, the title centred
    /// and bold, the body left-aligned, a partial cut after each copy. The text is ASCII in
    /// English; a Chinese receipt needs the printer's GB18030 mode, which is not written yet,
    /// so ESC/POS output is always in English.
    pub fn escpos(&self, reprint: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for copy in [Copy::Merchant, Copy::Cardholder] {
            out.extend_from_slice(ESC_INIT);
            let lines = self.lines(copy, reprint, Language::English);
            for (index, line) in lines.iter().enumerate() {
                let title = index == 0 || (reprint && index == 1);
                if title {
                    out.extend_from_slice(ESC_CENTRE);
                    out.extend_from_slice(ESC_BOLD_ON);
                }
                // Printers take 7-bit ASCII in their default code page.
                out.extend(
                    line.trim_start()
                        .bytes()
                        .map(|b| if b.is_ascii() { b } else { b'?' }),
                );
                out.push(b'\n');
                if title {
                    out.extend_from_slice(ESC_BOLD_OFF);
                    out.extend_from_slice(ESC_LEFT);
                }
            }
            if let Some(payload) = &self.verification {
                out.extend_from_slice(ESC_CENTRE);
                out.extend(escpos_qr(payload.as_bytes()));
                out.extend_from_slice(ESC_LEFT);
            }
            out.extend_from_slice(ESC_FEED_4);
            out.extend_from_slice(GS_PARTIAL_CUT);
        }
        out
    }
}

/// Points per line of a PDF receipt, and the text size: 32 Courier columns of 6 pt fill an
/// 80 mm roll's 72 mm with margins.
const PDF_LINE_POINTS: f32 = 13.0;
const PDF_TEXT_POINTS: f32 = 10.0;
const PDF_MARGIN_POINTS: f32 = 17.0;
/// Points per QR module.
const PDF_QR_MODULE_POINTS: f32 = 2.5;

impl Receipt {
    /// What the receipt's QR code says: the acquirer's signed statement when the host sent one
    /// (checked at `/verify`), otherwise the transaction's reference at the acquirer.
    pub fn qr_payload(&self) -> String {
        self.verification
            .clone()
            .unwrap_or_else(|| self.reference())
    }

    /// The transaction's reference at the acquirer (merchant, terminal, batch, trace number,
    /// date, RRN), which the after-sale records find it by.
    pub fn reference(&self) -> String {
        format!(
            "easypos:receipt?mid={}&tid={}&batch={:06}&trace={:06}&date={}&rrn={}",
            self.merchant_id,
            self.terminal_id,
            self.batch,
            self.stan,
            self.date,
            self.rrn.as_deref().unwrap_or("")
        )
    }

    /// Both copies as a PDF, one page each on an 80 mm roll: the lines of [`Receipt::lines`]
    /// (Chinese in the embedded subset of Droid Sans Fallback, crate `pdf`) and
    /// [`Receipt::qr_payload`] as a QR code.
    pub fn pdf(&self, reprint: bool, language: Language) -> Vec<u8> {
        let mut document = pdf::Document::new(&format!(
            "{} {:06}/{:06}",
            self.terminal_id, self.batch, self.stan
        ));
        for copy in [Copy::Merchant, Copy::Cardholder] {
            let lines: Vec<String> = self
                .lines(copy, reprint, language)
                .iter()
                .flat_map(|line| line.split('\n').map(str::to_owned).collect::<Vec<_>>())
                .collect();
            let reference = self.qr_payload();
            // A reference too long for a QR code is left out rather than failing the receipt.
            let qr_side = pdf::qr_side(&reference, PDF_QR_MODULE_POINTS).unwrap_or(0.0);
            let height = 2.0 * PDF_MARGIN_POINTS
                + lines.len() as f32 * PDF_LINE_POINTS
                + PDF_LINE_POINTS
                + qr_side;
            let mut page = pdf::Page::new(pdf::Size::RECEIPT_80MM, height);
            let mut y = height - PDF_MARGIN_POINTS - PDF_TEXT_POINTS;
            for line in &lines {
                if !line.trim().is_empty() && line.chars().all(|c| c == '-') {
                    let middle = y + PDF_TEXT_POINTS / 3.0;
                    page.rule(
                        PDF_MARGIN_POINTS,
                        middle,
                        pdf::Size::RECEIPT_80MM - PDF_MARGIN_POINTS,
                        middle,
                        0.5,
                    );
                } else {
                    page.text(PDF_MARGIN_POINTS, y, PDF_TEXT_POINTS, line);
                }
                y -= PDF_LINE_POINTS;
            }
            if qr_side > 0.0 {
                let _ = page.qr(
                    PDF_MARGIN_POINTS,
                    PDF_MARGIN_POINTS,
                    PDF_QR_MODULE_POINTS,
                    &reference,
                );
            }
            document = document.page(page);
        }
        document.to_bytes()
    }
}

/// ESC @: initialise the printer.
const ESC_INIT: &[u8] = &[0x1B, 0x40];
/// ESC a 1 / ESC a 0: centre / left justification.
const ESC_CENTRE: &[u8] = &[0x1B, 0x61, 0x01];
const ESC_LEFT: &[u8] = &[0x1B, 0x61, 0x00];
/// ESC E 1 / ESC E 0: emphasised on / off.
const ESC_BOLD_ON: &[u8] = &[0x1B, 0x45, 0x01];
const ESC_BOLD_OFF: &[u8] = &[0x1B, 0x45, 0x00];
/// ESC d 4: print and feed four lines, so the cut falls below the text.
const ESC_FEED_4: &[u8] = &[0x1B, 0x64, 0x04];
/// A QR code drawn by the printer (Epson ESC/POS `GS ( k`, function 165–181): model 2,
/// 4-dot modules, error correction M, store the data, print it.
fn escpos_qr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(&[0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00]);
    out.extend_from_slice(&[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 0x04]);
    out.extend_from_slice(&[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x31]);
    // A receipt payload is at most a few hundred bytes, far below the 16-bit length.
    let stored = u16::try_from(data.len() + 3)
        .unwrap_or(u16::MAX)
        .to_le_bytes();
    out.extend_from_slice(&[0x1D, 0x28, 0x6B, stored[0], stored[1], 0x31, 0x50, 0x30]);
    out.extend_from_slice(data);
    out.extend_from_slice(&[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30]);
    out
}

/// GS V 1: partial cut.
const GS_PARTIAL_CUT: &[u8] = &[0x1D, 0x56, 0x01];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn sample() -> Receipt {
        Receipt {
            merchant_name: "Lujiazui Coffee".into(),
            merchant_city: "Shanghai".into(),
            merchant_id: "898310058120001".into(),
            terminal_id: "10000001".into(),
            operator: "01".into(),
            card: "621234******0003".into(),
            card_product: "debit".into(),
            entry: Entry::Chip,
            transaction: TransactionType::Sale,
            batch: 1,
            stan: 2,
            date: "2026-11-25".into(),
            time: "20:31:05".into(),
            rrn: Some("000000123456".into()),
            auth_code: Some("654321".into()),
            amount_minor: 1_234,
            currency: "CNY".into(),
            amount: "12.34".into(),
            response_code: "00".into(),
            approved: true,
            cvm: Cvm::PinVerified,
            application_label: Some("HUANGPU DEBIT".into()),
            aid: Some("A000000333010101".into()),
            original_stan: None,
            balance: None,
            verification: None,
        }
    }

    #[test]
    fn the_merchant_copy_has_every_field_the_issue_lists() {
        let text = sample().text(Copy::Merchant, false, Language::English);
        let expected = "         MERCHANT COPY
--------------------------------
MERCHANT
  Lujiazui Coffee
  Shanghai
MERCHANT ID      898310058120001
TERMINAL ID             10000001
OPERATOR                      01
--------------------------------
CARD NO         621234******0003
CARD TYPE                  DEBIT
ENTRY                       CHIP
TYPE                        SALE
BATCH NO                  000001
TRACE NO                  000002
DATE/TIME    2026-11-25 20:31:05
REF NO              000000123456
AUTH NO                   654321
APP                HUANGPU DEBIT
AID             A000000333010101
--------------------------------
AMOUNT                 CNY 12.34
PIN VERIFIED
I ACKNOWLEDGE SATISFACTORY
RECEIPT OF RELATIVE
GOODS/SERVICES
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_reprint_says_so_and_a_signature_receipt_has_the_line() {
        let mut receipt = sample();
        receipt.cvm = Cvm::Signature;
        receipt.entry = Entry::FallbackSwipe;
        let merchant = receipt.text(Copy::Merchant, true, Language::English);
        assert!(merchant.contains("*** REPRINT ***"), "{merchant}");
        assert!(merchant.contains("CARDHOLDER SIGNATURE"), "{merchant}");
        let cardholder = receipt.text(Copy::Cardholder, false, Language::English);
        assert!(!cardholder.contains("REPRINT"));
        assert!(!cardholder.contains("SIGNATURE\n"), "{cardholder}");
        assert!(
            cardholder.starts_with("        CARDHOLDER COPY"),
            "{cardholder}"
        );
    }

    #[test]
    fn a_chinese_receipt_uses_chinese_words_and_counts_wide_characters() {
        let text = sample().text(Copy::Cardholder, true, Language::Chinese);
        assert!(text.contains("持卡人存根"));
        assert!(text.contains("重打印凭证"));
        assert!(text.contains("交易类型"));
        assert!(text.contains("消费"));
        assert!(text.contains("借记卡"));
        for line in text.lines().filter(|line| line.starts_with("卡号")) {
            assert_eq!(width(line), RECEIPT_COLUMNS, "{line}");
        }
    }

    #[test]
    fn every_line_fits_the_roll_long_words_and_names_wrap() {
        let receipt = Receipt {
            merchant_name: "陆家嘴咖啡陆家嘴咖啡陆家嘴咖啡陆家嘴咖啡".into(),
            cvm: Cvm::Signature,
            ..sample()
        };
        for language in [Language::English, Language::Chinese] {
            for copy in [Copy::Merchant, Copy::Cardholder] {
                let lines = receipt.lines(copy, true, language);
                for line in &lines {
                    assert!(width(line) <= RECEIPT_COLUMNS, "{line}");
                }
                let text = lines.concat().replace(' ', "");
                if copy == Copy::Merchant {
                    let acknowledge = words(language).acknowledge.replace(' ', "");
                    assert!(text.contains(&acknowledge), "nothing is cut off: {text}");
                }
            }
        }
        assert_eq!(
            wrapped("  ", "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS"),
            [
                "  I ACKNOWLEDGE SATISFACTORY",
                "  RECEIPT OF RELATIVE GOODS"
            ]
        );
        assert_eq!(
            wrapped("", "本人确认以上交易，同意将其记入本卡账户"),
            ["本人确认以上交易，同意将其记入本", "卡账户"]
        );
        assert_eq!(
            wrapped("", &"X".repeat(40)).len(),
            2,
            "a word longer than a line"
        );
        assert!(wrapped("", "").is_empty());
    }

    #[test]
    fn escpos_has_init_cut_and_no_card_number_in_clear() {
        let bytes = sample().escpos(true);
        assert!(bytes.starts_with(ESC_INIT));
        assert!(bytes.ends_with(GS_PARTIAL_CUT));
        assert_eq!(
            bytes
                .windows(GS_PARTIAL_CUT.len())
                .filter(|window| *window == GS_PARTIAL_CUT)
                .count(),
            2,
            "one cut per copy"
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("621234******0003"));
        assert!(text.contains("REPRINT"));
        assert!(bytes.iter().all(|byte| byte.is_ascii()));
    }

    #[test]
    fn the_pdf_has_both_copies_with_chinese_text_and_the_reference_as_a_qr_code() {
        let mut receipt = sample();
        receipt.merchant_name = "陆家嘴咖啡".into();
        let bytes = receipt.pdf(true, Language::Chinese);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            text.matches("/Type /Page ").count(),
            2,
            "merchant and cardholder copies"
        );
        // The Chinese name in the embedded font, on each copy: its glyphs in the font
        // program, its text back through the ToUnicode map.
        assert_eq!(text.matches("/FontFile2 ").count(), 1, "one embedded font");
        assert!(text.contains("+DroidSansFallback /Encoding /Identity-H"));
        let cmap = &text[text.find("beginbfchar").unwrap()..text.find("endcmap").unwrap()];
        let code_of = |c: char| {
            let unit = format!("<{:04X}>", u32::from(c));
            let line = cmap.lines().find(|line| line.ends_with(&unit)).unwrap();
            line[1..5].to_owned()
        };
        let name: String = "陆家嘴咖啡".chars().map(code_of).collect();
        assert_eq!(text.matches(&format!("<{name}")).count(), 2, "{name}");
        assert!(text.contains("(  Shanghai) Tj"), "ASCII lines in Courier");
        assert!(text.contains(" re f"), "the QR code");
        assert!(text.contains(" l S"), "rules for the dashed lines");
        assert!(
            receipt
                .reference()
                .starts_with("easypos:receipt?mid=898310058120001&tid=10000001&batch=")
        );
        // The card as the receipt has it, masked, in Courier after a Chinese label.
        assert_eq!(text.matches(&format!("{}) Tj", receipt.card)).count(), 2);
        let english = String::from_utf8_lossy(&receipt.pdf(false, Language::English)).into_owned();
        // A signed statement, when the host sent one, is what the code carries.
        let signed = Receipt {
            verification: Some("EPR1|000000012345|10000001".into()),
            ..receipt.clone()
        };
        assert_eq!(signed.qr_payload(), "EPR1|000000012345|10000001");
        assert!(english.contains(&receipt.card));
    }

    #[test]
    fn a_signed_receipt_prints_its_payload_as_text_and_as_a_printer_qr_code() {
        let payload = "EPR1|000000012345|10000001|898310058120001|621234******0003|1234|CNY|1764000000|654321|0a1b2c3d|BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw";
        let receipt = Receipt {
            verification: Some(payload.into()),
            ..sample()
        };
        for language in [Language::English, Language::Chinese] {
            let lines = receipt.lines(Copy::Cardholder, false, language);
            assert!(lines.iter().all(|line| width(line) <= RECEIPT_COLUMNS));
            let at = lines
                .iter()
                .position(|line| line.contains("/verify"))
                .unwrap();
            assert_eq!(lines[at + 1..].concat(), payload, "{language:?}");
        }
        // Without a statement (declines, older hosts), no verify block.
        assert!(
            !sample()
                .text(Copy::Cardholder, false, Language::English)
                .contains("/verify")
        );

        let bytes = receipt.escpos(false);
        let store = [
            0x1D,
            0x28,
            0x6B,
            (payload.len() + 3) as u8,
            0x00,
            0x31,
            0x50,
            0x30,
        ];
        let at = bytes
            .windows(store.len())
            .position(|window| window == store)
            .unwrap();
        assert_eq!(
            &bytes[at + store.len()..at + store.len() + payload.len()],
            payload.as_bytes()
        );
        let print = [0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30];
        assert_eq!(
            bytes
                .windows(print.len())
                .filter(|window| *window == print)
                .count(),
            2,
            "a QR code on each copy"
        );
    }
}
