//! From the stored card (directory record and issuer profile) to the issuer's [`CardProfile`].

use issuer::{BusinessDate, CardProfile, CardStatus, PinReference, YearMonth};
use money::Amount;
use paycrypto::Pan;
use paycrypto::emv::CryptogramVersion;
use store::cards::IssuerCard;
use store::directory::Card;

/// Validation data of an IBM 3624 PIN: the 12 rightmost digits of the presented card number
/// before its check digit (padded to 16 inside the HSM) — easypos's convention, since the
/// number itself is not stored.
fn ibm3624_validation_data(pan: &Pan) -> String {
    let digits = pan.digits();
    let body = &digits[..digits.len().saturating_sub(1)];
    body[body.len().saturating_sub(12)..].to_owned()
}

/// The issuer's view of a card presented with `pan`, or why the stored records cannot give one
/// (a damaged record: the host answers 96 and logs the reason).
pub fn card_profile(card: &Card, stored: &IssuerCard, pan: &Pan) -> Result<CardProfile, String> {
    let status = match stored.status.as_str() {
        "active" => CardStatus::Active,
        "frozen" => CardStatus::Frozen,
        "blocked" => CardStatus::Blocked,
        "lost" => CardStatus::Lost,
        "stolen" => CardStatus::Stolen,
        other => return Err(format!("card {}: unknown status {other:?}", card.id)),
    };
    let expiry = YearMonth::parse_yymm(&card.expiry)
        .ok_or_else(|| format!("card {}: expiry is not YYMM", card.id))?;
    let pin = match (
        stored.pin_method.as_deref(),
        stored.pin_key_index,
        &stored.pin_reference,
    ) {
        (None, _, _) => None,
        (Some("visa-pvv"), Some(pvki), Some(pvv)) => Some(PinReference::VisaPvv {
            pvki: u8::try_from(pvki).map_err(|_| format!("card {}: PVKI out of range", card.id))?,
            pvv: pvv.clone(),
        }),
        (Some("ibm3624"), _, Some(offset)) => Some(PinReference::Ibm3624 {
            offset: offset.clone(),
            validation_data: ibm3624_validation_data(pan),
        }),
        (Some(method), _, _) => {
            return Err(format!(
                "card {}: PIN method {method} without its reference",
                card.id
            ));
        }
    };
    let cryptogram_version = u8::try_from(stored.cryptogram_version)
        .ok()
        .and_then(|number| CryptogramVersion::from_number(number).ok())
        .ok_or_else(|| {
            format!(
                "card {}: unknown cryptogram version {}",
                card.id, stored.cryptogram_version
            )
        })?;
    let spent_on = stored
        .spent_on
        .as_deref()
        .map(parse_date)
        .transpose()
        .map_err(|reason| format!("card {}: {reason}", card.id))?;
    Ok(CardProfile {
        status,
        expiry,
        service_code: stored.service_code.clone(),
        currency: card.currency,
        pin,
        pin_failures: u8::try_from(stored.pin_failures.clamp(0, 255)).unwrap_or(u8::MAX),
        last_atc: stored.last_atc.and_then(|atc| u16::try_from(atc).ok()),
        cryptogram_version,
        daily_limit: stored
            .daily_limit_minor
            .map(|minor| Amount::new(minor, card.currency)),
        spent: Amount::new(stored.spent_minor, card.currency),
        spent_on,
    })
}

/// `YYYY-MM-DD`, the form business dates are stored in.
pub fn parse_date(text: &str) -> Result<BusinessDate, String> {
    let mut parts = text.split('-');
    let mut next = |what: &str| {
        parts
            .next()
            .and_then(|part| part.parse::<u16>().ok())
            .ok_or_else(|| format!("date {text:?}: bad {what}"))
    };
    let (year, month, day) = (next("year")?, next("month")?, next("day")?);
    let month = u8::try_from(month)
        .ok()
        .filter(|month| (1..=12).contains(month))
        .ok_or_else(|| format!("date {text:?}: bad month"))?;
    let day = u8::try_from(day)
        .ok()
        .filter(|day| (1..=31).contains(day))
        .ok_or_else(|| format!("date {text:?}: bad day"))?;
    Ok(BusinessDate { year, month, day })
}

/// The stored form of a business date.
pub fn format_date(date: BusinessDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{AccountId, InstitutionId};
    use money::Currency;
    use store::directory::CardProduct;

    fn card() -> Card {
        Card {
            id: "card-1".into(),
            cardholder_id: "CH1".into(),
            issuer: InstitutionId(20),
            product: CardProduct::Debit,
            pan_first6: "621234".into(),
            pan_last4: "0008".into(),
            expiry: "3012".into(),
            currency: Currency::CNY,
            account: AccountId(7),
            pan_fingerprint: None,
        }
    }

    fn pan() -> Pan {
        Pan::new("6212340000100008").unwrap()
    }

    #[test]
    fn ibm3624_validation_data_comes_from_the_presented_number() {
        let offset = IssuerCard {
            pin_method: Some("ibm3624".into()),
            pin_reference: Some("0451".into()),
            ..stored()
        };
        let profile = card_profile(&card(), &offset, &pan()).unwrap();
        assert_eq!(
            profile.pin,
            Some(PinReference::Ibm3624 {
                offset: "0451".into(),
                validation_data: "234000010000".into()
            })
        );
    }

    fn stored() -> IssuerCard {
        IssuerCard {
            card_id: "card-1".into(),
            status: "active".into(),
            service_code: "201".into(),
            pin_method: Some("visa-pvv".into()),
            pin_key_index: Some(1),
            pin_reference: Some("4723".into()),
            cryptogram_version: 18,
            daily_limit_minor: Some(2_000_000),
            pin_failures: 2,
            last_atc: Some(9),
            spent_minor: 300,
            spent_on: Some("2026-11-25".into()),
        }
    }

    #[test]
    fn stored_records_become_the_issuers_profile() {
        let profile = card_profile(&card(), &stored(), &pan()).unwrap();
        assert_eq!(profile.status, CardStatus::Active);
        assert_eq!(
            profile.expiry,
            YearMonth {
                year: 2030,
                month: 12
            }
        );
        assert_eq!(
            profile.pin,
            Some(PinReference::VisaPvv {
                pvki: 1,
                pvv: "4723".into()
            })
        );
        assert_eq!((profile.pin_failures, profile.last_atc), (2, Some(9)));
        assert_eq!(
            profile.spent_on,
            Some(BusinessDate {
                year: 2026,
                month: 11,
                day: 25
            })
        );
        assert_eq!(
            profile.daily_limit,
            Some(Amount::new(2_000_000, Currency::CNY))
        );
        assert_eq!(format_date(profile.spent_on.unwrap()), "2026-11-25");
    }

    #[test]
    fn damaged_records_are_refused_with_the_reason() {
        let cases = [
            IssuerCard {
                status: "gone".into(),
                ..stored()
            },
            IssuerCard {
                pin_reference: None,
                ..stored()
            },
            IssuerCard {
                cryptogram_version: 99,
                ..stored()
            },
            IssuerCard {
                spent_on: Some("2026-13-01".into()),
                ..stored()
            },
        ];
        for case in cases {
            let error = card_profile(&card(), &case, &pan()).unwrap_err();
            assert!(error.starts_with("card card-1"), "{error}");
        }
        assert!(
            card_profile(
                &Card {
                    expiry: "30".into(),
                    ..card()
                },
                &stored(),
                &pan()
            )
            .is_err()
        );
    }
}
