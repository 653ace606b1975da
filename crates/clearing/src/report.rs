//! A cycle's reports, as CSV files (columns in `docs/settlement.md`): a settlement statement
//! per merchant, a clearing file per counterparty and a reconciliation report of the breaks;
//! and a JSON summary for `easypos settle --json`. Amounts are in minor units, signed; card
//! numbers appear masked, as the journal keeps them.

use crate::collect::{Break, Item};
use crate::compute::{Line, Settlement};
use crate::cycle::{CycleRule, format_date, format_local};
use crate::{ClearingError, Outcome, Status};
use std::path::{Path, PathBuf};

pub const STATEMENT_COLUMNS: &str = "record,date,merchant_id,merchant_name,currency,time,terminal_id,batch,stan,rrn,kind,effect,card,product,mcc,count,gross_minor,refunds_minor,chargebacks_minor,rate_bps,fee_minor,net_minor,carried_in_minor,carried_out_minor,payout_minor";
pub const CLEARING_COLUMNS: &str = "record,date,acquirer,issuer,issuer_name,currency,time,merchant_id,terminal_id,batch,stan,rrn,kind,effect,card,product,mcc,count,gross_minor,refunds_minor,chargebacks_minor,rate_bps,interchange_minor,net_minor";
pub const RECONCILIATION_COLUMNS: &str = "date,break,journal_id,transfer_id,terminal_id,batch,stan,kind,currency,amount_minor,detail,merchant_id,status,adjustment_transfer,adjustment_minor,resolution";

pub const BATCH_COLUMNS: &str = "record,date,closed_at,merchant_id,terminal_id,batch,status,currency,terminal_debit_count,terminal_debit_minor,terminal_credit_count,terminal_credit_minor,host_debit_count,host_debit_minor,host_credit_count,host_credit_minor,stan,difference,terminal_kind,terminal_amount_minor,host_kind,host_amount_minor,card";

/// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn row(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|text| field(text))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

fn kind_of(item: &Item) -> String {
    match &item.reverses {
        Some(reversed) => format!("Reversal of {reversed}"),
        None => item.kind.clone(),
    }
}

/// The columns a transaction shares in both files: time … gross, refunds.
fn item_fields(rule: &CycleRule, item: &Item) -> Vec<String> {
    vec![
        format_local(rule, item.received_at_us),
        item.terminal_id.clone(),
        format!("{:06}", item.batch),
        format!("{:06}", item.stan),
        item.rrn.clone().unwrap_or_default(),
        kind_of(item),
        item.effect.as_str().to_owned(),
        item.card.clone(),
        item.product.as_str().to_owned(),
        item.mcc.clone(),
        "1".to_owned(),
        item.gross().minor().to_string(),
        item.refunds().minor().to_string(),
        item.chargebacks().minor().to_string(),
    ]
}

fn line_fields(line: &Line) -> Vec<String> {
    vec![
        line.product.as_str().to_owned(),
        line.mcc.clone(),
        line.count.to_string(),
        line.gross.minor().to_string(),
        line.refunds.minor().to_string(),
        line.chargebacks.minor().to_string(),
        line.rate.get().to_string(),
        line.fee.minor().to_string(),
        (line.gross.minor() - line.refunds.minor() - line.chargebacks.minor() - line.fee.minor())
            .to_string(),
    ]
}

/// The settlement statement of each merchant: (merchant id, currency alpha, CSV text).
pub fn statements(rule: &CycleRule, settlement: &Settlement) -> Vec<(String, String, String)> {
    let date = format_date(settlement.window.date);
    settlement
        .merchants
        .iter()
        .map(|merchant| {
            let head = |record: &str| {
                vec![
                    record.to_owned(),
                    date.clone(),
                    merchant.merchant_id.clone(),
                    merchant.name.clone(),
                    merchant.currency.alpha().to_owned(),
                ]
            };
            let mut text = format!("{STATEMENT_COLUMNS}\n");
            for item in settlement.items.iter().filter(|item| {
                item.merchant_id == merchant.merchant_id
                    && item.amount.currency() == merchant.currency
            }) {
                let mut fields = head("transaction");
                fields.extend(item_fields(rule, item));
                fields.extend(vec![String::new(); 6]);
                text.push_str(&row(&fields));
            }
            for line in &merchant.lines {
                let mut fields = head("fee");
                fields.extend(vec![String::new(); 8]);
                fields.extend(line_fields(line));
                fields.extend(vec![String::new(); 3]);
                text.push_str(&row(&fields));
            }
            let mut fields = head("total");
            fields.extend(vec![String::new(); 10]);
            fields.extend([
                merchant
                    .lines
                    .iter()
                    .map(|line| line.count)
                    .sum::<usize>()
                    .to_string(),
                merchant.gross.minor().to_string(),
                merchant.refunds.minor().to_string(),
                merchant.chargebacks.minor().to_string(),
                String::new(),
                merchant.fees.minor().to_string(),
                merchant.net.minor().to_string(),
                merchant.carried_in.minor().to_string(),
                merchant.carried_out.minor().to_string(),
                merchant.payout.minor().to_string(),
            ]);
            text.push_str(&row(&fields));
            (
                merchant.merchant_id.clone(),
                merchant.currency.alpha().to_owned(),
                text,
            )
        })
        .collect()
}

/// Characters per line of a PDF statement, and its layout in points.
const PDF_COLUMNS: usize = 104;
const PDF_FONT_POINTS: f32 = 8.0;
const PDF_LINE_POINTS: f32 = 10.0;
const PDF_MARGIN_POINTS: f32 = 36.0;

/// Text cut or padded to `width` characters (right-aligned when `right`).
fn cell(text: &str, width: usize, right: bool) -> String {
    let text: String = text.chars().take(width).collect();
    if right {
        format!("{text:>width$}")
    } else {
        format!("{text:<width$}")
    }
}

/// The settlement statement of each merchant as a PDF (A4, the lines of the CSV laid out as
/// columns): (merchant id, currency alpha, PDF bytes).
pub fn statement_pdfs(rule: &CycleRule, settlement: &Settlement) -> Vec<(String, String, Vec<u8>)> {
    let date = format_date(settlement.window.date);
    settlement
        .merchants
        .iter()
        .map(|merchant| {
            let money = |amount: money::Amount| amount.format_major();
            let mut lines = vec![
                "SETTLEMENT STATEMENT".to_owned(),
                "结算单".to_owned(),
                String::new(),
                format!("Merchant       {}  {}", merchant.merchant_id, merchant.name),
                format!("Business date  {date}    Currency {}", merchant.currency.alpha()),
                format!(
                    "Cycle          {} to {} (local time)",
                    format_local(rule, settlement.window.start_us),
                    format_local(rule, settlement.window.end_us)
                ),
                format!("Acquirer       {}", settlement.acquirer.0),
                String::new(),
                "TRANSACTIONS".to_owned(),
                [
                    cell("Time", 19, false),
                    cell("Terminal", 8, false),
                    cell("Batch", 6, false),
                    cell("Trace", 6, false),
                    cell("Kind", 22, false),
                    cell("Card", 19, false),
                    cell("Amount", 14, true),
                ]
                .join(" "),
            ];
            for item in settlement.items.iter().filter(|item| {
                item.merchant_id == merchant.merchant_id
                    && item.amount.currency() == merchant.currency
            }) {
                let signed = item
                    .gross()
                    .checked_sub(item.refunds())
                    .and_then(|rest| rest.checked_sub(item.chargebacks()))
                    .unwrap_or(item.amount);
                lines.push(
                    [
                        cell(&format_local(rule, item.received_at_us), 19, false),
                        cell(&item.terminal_id, 8, false),
                        cell(&format!("{:06}", item.batch), 6, false),
                        cell(&format!("{:06}", item.stan), 6, false),
                        cell(&kind_of(item), 22, false),
                        cell(&item.card, 19, false),
                        cell(&money(signed), 14, true),
                    ]
                    .join(" "),
                );
            }
            lines.push(String::new());
            lines.push("FEES (MERCHANT DISCOUNT)".to_owned());
            lines.push(
                [
                    cell("Product", 7, false),
                    cell("MCC", 4, false),
                    cell("Count", 6, true),
                    cell("Gross", 13, true),
                    cell("Refunds", 12, true),
                    cell("Chargebacks", 12, true),
                    cell("Rate bp", 7, true),
                    cell("Fee", 10, true),
                    cell("Net", 13, true),
                ]
                .join(" "),
            );
            for line in &merchant.lines {
                let net = line
                    .gross
                    .checked_sub(line.refunds)
                    .and_then(|rest| rest.checked_sub(line.chargebacks))
                    .and_then(|rest| rest.checked_sub(line.fee))
                    .unwrap_or(line.gross);
                lines.push(
                    [
                        cell(line.product.as_str(), 7, false),
                        cell(&line.mcc, 4, false),
                        cell(&line.count.to_string(), 6, true),
                        cell(&money(line.gross), 13, true),
                        cell(&money(line.refunds), 12, true),
                        cell(&money(line.chargebacks), 12, true),
                        cell(&line.rate.get().to_string(), 7, true),
                        cell(&money(line.fee), 10, true),
                        cell(&money(net), 13, true),
                    ]
                    .join(" "),
                );
            }
            lines.push(String::new());
            lines.push("TOTAL".to_owned());
            for (label, amount) in [
                ("Gross", merchant.gross),
                ("Refunds", merchant.refunds),
                ("Chargebacks", merchant.chargebacks),
                ("Fees", merchant.fees),
                ("Net", merchant.net),
                ("Owed from earlier cycles", merchant.carried_in),
                ("Carried to later cycles", merchant.carried_out),
                ("Payout", merchant.payout),
            ] {
                lines.push(format!(
                    "{} {} {}",
                    cell(label, 26, false),
                    cell(&money(amount), 16, true),
                    merchant.currency.alpha()
                ));
            }
            lines.push(String::new());
            lines.push(format!(
                "Amounts in {} major units. The CSV statement of the same cycle has every figure in minor units.",
                merchant.currency.alpha()
            ));
            (
                merchant.merchant_id.clone(),
                merchant.currency.alpha().to_owned(),
                pdf_of(&format!("Settlement statement {} {date}", merchant.merchant_id), &lines),
            )
        })
        .collect()
}

/// Lines of text on as many A4 pages as they take, each page numbered.
fn pdf_of(title: &str, lines: &[String]) -> Vec<u8> {
    let per_page =
        (((pdf::Size::A4_HEIGHT - 2.0 * PDF_MARGIN_POINTS) / PDF_LINE_POINTS) as usize - 2).max(1);
    let chunks: Vec<&[String]> = lines.chunks(per_page).collect();
    let pages = chunks.len();
    let mut document = pdf::Document::new(title);
    for (number, chunk) in chunks.into_iter().enumerate() {
        let mut page = pdf::Page::new(pdf::Size::A4_WIDTH, pdf::Size::A4_HEIGHT);
        let mut y = pdf::Size::A4_HEIGHT - PDF_MARGIN_POINTS;
        for line in chunk {
            let text: String = line.chars().take(PDF_COLUMNS).collect();
            page.text(PDF_MARGIN_POINTS, y, PDF_FONT_POINTS, &text);
            y -= PDF_LINE_POINTS;
        }
        page.text(
            PDF_MARGIN_POINTS,
            PDF_MARGIN_POINTS / 2.0,
            PDF_FONT_POINTS,
            &format!("{title}    page {} of {pages}", number + 1),
        );
        document = document.page(page);
    }
    document.to_bytes()
}

/// The clearing file of each counterparty: (issuer id, currency alpha, CSV text).
pub fn clearing_files(rule: &CycleRule, settlement: &Settlement) -> Vec<(u32, String, String)> {
    let date = format_date(settlement.window.date);
    settlement
        .counterparties
        .iter()
        .map(|party| {
            let head = |record: &str| {
                vec![
                    record.to_owned(),
                    date.clone(),
                    settlement.acquirer.0.to_string(),
                    party.issuer.0.to_string(),
                    party.name.clone(),
                    party.currency.alpha().to_owned(),
                ]
            };
            let mut text = format!("{CLEARING_COLUMNS}\n");
            for item in settlement.items.iter().filter(|item| {
                item.issuer == party.issuer && item.amount.currency() == party.currency
            }) {
                let mut fields = head("transaction");
                let mut shared = item_fields(rule, item);
                // The merchant comes after the time in a clearing file.
                shared.insert(1, item.merchant_id.clone());
                fields.extend(shared);
                fields.extend(["".into(), "".into(), "".into()]);
                text.push_str(&row(&fields));
            }
            for line in &party.lines {
                let mut fields = head("interchange");
                fields.extend(vec![String::new(); 9]);
                fields.extend(line_fields(line));
                text.push_str(&row(&fields));
            }
            let mut fields = head("total");
            fields.extend(vec![String::new(); 11]);
            fields.extend([
                party
                    .lines
                    .iter()
                    .map(|line| line.count)
                    .sum::<usize>()
                    .to_string(),
                party.gross.minor().to_string(),
                party.refunds.minor().to_string(),
                party.chargebacks.minor().to_string(),
                String::new(),
                party.interchange.minor().to_string(),
                party.net.minor().to_string(),
            ]);
            text.push_str(&row(&fields));
            (party.issuer.0, party.currency.alpha().to_owned(), text)
        })
        .collect()
}

/// The reconciliation report: one row per break (only the header when there is none).
pub fn reconciliation(settlement: &Settlement) -> String {
    let date = format_date(settlement.window.date);
    let mut text = format!("{RECONCILIATION_COLUMNS}\n");
    for found in &settlement.breaks {
        text.push_str(&row(&break_fields(&date, found)));
    }
    text
}

fn break_fields(date: &str, found: &Break) -> Vec<String> {
    let number = |value: Option<i64>| value.map(|value| format!("{value:06}")).unwrap_or_default();
    vec![
        date.to_owned(),
        found.kind.as_str().to_owned(),
        found
            .journal_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        found
            .transfer
            .map(|id| format!("{:032x}", id.0))
            .unwrap_or_default(),
        found.terminal_id.clone(),
        number(found.batch),
        number(found.stan),
        found.message_kind.clone(),
        found
            .amount
            .map(|amount| amount.currency().alpha().to_owned())
            .unwrap_or_default(),
        found
            .amount
            .map(|amount| amount.minor().to_string())
            .unwrap_or_default(),
        found.detail.clone(),
        found.merchant_id.clone().unwrap_or_default(),
        if found.resolution.is_some() {
            "resolved"
        } else {
            "open"
        }
        .to_owned(),
        found
            .resolution
            .as_ref()
            .map(|adjustment| adjustment.transfer.clone())
            .unwrap_or_default(),
        found
            .resolution
            .as_ref()
            .map(|adjustment| adjustment.amount_minor.to_string())
            .unwrap_or_default(),
        found
            .resolution
            .as_ref()
            .map(|adjustment| format!("{} ({})", adjustment.reason, adjustment.operator))
            .unwrap_or_default(),
    ]
}

/// The terminal batch closes of the cycle: a `batch` row per close (both sides' totals,
/// `agreed` or `resolved`) followed by a `difference` row per transaction on which the
/// terminal's upload and the host's journal differ.
pub fn batches(rule: &CycleRule, date: &str, closes: &[store::batches::BatchClose]) -> String {
    let mut text = format!("{BATCH_COLUMNS}\n");
    let optional = |value: Option<i64>| value.map(|value| value.to_string()).unwrap_or_default();
    for close in closes {
        let common = [
            date.to_owned(),
            format_local(rule, close.closed_at),
            close.merchant_id.clone(),
            close.terminal_id.clone(),
            format!("{:06}", close.batch),
            close.status.clone(),
            money::Currency::from_numeric(u16::try_from(close.currency).unwrap_or(0))
                .map(|currency| currency.alpha().to_owned())
                .unwrap_or_else(|_| close.currency.to_string()),
        ];
        let sides = [close.terminal, close.host].into_iter().flat_map(|side| {
            [
                side.debit_count,
                side.debit_minor,
                side.credit_count,
                side.credit_minor,
            ]
            .map(|value| value.to_string())
        });
        let mut fields = vec!["batch".to_owned()];
        fields.extend(common.iter().cloned());
        fields.extend(sides);
        fields.extend(std::iter::repeat_n(String::new(), 7));
        text.push_str(&row(&fields));
        for difference in &close.differences {
            let mut fields = vec!["difference".to_owned()];
            fields.extend(common.iter().cloned());
            fields.extend(std::iter::repeat_n(String::new(), 8));
            fields.extend([
                format!("{:06}", difference.stan),
                difference.difference.clone(),
                difference.terminal_kind.clone().unwrap_or_default(),
                optional(difference.terminal_amount_minor),
                difference.host_kind.clone().unwrap_or_default(),
                optional(difference.host_amount_minor),
                difference.card.clone().unwrap_or_default(),
            ]);
            text.push_str(&row(&fields));
        }
    }
    text
}

/// One report file of a cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFile {
    pub name: String,
    /// `statement`, `clearing`, `reconciliation` or `batches`.
    pub kind: &'static str,
    /// The merchant a statement is for.
    pub merchant_id: Option<String>,
    /// ISO 4217 alphabetic; empty for the reconciliation and batch reports.
    pub currency: String,
    pub bytes: Vec<u8>,
}

/// Every report of `outcome`: each merchant's statement as CSV and PDF, each counterparty's
/// clearing file, the reconciliation report and the terminal batches.
pub fn files(rule: &CycleRule, outcome: &Outcome) -> Vec<ReportFile> {
    let settlement = &outcome.settlement;
    let date = format_date(settlement.window.date);
    let mut files = Vec::new();
    for (merchant, currency, text) in statements(rule, settlement) {
        files.push(ReportFile {
            name: format!("statement-{merchant}-{currency}-{date}.csv"),
            kind: "statement",
            merchant_id: Some(merchant),
            currency,
            bytes: text.into_bytes(),
        });
    }
    for (merchant, currency, bytes) in statement_pdfs(rule, settlement) {
        files.push(ReportFile {
            name: format!("statement-{merchant}-{currency}-{date}.pdf"),
            kind: "statement",
            merchant_id: Some(merchant),
            currency,
            bytes,
        });
    }
    for (issuer, currency, text) in clearing_files(rule, settlement) {
        files.push(ReportFile {
            name: format!("clearing-{issuer}-{currency}-{date}.csv"),
            kind: "clearing",
            merchant_id: None,
            currency,
            bytes: text.into_bytes(),
        });
    }
    files.push(ReportFile {
        name: format!("reconciliation-{date}.csv"),
        kind: "reconciliation",
        merchant_id: None,
        currency: String::new(),
        bytes: reconciliation(settlement).into_bytes(),
    });
    files.push(ReportFile {
        name: format!("batches-{date}.csv"),
        kind: "batches",
        merchant_id: None,
        currency: String::new(),
        bytes: batches(rule, &date, &outcome.batches).into_bytes(),
    });
    files
}

/// Writes every report of `outcome` into `directory` (created if needed), each file whole or
/// not at all (written aside, then renamed); returns the paths written.
pub fn write_all(
    rule: &CycleRule,
    outcome: &Outcome,
    directory: &Path,
) -> Result<Vec<PathBuf>, ClearingError> {
    let failed = |path: &Path, error: std::io::Error| ClearingError::Report {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    std::fs::create_dir_all(directory).map_err(|error| failed(directory, error))?;
    let mut written = Vec::new();
    for file in files(rule, outcome) {
        let path = directory.join(&file.name);
        let aside = directory.join(format!(".{}.tmp", file.name));
        std::fs::write(&aside, file.bytes).map_err(|error| failed(&aside, error))?;
        std::fs::rename(&aside, &path).map_err(|error| failed(&path, error))?;
        written.push(path);
    }
    Ok(written)
}

/// Keeps every report of `outcome` in the store, for the console (a rerun replaces them).
pub async fn keep(
    store: &store::Store,
    rule: &CycleRule,
    outcome: &Outcome,
    now_unix_seconds: i64,
) -> Result<(), ClearingError> {
    let date = format_date(outcome.settlement.window.date);
    let reports = files(rule, outcome)
        .into_iter()
        .map(|file| store::settlement_reports::SettlementReport {
            date: date.clone(),
            name: file.name,
            kind: file.kind.to_owned(),
            merchant_id: file.merchant_id,
            currency: file.currency,
            written_at: now_unix_seconds,
            content: file.bytes,
        })
        .collect();
    store.put_settlement_reports(reports).await?;
    Ok(())
}

/// The run in one JSON object (`easypos settle --json`).
pub fn summary(outcome: &Outcome) -> serde_json::Value {
    use serde_json::json;
    let settlement = &outcome.settlement;
    let status = match &outcome.status {
        Status::Posted { transfers } => json!({"status": "posted", "transfers": transfers}),
        Status::FoundPosted { transfers } => {
            json!({"status": "found_posted", "transfers": transfers})
        }
        Status::Rerun { differences } => json!({"status": "rerun", "differences": differences}),
    };
    json!({
        "date": format_date(settlement.window.date),
        "window_start_us": settlement.window.start_us,
        "window_end_us": settlement.window.end_us,
        "run": status,
        "closed_at_unix": outcome.record.closed_at_unix,
        "transactions": settlement.items.len(),
        "breaks": settlement.breaks.len(),
        "breaks_resolved": settlement.breaks.iter().filter(|found| found.resolution.is_some()).count(),
        "terminal_batches": outcome.batches.len(),
        "terminal_batch_differences": outcome.batches.iter().map(|close| close.differences.len()).sum::<usize>(),
        "merchants": settlement.merchants.iter().map(|merchant| json!({
            "merchant_id": merchant.merchant_id,
            "name": merchant.name,
            "currency": merchant.currency.alpha(),
            "gross_minor": merchant.gross.minor(),
            "refunds_minor": merchant.refunds.minor(),
            "chargebacks_minor": merchant.chargebacks.minor(),
            "fees_minor": merchant.fees.minor(),
            "net_minor": merchant.net.minor(),
            "carried_in_minor": merchant.carried_in.minor(),
            "carried_out_minor": merchant.carried_out.minor(),
            "payout_minor": merchant.payout.minor(),
        })).collect::<Vec<_>>(),
        "counterparties": settlement.counterparties.iter().map(|party| json!({
            "issuer": party.issuer.0,
            "name": party.name,
            "currency": party.currency.alpha(),
            "gross_minor": party.gross.minor(),
            "refunds_minor": party.refunds.minor(),
            "chargebacks_minor": party.chargebacks.minor(),
            "interchange_minor": party.interchange.minor(),
            "net_minor": party.net.minor(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("Lujiazui Coffee"), "Lujiazui Coffee");
        assert_eq!(field("Books, Maps"), "\"Books, Maps\"");
        assert_eq!(field("a \"quote\""), "\"a \"\"quote\"\"\"");
        assert_eq!(row(&["a".into(), "b,c".into()]), "a,\"b,c\"\n");
    }

    #[test]
    fn the_batch_report_lists_each_close_and_its_differences() {
        use store::batches::{BatchClose, BatchDifference, BatchSide};
        let close = BatchClose {
            id: 7,
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            batch: 3,
            closed_at: 1_795_600_000_000_000,
            status: "resolved".into(),
            currency: 156,
            terminal: BatchSide {
                debit_count: 2,
                debit_minor: 1_700,
                ..BatchSide::default()
            },
            host: BatchSide {
                debit_count: 1,
                debit_minor: 1_000,
                ..BatchSide::default()
            },
            differences: vec![BatchDifference {
                stan: 12,
                difference: "terminal_only".into(),
                terminal_kind: Some("Sale".into()),
                terminal_amount_minor: Some(700),
                host_kind: None,
                host_amount_minor: None,
                card: Some("621234******0001".into()),
            }],
        };
        let text = batches(&CycleRule::default(), "2026-11-25", &[close]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let columns = BATCH_COLUMNS.split(',').count();
        for line in &lines {
            assert_eq!(line.split(',').count(), columns, "{line}");
        }
        assert!(
            lines[1].starts_with("batch,2026-11-25,")
                && lines[1].contains(",10000001,000003,resolved,CNY,2,1700,0,0,1,1000,0,0,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with(",000012,terminal_only,Sale,700,,,621234******0001"),
            "{}",
            lines[2]
        );
        assert_eq!(
            batches(&CycleRule::default(), "2026-11-25", &[])
                .lines()
                .count(),
            1
        );
    }

    /// A merchant's day of one debit sale, one credit sale refunded in part, and a reversal.
    fn settlement() -> Settlement {
        use crate::collect::{Day, Effect};
        use crate::schedule::Product;
        use ledger::{AccountId, InstitutionId, TransferId};
        use money::{Amount, Currency};
        use store::directory::{Directory, Institution, InstitutionKind, Merchant};
        let rule = CycleRule::default();
        let date = crate::cycle::parse_date("2026-11-25").unwrap();
        let window = rule.window(date);
        let item = |stan: i64, kind: &str, effect, product, issuer, minor| Item {
            journal_id: stan,
            received_at_us: window.start_us + stan * 60_000_000,
            kind: kind.into(),
            reverses: (kind == "Reversal").then(|| "Sale".to_owned()),
            effect,
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            batch: 1,
            stan,
            rrn: Some(format!("{stan:012}")),
            card: "621234******0008".into(),
            issuer: InstitutionId(issuer),
            product,
            mcc: "5814".into(),
            amount: Amount::new(minor, Currency::CNY),
            transfer: TransferId(1),
        };
        let directory = Directory {
            institutions: vec![Institution {
                id: InstitutionId(20),
                kind: InstitutionKind::DebitBank,
                name: "Huangpu Commercial Bank".into(),
                name_zh: "黄浦商业银行".into(),
            }],
            merchants: vec![Merchant {
                id: "898310058120001".into(),
                acquirer: InstitutionId(10),
                name: "Lujiazui Coffee, Pudong".into(),
                name_zh: "陆家嘴咖啡".into(),
                city: "Shanghai".into(),
                mcc: "5814".into(),
                settlement_account: AccountId(7),
            }],
            ..Directory::default()
        };
        let settings = crate::Settings::parse(crate::schedule::DEFAULT).unwrap();
        crate::compute::compute(
            &directory,
            Day {
                acquirer: InstitutionId(10),
                items: vec![
                    item(1, "Sale", Effect::Purchase, Product::Debit, 20, 12_345),
                    item(2, "Sale", Effect::Purchase, Product::Credit, 30, 88_800),
                    item(3, "Refund", Effect::Refund, Product::Credit, 30, 800),
                    item(4, "Sale", Effect::Purchase, Product::Debit, 20, 500),
                    item(4, "Reversal", Effect::Cancel, Product::Debit, 20, 500),
                ],
                breaks: Vec::new(),
            },
            &settings.fees,
            window,
            &crate::compute::CarriedIn::new(),
        )
        .unwrap()
    }

    #[test]
    fn a_statement_as_a_merchant_reads_it() {
        let statements = statements(&CycleRule::default(), &settlement());
        let (merchant, currency, text) = &statements[0];
        assert_eq!(
            (merchant.as_str(), currency.as_str()),
            ("898310058120001", "CNY")
        );
        let expected = "\
record,date,merchant_id,merchant_name,currency,time,terminal_id,batch,stan,rrn,kind,effect,card,product,mcc,count,gross_minor,refunds_minor,chargebacks_minor,rate_bps,fee_minor,net_minor,carried_in_minor,carried_out_minor,payout_minor
transaction,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,2026-11-24 23:01:00,10000001,000001,000001,000000000001,Sale,purchase,621234******0008,debit,5814,1,12345,0,0,,,,,,
transaction,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,2026-11-24 23:02:00,10000001,000001,000002,000000000002,Sale,purchase,621234******0008,credit,5814,1,88800,0,0,,,,,,
transaction,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,2026-11-24 23:03:00,10000001,000001,000003,000000000003,Refund,refund,621234******0008,credit,5814,1,0,800,0,,,,,,
transaction,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,2026-11-24 23:04:00,10000001,000001,000004,000000000004,Sale,purchase,621234******0008,debit,5814,1,500,0,0,,,,,,
transaction,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,2026-11-24 23:04:00,10000001,000001,000004,000000000004,Reversal of Sale,cancel,621234******0008,debit,5814,1,-500,0,0,,,,,,
fee,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,,,,,,,,,credit,5814,2,88800,800,0,38,337,87663,,,
fee,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,,,,,,,,,debit,5814,3,12345,0,0,50,62,12283,,,
total,2026-11-25,898310058120001,\"Lujiazui Coffee, Pudong\",CNY,,,,,,,,,,,5,101145,800,0,,399,99946,0,0,99946
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_clearing_file_as_an_issuer_reads_it() {
        let files = clearing_files(&CycleRule::default(), &settlement());
        let (issuer, currency, text) = &files[0];
        assert_eq!((*issuer, currency.as_str()), (20, "CNY"));
        let expected = "\
record,date,acquirer,issuer,issuer_name,currency,time,merchant_id,terminal_id,batch,stan,rrn,kind,effect,card,product,mcc,count,gross_minor,refunds_minor,chargebacks_minor,rate_bps,interchange_minor,net_minor
transaction,2026-11-25,10,20,Huangpu Commercial Bank,CNY,2026-11-24 23:01:00,898310058120001,10000001,000001,000001,000000000001,Sale,purchase,621234******0008,debit,5814,1,12345,0,0,,,
transaction,2026-11-25,10,20,Huangpu Commercial Bank,CNY,2026-11-24 23:04:00,898310058120001,10000001,000001,000004,000000000004,Sale,purchase,621234******0008,debit,5814,1,500,0,0,,,
transaction,2026-11-25,10,20,Huangpu Commercial Bank,CNY,2026-11-24 23:04:00,898310058120001,10000001,000001,000004,000000000004,Reversal of Sale,cancel,621234******0008,debit,5814,1,-500,0,0,,,
interchange,2026-11-25,10,20,Huangpu Commercial Bank,CNY,,,,,,,,,,debit,5814,3,12345,0,0,35,43,12302
total,2026-11-25,10,20,Huangpu Commercial Bank,CNY,,,,,,,,,,,,3,12345,0,0,,43,12302
";
        assert_eq!(text, expected);
        assert_eq!(files[1].0, 30, "a file per counterparty");
    }

    #[test]
    fn a_pdf_statement_holds_the_statements_figures() {
        let pdfs = statement_pdfs(&CycleRule::default(), &settlement());
        let (merchant, currency, bytes) = &pdfs[0];
        assert_eq!(
            (merchant.as_str(), currency.as_str()),
            ("898310058120001", "CNY")
        );
        assert!(bytes.starts_with(b"%PDF-1.4"));
        // Content streams are not compressed: the figures can be read back.
        let text = String::from_utf8_lossy(bytes);
        for expected in [
            "SETTLEMENT STATEMENT",
            "Lujiazui Coffee, Pudong",
            "Business date  2026-11-25",
            "Reversal of Sale",
            "621234******0008",
            "999.46 CNY",
            "page 1 of 1",
        ] {
            assert!(text.contains(expected), "{expected}");
        }
    }

    #[test]
    fn column_lists_have_the_documented_widths() {
        assert_eq!(STATEMENT_COLUMNS.split(',').count(), 25);
        assert_eq!(CLEARING_COLUMNS.split(',').count(), 24);
        assert_eq!(RECONCILIATION_COLUMNS.split(',').count(), 16);
    }
}
