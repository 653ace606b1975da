//! The sale (消费): from the terminal's request to a committed, answered authorization.
//!
//! 1. The card: its number (field 2 or track 2) is fingerprinted inside the HSM and looked up;
//!    its issuer profile is loaded.
//! 2. A repeat of a sale already approved gets the original answer (same RRN and auth code)
//!    and moves nothing.
//! 3. What the terminal read: the chip's ARQC from field 55, or track 2 for a swipe (the CVV is
//!    the first three digits of the discretionary data — easypos's card convention).
//! 4. The PIN block (field 52) is translated inside the HSM from the terminal's PIN key to the
//!    issuer's zone key.
//! 5. The issuer decides (`issuer::decide`); the decision's card effects and, if approved, the
//!    sale's linked transfers commit together (`Store::authorize`), before the answer leaves.
//! 6. The answer carries 39, and on approval 37, 38 and a MAC; for chip cards field 55 carries
//!    the ARPC (tag 91); for an approved sale, field 62 carries the receipt statement signed by
//!    the acquirer (`aftersale`), with the time its transfer was committed.

use crate::cards::{card_profile, format_date};
use crate::chip::chip_fields;
use crate::effects::{
    BusinessKey, SaleAccounts, approval_codes, business_date, preauthorization_transfer,
    sale_transfers,
};
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::keys::MessageKeys;
use crate::message::{Request, response_to};
use emv::tlv::Tag;
use hsm::{KeyToken, PinDestination, PinSource};
use iso8583::{Message, ResponseCode};
use issuer::{
    AuthorizationRequest, CardKeys, ChipData, Decision, PinData, Presentation, TransactionKind,
    YearMonth,
};
use money::{Amount, Currency};
use paycrypto::pinblock::PinBlockFormat;
use paycrypto::{Pan, PinBlock};
use store::cards::{Authorization, CardEffect, CardOutcome, PinEffect, Spend};

/// A packed-to-be answer and, when it must carry a MAC, the keys to make it with.
#[derive(Debug)]
pub(crate) struct Answer {
    pub message: Message<'static>,
    pub mac: Option<MessageKeys>,
    /// The risk rules that fired for it, and why (`risk::Assessment::summary`), for the journal.
    pub risk: Option<String>,
    /// The directory id of the card presented, for the journal (the risk engine replays it).
    pub card_id: Option<String>,
    /// How the card and its holder were verified, for the journal and the transaction
    /// certificate ([`card_verification`]); `None` when no issuer decided.
    pub card_verification: Option<String>,
}

impl Answer {
    /// Whether an answer (if any) says 00.
    pub fn approved(answer: Option<&Answer>) -> bool {
        answer
            .and_then(|answer| answer.message.response_code().ok())
            .is_some_and(|code| code == ResponseCode::Approved.code())
    }

    /// The answer to a follow-up decided as `outcome`: its code, MACed when approved.
    pub fn follow_up(
        request: &Message<'_>,
        outcome: Result<ResponseCode, ResponseCode>,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        let code = match outcome {
            Ok(code) | Err(code) => code,
        };
        Some(Answer {
            message: response_to(request, code)?,
            mac: code.is_approved().then(|| keys.clone()),
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }

    pub fn plain(request: &Message<'_>, response: ResponseCode) -> Option<Answer> {
        Some(Answer {
            message: response_to(request, response)?,
            mac: None,
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }
}

/// What the journal keeps of an authorization's risk: the fired rules (or the freeze) and
/// the card's directory id.
#[derive(Debug, Default)]
pub(crate) struct RiskNote {
    pub rules: Option<String>,
    pub card_id: Option<String>,
    pub card_verification: Option<String>,
}

/// What the issuer's decision shows of how the card and its holder were verified, in words
/// for the journal: only what the decision proves. An approval of a chip card proves its
/// cryptogram (ARQC) verified, of a stripe its CVV; with a PIN entered, the PIN verified, and
/// without one no cardholder verification (no CVM). A decline names the check that failed, or
/// says the checks were not all made.
pub(crate) fn card_verification(method: &str, pin_entered: bool, reason: issuer::Reason) -> String {
    use issuer::Reason;
    let card_check = if method.contains("chip") {
        "cryptogram"
    } else {
        "CVV"
    };
    match reason {
        Reason::Approved => format!(
            "{method}: {card_check} verified; {}",
            if pin_entered {
                "PIN verified"
            } else {
                "no CVM (no PIN entered)"
            }
        ),
        Reason::ArqcInvalid => format!("{method}: cryptogram failed"),
        Reason::CvvMismatch => format!("{method}: CVV failed"),
        Reason::PinIncorrect | Reason::PinTriesExhausted => {
            format!("{method}: PIN failed ({reason:?})")
        }
        other => format!("{method}: not all checks made (declined: {other:?})"),
    }
}

/// The platform key that fingerprints card numbers.
const PAN_FINGERPRINT_KEY: &str = "platform/pan-fingerprint";

/// Why the sale stopped before the issuer decided, with the answer's code.
type Stop = ResponseCode;

fn stop<T>(code: ResponseCode, why: &str) -> Result<T, Stop> {
    tracing::debug!(response = code.code(), "sale refused: {why}");
    Err(code)
}

impl TerminalHandler {
    /// A message that presents a card to its issuer: a sale (消费), a pre-authorization
    /// (预授权, 0100 with processing code 03: on approval a hold on the card's money until
    /// completion, void or expiry) or a balance inquiry (查询, processing code 31: nothing moved,
    /// the available balance in field 54).
    pub(crate) async fn card_message(
        &self,
        kind: TransactionKind,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        let mut note = RiskNote::default();
        let mut answer = match self
            .card_answer(kind, message, request, terminal, keys, &mut note)
            .await
        {
            Ok(answer) => Some(answer),
            Err(code) => Answer::plain(message, code),
        };
        if let Some(answer) = answer.as_mut() {
            answer.risk = note.rules;
            answer.card_id = note.card_id;
            answer.card_verification = note.card_verification;
        }
        answer
    }

    async fn card_answer(
        &self,
        kind: TransactionKind,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
        note: &mut RiskNote,
    ) -> Result<Answer, Stop> {
        // Sales and pre-authorizations move (or hold) money; an inquiry only looks.
        let purchase = kind != TransactionKind::BalanceInquiry;
        let currency = crate::follow_up::currency(message)?;
        let amount_minor = match kind {
            TransactionKind::BalanceInquiry => 0,
            _ => request
                .amount_minor
                .and_then(|minor| i64::try_from(minor).ok())
                .ok_or(ResponseCode::InvalidAmount)?,
        };
        let amount = Amount::new(amount_minor, currency);

        // 1. The card.
        let track2 = message.track2().ok();
        let (pan, card) = self
            .find_card(message, &self.key(PAN_FINGERPRINT_KEY).await?)
            .await?;
        let Some(stored) = self
            .store
            .issuer_card(&card.id)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?
        else {
            return stop(ResponseCode::NoCardRecord, "no issuer record");
        };
        let profile = card_profile(&card, &stored, &pan).map_err(|reason| {
            tracing::error!(%reason, "damaged card record");
            ResponseCode::SystemMalfunction
        })?;
        note.card_id = Some(card.id.clone());

        // 1½. Emergency freezes act on the next authorization: 58 for a frozen terminal or
        //     merchant, 62 for a frozen card. Nothing else is looked at.
        if let Some(code) = self.frozen(&request.terminal_id, terminal, &card.id, note) {
            return stop(code, "frozen");
        }

        // 2. The sale's transfers, with ids from the business key. A repeat of an approved sale
        //    is recognised by them when it would be refused (see `repeat_answer`), so that
        //    approvals, nearly all of them first sales, need no look-up.
        let business_key = request.key();
        let accounts = SaleAccounts {
            card: card.account,
            product: card.product,
            issuer_settlement: crate::chart::issuer_settlement(card.issuer, currency),
            acquirer_due_from_issuers: crate::chart::acquirer_due_from_issuers(
                terminal.acquirer,
                currency,
            ),
            merchant_payable: terminal.merchant_payable,
        };
        let transfers = match kind {
            TransactionKind::PreAuthorization => {
                vec![preauthorization_transfer(&business_key, &accounts, amount)]
            }
            _ => sale_transfers(&business_key, &accounts, amount),
        };

        // What a sale's receipt statement says beside the answer's RRN and auth code.
        let receipt_facts = |kind| {
            (kind == TransactionKind::Purchase).then(|| ReceiptFacts {
                terminal_id: request.terminal_id.trim().to_owned(),
                merchant_id: terminal.merchant_id.clone(),
                card: card.masked_pan(),
                amount,
            })
        };

        // 3. What the terminal read.
        let entry = message
            .get(22)
            .map(|value| value.to_text())
            .unwrap_or_default();
        let chip = match entry.get(..2) {
            Some("05" | "07") => {
                let field55 = message.get(55).ok_or(ResponseCode::FormatError)?.to_bytes();
                let field23 = message.get(23).map(|value| value.to_text());
                let chip =
                    chip_fields(&field55, field23.as_deref()).map_err(|reject| reject.response)?;
                if chip.amount_minor != amount_minor as u64 {
                    return stop(
                        ResponseCode::InvalidAmount,
                        "the cryptogram's amount differs from field 4",
                    );
                }
                Some((entry.starts_with("07"), chip))
            }
            _ => None,
        };
        let chip_data = chip.as_ref().map(|(_, chip)| ChipData {
            psn: chip.psn,
            atc: chip.atc,
            unpredictable_number: chip.unpredictable_number,
            data: &chip.data,
            arqc: chip.arqc,
        });
        let magstripe = match (entry.get(..2), &track2) {
            (Some(mode @ ("02" | "90" | "80")), Some(track)) => {
                let expiry = track
                    .expiry()
                    .and_then(YearMonth::parse_yymm)
                    .ok_or(ResponseCode::FormatError)?;
                let service_code = track
                    .service_code()
                    .ok_or(ResponseCode::FormatError)?
                    .to_owned();
                let discretionary = track
                    .expose()
                    .split('=')
                    .nth(1)
                    .and_then(|rest| rest.get(7..10))
                    .ok_or(ResponseCode::FormatError)?
                    .to_owned();
                Some((expiry, service_code, discretionary, mode == "80"))
            }
            _ => None,
        };
        let method = match (&chip, &magstripe) {
            (Some((true, _)), _) => "contactless chip",
            (Some(_), _) => "chip",
            (None, Some((_, _, _, true))) => "magnetic stripe (fallback)",
            _ => "magnetic stripe",
        };
        let presentation = match (chip_data, &chip, &magstripe) {
            (Some(data), Some((true, _)), _) => Presentation::Contactless(data),
            (Some(data), _, _) => Presentation::Chip(data),
            (None, _, Some((expiry, service_code, cvv, fallback))) => Presentation::Magstripe {
                expiry: *expiry,
                service_code,
                cvv,
                fallback: *fallback,
            },
            _ => {
                return stop(
                    ResponseCode::FunctionNotSupported,
                    "entry mode not supported",
                );
            }
        };

        // 3½. The acquirer's risk rules, before the issuer is asked (and before the PIN is
        //     translated): a declining rule answers with its code and nothing moves.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let chip_card = chip.is_some()
            || magstripe
                .as_ref()
                .is_some_and(|(_, service_code, _, _)| issuer::is_chip_card(service_code));
        let risk_input = self.risk.as_ref().map(|gate| {
            (
                gate,
                risk::Authorization {
                    kind: match kind {
                        TransactionKind::Purchase => risk::Kind::Sale,
                        TransactionKind::PreAuthorization => risk::Kind::PreAuthorization,
                        TransactionKind::BalanceInquiry => risk::Kind::BalanceInquiry,
                    },
                    card: &card.id,
                    terminal: request.terminal_id.trim(),
                    merchant: &terminal.merchant_id,
                    amount_minor,
                    currency,
                    card_currency: card.currency,
                    mcc: terminal.mcc,
                    entry: risk_entry(entry.get(..2)),
                    chip_card,
                },
            )
        });
        if let Some((gate, input)) = &risk_input {
            let assessment = gate.engine.evaluate(input, now_ms);
            self.report_case(
                &assessment,
                input.merchant,
                input.terminal,
                input.card,
                now_ms,
            );
            if !assessment.fired.is_empty() {
                note.rules = Some(assessment.summary());
                tracing::debug!(card = %card.masked_pan(), terminal = %input.terminal, verdict = assessment.verdict.name(), score = assessment.score, rules = %assessment.summary(), "risk rules fired");
            }
            if let Some(code) = assessment.decline_code() {
                gate.engine
                    .record(&risk_outcome(input, false, false), now_ms);
                // A repeat of a sale already approved keeps its approval.
                if purchase
                    && let Some(answer) = self
                        .repeat_answer(
                            message,
                            &business_key,
                            &transfers[0],
                            keys,
                            receipt_facts(kind),
                        )
                        .await
                {
                    return answer;
                }
                return Err(ResponseCode::parse(code.as_str()).unwrap_or(ResponseCode::DoNotHonor));
            }
        }

        // 4. The PIN, translated to the issuer's zone key.
        let zone_key = self.key(&format!("issuer/{}/zpk", card.issuer.0)).await?;
        let translated = match keys.pin_block(message) {
            None => None,
            // Over the switch link the acquirer has translated it already.
            Some(bytes) if matches!(keys, MessageKeys::Link) => {
                Some(PinBlock::new(&bytes).map_err(|_| ResponseCode::FormatError)?)
            }
            Some(bytes) => {
                let source = keys.pin_source()?;
                let block = PinBlock::new(&bytes).map_err(|_| ResponseCode::FormatError)?;
                let destination = PinDestination {
                    key: &zone_key,
                    format: PinBlockFormat::Iso0,
                };
                Some(
                    self.hsm
                        .translate_pin(&block, &source, &destination, &pan)
                        .map_err(|_| ResponseCode::IncorrectPin)?,
                )
            }
        };
        let pin = translated.as_ref().map(|block| PinData {
            block,
            source: PinSource::Zone {
                key: &zone_key,
                format: PinBlockFormat::Iso0,
            },
        });

        // 5. The issuer decides; card effects and transfers commit together.
        let issuer_keys = CardKeys {
            cvk: self.key(&format!("issuer/{}/cvk", card.issuer.0)).await?,
            pvk: self.key(&format!("issuer/{}/pvk", card.issuer.0)).await?,
            imk_ac: self
                .key(&format!("issuer/{}/imk-ac", card.issuer.0))
                .await?,
        };
        let today = business_date(now_ms / 1_000);
        let authorization_request = AuthorizationRequest {
            kind,
            amount,
            pan: &pan,
            presentation,
            pin,
            today,
        };
        let decision = issuer::decide(
            self.hsm.as_ref(),
            &profile,
            &issuer_keys,
            &authorization_request,
        );
        let approved = decision.response.is_approved();
        tracing::debug!(card = %card.masked_pan(), response = decision.response.code(), reason = ?decision.reason, "issuer decision");
        note.card_verification = Some(card_verification(
            method,
            translated.is_some(),
            decision.reason,
        ));

        let effect = card_effect(
            &card.id,
            &profile,
            &decision,
            (approved && purchase).then(|| Spend {
                date: format_date(today),
                amount_minor,
            }),
        );
        let authorization = Authorization {
            transfers: if approved && purchase {
                self.own(transfers.clone())
            } else {
                Vec::new()
            },
            card: effect,
        };
        let result = self.store.authorize(authorization).await.map_err(|error| {
            tracing::error!(%error, "authorization could not be committed");
            ResponseCode::SystemMalfunction
        })?;
        tracing::debug!(card = %card.masked_pan(), outcome = ?result.card, "authorization committed");

        let mut response = match (approved, result.card) {
            (false, _) => decision.response,
            (true, CardOutcome::AtcReplayed) => ResponseCode::DoNotHonor,
            (true, CardOutcome::LimitExceeded) => ResponseCode::ExceedsAmountLimit,
            (true, CardOutcome::UnknownCard) => ResponseCode::NoCardRecord,
            // The failing transfer says why; the others of its chain only say "linked".
            (true, CardOutcome::Applied) => match crate::follow_up::refusal(&result.transfers) {
                None => ResponseCode::Approved,
                Some(error) => issuer::response_for_ledger_error(error),
            },
        };
        // A repeat the issuer approved again finds the original's transfers made: it stands
        // only if the original was not reversed meanwhile.
        if response.is_approved()
            && purchase
            && matches!(
                result.transfers.first(),
                Some(Ok(ledger::Outcome::AlreadyExists(_)))
            )
            && self.reversed(&business_key).await?
        {
            response = ResponseCode::DuplicateTransmission;
        }
        if let Some((gate, input)) = &risk_input {
            let wrong_pin = decision.update.pin_failures > profile.pin_failures;
            gate.engine.record(
                &risk_outcome(input, response.is_approved(), wrong_pin),
                now_ms,
            );
        }
        if purchase
            && !response.is_approved()
            && let Some(answer) = self
                .repeat_answer(
                    message,
                    &business_key,
                    &transfers[0],
                    keys,
                    receipt_facts(kind),
                )
                .await
        {
            return answer;
        }

        // 6. The answer.
        let arpc = match (&chip, chip_data) {
            // The approval's ARPC was made with the ARQC check.
            (Some(_), Some(_)) if response.is_approved() && decision.approval_arpc.is_some() => {
                decision.approval_arpc.map(|data| data.as_bytes().to_vec())
            }
            (Some(_), Some(data)) => issuer::arpc(
                self.hsm.as_ref(),
                &profile,
                &issuer_keys,
                &pan,
                &data,
                response,
            )
            .ok()
            .flatten(),
            _ => None,
        };
        if response.is_approved() && !purchase {
            let balance = self
                .store
                .account(card.account)
                .await
                .ok()
                .flatten()
                .map_or(0, |account| account.available());
            let mut answer = self.approval(message, transfers[0].id, arpc, keys);
            answer
                .message
                .set_text(54, balance_field(card.product, currency, balance));
            return Ok(answer);
        }
        if response.is_approved() {
            let mut answer = self.approval(message, transfers[0].id, arpc, keys);
            let committed_at = result
                .transfers
                .iter()
                .flatten()
                .map(ledger::Outcome::transfer)
                .find(|transfer| transfer.id() == transfers[0].id)
                .map(|transfer| transfer.timestamp);
            if let (Some(facts), Some(at)) = (receipt_facts(kind), committed_at) {
                self.sign_receipt(&mut answer, &facts, at).await;
            }
            return Ok(answer);
        }
        let mut answer = response_to(message, response).ok_or(ResponseCode::SystemMalfunction)?;
        if let Some(arpc) = arpc {
            set_issuer_data(&mut answer, &arpc);
        }
        Ok(Answer {
            message: answer,
            mac: None,
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }

    /// For a sale or pre-authorization about to be refused: the answer when it repeats one
    /// whose first transfer (`first`, from the business key) is already made — the original
    /// approval (same RRN and auth code) for the same request, 94 when the trace number was
    /// used for another one — and `None` when nothing was made, so the refusal stands.
    ///
    /// A repeat is refused by everything that has changed since its original: the card's ATC
    /// is seen again (chip), the day's spend or the card's standing may have moved. An approved
    /// repeat needs no look-up beyond whether it was reversed: the ledger found its transfers
    /// made (and the day's spend was not counted again), and the approval carries the same ids.
    ///
    /// A repeat of a sale reversed after it posted gets 94: its original's approval no longer
    /// stands, and approving it again would tell the terminal a sale went through whose money
    /// went back.
    async fn repeat_answer(
        &self,
        message: &Message<'_>,
        key: &BusinessKey,
        first: &ledger::TransferRequest,
        keys: &MessageKeys,
        receipt: Option<ReceiptFacts>,
    ) -> Option<Result<Answer, Stop>> {
        // What this host posted of it: an issuer host keeps only the issuer's transfer, not
        // linked to the acquirer's (`own`), and a repeat reaching it compares as that.
        let first = self.own(vec![*first]).remove(0);
        match self.store.transfer(first.id).await {
            Ok(Some(original)) if original.request == first => {
                match self.reversed(key).await {
                    Ok(false) => {}
                    Ok(true) => {
                        return Some(stop(
                            ResponseCode::DuplicateTransmission,
                            "repeat of a reversed sale",
                        ));
                    }
                    Err(code) => return Some(Err(code)),
                }
                let mut answer = self.approval(message, first.id, None, keys);
                if let Some(facts) = receipt {
                    // The same statement as the original's: its time is the transfer's.
                    self.sign_receipt(&mut answer, &facts, original.timestamp)
                        .await;
                }
                Some(Ok(answer))
            }
            Ok(Some(_)) => Some(stop(
                ResponseCode::DuplicateTransmission,
                "trace number reused for another sale",
            )),
            Ok(None) | Err(_) => None,
        }
    }

    /// Whether the sale or pre-authorization of `key` was reversed: its reversal's issuer
    /// transfer (the sale's opposite, or the hold's void) exists. A repeat of it is refused
    /// with 94, as one arriving after a reversal that overtook it is.
    async fn reversed(&self, key: &BusinessKey) -> Result<bool, Stop> {
        self.store
            .transfer(key.transfer_id("reversal/issuer"))
            .await
            .map(|reversal| reversal.is_some())
            .map_err(|_| ResponseCode::SystemMalfunction)
    }

    /// The card a message presents (field 2, else track 2), found by its number's fingerprint.
    pub(crate) async fn find_card(
        &self,
        message: &Message<'_>,
        fingerprint_key: &KeyToken,
    ) -> Result<(Pan, store::directory::Card), Stop> {
        let digits = match (message.pan(), message.track2()) {
            (Ok(pan), _) => pan.expose().to_owned(),
            (Err(_), Ok(track)) => track
                .pan()
                .map_err(|_| ResponseCode::FormatError)?
                .expose()
                .to_owned(),
            (Err(_), Err(_)) => return stop(ResponseCode::FormatError, "no card number"),
        };
        let pan = Pan::new(&digits).map_err(|_| ResponseCode::InvalidCardNumber)?;
        let fingerprint = self
            .hsm
            .pan_fingerprint(fingerprint_key, &pan)
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        match self
            .store
            .card_by_fingerprint(fingerprint)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?
        {
            Some(card) => Ok((pan, card)),
            None => stop(ResponseCode::InvalidCardNumber, "unknown card"),
        }
    }

    /// The platform's card-number fingerprint key.
    pub(crate) async fn fingerprint_key(&self) -> Result<KeyToken, Stop> {
        self.key(PAN_FINGERPRINT_KEY).await
    }

    /// An approval: 00 with RRN and auth code from the transfer, the ARPC when there is one, and
    /// the terminal's MAC.
    pub(crate) fn approval(
        &self,
        message: &Message<'_>,
        transfer: ledger::TransferId,
        arpc: Option<Vec<u8>>,
        keys: &MessageKeys,
    ) -> Answer {
        let (rrn, auth_code) = approval_codes(transfer);
        let mut answer = response_to(message, ResponseCode::Approved)
            .unwrap_or_else(|| Message::new(message.mti));
        answer.set_text(37, rrn);
        answer.set_text(38, auth_code);
        if let Some(arpc) = arpc {
            set_issuer_data(&mut answer, &arpc);
        }
        Answer {
            message: answer,
            mac: Some(keys.clone()),
            risk: None,
            card_id: None,
            card_verification: None,
        }
    }
}

/// What an approved sale's receipt statement says beside the answer's RRN and auth code.
#[derive(Debug)]
pub(crate) struct ReceiptFacts {
    pub terminal_id: String,
    pub merchant_id: String,
    /// First 6 / last 4.
    pub card: String,
    pub amount: Amount,
}

impl TerminalHandler {
    /// The answer to a message from a frozen terminal, merchant or card: 58, or 62 for a card,
    /// with the freeze noted for the journal. `None` when nothing involved is frozen.
    pub(crate) fn frozen(
        &self,
        terminal_id: &str,
        terminal: &TerminalRecord,
        card_id: &str,
        note: &mut RiskNote,
    ) -> Option<ResponseCode> {
        let scope = self
            .freezes
            .frozen(terminal_id.trim(), &terminal.merchant_id, card_id)?;
        note.rules = Some(format!("frozen {}", scope.as_str()));
        Some(match scope {
            risk::FreezeScope::Card => ResponseCode::RestrictedCard,
            _ => ResponseCode::NotPermittedToTerminal,
        })
    }

    /// Puts the signed receipt statement of an approval into field 62, when this host signs
    /// receipts. `committed_at` is the sale's transfer's timestamp (nanoseconds), so a repeat
    /// signs the same statement. A statement that cannot be signed leaves the approval as it
    /// is: the money has moved, and the receipt prints without its QR code. Approvals answered
    /// together share one signature (version 2 payloads, each with its proof).
    pub(crate) async fn sign_receipt(
        &self,
        answer: &mut Answer,
        facts: &ReceiptFacts,
        committed_at: ledger::Timestamp,
    ) {
        let Some(keys) = &self.receipts else {
            return;
        };
        let field = |number| {
            answer
                .message
                .get(number)
                .map(|value| value.to_text())
                .unwrap_or_default()
        };
        let statement = aftersale::receipt::Statement {
            rrn: field(37),
            terminal_id: facts.terminal_id.clone(),
            merchant_id: facts.merchant_id.clone(),
            card: facts.card.clone(),
            amount_minor: facts.amount.minor(),
            currency: facts.amount.currency().alpha().to_owned(),
            time: i64::try_from(committed_at / 1_000_000_000).unwrap_or(i64::MAX),
            auth_code: field(38),
            key_id: String::new(),
        };
        match keys.sign(statement).await {
            Ok(payload) => answer.message.set_bytes(62, payload.into_bytes()),
            Err(error) => tracing::error!(%error, "receipt statement not signed"),
        }
    }
}

/// How the risk rules see field 22's first two digits.
pub(crate) fn risk_entry(mode: Option<&str>) -> risk::Entry {
    match mode {
        Some("05") => risk::Entry::Chip,
        Some("07") => risk::Entry::Contactless,
        Some("02" | "90") => risk::Entry::Magstripe,
        Some("80") => risk::Entry::Fallback,
        _ => risk::Entry::Manual,
    }
}

/// What became of an authorization, for the risk engine's windows.
fn risk_outcome<'a>(
    input: &risk::Authorization<'a>,
    approved: bool,
    wrong_pin: bool,
) -> risk::Outcome<'a> {
    risk::Outcome {
        kind: input.kind,
        card: input.card,
        terminal: input.terminal,
        merchant: input.merchant,
        amount_minor: input.amount_minor,
        approved,
        wrong_pin,
    }
}

/// Field 55 of the answer: the issuer authentication data (tag 91).
fn set_issuer_data(answer: &mut Message<'static>, arpc: &[u8]) {
    if let Ok(field) = emv::field55::build(&[(Tag(0x91), arpc)]) {
        answer.set_bytes(55, field);
    }
}

/// What the decision does to the card: the PIN counter and ATC always, the spend if approved.
fn card_effect(
    card_id: &str,
    profile: &issuer::CardProfile,
    decision: &Decision,
    spend: Option<Spend>,
) -> CardEffect {
    let pin = match decision.update.pin_failures.cmp(&profile.pin_failures) {
        std::cmp::Ordering::Less => PinEffect::Reset,
        std::cmp::Ordering::Greater => PinEffect::Failed,
        std::cmp::Ordering::Equal => PinEffect::Unchanged,
    };
    let atc = match (decision.update.last_atc, profile.last_atc) {
        (Some(new), old) if Some(new) != old => Some(i64::from(new)),
        _ => None,
    };
    CardEffect {
        card_id: card_id.to_owned(),
        pin,
        atc,
        spend,
    }
}

/// Field 54 of a balance answer: account type (10 savings for a debit card, 30 credit), amount
/// type 02 (available balance), currency, C or D, and 12 digits.
fn balance_field(
    product: store::directory::CardProduct,
    currency: Currency,
    available_minor: i64,
) -> String {
    let account_type = match product {
        store::directory::CardProduct::Debit => "10",
        store::directory::CardProduct::Credit => "30",
    };
    let sign = if available_minor < 0 { 'D' } else { 'C' };
    format!(
        "{account_type}02{:03}{sign}{:012}",
        currency.numeric(),
        available_minor.unsigned_abs()
    )
}

#[cfg(test)]
mod card_verification_tests {
    use super::card_verification;
    use issuer::Reason;

    #[test]
    fn only_what_the_decision_proves_is_said() {
        assert_eq!(
            card_verification("chip", true, Reason::Approved),
            "chip: cryptogram verified; PIN verified"
        );
        assert_eq!(
            card_verification("contactless chip", false, Reason::Approved),
            "contactless chip: cryptogram verified; no CVM (no PIN entered)"
        );
        assert_eq!(
            card_verification("magnetic stripe", true, Reason::Approved),
            "magnetic stripe: CVV verified; PIN verified"
        );
        assert_eq!(
            card_verification("chip", true, Reason::ArqcInvalid),
            "chip: cryptogram failed"
        );
        assert_eq!(
            card_verification("chip", true, Reason::PinIncorrect),
            "chip: PIN failed (PinIncorrect)"
        );
        assert!(
            card_verification("chip", false, Reason::DailyLimitExceeded).contains("not all checks")
        );
    }
}
