//! Terminals after approval: their details and status (provisioned, active, suspended, lost,
//! stolen, retired), one-time activation codes, and activation itself, which hands the
//! terminal its parameters and its master key wrapped under a transport key.
//!
//! The transport key is derived from the activation code on both sides
//! ([`transport_key`]): the host imports it into the HSM only to export the terminal master
//! key as a TR-31 key block under it, so the clear master key leaves the HSM only inside that
//! block, and the code is good once and for a day. Neither the console nor the API ever shows
//! a clear key; the code itself is shown once, to the operator who issues it.

use crate::service::{Onboarding, OnboardingError, digest, random_token};
use api::access::Principal;
use hsm::KeySpec;
use sha2::{Digest, Sha256};
use store::accounts::{Role, Tenant};
use store::onboarding::{Cell, Kind, Step};

/// Where a terminal is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalStatus {
    /// Created with its keys, waiting for activation.
    Provisioned,
    Active,
    /// Stopped for a while (unpaid fees, an investigation); may be resumed.
    Suspended,
    Lost,
    Stolen,
    /// Taken out of service for good.
    Retired,
}

impl TerminalStatus {
    pub const ALL: [TerminalStatus; 6] = [
        TerminalStatus::Provisioned,
        TerminalStatus::Active,
        TerminalStatus::Suspended,
        TerminalStatus::Lost,
        TerminalStatus::Stolen,
        TerminalStatus::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TerminalStatus::Provisioned => "provisioned",
            TerminalStatus::Active => "active",
            TerminalStatus::Suspended => "suspended",
            TerminalStatus::Lost => "lost",
            TerminalStatus::Stolen => "stolen",
            TerminalStatus::Retired => "retired",
        }
    }

    pub fn parse(text: &str) -> Option<TerminalStatus> {
        TerminalStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether an operator may move a terminal from `self` to `to` by hand. Activation (to
    /// active from provisioned) goes through a code instead; lost, stolen and retired
    /// terminals come back only by a new activation code (provisioned), never straight.
    pub fn may_become(self, to: TerminalStatus) -> bool {
        use TerminalStatus::*;
        matches!(
            (self, to),
            (Active, Suspended | Lost | Stolen | Retired)
                | (Suspended, Active | Lost | Stolen | Retired)
                | (Provisioned, Lost | Stolen | Retired)
                | (Lost | Stolen, Provisioned | Retired)
        )
    }

    /// Whether moving to this status is an incident the merchant's channel partner hears of.
    pub fn is_incident(self) -> bool {
        matches!(
            self,
            TerminalStatus::Suspended | TerminalStatus::Lost | TerminalStatus::Stolen
        )
    }
}

/// The webhook event of a terminal suspended, lost or stolen.
pub const EVENT_TERMINAL_INCIDENT: &str = "terminal.incident";

/// The model a kind of terminal is shipped as.
pub fn model_of(kind: &str) -> &'static str {
    match kind {
        "portable" => "EP-M60 portable",
        "smart" => "EP-S90 smart",
        _ => "EP-C10 countertop",
    }
}

/// A terminal's details as the console and API show them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TerminalDetails {
    pub terminal_id: String,
    pub merchant_id: String,
    pub model: String,
    pub serial: String,
    pub kind: String,
    pub location: String,
    pub status: TerminalStatus,
    pub updated_at: i64,
}

const DETAIL_SELECT: &str = "SELECT d.terminal_id, t.merchant_id, d.model, d.serial, d.kind, d.location, d.status, d.updated_at FROM terminal_details d JOIN terminals t ON t.id = d.terminal_id";
const DETAIL_KINDS: [Kind; 8] = [
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
];

fn details_from(row: &[Cell]) -> Option<TerminalDetails> {
    let text = |index: usize| row.get(index).and_then(Cell::as_text).map(str::to_owned);
    Some(TerminalDetails {
        terminal_id: text(0)?,
        merchant_id: text(1)?,
        model: text(2)?,
        serial: text(3)?,
        kind: text(4)?,
        location: text(5)?,
        status: TerminalStatus::parse(&text(6)?)?,
        updated_at: row.get(7).and_then(Cell::as_int)?,
    })
}

/// What the terminal receives on activation. The master key is a TR-31 block under the
/// transport key of the code; everything else is parameters.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActivationPackage {
    pub terminal_id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub merchant_city: String,
    /// The acquirer host's ISO 8583 address.
    pub host: String,
    pub currency: String,
    pub contactless_cvm_limit: String,
    pub languages: Vec<String>,
    pub payment_methods: Vec<String>,
    /// The version of these parameters; a later change reaches the terminal at its next
    /// sign-on (see `crate::parameters`). Packages from before versions count as 0.
    #[serde(default)]
    pub parameters_version: u32,
    /// `master-session`: the key below is the terminal master key (TR-31 usage K0), working
    /// keys come at each sign-on; `dukpt-aes`: it is the PIN pad's AES DUKPT initial key
    /// (usage B1) for `initial_ksn`.
    pub key_scheme: String,
    /// The terminal's key, a TR-31 key block under the transport key.
    pub master_key_block: String,
    /// Its check value, to confirm the key after unwrapping (AES-CMAC for an AES key).
    pub master_key_check_value: String,
    /// AES DUKPT: the initial KSN (24 hex digits, counter 0) the initial key belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_ksn: Option<String>,
}

/// The key schemes a terminal is provisioned with (docs/protocol.md, "Key schemes").
pub const KEY_SCHEMES: [&str; 2] = ["master-session", "dukpt-aes"];

/// The BDK id of the acquirer's AES DUKPT base key, the first 4 bytes of every KSN it derives
/// (the demo's published test key is 45500001).
pub const ACQUIRER_BDK_ID: &str = "45500002";

/// The name of the acquirer's AES DUKPT base derivation key in `hsm_keys`.
pub fn acquirer_bdk_name(acquirer: ledger::InstitutionId) -> String {
    format!("acquirer/{}/bdk-aes128", acquirer.0)
}

impl std::fmt::Debug for ActivationPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivationPackage")
            .field("terminal_id", &self.terminal_id)
            .field("merchant_id", &self.merchant_id)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// An activation code as typed: dashes and spaces dropped, upper case.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The AES-128 key-block protection key both ends derive from an activation code:
/// the first 16 bytes of SHA-256 of `easypos-activation-transport-key/` and the code.
pub fn transport_key(code: &str) -> zeroize::Zeroizing<Vec<u8>> {
    let digest = Sha256::digest(
        format!("easypos-activation-transport-key/{}", normalise_code(code)).as_bytes(),
    );
    zeroize::Zeroizing::new(digest[..16].to_vec())
}

/// Characters of an activation code: 20 from a 31-character alphabet, about 99 bits.
pub const ACTIVATION_CODE_CHARS: usize = 20;

impl Onboarding {
    /// Whether `principal` may see and manage the terminals of `merchant_id`: the acquirer's
    /// operators all, a merchant's admin and manager their own.
    async fn manages(
        &self,
        principal: &Principal,
        merchant_id: &str,
    ) -> Result<bool, OnboardingError> {
        Ok(match (&principal.user.tenant, principal.user.role) {
            (Tenant::Institution(institution), Role::PlatformOperator) => {
                *institution == self.settings.acquirer
            }
            (Tenant::Merchant(id), Role::MerchantAdmin | Role::MerchantManager) => {
                id == merchant_id
            }
            _ => false,
        })
    }

    /// The details of terminal `id`, if `principal` may see it.
    pub async fn terminal(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<TerminalDetails, OnboardingError> {
        let rows = self
            .store
            .onboarding_query(
                &format!("{DETAIL_SELECT} WHERE d.terminal_id = $1"),
                vec![Cell::text(id)],
                &DETAIL_KINDS,
            )
            .await?;
        let details = rows
            .first()
            .and_then(|row| details_from(row))
            .ok_or(OnboardingError::UnknownTerminal)?;
        if !self.manages(principal, &details.merchant_id).await? {
            return Err(OnboardingError::UnknownTerminal);
        }
        Ok(details)
    }

    /// Terminals with details of merchant `merchant_id` (every one for `None`) that
    /// `principal` may see.
    pub async fn terminals(
        &self,
        principal: &Principal,
        merchant_id: Option<&str>,
    ) -> Result<Vec<TerminalDetails>, OnboardingError> {
        let rows = self
            .store
            .onboarding_query(
                &format!("{DETAIL_SELECT} WHERE (CAST($1 AS TEXT) IS NULL OR t.merchant_id = CAST($1 AS TEXT)) ORDER BY d.terminal_id LIMIT 1000"),
                vec![Cell::Text(merchant_id.map(str::to_owned))],
                &DETAIL_KINDS,
            )
            .await?;
        let mut visible = Vec::new();
        for details in rows.iter().filter_map(|row| details_from(row)) {
            if self.manages(principal, &details.merchant_id).await? {
                visible.push(details);
            }
        }
        Ok(visible)
    }

    /// Moves a terminal to `to` (suspend, lost, stolen, retire, resume). The host hears of it
    /// before this returns, so a lost or stolen terminal's next message is declined.
    pub async fn set_status(
        &self,
        principal: &Principal,
        id: &str,
        to: TerminalStatus,
    ) -> Result<TerminalDetails, OnboardingError> {
        let details = self.terminal(principal, id).await?;
        if !details.status.may_become(to) {
            return Err(OnboardingError::TerminalStatus(format!(
                "{}; it cannot become {} from there",
                details.status.as_str(),
                to.as_str()
            )));
        }
        let directory_status = if to == TerminalStatus::Active {
            "active"
        } else {
            "inactive"
        };
        let done = self
            .store
            .onboarding_execute(vec![
                Step::new(
                    "UPDATE terminal_details SET status = $2, updated_at = $3 WHERE terminal_id = $1 AND status = $4",
                    vec![Cell::text(id), Cell::text(to.as_str()), Cell::int(self.now()), Cell::text(details.status.as_str())],
                )
                .expect_one(),
                Step::new(
                    "UPDATE terminals SET status = $2 WHERE id = $1",
                    vec![Cell::text(id), Cell::text(directory_status)],
                )
                .expect_one(),
            ].into_iter().chain(store::host_changes::steps(id, self.now())).collect())
            .await?;
        if !done {
            return Err(OnboardingError::Conflict);
        }
        self.tell_host(id).await?;
        tracing::info!(terminal = id, from = details.status.as_str(), to = to.as_str(), by = %principal.user.id, "terminal status changed");
        if to.is_incident() {
            self.notify_incident(&details, to).await?;
        }
        self.terminal(principal, id).await
    }

    /// Forces a key change: a new master key is generated in the HSM and replaces the stored
    /// one, the terminal goes back to `provisioned` (declined by the host until activated
    /// again) and a new activation code is issued, which brings the new key.
    pub async fn force_key_change(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(String, i64), OnboardingError> {
        self.force_key_change_to(principal, id, None).await
    }

    /// [`Onboarding::force_key_change`], moving the terminal to key scheme `scheme` when
    /// given: `dukpt-aes` gives it a new initial KSN under the acquirer's AES DUKPT base key
    /// (generated in the HSM the first time), whose initial key the next activation brings;
    /// `master-session` a new terminal master key.
    pub async fn force_key_change_to(
        &self,
        principal: &Principal,
        id: &str,
        scheme: Option<&str>,
    ) -> Result<(String, i64), OnboardingError> {
        if let Some(scheme) = scheme
            && !KEY_SCHEMES.contains(&scheme)
        {
            return Err(OnboardingError::BadRequest(format!(
                "key_scheme is one of {}",
                KEY_SCHEMES.join(", ")
            )));
        }
        let details = self.terminal(principal, id).await?;
        if !matches!(
            details.status,
            TerminalStatus::Provisioned | TerminalStatus::Active | TerminalStatus::Suspended
        ) {
            return Err(OnboardingError::TerminalStatus(format!(
                "{}; its key is changed when it is provisioned again",
                details.status.as_str()
            )));
        }
        let current = self
            .store
            .terminal_session(id)
            .await?
            .map(|session| session.key_scheme)
            .unwrap_or_else(|| "master-session".into());
        let scheme = scheme.unwrap_or(&current);
        let now = self.now();
        let (name, key_steps, check_value) = if scheme == "dukpt-aes" {
            let bdk = self.acquirer_bdk().await?;
            let device: u32 = rand::random();
            let initial_ksn = format!("{ACQUIRER_BDK_ID}{device:08X}00000000");
            let steps = vec![
                Step::new(
                    "UPDATE terminal_sessions SET key_scheme = 'dukpt-aes', tmk_key = $2, initial_ksn = $3, pin_key = NULL, mac_key = NULL WHERE terminal_id = $1",
                    vec![Cell::text(id), Cell::text(&bdk), Cell::text(&initial_ksn)],
                )
                .expect_one(),
            ];
            (bdk, steps, format!("initial KSN {initial_ksn}"))
        } else {
            let name = demo::terminal_master_key_name(id);
            let token = self.hsm.generate_key(&KeySpec::terminal_master_key())?;
            let check_value = paycrypto::to_hex(&self.hsm.key_check_value(&token)?);
            let steps = vec![
                Step::new(
                    "INSERT INTO hsm_keys (name, token, check_value) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET token = $2, check_value = $3",
                    vec![Cell::text(&name), Cell::text(token.as_str()), Cell::text(&check_value)],
                ),
                Step::new(
                    "UPDATE terminal_sessions SET key_scheme = 'master-session', tmk_key = $2, initial_ksn = NULL, pin_key = NULL, mac_key = NULL WHERE terminal_id = $1",
                    vec![Cell::text(id), Cell::text(&name)],
                )
                .expect_one(),
            ];
            (name, steps, check_value)
        };
        let mut steps = key_steps;
        steps.extend([
                Step::new(
                    "UPDATE terminal_details SET status = 'provisioned', updated_at = $3 WHERE terminal_id = $1 AND status = $2",
                    vec![Cell::text(id), Cell::text(details.status.as_str()), Cell::int(now)],
                )
                .expect_one(),
                Step::new(
                    "UPDATE terminals SET status = 'inactive' WHERE id = $1",
                    vec![Cell::text(id)],
                )
                .expect_one(),
            ]);
        steps.extend(store::host_changes::steps(id, now));
        if !self.store.onboarding_execute(steps).await? {
            return Err(OnboardingError::Conflict);
        }
        // Through the store's own path, so its cache of sessions holds the new scheme: the old
        // key's working keys are forgotten, as at a sign-off.
        self.store
            .change_session(id, store::directory::SessionChange::SignOff)
            .await?;
        self.host.key_changed(&name);
        self.tell_host(id).await?;
        tracing::info!(terminal = id, by = %principal.user.id, scheme, key = %check_value, "terminal key changed");
        let details = self.terminal(principal, id).await?;
        self.new_code(&details, &principal.user.id).await
    }

    /// The name of the acquirer's AES DUKPT base key, generated in the HSM the first time.
    async fn acquirer_bdk(&self) -> Result<String, OnboardingError> {
        let name = acquirer_bdk_name(self.settings.acquirer);
        if !self.store.keys().await?.iter().any(|key| key.name == name) {
            let token = self.hsm.generate_key(&KeySpec::bdk_aes(16))?;
            let check_value = paycrypto::to_hex(&self.hsm.key_check_value(&token)?);
            // Kept only if no other request created it meanwhile (the store keeps the first).
            self.store
                .put_keys(vec![store::directory::StoredKey {
                    name: name.clone(),
                    token: token.as_str().to_owned(),
                    check_value,
                }])
                .await?;
        }
        Ok(name)
    }

    /// Queues a `terminal.incident` webhook event for the subscriptions of the channel partners
    /// that referred the terminal's merchant and of the merchant's own users; the webhook
    /// worker signs and delivers it with retries (`api::webhooks`).
    async fn notify_incident(
        &self,
        details: &TerminalDetails,
        to: TerminalStatus,
    ) -> Result<(), OnboardingError> {
        let now = self.now();
        let event_id = format!(
            "evt_terminal_{}_{}_{}",
            details.terminal_id,
            to.as_str(),
            now
        );
        api::webhooks::queue_merchant_event(
            &self.store,
            &details.merchant_id,
            &event_id,
            EVENT_TERMINAL_INCIDENT,
            serde_json::json!({
                "terminal_id": details.terminal_id,
                "merchant_id": details.merchant_id,
                "serial": details.serial,
                "status": to.as_str(),
                "previous_status": details.status.as_str(),
            }),
            now,
        )
        .await?;
        Ok(())
    }

    /// A new one-time activation code for a provisioned terminal (codes issued before for it
    /// stop working). Returned once; only its digest is kept.
    pub async fn issue_code(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(String, i64), OnboardingError> {
        let details = self.terminal(principal, id).await?;
        self.new_code(&details, &principal.user.id).await
    }

    /// A code for each terminal of a fresh approval, for whoever approved it.
    pub async fn issue_code_for_approval(
        &self,
        id: &str,
    ) -> Result<(String, i64), OnboardingError> {
        let rows = self
            .store
            .onboarding_query(
                &format!("{DETAIL_SELECT} WHERE d.terminal_id = $1"),
                vec![Cell::text(id)],
                &DETAIL_KINDS,
            )
            .await?;
        let details = rows
            .first()
            .and_then(|row| details_from(row))
            .ok_or(OnboardingError::UnknownTerminal)?;
        self.new_code(&details, crate::service::SYSTEM).await
    }

    async fn new_code(
        &self,
        details: &TerminalDetails,
        by: &str,
    ) -> Result<(String, i64), OnboardingError> {
        let id = details.terminal_id.as_str();
        if details.status != TerminalStatus::Provisioned {
            return Err(OnboardingError::TerminalStatus(format!(
                "{}; only a provisioned terminal is activated (report a lost one found, then issue a code)",
                details.status.as_str()
            )));
        }
        let code = random_token(ACTIVATION_CODE_CHARS);
        let now = self.now();
        let expires_at = now + self.settings.activation_code_seconds;
        self.store
            .onboarding_execute(vec![
                Step::new(
                    "UPDATE activation_codes SET expires_at = $2 WHERE terminal_id = $1 AND used_at IS NULL AND expires_at > $2",
                    vec![Cell::text(id), Cell::int(now)],
                ),
                Step::new(
                    "INSERT INTO activation_codes (digest, terminal_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    vec![Cell::text(digest(&code)), Cell::text(id), Cell::text(by), Cell::int(now), Cell::int(expires_at)],
                ),
            ])
            .await?;
        tracing::info!(terminal = id, by, "activation code issued");
        // Grouped by five for reading aloud.
        let grouped = code
            .as_bytes()
            .chunks(5)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        Ok((grouped, expires_at))
    }

    /// Activates the terminal of `code`: refuses an unknown, used or expired code; builds the
    /// package (the master key exported under the code's transport key) before redeeming the
    /// code, so that a failure leaves the code good; then redeems it and makes the terminal
    /// active in one step, and tells the host.
    pub async fn activate(&self, code: &str) -> Result<ActivationPackage, OnboardingError> {
        let code = normalise_code(code);
        let code_digest = digest(&code);
        let now = self.now();
        let rows = self
            .store
            .onboarding_query(
                "SELECT terminal_id, expires_at, used_at FROM activation_codes WHERE digest = $1",
                vec![Cell::text(&code_digest)],
                &[Kind::Text, Kind::Int, Kind::Int],
            )
            .await?;
        let row = rows.first().ok_or(OnboardingError::UnknownCode)?;
        if row[2].as_int().is_some() {
            return Err(OnboardingError::CodeUsed);
        }
        if row[1].as_int().is_none_or(|expires| expires <= now) {
            return Err(OnboardingError::CodeExpired);
        }
        let terminal_id = row[0]
            .as_text()
            .ok_or(OnboardingError::UnknownCode)?
            .to_owned();
        let directory = self.store.load_directory().await?;
        let terminal = directory
            .terminals
            .iter()
            .find(|t| t.id == terminal_id)
            .ok_or(OnboardingError::UnknownTerminal)?;
        let merchant = directory
            .merchants
            .iter()
            .find(|m| m.id == terminal.merchant_id)
            .ok_or(OnboardingError::UnknownTerminal)?;
        let session = self
            .store
            .terminal_session(&terminal_id)
            .await?
            .ok_or(OnboardingError::UnknownTerminal)?;
        let key_name = session.tmk_key.clone();
        let key = self
            .store
            .keys()
            .await?
            .into_iter()
            .find(|key| key.name == key_name)
            .map(|key| hsm::KeyToken::new(key.token))
            .ok_or(OnboardingError::UnknownTerminal)?;
        let transport = self.hsm.import_clear_key(
            &KeySpec::kbpk(paycrypto::tr31::Algorithm::Aes, 16),
            &transport_key(&code),
        )?;
        let (key_block, check_value, initial_ksn) = if session.key_scheme == "dukpt-aes" {
            let initial_ksn = session
                .initial_ksn
                .clone()
                .ok_or(OnboardingError::UnknownTerminal)?;
            let initial_key_id: [u8; 8] = hex::decode(initial_ksn.get(..16).unwrap_or_default())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(OnboardingError::UnknownTerminal)?;
            let (block, check_value) =
                self.hsm
                    .export_aes_dukpt_initial_key(&transport, &key, &initial_key_id)?;
            (block, check_value, Some(initial_ksn))
        } else {
            (
                self.hsm.export_key(&transport, &key)?,
                self.hsm.key_check_value(&key)?,
                None,
            )
        };
        let parameters = self.current_parameters(&terminal_id, merchant).await?;
        let package = ActivationPackage {
            terminal_id: terminal_id.clone(),
            merchant_id: merchant.id.clone(),
            merchant_name: parameters.merchant_name.clone(),
            merchant_city: parameters.merchant_city.clone(),
            host: parameters.host.clone(),
            currency: parameters.currency.clone(),
            contactless_cvm_limit: parameters.contactless_cvm_limit.clone(),
            languages: parameters.languages.clone(),
            payment_methods: parameters.payment_methods.clone(),
            parameters_version: parameters.version,
            key_scheme: session.key_scheme.clone(),
            master_key_block: key_block,
            master_key_check_value: paycrypto::to_hex(&check_value),
            initial_ksn,
        };
        let done = self
            .store
            .onboarding_execute(vec![
                Step::new(
                    "UPDATE activation_codes SET used_at = $2 WHERE digest = $1 AND used_at IS NULL AND expires_at > $2",
                    vec![Cell::text(&code_digest), Cell::int(now)],
                )
                .expect_one(),
                Step::new(
                    "UPDATE terminal_details SET status = 'active', updated_at = $2 WHERE terminal_id = $1 AND status = 'provisioned'",
                    vec![Cell::text(&terminal_id), Cell::int(now)],
                )
                .expect_one(),
                Step::new(
                    "UPDATE terminals SET status = 'active' WHERE id = $1",
                    vec![Cell::text(&terminal_id)],
                )
                .expect_one(),
            ].into_iter().chain(store::host_changes::steps(&terminal_id, now)).collect())
            .await?;
        if !done {
            // Another activation won the race, or the terminal was reported lost meanwhile.
            return Err(OnboardingError::CodeUsed);
        }
        self.tell_host(&terminal_id).await?;
        self.host.parameters_changed(&terminal_id, &parameters);
        tracing::info!(terminal = %terminal_id, "terminal activated");
        Ok(package)
    }
}
