//! A cycle's figures, from its items and the fee schedule; pure.
//!
//! Per merchant and currency: the gross (purchases less cancellations), the refunds, the
//! chargebacks, the MDR on the gross of each (card product, MCC) line, and the net = gross −
//! refunds − chargebacks − fees. What the merchant still owed from earlier cycles (a negative
//! net carried forward) is taken from the net first; the rest is paid out when positive, and a
//! negative rest is carried to later cycles. Per counterparty issuer and currency: the same
//! gross, refunds and chargebacks, the interchange the acquirer pays on the gross of each line,
//! and the net position = gross − refunds − chargebacks − interchange, what the issuer owes
//! the acquirer for the day.
//!
//! Fees are charged on the gross of a line, rounded once per line by the schedule's rule: a
//! refund or a chargeback does not give its fee back, a void (or reversal) of a purchase does.

use crate::ClearingError;
use crate::collect::{Break, Day, Item};
use crate::cycle::Window;
use crate::schedule::Product;
use crate::schedule::{FeeKind, FeeSchedule};
use ledger::{AccountId, InstitutionId};
use money::{Amount, BasisPoints, Currency, MoneyError};
use std::collections::BTreeMap;
use store::directory::Directory;

/// One (card product, MCC) line of a statement or clearing file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub product: Product,
    pub mcc: String,
    /// Items in the line.
    pub count: usize,
    pub gross: Amount,
    pub refunds: Amount,
    pub chargebacks: Amount,
    pub rate: BasisPoints,
    /// The line's MDR (merchant) or interchange (counterparty).
    pub fee: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantSettlement {
    pub merchant_id: String,
    pub name: String,
    pub currency: Currency,
    /// The acquirer's account that owes the merchant (the directory's settlement account).
    pub account: AccountId,
    pub lines: Vec<Line>,
    pub gross: Amount,
    pub refunds: Amount,
    pub chargebacks: Amount,
    pub fees: Amount,
    /// gross − refunds − chargebacks − fees.
    pub net: Amount,
    /// What the merchant owed from earlier cycles' negative nets when this one began; negative
    /// when the acquirer owed it (an operator's adjustment of a break, `crate::adjust`).
    pub carried_in: Amount,
    /// What it owes after this cycle, carried to later ones: carried_in − net when positive.
    pub carried_out: Amount,
    /// net − carried_in when positive: what is paid to the merchant.
    pub payout: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterpartySettlement {
    pub issuer: InstitutionId,
    pub name: String,
    pub currency: Currency,
    pub lines: Vec<Line>,
    pub gross: Amount,
    pub refunds: Amount,
    pub chargebacks: Amount,
    pub interchange: Amount,
    /// gross − refunds − chargebacks − interchange: what the issuer owes the acquirer.
    pub net: Amount,
}

/// A settled cycle's figures and what they came from.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub window: Window,
    pub acquirer: InstitutionId,
    pub merchants: Vec<MerchantSettlement>,
    pub counterparties: Vec<CounterpartySettlement>,
    pub items: Vec<Item>,
    pub breaks: Vec<Break>,
}

fn money(error: MoneyError) -> ClearingError {
    ClearingError::TooLarge(format!("a cycle total does not fit: {error}"))
}

/// Sums of one line while it is built.
struct Sums {
    product: Product,
    count: usize,
    gross: i64,
    refunds: i64,
    chargebacks: i64,
}

impl Sums {
    fn add(&mut self, item: &Item) -> Result<(), ClearingError> {
        let overflow = || ClearingError::TooLarge("a cycle total overflows".to_owned());
        self.count += 1;
        self.gross = self
            .gross
            .checked_add(item.gross().minor())
            .ok_or_else(overflow)?;
        self.refunds = self
            .refunds
            .checked_add(item.refunds().minor())
            .ok_or_else(overflow)?;
        self.chargebacks = self
            .chargebacks
            .checked_add(item.chargebacks().minor())
            .ok_or_else(overflow)?;
        Ok(())
    }
}

/// A line's key: the product by name (`Product` has no order of its own), the MCC.
type LineKey = (&'static str, String);

/// Lines of `items` grouped by `group`, each with its fee from `kind`'s table.
fn lines<'a, K: Ord>(
    items: impl Iterator<Item = &'a Item>,
    group: impl Fn(&Item) -> K,
    kind: FeeKind,
    fees: &FeeSchedule,
) -> Result<BTreeMap<K, Vec<Line>>, ClearingError> {
    let mut sums: BTreeMap<K, BTreeMap<(Currency, LineKey), Sums>> = BTreeMap::new();
    for item in items {
        sums.entry(group(item))
            .or_default()
            .entry((
                item.amount.currency(),
                (item.product.as_str(), item.mcc.clone()),
            ))
            .or_insert_with(|| Sums {
                product: item.product,
                count: 0,
                gross: 0,
                refunds: 0,
                chargebacks: 0,
            })
            .add(item)?;
    }
    let mut out = BTreeMap::new();
    for (key, by_line) in sums {
        let mut built = Vec::new();
        for ((currency, (_, mcc)), sums) in by_line {
            let product = sums.product;
            let rate = fees.rate(kind, product, &mcc)?;
            let gross = Amount::new(sums.gross, currency);
            built.push(Line {
                fee: gross.fee(rate, fees.rounding).map_err(money)?,
                product,
                mcc,
                count: sums.count,
                gross,
                refunds: Amount::new(sums.refunds, currency),
                chargebacks: Amount::new(sums.chargebacks, currency),
                rate,
            });
        }
        out.insert(key, built);
    }
    Ok(out)
}

fn total(
    currency: Currency,
    lines: &[Line],
    part: fn(&Line) -> Amount,
) -> Result<Amount, ClearingError> {
    Amount::checked_sum(currency, lines.iter().map(part)).map_err(money)
}

/// What each merchant owed from earlier cycles when this one began, by (merchant, currency), in
/// minor units (positive: owed by the merchant). Absent means nothing.
pub type CarriedIn = BTreeMap<(String, Currency), i64>;

/// The cycle's figures. Refused when a line has no rate.
pub fn compute(
    directory: &Directory,
    day: Day,
    fees: &FeeSchedule,
    window: Window,
    carried: &CarriedIn,
) -> Result<Settlement, ClearingError> {
    let merchant_names: BTreeMap<&str, (&str, AccountId)> = directory
        .merchants
        .iter()
        .map(|merchant| {
            (
                merchant.id.as_str(),
                (merchant.name.as_str(), merchant.settlement_account),
            )
        })
        .collect();
    let issuer_names: BTreeMap<InstitutionId, &str> = directory
        .institutions
        .iter()
        .map(|institution| (institution.id, institution.name.as_str()))
        .collect();
    let by_merchant = lines(
        day.items.iter(),
        |item| (item.merchant_id.clone(), item.amount.currency()),
        FeeKind::Mdr,
        fees,
    )?;
    let mut merchants = Vec::new();
    for ((merchant_id, currency), lines) in by_merchant {
        let (name, account) = merchant_names
            .get(merchant_id.as_str())
            .copied()
            .ok_or_else(|| ClearingError::UnknownMerchant {
                merchant_id: merchant_id.clone(),
            })?;
        let gross = total(currency, &lines, |line| line.gross)?;
        let refunds = total(currency, &lines, |line| line.refunds)?;
        let chargebacks = total(currency, &lines, |line| line.chargebacks)?;
        let fees = total(currency, &lines, |line| line.fee)?;
        let net = gross
            .checked_sub(refunds)
            .and_then(|rest| rest.checked_sub(chargebacks))
            .and_then(|rest| rest.checked_sub(fees))
            .map_err(money)?;
        // Negative when the acquirer owes the merchant (an adjustment in its favour).
        let carried_in = Amount::new(
            carried
                .get(&(merchant_id.clone(), currency))
                .copied()
                .unwrap_or(0),
            currency,
        );
        let rest = net.checked_sub(carried_in).map_err(money)?;
        merchants.push(MerchantSettlement {
            name: name.to_owned(),
            account,
            payout: Amount::new(rest.minor().max(0), currency),
            carried_out: Amount::new(rest.minor().min(0).saturating_neg(), currency),
            carried_in,
            merchant_id,
            currency,
            lines,
            gross,
            refunds,
            chargebacks,
            fees,
            net,
        });
    }
    let by_issuer = lines(
        day.items.iter(),
        |item| (item.issuer, item.amount.currency()),
        FeeKind::Interchange,
        fees,
    )?;
    let mut counterparties = Vec::new();
    for ((issuer, currency), lines) in by_issuer {
        let gross = total(currency, &lines, |line| line.gross)?;
        let refunds = total(currency, &lines, |line| line.refunds)?;
        let chargebacks = total(currency, &lines, |line| line.chargebacks)?;
        let interchange = total(currency, &lines, |line| line.fee)?;
        counterparties.push(CounterpartySettlement {
            name: issuer_names.get(&issuer).map_or_else(
                || format!("institution {}", issuer.0),
                |name| (*name).to_owned(),
            ),
            issuer,
            currency,
            net: gross
                .checked_sub(refunds)
                .and_then(|rest| rest.checked_sub(chargebacks))
                .and_then(|rest| rest.checked_sub(interchange))
                .map_err(money)?,
            lines,
            gross,
            refunds,
            chargebacks,
            interchange,
        });
    }
    let settlement = Settlement {
        window,
        acquirer: day.acquirer,
        merchants,
        counterparties,
        items: day.items,
        breaks: day.breaks,
    };
    assert_flows_agree(&settlement);
    Ok(settlement)
}

/// What issuers owe before interchange is what merchants earned before fees, per currency:
/// both are sums of the same items. A difference is a bug; crash rather than pay it out.
fn assert_flows_agree(settlement: &Settlement) {
    let mut flows: BTreeMap<Currency, (i128, i128)> = BTreeMap::new();
    for merchant in &settlement.merchants {
        flows.entry(merchant.currency).or_default().0 += i128::from(merchant.gross.minor())
            - i128::from(merchant.refunds.minor())
            - i128::from(merchant.chargebacks.minor());
    }
    for counterparty in &settlement.counterparties {
        flows.entry(counterparty.currency).or_default().1 += i128::from(counterparty.gross.minor())
            - i128::from(counterparty.refunds.minor())
            - i128::from(counterparty.chargebacks.minor());
    }
    for (currency, (merchants, issuers)) in flows {
        assert_eq!(
            merchants, issuers,
            "{currency:?}: merchants' and issuers' figures must come from the same items"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Effect;
    use crate::cycle::CycleRule;
    use crate::schedule::{DEFAULT, Settings};
    use ledger::TransferId;

    fn item(merchant: &str, issuer: u32, product: Product, effect: Effect, minor: i64) -> Item {
        Item {
            journal_id: 1,
            received_at_us: 0,
            kind: "Sale".into(),
            reverses: None,
            effect,
            terminal_id: "10000001".into(),
            merchant_id: merchant.into(),
            batch: 1,
            stan: 1,
            rrn: None,
            card: "621234******0008".into(),
            issuer: InstitutionId(issuer),
            product,
            mcc: "5814".into(),
            amount: Amount::new(minor, Currency::CNY),
            transfer: TransferId(1),
        }
    }

    fn directory() -> Directory {
        Directory {
            merchants: vec![store::directory::Merchant {
                id: "M1".into(),
                acquirer: InstitutionId(10),
                name: "Shop".into(),
                name_zh: "店".into(),
                city: "Shanghai".into(),
                mcc: "5814".into(),
                settlement_account: AccountId(7),
            }],
            ..Directory::default()
        }
    }

    fn settle(items: Vec<Item>) -> Result<Settlement, ClearingError> {
        let settings = Settings::parse(DEFAULT).unwrap();
        let window = CycleRule::default().window(crate::cycle::parse_date("2026-11-25").unwrap());
        compute(
            &directory(),
            Day {
                acquirer: InstitutionId(10),
                items,
                breaks: Vec::new(),
            },
            &settings.fees,
            window,
            &CarriedIn::new(),
        )
    }

    #[test]
    fn fees_are_on_each_lines_gross_and_refunds_keep_theirs() {
        let settlement = settle(vec![
            item("M1", 20, Product::Debit, Effect::Purchase, 10_001),
            item("M1", 20, Product::Debit, Effect::Purchase, 9_999),
            item("M1", 20, Product::Debit, Effect::Cancel, 9_999),
            item("M1", 30, Product::Credit, Effect::Purchase, 1_000),
            item("M1", 30, Product::Credit, Effect::Refund, 400),
        ])
        .unwrap();
        let merchant = &settlement.merchants[0];
        // Debit 50 bp of 10 001 = 50.005 → 50; credit (5814) 38 bp of 1 000 = 3.8 → 4.
        assert_eq!(merchant.fees.minor(), 54);
        assert_eq!(
            (merchant.gross.minor(), merchant.refunds.minor()),
            (11_001, 400)
        );
        assert_eq!(merchant.net.minor(), 11_001 - 400 - 54);
        assert_eq!(merchant.payout, merchant.net);
        let parties: Vec<_> = settlement
            .counterparties
            .iter()
            .map(|party| (party.issuer.0, party.interchange.minor(), party.net.minor()))
            .collect();
        // Debit 35 bp of 10 001 = 35.0035 → 35; credit 26 bp of 1 000 = 2.6 → 3.
        assert_eq!(
            parties,
            vec![(20, 35, 10_001 - 35), (30, 3, 1_000 - 400 - 3)]
        );
    }

    #[test]
    fn a_day_of_refunds_pays_nothing_and_posts_the_other_way() {
        let settlement = settle(vec![
            item("M1", 20, Product::Debit, Effect::Refund, 5_000),
            item("M1", 20, Product::Debit, Effect::Cancel, 2_000),
        ])
        .unwrap();
        let merchant = &settlement.merchants[0];
        // The cancelled purchase gives its fee back: 50 bp of −2 000 = −10.
        assert_eq!((merchant.fees.minor(), merchant.net.minor()), (-10, -6_990));
        assert_eq!(merchant.payout.minor(), 0, "a negative net is not paid");
        assert_eq!(merchant.carried_out.minor(), 6_990, "it is carried forward");
        let transfers = crate::post::transfers(&settlement).unwrap();
        let ledger::TransferKind::Posted {
            debit,
            credit,
            amount,
        } = transfers[0].kind
        else {
            panic!("a posted transfer");
        };
        assert_eq!(
            (debit, credit, amount.minor()),
            (
                acquirer::chart::acquirer_due_from_issuers(InstitutionId(10), Currency::CNY),
                crate::chart::due_from_counterparty(
                    InstitutionId(10),
                    InstitutionId(20),
                    Currency::CNY
                ),
                7_000
            ),
            "the issuer is owed: the pool is debited"
        );
        assert_eq!(transfers.len(), 4, "no payout, a carry");
        let ledger::TransferKind::Posted {
            debit,
            credit,
            amount,
        } = transfers[3].kind
        else {
            panic!("a posted transfer");
        };
        assert_eq!(
            (debit, credit, amount.minor(), transfers[3].code),
            (
                crate::chart::due_from_merchant(InstitutionId(10), "M1", Currency::CNY),
                AccountId(7),
                6_990,
                crate::post::CODE_CARRY
            ),
            "the debt leaves the settlement account for what the merchant owes"
        );
        assert!(transfers[..3].iter().all(|transfer| transfer.linked));
        assert!(!transfers[3].linked, "one chain, closed");
    }

    #[test]
    fn a_carried_debt_is_taken_from_later_nets_first() {
        let day = || {
            vec![
                item("M1", 20, Product::Debit, Effect::Purchase, 10_000),
                item("M1", 20, Product::Debit, Effect::Chargeback, 2_000),
            ]
        };
        let settings = Settings::parse(DEFAULT).unwrap();
        let window = CycleRule::default().window(crate::cycle::parse_date("2026-11-25").unwrap());
        let with_debt = |owed: i64| {
            compute(
                &directory(),
                Day {
                    acquirer: InstitutionId(10),
                    items: day(),
                    breaks: Vec::new(),
                },
                &settings.fees,
                window,
                &CarriedIn::from([(("M1".to_owned(), Currency::CNY), owed)]),
            )
            .unwrap()
        };
        // net = 10 000 − 2 000 chargeback − 50 MDR (the chargeback keeps its fee) = 7 950.
        let partly = with_debt(3_000);
        let merchant = &partly.merchants[0];
        assert_eq!(
            (
                merchant.chargebacks.minor(),
                merchant.net.minor(),
                merchant.carried_in.minor(),
                merchant.payout.minor(),
                merchant.carried_out.minor()
            ),
            (2_000, 7_950, 3_000, 4_950, 0)
        );
        assert_eq!(partly.counterparties[0].net.minor(), 10_000 - 2_000 - 35);
        let carry = crate::post::transfers(&partly).unwrap();
        let ledger::TransferKind::Posted { debit, amount, .. } = carry.last().unwrap().kind else {
            panic!("a posted transfer");
        };
        assert_eq!(
            (debit, amount.minor()),
            (AccountId(7), 3_000),
            "recovered: the settlement account pays the debt back"
        );
        let more = with_debt(10_000);
        let merchant = &more.merchants[0];
        assert_eq!(
            (merchant.payout.minor(), merchant.carried_out.minor()),
            (0, 2_050),
            "still owed, carried on"
        );
    }

    #[test]
    fn an_unpriced_card_product_refuses_the_whole_cycle() {
        let mut settings = Settings::parse(DEFAULT).unwrap();
        settings
            .fees
            .interchange
            .retain(|rate| rate.product != Product::Credit);
        let window = CycleRule::default().window(crate::cycle::parse_date("2026-11-25").unwrap());
        let refused = compute(
            &directory(),
            Day {
                acquirer: InstitutionId(10),
                items: vec![item("M1", 30, Product::Credit, Effect::Purchase, 1_000)],
                breaks: Vec::new(),
            },
            &settings.fees,
            window,
            &CarriedIn::new(),
        );
        assert!(matches!(
            refused,
            Err(ClearingError::NoFee {
                kind: "interchange",
                product: "credit",
                ..
            })
        ));
    }
}
