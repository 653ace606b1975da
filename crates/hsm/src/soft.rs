//! The software HSM: keys are TR-31 version D blocks under an AES-256 local master key.
//! For development and testing only; not a PCI PIN-approved device.

use crate::{
    ArpcInput, ArqcOutcome, ArqcRequest, DukptMacKey, Hsm, HsmError, KeySpec, KeyToken,
    MacAlgorithm, MacDirection, PinDestination, PinSource, PinVerification, Result,
    translation_allowed,
};
use paycrypto::card::DecimalisationTable;
use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::emv::{self, ArpcMethod};
use paycrypto::mac::{PreparedHmacSha256, PreparedTdesKey};
use paycrypto::pinblock::{self, FILL_BYTES, PinKey};
use paycrypto::tr31::{self, Algorithm, Header, KeyUsage, ModeOfUse, Version};
use paycrypto::{AesKey, Pan, Pin, PinBlock, SecretBytes, TdesKey, card, kcv, mac, to_hex};
use rand::RngCore;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use zeroize::Zeroizing;

/// Unwrapped keys kept in memory so that hot operations skip the TR-31 unwrap: room for the
/// working keys of about 30,000 signed-on terminals. When full, one entry is dropped to make
/// room (an arbitrary one: the map's order is randomised per process), so a site with more
/// terminals than that loses a little hit rate, not the whole cache at once.
pub const MAX_CACHED_KEYS: usize = 65_536;
/// The LMK is AES-256.
const LMK_BYTES: usize = 32;
/// Random bytes for TR-31 padding (enough for any key `pad_len` allows).
const TR31_PAD_BYTES: usize = 48;
/// Characters of a token used as its cache key: the TR-31 version D MAC, 16 bytes in hex.
const CACHE_KEY_CHARS: usize = 32;
/// Bytes of a double-length TDES key, the one length whose DES schedules the cache keeps.
const DOUBLE_LENGTH: usize = 16;
/// Modes of use of a key that derives others (a DUKPT BDK).
const DERIVE: [ModeOfUse; 2] = [ModeOfUse::Derive, ModeOfUse::None];
/// Shortest MAC `verify_mac` compares.
const MIN_MAC_BYTES: usize = 4;

/// An unwrapped key with its header, and (for double-length TDES keys) its DES key
/// schedules, or (for an HMAC key) its padded blocks compressed, or (for an Ed25519 seed) its
/// expanded signing key, built on first use.
struct ClearKey {
    header: Header,
    key: SecretBytes,
    prepared: OnceLock<PreparedTdesKey>,
    /// The card-number fingerprint key fingerprints every card presented.
    hmac: OnceLock<PreparedHmacSha256>,
    /// Expanding a seed hashes it and multiplies the base point, as much work again as a
    /// signature: the receipt key signs every approval, so it is expanded once.
    signing: OnceLock<ed25519_dalek::SigningKey>,
}

impl ClearKey {
    fn new(header: Header, key: SecretBytes) -> Self {
        Self {
            header,
            key,
            prepared: OnceLock::new(),
            hmac: OnceLock::new(),
            signing: OnceLock::new(),
        }
    }

    fn prepared(&self) -> Result<&PreparedTdesKey> {
        if let Some(prepared) = self.prepared.get() {
            return Ok(prepared);
        }
        // A concurrent first use may prepare twice; both results are identical.
        let _ = self.prepared.set(PreparedTdesKey::new(&self.tdes()?)?);
        self.prepared
            .get()
            .ok_or(HsmError::Invalid("key preparation failed"))
    }

    /// The key as an HMAC-SHA-256 key, its padded blocks compressed on first use.
    fn hmac(&self) -> &PreparedHmacSha256 {
        self.hmac
            .get_or_init(|| PreparedHmacSha256::new(self.key.expose()))
    }

    /// The prepared schedules of a double-length TDES key (every TDES key easypos makes),
    /// `None` for another length, which an operation then prepares for itself.
    fn double_length(&self) -> Result<Option<&PreparedTdesKey>> {
        if self.header.algorithm != Algorithm::Tdes {
            return Err(HsmError::Invalid("operation needs a TDES key"));
        }
        if self.key.len() == DOUBLE_LENGTH {
            self.prepared().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Runs `operation` with this TDES key as a PIN key: its schedules prepared once when it is
    /// double-length (a PIN block's translation and verification use two such keys each).
    fn with_tdes_pin_key<T>(
        &self,
        operation: impl FnOnce(PinKey<'_>) -> paycrypto::Result<T>,
    ) -> Result<T> {
        Ok(match self.double_length()? {
            Some(prepared) => operation(PinKey::PreparedTdes(prepared))?,
            None => operation(PinKey::Tdes(&self.tdes()?))?,
        })
    }

    fn tdes(&self) -> Result<TdesKey> {
        if self.header.algorithm != Algorithm::Tdes {
            return Err(HsmError::Invalid("operation needs a TDES key"));
        }
        Ok(TdesKey::new(self.key.expose())?)
    }
    fn aes(&self) -> Result<AesKey> {
        if self.header.algorithm != Algorithm::Aes {
            return Err(HsmError::Invalid("operation needs an AES key"));
        }
        Ok(AesKey::new(self.key.expose())?)
    }
}

/// The software HSM.
pub struct SoftHsm {
    lmk: SecretBytes,
    /// Master keys being rotated out: tokens under them still open, nothing new is wrapped
    /// under them, and [`SoftHsm::rewrap`] moves a token to the current key.
    retired: Vec<SecretBytes>,
    /// Keyed by the token's MAC (its last 32 hex digits, unique per token), so the lookup hashes
    /// 32 characters rather than the whole block; the full token is compared on a hit.
    cache: Mutex<HashMap<String, (String, Arc<ClearKey>)>>,
    /// Most unwrapped keys kept ([`MAX_CACHED_KEYS`] unless set smaller).
    cache_capacity: usize,
}

impl fmt::Debug for SoftHsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SoftHsm(lmk check value {})",
            self.master_key_check_value()
        )
    }
}

impl SoftHsm {
    /// An HSM under the given 32-byte local master key.
    pub fn new(lmk: &[u8]) -> Result<Self> {
        if lmk.len() != LMK_BYTES {
            return Err(HsmError::MasterKey(format!(
                "must be {LMK_BYTES} bytes (AES-256), got {}",
                lmk.len()
            )));
        }
        Ok(Self {
            lmk: SecretBytes::new(lmk),
            retired: Vec::new(),
            cache: Mutex::new(HashMap::new()),
            cache_capacity: MAX_CACHED_KEYS,
        })
    }

    /// Keeps at most `capacity` unwrapped keys (at least one).
    pub fn with_key_cache(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity.clamp(1, MAX_CACHED_KEYS);
        self
    }

    /// Loads the LMK (64 hex digits) from an environment variable.
    pub fn from_env(variable: &str) -> Result<Self> {
        let text = Zeroizing::new(std::env::var(variable).map_err(|_| {
            HsmError::MasterKey(format!("environment variable {variable} is not set"))
        })?);
        Self::from_hex(&text)
    }

    /// Also opens tokens under `lmk`, a master key being rotated out.
    pub fn with_retired(mut self, lmk: &[u8]) -> Result<Self> {
        if lmk.len() != LMK_BYTES {
            return Err(HsmError::MasterKey(format!(
                "a retired master key must be {LMK_BYTES} bytes (AES-256), got {}",
                lmk.len()
            )));
        }
        self.retired.push(SecretBytes::new(lmk));
        Ok(self)
    }

    /// The check values of the master keys being rotated out (empty when none is).
    pub fn retired_check_values(&self) -> Vec<String> {
        self.retired
            .iter()
            .filter_map(|lmk| AesKey::new(lmk.expose()).ok())
            .map(|key| to_hex(&kcv::aes_cmac_kcv(&key)))
            .collect()
    }

    /// The token under the current master key: `None` when it is under it already, a new
    /// token when it was under a retired one (the key inside is the same). A token under no
    /// known master key is an error.
    pub fn rewrap(&self, token: &KeyToken) -> Result<Option<KeyToken>> {
        let current = tr31::unwrap(self.lmk.expose(), token.as_str());
        if current.is_ok() {
            return Ok(None);
        }
        for retired in &self.retired {
            if let Ok((header, key)) = tr31::unwrap(retired.expose(), token.as_str()) {
                return self.wrap(&header, key.expose()).map(Some);
            }
        }
        current.map(|_| None).map_err(HsmError::from)
    }

    /// Loads the master key from a file: 64 hex digits on the first line, and during a
    /// rotation (docs/key-ceremonies.md) the retired key on each following line. Blank lines
    /// and `#` comments are ignored.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                HsmError::MasterKey(format!("cannot read {}: {e}", path.display()))
            })?);
        Self::from_hex(&text)
    }

    fn from_hex(text: &str) -> Result<Self> {
        let mut keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                hex::decode(line)
                    .map(Zeroizing::new)
                    .map_err(|_| HsmError::MasterKey("not hexadecimal".to_owned()))
            });
        let current = keys
            .next()
            .ok_or_else(|| HsmError::MasterKey("the key file is empty".to_owned()))??;
        let mut hsm = Self::new(&current)?;
        for retired in keys {
            hsm = hsm.with_retired(&retired?)?;
        }
        Ok(hsm)
    }

    fn wrap(&self, header: &Header, key: &[u8]) -> Result<KeyToken> {
        let mut pad = Zeroizing::new([0u8; TR31_PAD_BYTES]);
        rand::rng().fill_bytes(&mut pad[..]);
        Ok(KeyToken(tr31::wrap(
            self.lmk.expose(),
            header,
            key,
            &pad[..],
        )?))
    }

    /// Unwraps a token (or takes it from the cache).
    fn open(&self, token: &KeyToken) -> Result<Arc<ClearKey>> {
        let cache_key = token
            .as_str()
            .get(token.as_str().len().saturating_sub(CACHE_KEY_CHARS)..)
            .unwrap_or("");
        if let Some((full, found)) = self.cache_lock().get(cache_key)
            && full == token.as_str()
        {
            return Ok(Arc::clone(found));
        }
        let (header, key) = match tr31::unwrap(self.lmk.expose(), token.as_str()) {
            Ok(opened) => opened,
            Err(error) => self
                .retired
                .iter()
                .find_map(|retired| tr31::unwrap(retired.expose(), token.as_str()).ok())
                .ok_or(error)?,
        };
        let clear = Arc::new(ClearKey::new(header, key));
        let mut cache = self.cache_lock();
        if cache.len() >= self.cache_capacity
            && let Some(evicted) = cache.keys().next().cloned()
        {
            cache.remove(&evicted);
        }
        cache.insert(cache_key.to_owned(), (token.0.clone(), Arc::clone(&clear)));
        Ok(clear)
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Arc<ClearKey>)>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a key and checks its usage and mode of use.
    fn open_for(
        &self,
        token: &KeyToken,
        usages: &[KeyUsage],
        modes: &[ModeOfUse],
        operation: &'static str,
    ) -> Result<Arc<ClearKey>> {
        let key = self.open(token)?;
        key.header.require(usages, modes, operation)?;
        Ok(key)
    }

    fn random_fill(format: pinblock::PinBlockFormat) -> [u8; FILL_BYTES] {
        let mut random = [0u8; FILL_BYTES];
        rand::rng().fill_bytes(&mut random);
        pinblock::fill_from_random(format, &random)
    }

    /// Decrypts an incoming PIN block to the PIN (inside the HSM only).
    fn decrypt_pin(&self, block: &PinBlock, source: &PinSource<'_>, pan: &Pan) -> Result<Pin> {
        const DECRYPT: [ModeOfUse; 3] = [ModeOfUse::Both, ModeOfUse::Decrypt, ModeOfUse::None];
        match *source {
            PinSource::Zone { key, format } => {
                let key = self.open_for(
                    key,
                    &[KeyUsage::PIN_ENCRYPTION],
                    &DECRYPT,
                    "decrypt a PIN block",
                )?;
                decrypt_with(&key, format, block, pan)
            }
            PinSource::TdesDukpt { bdk, ksn, format } => {
                let bdk = self.open_for(bdk, &[KeyUsage::BDK], &DERIVE, "derive a DUKPT key")?;
                let pin_key = tdes::working_key(
                    &tdes::host_transaction_key(&bdk.tdes()?, &ksn)?,
                    tdes::Variant::Pin,
                )?;
                Ok(pinblock::decrypt_pin_block(
                    format,
                    PinKey::Tdes(&pin_key),
                    block,
                    Some(pan),
                )?)
            }
            PinSource::AesDukpt { bdk, ksn, key_type } => {
                let bdk = self.open_for(bdk, &[KeyUsage::BDK], &DERIVE, "derive a DUKPT key")?;
                let usage = aes_dukpt::KeyUsage::PinEncryption;
                let initial = aes_dukpt::initial_key(&bdk.aes()?, &ksn.initial_key_id())?;
                let derivation = aes_dukpt::derivation_key(&initial, &ksn)?;
                let pin_key = aes_dukpt::aes_working_key(&derivation, &ksn, usage, key_type)?;
                let format = pinblock::PinBlockFormat::Iso4;
                Ok(pinblock::decrypt_pin_block(
                    format,
                    PinKey::Aes(&pin_key),
                    block,
                    Some(pan),
                )?)
            }
        }
    }
}

fn decrypt_with(
    key: &ClearKey,
    format: pinblock::PinBlockFormat,
    block: &PinBlock,
    pan: &Pan,
) -> Result<Pin> {
    let pan = Some(pan);
    if format.is_aes() {
        Ok(pinblock::decrypt_pin_block(
            format,
            PinKey::Aes(&key.aes()?),
            block,
            pan,
        )?)
    } else {
        key.with_tdes_pin_key(|pin_key| pinblock::decrypt_pin_block(format, pin_key, block, pan))
    }
}

fn random_key(length: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; length]);
    rand::rng().fill_bytes(&mut key);
    key
}

fn header_for(spec: &KeySpec) -> Header {
    Header::new(Version::D, spec.usage, spec.algorithm, spec.mode_of_use)
        .with_exportability(spec.exportability)
}

/// Key-encryption keys and the modes that allow wrapping and unwrapping.
const KEK_USAGES: [KeyUsage; 2] = [KeyUsage::KEY_BLOCK_PROTECTION, KeyUsage::KEY_ENCRYPTION];
const UNWRAP_MODES: [ModeOfUse; 3] = [ModeOfUse::Both, ModeOfUse::Decrypt, ModeOfUse::None];
const WRAP_MODES: [ModeOfUse; 3] = [ModeOfUse::Both, ModeOfUse::Encrypt, ModeOfUse::None];
const COMPUTE_MODES: [ModeOfUse; 3] = [ModeOfUse::Compute, ModeOfUse::Verify, ModeOfUse::None];

impl Hsm for SoftHsm {
    fn master_key_check_value(&self) -> String {
        // The LMK length is checked at construction, so this cannot fail.
        AesKey::new(self.lmk.expose())
            .map(|key| to_hex(&kcv::aes_cmac_kcv(&key)))
            .unwrap_or_default()
    }

    fn generate_key(&self, spec: &KeySpec) -> Result<KeyToken> {
        let mut key = random_key(spec.length);
        if spec.algorithm == Algorithm::Tdes {
            set_odd_parity(&mut key);
        }
        self.wrap(&header_for(spec), &key)
    }

    fn import_clear_key(&self, spec: &KeySpec, key: &[u8]) -> Result<KeyToken> {
        if key.len() != spec.length {
            return Err(HsmError::Invalid(
                "clear key length does not match the key spec",
            ));
        }
        self.wrap(&header_for(spec), key)
    }

    fn import_key(&self, kek: &KeyToken, block: &str) -> Result<KeyToken> {
        let kek = self.open_for(kek, &KEK_USAGES, &UNWRAP_MODES, "unwrap a key block")?;
        let (header, key) = tr31::unwrap(kek.key.expose(), block)?;
        let stored = Header::new(
            Version::D,
            header.usage,
            header.algorithm,
            header.mode_of_use,
        )
        .with_exportability(header.exportability);
        self.wrap(&stored, key.expose())
    }

    fn export_key(&self, kek: &KeyToken, key: &KeyToken) -> Result<String> {
        let kek = self.open_for(kek, &KEK_USAGES, &WRAP_MODES, "wrap a key block")?;
        let key = self.open(key)?;
        if key.header.exportability != tr31::Exportability::Exportable {
            return Err(HsmError::NotExportable);
        }
        let version = if kek.header.algorithm == Algorithm::Aes {
            Version::D
        } else {
            Version::B
        };
        let header = Header::new(
            version,
            key.header.usage,
            key.header.algorithm,
            key.header.mode_of_use,
        )
        .with_exportability(key.header.exportability);
        let mut pad = Zeroizing::new([0u8; TR31_PAD_BYTES]);
        rand::rng().fill_bytes(&mut pad[..]);
        Ok(tr31::wrap(
            kek.key.expose(),
            &header,
            key.key.expose(),
            &pad[..],
        )?)
    }

    fn export_aes_dukpt_initial_key(
        &self,
        kbpk: &KeyToken,
        bdk: &KeyToken,
        initial_key_id: &[u8; 8],
    ) -> Result<(String, [u8; 3])> {
        let kbpk = self.open_for(kbpk, &KEK_USAGES, &WRAP_MODES, "wrap a key block")?;
        if kbpk.header.algorithm != Algorithm::Aes {
            return Err(HsmError::Invalid(
                "an AES DUKPT initial key is wrapped under an AES key-block protection key",
            ));
        }
        let bdk = self.open_for(bdk, &[KeyUsage::BDK], &DERIVE, "derive a DUKPT initial key")?;
        let initial = aes_dukpt::initial_key(&bdk.aes()?, initial_key_id)?;
        let header = Header::new(
            Version::D,
            KeyUsage::DUKPT_INITIAL_KEY,
            Algorithm::Aes,
            ModeOfUse::Derive,
        );
        let mut pad = Zeroizing::new([0u8; TR31_PAD_BYTES]);
        rand::rng().fill_bytes(&mut pad[..]);
        let block = tr31::wrap(kbpk.key.expose(), &header, initial.expose(), &pad[..])?;
        Ok((block, kcv::aes_cmac_kcv(&initial)))
    }

    fn key_check_value(&self, token: &KeyToken) -> Result<[u8; 3]> {
        let key = self.open(token)?;
        match key.header.algorithm {
            Algorithm::Aes => Ok(kcv::aes_cmac_kcv(&key.aes()?)),
            Algorithm::Tdes | Algorithm::Des => Ok(kcv::tdes(&TdesKey::new(key.key.expose())?)),
            // No standard defines one for HMAC keys. easypos convention, in the spirit of the
            // others: the leftmost 3 bytes of HMAC-SHA-256 over 16 zero bytes.
            Algorithm::Hmac => {
                let digest = key.hmac().mac(&[0; 16]);
                Ok([digest[0], digest[1], digest[2]])
            }
            // Likewise for a signing key: the leftmost 3 bytes of SHA-256 of its public key.
            Algorithm::EllipticCurve => {
                use sha2::Digest;
                let public = self.ed25519_public_key(token)?;
                let digest = sha2::Sha256::digest(public);
                Ok([digest[0], digest[1], digest[2]])
            }
        }
    }

    fn translate_pin(
        &self,
        block: &PinBlock,
        source: &PinSource<'_>,
        destination: &PinDestination<'_>,
        pan: &Pan,
    ) -> Result<PinBlock> {
        if !translation_allowed(source.format(), destination.format) {
            return Err(HsmError::TranslationNotAllowed(
                "a PAN-bound PIN block cannot become format 1",
            ));
        }
        let out_key = self.open_for(
            destination.key,
            &[KeyUsage::PIN_ENCRYPTION],
            &WRAP_MODES,
            "encrypt a PIN block",
        )?;
        let pin = self.decrypt_pin(block, source, pan)?;
        let format = destination.format;
        let fill = Self::random_fill(format);
        let pan = Some(pan);
        let encrypted = if format.is_aes() {
            pinblock::encrypt_pin_block(format, PinKey::Aes(&out_key.aes()?), &pin, pan, &fill)?
        } else {
            out_key.with_tdes_pin_key(|pin_key| {
                pinblock::encrypt_pin_block(format, pin_key, &pin, pan, &fill)
            })?
        };
        Ok(encrypted)
    }

    fn verify_pin(
        &self,
        block: &PinBlock,
        source: &PinSource<'_>,
        pan: &Pan,
        method: &PinVerification<'_>,
    ) -> Result<bool> {
        let pin = self.decrypt_pin(block, source, pan)?;
        match *method {
            PinVerification::VisaPvv { pvk, pvki, pvv } => {
                let pvk = self.open_for(
                    pvk,
                    &[KeyUsage::PIN_VERIFICATION_VISA_PVV],
                    &COMPUTE_MODES,
                    "verify a PVV",
                )?;
                let computed = Zeroizing::new(match pvk.double_length()? {
                    Some(prepared) => card::pvv_prepared(prepared, pan, pvki, &pin)?,
                    None => card::pvv(&pvk.tdes()?, pan, pvki, &pin)?,
                });
                Ok(card::digits_equal(pvv, &computed))
            }
            PinVerification::Ibm3624 {
                pvk,
                validation_data,
                pad,
                table,
                offset,
            } => {
                let pvk = self.open_for(
                    pvk,
                    &[KeyUsage::PIN_VERIFICATION_IBM3624],
                    &COMPUTE_MODES,
                    "verify a PIN offset",
                )?;
                let pvk = TdesKey::new(pvk.key.expose())?;
                Ok(card::ibm3624_verify(
                    &pvk,
                    validation_data,
                    pad,
                    &table,
                    &pin,
                    offset,
                )?)
            }
        }
    }

    fn verify_arqc(
        &self,
        request: &ArqcRequest<'_>,
        arpc: Option<&ArpcInput>,
    ) -> Result<ArqcOutcome> {
        let imk = self.open_for(
            request.issuer_master_key,
            &[KeyUsage::EMV_MASTER_KEY_AC],
            &[ModeOfUse::Derive],
            "derive ICC master keys",
        )?;
        let version = request.cryptogram_version;
        let icc = emv::icc_master_key_prepared(imk.prepared()?, request.pan, request.psn)?;
        let icc = PreparedTdesKey::new(&icc)?;
        let derivation = version.session_derivation(request.unpredictable_number);
        let session =
            PreparedTdesKey::new(&emv::session_key_prepared(&icc, request.atc, derivation)?)?;
        let arqc_valid =
            emv::verify_arqc_prepared(&session, request.data, version.padding(), &request.arqc);
        let arpc = match arpc {
            None => None,
            Some(input) => Some(arpc_for(
                version.arpc_method(),
                &icc,
                &session,
                &request.arqc,
                input,
            )?),
        };
        Ok(ArqcOutcome { arqc_valid, arpc })
    }

    fn generate_mac(
        &self,
        key: &KeyToken,
        algorithm: MacAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let generate = [ModeOfUse::Compute, ModeOfUse::Generate, ModeOfUse::None];
        self.mac_with(key, algorithm, data, &generate, "generate a MAC")
    }

    fn verify_mac(
        &self,
        key: &KeyToken,
        algorithm: MacAlgorithm,
        data: &[u8],
        expected: &[u8],
    ) -> Result<bool> {
        if expected.len() < MIN_MAC_BYTES {
            return Err(HsmError::Invalid("MAC to verify is shorter than 4 bytes"));
        }
        let verify = [ModeOfUse::Compute, ModeOfUse::Verify, ModeOfUse::None];
        let computed = self.mac_with(key, algorithm, data, &verify, "verify a MAC")?;
        if expected.len() > computed.len() {
            return Ok(false);
        }
        Ok(mac::macs_equal(expected, &computed[..expected.len()]))
    }

    fn generate_dukpt_mac(
        &self,
        key: &DukptMacKey<'_>,
        direction: MacDirection,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        match *key {
            DukptMacKey::Tdes { bdk, ksn } => {
                let bdk = self.open_for(bdk, &[KeyUsage::BDK], &DERIVE, "derive a DUKPT key")?;
                let variant = match direction {
                    MacDirection::Request => tdes::Variant::MacRequest,
                    MacDirection::Response => tdes::Variant::MacResponse,
                };
                let mac_key =
                    tdes::working_key(&tdes::host_transaction_key(&bdk.tdes()?, &ksn)?, variant)?;
                Ok(mac::iso9797_alg3(&mac_key, data, paycrypto::mac::Padding::Method1)?.to_vec())
            }
            DukptMacKey::Aes { bdk, ksn, key_type } => {
                let bdk = self.open_for(bdk, &[KeyUsage::BDK], &DERIVE, "derive a DUKPT key")?;
                let usage = match direction {
                    MacDirection::Request => aes_dukpt::KeyUsage::MacGeneration,
                    MacDirection::Response => aes_dukpt::KeyUsage::MacVerification,
                };
                let initial = aes_dukpt::initial_key(&bdk.aes()?, &ksn.initial_key_id())?;
                let derivation = aes_dukpt::derivation_key(&initial, &ksn)?;
                let mac_key = aes_dukpt::aes_working_key(&derivation, &ksn, usage, key_type)?;
                Ok(mac::aes_cmac(&mac_key, data).to_vec())
            }
        }
    }

    fn verify_dukpt_mac(
        &self,
        key: &DukptMacKey<'_>,
        direction: MacDirection,
        data: &[u8],
        expected: &[u8],
    ) -> Result<bool> {
        if expected.len() < MIN_MAC_BYTES {
            return Err(HsmError::Invalid("MAC to verify is shorter than 4 bytes"));
        }
        let computed = self.generate_dukpt_mac(key, direction, data)?;
        if expected.len() > computed.len() {
            return Ok(false);
        }
        Ok(mac::macs_equal(expected, &computed[..expected.len()]))
    }

    fn verify_cvv(
        &self,
        cvk: &KeyToken,
        pan: &Pan,
        expiry: &str,
        service_code: &str,
        cvv: &str,
    ) -> Result<bool> {
        let cvk = self.open_for(cvk, &[KeyUsage::CVK], &COMPUTE_MODES, "verify a CVV")?;
        let computed = Zeroizing::new(card::cvv(&cvk.tdes()?, pan, expiry, service_code)?);
        Ok(card::digits_equal(cvv, &computed))
    }

    fn generate_working_key(
        &self,
        tmk: &KeyToken,
        spec: &KeySpec,
        check_value_len: usize,
    ) -> Result<(KeyToken, paycrypto::session::EncryptedWorkingKey)> {
        if spec.algorithm != Algorithm::Tdes {
            return Err(HsmError::Invalid(
                "master/session working keys are TDES keys",
            ));
        }
        let tmk = self.open_for(
            tmk,
            &[KeyUsage::KEY_ENCRYPTION],
            &[ModeOfUse::Encrypt, ModeOfUse::Both],
            "deliver working keys",
        )?;
        let token = self.generate_key(spec)?;
        let key = self.open(&token)?;
        let delivered =
            paycrypto::session::encrypt_working_key(&tmk.tdes()?, &key.tdes()?, check_value_len)?;
        Ok((token, delivered))
    }

    fn pan_fingerprint(&self, key: &KeyToken, pan: &Pan) -> Result<[u8; 32]> {
        let key = self.open_for(
            key,
            &[KeyUsage::MAC_HMAC],
            &[ModeOfUse::Generate, ModeOfUse::Compute],
            "fingerprint a card number",
        )?;
        Ok(key.hmac().mac(pan.digits().as_bytes()))
    }

    fn generate_pvv(&self, pvk: &KeyToken, pan: &Pan, pvki: u8, pin: &Pin) -> Result<String> {
        let pvk = self.open_for(
            pvk,
            &[KeyUsage::PIN_VERIFICATION_VISA_PVV],
            &[ModeOfUse::Compute, ModeOfUse::Generate, ModeOfUse::None],
            "generate a PVV",
        )?;
        Ok(card::pvv(&pvk.tdes()?, pan, pvki, pin)?)
    }

    fn generate_pin_offset(
        &self,
        pvk: &KeyToken,
        validation_data: &str,
        pad: char,
        table: &DecimalisationTable,
        pin: &Pin,
    ) -> Result<String> {
        let pvk = self.open_for(
            pvk,
            &[KeyUsage::PIN_VERIFICATION_IBM3624],
            &[ModeOfUse::Compute, ModeOfUse::Generate, ModeOfUse::None],
            "generate a PIN offset",
        )?;
        let pvk = TdesKey::new(pvk.key.expose())?;
        Ok(card::ibm3624_offset(
            &pvk,
            validation_data,
            pad,
            table,
            pin,
        )?)
    }

    fn ed25519_public_key(&self, key: &KeyToken) -> Result<[u8; 32]> {
        self.with_ed25519(key, |signing| signing.verifying_key().to_bytes())
    }

    fn ed25519_sign(&self, key: &KeyToken, data: &[u8]) -> Result<[u8; 64]> {
        use ed25519_dalek::Signer;
        self.with_ed25519(key, |signing| signing.sign(data).to_bytes())
    }

    fn derive_icc_master_key(
        &self,
        issuer_master_key: &KeyToken,
        pan: &Pan,
        psn: u8,
    ) -> Result<KeyToken> {
        let imk = self.open_for(
            issuer_master_key,
            &[KeyUsage::EMV_MASTER_KEY_AC],
            &[ModeOfUse::Derive],
            "derive ICC master keys",
        )?;
        let icc = emv::icc_master_key_prepared(imk.prepared()?, pan, psn)?;
        let header = Header::new(
            Version::D,
            KeyUsage::EMV_MASTER_KEY_AC,
            Algorithm::Tdes,
            ModeOfUse::Compute,
        );
        self.wrap(&header, icc.expose())
    }
}

impl SoftHsm {
    /// The Ed25519 key of an S0 token (the seed is the wrapped key; the dalek key zeroizes on
    /// drop).
    /// Runs `use_key` with the expanded signing key of an Ed25519 token (expanded once per
    /// unwrapped key).
    fn with_ed25519<T>(
        &self,
        key: &KeyToken,
        use_key: impl FnOnce(&ed25519_dalek::SigningKey) -> T,
    ) -> Result<T> {
        let key = self.ed25519_key(key)?;
        key.signing
            .get()
            .map(use_key)
            .ok_or(HsmError::Invalid("Ed25519 key preparation failed"))
    }

    fn ed25519_key(&self, key: &KeyToken) -> Result<Arc<ClearKey>> {
        let key = self.open_for(
            key,
            &[KeyUsage::ASYMMETRIC_SIGNATURE],
            &[ModeOfUse::Sign],
            "sign with Ed25519",
        )?;
        if key.header.algorithm != Algorithm::EllipticCurve {
            return Err(HsmError::Invalid("not an Ed25519 key"));
        }
        if key.signing.get().is_none() {
            let seed: [u8; 32] = key
                .key
                .expose()
                .try_into()
                .map_err(|_| HsmError::Invalid("Ed25519 seed length"))?;
            let seed = zeroize::Zeroizing::new(seed);
            // A concurrent first use may expand twice; both results are identical.
            let _ = key
                .signing
                .set(ed25519_dalek::SigningKey::from_bytes(&seed));
        }
        Ok(key)
    }

    fn mac_with(
        &self,
        key: &KeyToken,
        algorithm: MacAlgorithm,
        data: &[u8],
        modes: &[ModeOfUse],
        operation: &'static str,
    ) -> Result<Vec<u8>> {
        match algorithm {
            MacAlgorithm::Iso9797Alg1(padding) => {
                let key = self.open_for(key, &[KeyUsage::MAC_ALG1], modes, operation)?;
                Ok(mac::iso9797_alg1(&key.tdes()?, data, padding).to_vec())
            }
            MacAlgorithm::Iso9797Alg3(padding) => {
                // The key's DES schedules are built once, when it is first used (a terminal's
                // MAC key verifies its request and MACs its answer).
                let key = self.open_for(key, &[KeyUsage::MAC_ALG3], modes, operation)?;
                Ok(key.prepared()?.retail_mac(data, padding).to_vec())
            }
            MacAlgorithm::AesCmac => {
                let key = self.open_for(key, &[KeyUsage::MAC_CMAC], modes, operation)?;
                Ok(mac::aes_cmac(&key.aes()?, data).to_vec())
            }
        }
    }
}

fn arpc_for(
    method: ArpcMethod,
    icc: &PreparedTdesKey,
    session: &PreparedTdesKey,
    arqc: &[u8; 8],
    input: &ArpcInput,
) -> Result<Vec<u8>> {
    match (method, input) {
        (ArpcMethod::Method1UnderMasterKey, ArpcInput::Method1 { arc }) => {
            Ok(emv::arpc_method1_prepared(icc, arqc, arc).to_vec())
        }
        (ArpcMethod::Method1UnderSessionKey, ArpcInput::Method1 { arc }) => {
            Ok(emv::arpc_method1_prepared(session, arqc, arc).to_vec())
        }
        (ArpcMethod::Method2, ArpcInput::Method2 { csu, proprietary }) => {
            Ok(emv::arpc_method2_prepared(session, arqc, csu, proprietary)?.to_vec())
        }
        _ => Err(HsmError::Invalid(
            "ARPC input does not match the cryptogram version's ARPC method",
        )),
    }
}

fn set_odd_parity(key: &mut [u8]) {
    for byte in key.iter_mut() {
        let ones = (*byte & 0xFE).count_ones();
        *byte = (*byte & 0xFE) | u8::from(ones % 2 == 0);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::{KeySpec, MacAlgorithm};

    #[test]
    fn a_full_key_cache_drops_one_key_at_a_time_and_dropped_keys_still_work() {
        let hsm = SoftHsm::new(&[0x42; 32]).unwrap().with_key_cache(4);
        let tokens: Vec<KeyToken> = (0..10)
            .map(|_| hsm.generate_key(&KeySpec::mac_retail()).unwrap())
            .collect();
        let algorithm = MacAlgorithm::Iso9797Alg3(paycrypto::mac::Padding::Method1);
        let macs: Vec<Vec<u8>> = tokens
            .iter()
            .map(|token| hsm.generate_mac(token, algorithm, b"easypos").unwrap())
            .collect();
        assert_eq!(hsm.cache_lock().len(), 4, "bounded, and still full");
        for (token, mac) in tokens.iter().zip(&macs) {
            assert!(hsm.verify_mac(token, algorithm, b"easypos", mac).unwrap());
        }
        assert_eq!(hsm.cache_lock().len(), 4);
    }
}
