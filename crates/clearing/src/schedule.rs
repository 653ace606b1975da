//! The clearing configuration: the cycle's time zone and cut-off, and the fee schedule —
//! merchant discount rates (MDR) and interchange in basis points by card product and merchant
//! category code (MCC). It is a TOML file; [`DEFAULT`] is the demo world's.
//!
//! ```
//! let settings = clearing::Settings::parse(clearing::schedule::DEFAULT).unwrap();
//! let rate = settings
//!     .fees
//!     .mdr(clearing::Product::Credit, "5814")
//!     .unwrap();
//! assert_eq!(rate.get(), 38);
//! ```

use crate::ClearingError;
use crate::cycle::CycleRule;
use money::{BasisPoints, Rounding};
use serde::Deserialize;
use store::directory::CardProduct;

/// What a payment is priced as: a card product, or a QR payment from a mobile wallet, which
/// has fee lines of its own (`product = "wallet"`, docs/settlement.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    Debit,
    Credit,
    /// A QR payment's wallet balance (issue 8).
    Wallet,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Debit, Product::Credit, Product::Wallet];

    pub fn as_str(self) -> &'static str {
        match self {
            Product::Debit => "debit",
            Product::Credit => "credit",
            Product::Wallet => "wallet",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Product::ALL
            .into_iter()
            .find(|product| product.as_str() == text)
    }
}

impl From<CardProduct> for Product {
    fn from(product: CardProduct) -> Self {
        match product {
            CardProduct::Debit => Product::Debit,
            CardProduct::Credit => Product::Credit,
        }
    }
}

/// The demo world's clearing configuration.
pub const DEFAULT: &str = include_str!("default_clearing.toml");

/// Entries per fee table: a schedule is read by people, and a longer one is a mistake.
pub const MAX_FEE_ENTRIES: usize = 1_000;

/// The highest rate accepted: a fee above the amount is a typing error.
const MAX_BPS: u32 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cycle: Option<CycleFile>,
    fees: FeesFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CycleFile {
    time_zone: Option<String>,
    cut_off: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeesFile {
    rounding: Option<Rounding>,
    #[serde(default)]
    mdr: Vec<RateFile>,
    #[serde(default)]
    interchange: Vec<RateFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFile {
    product: String,
    mcc: String,
    bps: u32,
}

/// One line of a fee table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    pub product: Product,
    /// Four digits, or `None` for any MCC.
    pub mcc: Option<String>,
    pub bps: BasisPoints,
}

/// Which fee a rate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeeKind {
    Mdr,
    Interchange,
}

impl FeeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeeKind::Mdr => "mdr",
            FeeKind::Interchange => "interchange",
        }
    }
}

/// The fee tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeSchedule {
    pub rounding: Rounding,
    pub mdr: Vec<Rate>,
    pub interchange: Vec<Rate>,
}

impl FeeSchedule {
    /// The MDR of a card product at an MCC: the exact MCC's line, else the `*` line.
    pub fn mdr(&self, product: Product, mcc: &str) -> Result<BasisPoints, ClearingError> {
        lookup(&self.mdr, FeeKind::Mdr, product, mcc)
    }

    pub fn interchange(&self, product: Product, mcc: &str) -> Result<BasisPoints, ClearingError> {
        lookup(&self.interchange, FeeKind::Interchange, product, mcc)
    }

    pub fn rate(
        &self,
        kind: FeeKind,
        product: Product,
        mcc: &str,
    ) -> Result<BasisPoints, ClearingError> {
        match kind {
            FeeKind::Mdr => self.mdr(product, mcc),
            FeeKind::Interchange => self.interchange(product, mcc),
        }
    }
}

fn lookup(
    table: &[Rate],
    kind: FeeKind,
    product: Product,
    mcc: &str,
) -> Result<BasisPoints, ClearingError> {
    let of_product = || table.iter().filter(|rate| rate.product == product);
    of_product()
        .find(|rate| rate.mcc.as_deref() == Some(mcc))
        .or_else(|| of_product().find(|rate| rate.mcc.is_none()))
        .map(|rate| rate.bps)
        .ok_or_else(|| ClearingError::NoFee {
            kind: kind.as_str(),
            product: product.as_str(),
            mcc: mcc.to_owned(),
        })
}

/// The whole clearing configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub cycle: CycleRule,
    pub fees: FeeSchedule,
}

impl Settings {
    /// Reads and checks a clearing TOML file's text; an error names the setting at fault.
    pub fn parse(text: &str) -> Result<Settings, ClearingError> {
        let file: File = toml::from_str(text)
            .map_err(|error| ClearingError::Config(format!("clearing configuration: {error}")))?;
        let defaults = CycleRule::default();
        let cycle = match file.cycle {
            None => defaults,
            Some(cycle) => CycleRule::parse(
                cycle.time_zone.as_deref().unwrap_or("Asia/Shanghai"),
                cycle.cut_off.as_deref().unwrap_or("23:00"),
            )?,
        };
        Ok(Settings {
            cycle,
            fees: FeeSchedule {
                rounding: file.fees.rounding.unwrap_or(Rounding::HalfUp),
                mdr: rates(file.fees.mdr, FeeKind::Mdr)?,
                interchange: rates(file.fees.interchange, FeeKind::Interchange)?,
            },
        })
    }
}

fn rates(lines: Vec<RateFile>, kind: FeeKind) -> Result<Vec<Rate>, ClearingError> {
    let name = kind.as_str();
    if lines.len() > MAX_FEE_ENTRIES {
        return Err(ClearingError::Config(format!(
            "fees.{name} has {} lines, more than {MAX_FEE_ENTRIES}",
            lines.len()
        )));
    }
    let mut out: Vec<Rate> = Vec::with_capacity(lines.len());
    for (index, line) in lines.into_iter().enumerate() {
        let at = format!("fees.{name}[{index}]");
        let product = Product::parse(&line.product).ok_or_else(|| {
            ClearingError::Config(format!(
                "{at}.product = {:?}: use \"debit\", \"credit\" or \"wallet\"",
                line.product
            ))
        })?;
        let mcc = match line.mcc.as_str() {
            "*" => None,
            mcc if mcc.len() == 4 && mcc.bytes().all(|byte| byte.is_ascii_digit()) => {
                Some(mcc.to_owned())
            }
            other => {
                return Err(ClearingError::Config(format!(
                    "{at}.mcc = {other:?}: use four digits (ISO 18245) or \"*\" for any"
                )));
            }
        };
        if line.bps > MAX_BPS {
            return Err(ClearingError::Config(format!(
                "{at}.bps = {}: at most {MAX_BPS} (100 %)",
                line.bps
            )));
        }
        if out
            .iter()
            .any(|rate| rate.product == product && rate.mcc == mcc)
        {
            return Err(ClearingError::Config(format!(
                "{at}: {} cards at MCC {} are priced twice",
                line.product, line.mcc
            )));
        }
        out.push(Rate {
            product,
            mcc,
            bps: BasisPoints::new(line.bps),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_prices_every_card_product() {
        let settings = Settings::parse(DEFAULT).unwrap();
        assert_eq!(settings.cycle, CycleRule::default());
        assert_eq!(settings.fees.rounding, Rounding::HalfUp);
        let check = |kind, product, mcc, bps: u32| {
            assert_eq!(
                settings.fees.rate(kind, product, mcc).unwrap().get(),
                bps,
                "{kind:?} {product:?} {mcc}"
            );
        };
        check(FeeKind::Mdr, Product::Debit, "5814", 50);
        check(FeeKind::Mdr, Product::Credit, "5814", 38);
        check(FeeKind::Mdr, Product::Credit, "5942", 60);
        check(FeeKind::Interchange, Product::Debit, "5942", 35);
        check(FeeKind::Interchange, Product::Credit, "5814", 26);
    }

    #[test]
    fn a_missing_rate_is_refused_by_name() {
        let settings = Settings::parse(
            "[fees]\n[[fees.mdr]]\nproduct = \"debit\"\nmcc = \"5814\"\nbps = 50\n",
        )
        .unwrap();
        assert_eq!(settings.fees.mdr(Product::Debit, "5814").unwrap().get(), 50);
        let error = settings.fees.mdr(Product::Debit, "5942").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no mdr rate for debit cards at MCC 5942: add a [[fees.mdr]] line with product = \"debit\" and mcc = \"5942\" (or \"*\") to the clearing configuration"
        );
        assert!(settings.fees.interchange(Product::Credit, "5814").is_err());
    }

    #[test]
    fn bad_configuration_names_the_setting() {
        for (text, expected) in [
            (
                "[fees]\n[[fees.mdr]]\nproduct = \"prepaid\"\nmcc = \"*\"\nbps = 1\n",
                "fees.mdr[0].product",
            ),
            (
                "[fees]\n[[fees.mdr]]\nproduct = \"debit\"\nmcc = \"58\"\nbps = 1\n",
                "fees.mdr[0].mcc",
            ),
            (
                "[fees]\n[[fees.interchange]]\nproduct = \"debit\"\nmcc = \"*\"\nbps = 10001\n",
                "fees.interchange[0].bps",
            ),
            (
                "[fees]\n[[fees.mdr]]\nproduct = \"debit\"\nmcc = \"*\"\nbps = 1\n[[fees.mdr]]\nproduct = \"debit\"\nmcc = \"*\"\nbps = 2\n",
                "priced twice",
            ),
            ("[fees]\nrounding = \"nearest\"\n", "rounding"),
            ("[cycle]\ncut_off = \"23h\"\n[fees]\n", "cycle.cut_off"),
            ("[fees]\nsurprise = 1\n", "surprise"),
        ] {
            let error = Settings::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
