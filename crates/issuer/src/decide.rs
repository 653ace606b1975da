//! The decision, in the order an issuer checks: who the card is (status, expiry), whether the
//! request makes sense (amount, currency), whether the card is genuine (CVV or ARQC with ATC),
//! whether the cardholder is (PIN, with its try counter), and whether the card may spend this
//! much today. The first failing check decides; later checks are not run, so a counterfeit card
//! never burns a PIN try.

use crate::types::*;
use hsm::{ArpcInput, ArqcRequest, Hsm, PinVerification};
use iso8583::ResponseCode;
use ledger::TransferError;
use money::Amount;
use paycrypto::Pan;
use paycrypto::card::DecimalisationTable;
use paycrypto::emv::ArpcMethod;

/// The decimalisation table used with IBM 3624 offsets (the common default; per-product tables
/// come with card products).
const DECIMALISATION_TABLE: &str = "0123456789012345";
/// Pad character of IBM 3624 validation data.
const IBM3624_PAD: char = 'F';

type Refusal = (ResponseCode, Reason);

pub fn decide(
    hsm: &dyn Hsm,
    card: &CardProfile,
    keys: &CardKeys,
    request: &AuthorizationRequest<'_>,
) -> Decision {
    let mut update = CardUpdate {
        pin_failures: card.pin_failures,
        last_atc: card.last_atc,
        spend: None,
    };
    let mut approval_arpc = None;
    let outcome = check_card(card, request)
        .and_then(|()| check_amount(card, request))
        .and_then(|()| authenticate_card(hsm, card, keys, request, &mut update, &mut approval_arpc))
        .and_then(|()| verify_pin(hsm, card, keys, request, &mut update))
        .and_then(|()| check_limit(card, request, &mut update));
    match outcome {
        Ok(()) => Decision {
            response: ResponseCode::Approved,
            reason: Reason::Approved,
            update,
            approval_arpc,
        },
        Err((response, reason)) => {
            update.spend = None;
            Decision {
                response,
                reason,
                update,
                approval_arpc,
            }
        }
    }
}

fn check_card(card: &CardProfile, request: &AuthorizationRequest<'_>) -> Result<(), Refusal> {
    match card.status {
        CardStatus::Active => {}
        CardStatus::Lost => return Err((ResponseCode::LostCard, Reason::CardLost)),
        CardStatus::Stolen => return Err((ResponseCode::StolenCard, Reason::CardStolen)),
        CardStatus::Blocked => return Err((ResponseCode::RestrictedCard, Reason::CardBlocked)),
        CardStatus::Frozen => return Err((ResponseCode::RestrictedCard, Reason::CardFrozen)),
    }
    // A card is valid through the last day of its expiry month.
    if card.expiry < request.today.year_month() {
        return Err((ResponseCode::ExpiredCard, Reason::CardExpired));
    }
    Ok(())
}

fn check_amount(card: &CardProfile, request: &AuthorizationRequest<'_>) -> Result<(), Refusal> {
    if request.amount.currency() != card.currency {
        return Err((
            ResponseCode::NotPermittedToCardholder,
            Reason::CurrencyNotSupported,
        ));
    }
    let valid = match request.kind {
        TransactionKind::BalanceInquiry => request.amount.minor() == 0,
        TransactionKind::Purchase | TransactionKind::PreAuthorization => request.amount.minor() > 0,
    };
    if valid {
        Ok(())
    } else {
        Err((ResponseCode::InvalidAmount, Reason::InvalidAmount))
    }
}

fn hsm_failure<E>(_: E) -> Refusal {
    (ResponseCode::SystemMalfunction, Reason::HsmFailure)
}

/// A service code starting with 2 or 6 marks a chip card (ISO/IEC 7813).
pub fn is_chip_card(service_code: &str) -> bool {
    service_code.starts_with('2') || service_code.starts_with('6')
}

fn authenticate_card(
    hsm: &dyn Hsm,
    card: &CardProfile,
    keys: &CardKeys,
    request: &AuthorizationRequest<'_>,
    update: &mut CardUpdate,
    approval_arpc: &mut Option<IssuerAuthentication>,
) -> Result<(), Refusal> {
    match request.presentation {
        Presentation::Magstripe {
            expiry,
            service_code,
            cvv,
            fallback,
        } => {
            if expiry != card.expiry {
                return Err((ResponseCode::DoNotHonor, Reason::ExpiryMismatch));
            }
            if service_code != card.service_code {
                return Err((ResponseCode::DoNotHonor, Reason::ServiceCodeMismatch));
            }
            if is_chip_card(service_code) && !fallback {
                return Err((ResponseCode::DoNotHonor, Reason::ChipCardSwiped));
            }
            let valid = hsm
                .verify_cvv(&keys.cvk, request.pan, &expiry.yymm(), service_code, cvv)
                .map_err(hsm_failure)?;
            if valid {
                Ok(())
            } else {
                Err((ResponseCode::DoNotHonor, Reason::CvvMismatch))
            }
        }
        Presentation::Chip(chip) | Presentation::Contactless(chip) => {
            if card.last_atc.is_some_and(|last| chip.atc <= last) {
                return Err((ResponseCode::DoNotHonor, Reason::AtcReplayed));
            }
            let (input, suffix) = arpc_input(card, ResponseCode::Approved);
            let outcome = hsm
                .verify_arqc(&arqc_request(card, keys, request.pan, &chip), Some(&input))
                .map_err(hsm_failure)?;
            if !outcome.arqc_valid {
                return Err((ResponseCode::DoNotHonor, Reason::ArqcInvalid));
            }
            *approval_arpc = outcome
                .arpc
                .and_then(|arpc| IssuerAuthentication::new(&arpc, &suffix));
            update.last_atc = Some(chip.atc);
            Ok(())
        }
    }
}

fn arqc_request<'a>(
    card: &CardProfile,
    keys: &'a CardKeys,
    pan: &'a Pan,
    chip: &ChipData<'a>,
) -> ArqcRequest<'a> {
    ArqcRequest {
        issuer_master_key: &keys.imk_ac,
        pan,
        psn: chip.psn,
        atc: chip.atc.to_be_bytes(),
        unpredictable_number: chip.unpredictable_number,
        cryptogram_version: card.cryptogram_version,
        data: chip.data,
        arqc: chip.arqc,
    }
}

fn verify_pin(
    hsm: &dyn Hsm,
    card: &CardProfile,
    keys: &CardKeys,
    request: &AuthorizationRequest<'_>,
    update: &mut CardUpdate,
) -> Result<(), Refusal> {
    let Some(pin) = request.pin else {
        return Ok(());
    };
    let Some(reference) = &card.pin else {
        return Err((ResponseCode::IncorrectPin, Reason::NoPinOnFile));
    };
    if card.pin_failures >= MAX_PIN_TRIES {
        return Err((ResponseCode::PinTriesExceeded, Reason::PinTriesExhausted));
    }
    let table = DecimalisationTable::new(DECIMALISATION_TABLE).map_err(hsm_failure)?;
    let method = match reference {
        PinReference::VisaPvv { pvki, pvv } => PinVerification::VisaPvv {
            pvk: &keys.pvk,
            pvki: *pvki,
            pvv,
        },
        PinReference::Ibm3624 {
            offset,
            validation_data,
        } => PinVerification::Ibm3624 {
            pvk: &keys.pvk,
            validation_data,
            pad: IBM3624_PAD,
            table,
            offset,
        },
    };
    // A block that does not even decode (wrong key, wrong PAN) is a wrong PIN to the
    // cardholder, and counts as one; only an HSM that cannot work at all is a malfunction.
    let correct = match hsm.verify_pin(pin.block, &pin.source, request.pan, &method) {
        Ok(correct) => correct,
        Err(hsm::HsmError::Crypto(_)) => false,
        Err(error) => return Err(hsm_failure(error)),
    };
    if correct {
        update.pin_failures = 0;
        return Ok(());
    }
    update.pin_failures = card.pin_failures.saturating_add(1);
    if update.pin_failures >= MAX_PIN_TRIES {
        Err((ResponseCode::PinTriesExceeded, Reason::PinTriesExhausted))
    } else {
        Err((ResponseCode::IncorrectPin, Reason::PinIncorrect))
    }
}

fn check_limit(
    card: &CardProfile,
    request: &AuthorizationRequest<'_>,
    update: &mut CardUpdate,
) -> Result<(), Refusal> {
    if request.kind == TransactionKind::BalanceInquiry {
        return Ok(());
    }
    let spent_today = if card.spent_on == Some(request.today) {
        card.spent
    } else {
        Amount::zero(card.currency)
    };
    let total = spent_today
        .checked_add(request.amount)
        .map_err(|_| (ResponseCode::InvalidAmount, Reason::InvalidAmount))?;
    if card
        .daily_limit
        .is_some_and(|limit| total.minor() > limit.minor())
    {
        return Err((ResponseCode::ExceedsAmountLimit, Reason::DailyLimitExceeded));
    }
    update.spend = Some((total, request.today));
    Ok(())
}

/// The issuer authentication data for EMV tag 91, once the final response is known: ARPC‖ARC
/// (method 1) or ARPC‖CSU (method 2). `None` when the ARQC itself does not verify (the card
/// gets no ARPC then). The card status update of method 2 is an easypos convention: byte 4 bit
/// 8 set means "approved"; no counters are reset or blocked through it.
pub fn arpc(
    hsm: &dyn Hsm,
    card: &CardProfile,
    keys: &CardKeys,
    pan: &Pan,
    chip: &ChipData<'_>,
    response: ResponseCode,
) -> Result<Option<Vec<u8>>, hsm::HsmError> {
    let (input, suffix) = arpc_input(card, response);
    let outcome = hsm.verify_arqc(&arqc_request(card, keys, pan, chip), Some(&input))?;
    Ok(match (outcome.arqc_valid, outcome.arpc) {
        (true, Some(mut arpc)) => {
            arpc.extend_from_slice(&suffix);
            Some(arpc)
        }
        _ => None,
    })
}

/// What the ARPC for `response` is made from (ARC or CSU, by the card's cryptogram version),
/// and what follows it in tag 91.
fn arpc_input(card: &CardProfile, response: ResponseCode) -> (ArpcInput, Vec<u8>) {
    match card.cryptogram_version.arpc_method() {
        ArpcMethod::Method2 => {
            let csu = [0, 0, 0, if response.is_approved() { 0x80 } else { 0 }];
            (
                ArpcInput::Method2 {
                    csu,
                    proprietary: Vec::new(),
                },
                csu.to_vec(),
            )
        }
        ArpcMethod::Method1UnderMasterKey | ArpcMethod::Method1UnderSessionKey => (
            ArpcInput::Method1 {
                arc: response.arc(),
            },
            response.arc().to_vec(),
        ),
    }
}

/// The response code for a ledger refusal of the card's hold or posting.
pub fn response_for_ledger_error(error: TransferError) -> ResponseCode {
    match error {
        TransferError::ExceedsCredits | TransferError::ExceedsDebits => {
            ResponseCode::InsufficientFunds
        }
        TransferError::AmountMustBePositive
        | TransferError::ExceedsPendingAmount
        | TransferError::Overflow => ResponseCode::InvalidAmount,
        TransferError::CurrencyMismatch => ResponseCode::NotPermittedToCardholder,
        TransferError::PendingTransferNotFound => ResponseCode::UnableToLocateRecord,
        TransferError::PendingTransferNotPending
        | TransferError::PendingTransferAlreadyPosted
        | TransferError::PendingTransferAlreadyVoided
        | TransferError::PendingTransferExpired => ResponseCode::InvalidTransaction,
        TransferError::ExistsWithDifferentContent => ResponseCode::DuplicateTransmission,
        TransferError::IdMustNotBeZero
        | TransferError::AccountsMustBeDifferent
        | TransferError::DebitAccountNotFound
        | TransferError::CreditAccountNotFound
        | TransferError::InstitutionMismatch
        | TransferError::LinkedEventFailed
        | TransferError::LinkedChainOpen
        | TransferError::BatchTooLarge => ResponseCode::SystemMalfunction,
    }
}
