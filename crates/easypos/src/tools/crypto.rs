//! Cryptography calculators (issue 3): PIN blocks, DUKPT, CVV, PVV, IBM 3624 offsets, Luhn,
//! key check values, MACs, EMV keys, ARQC / ARPC and TR-31, all on `paycrypto`.
//!
//! Inputs are hex (keys, data, KSNs) or decimal digits (PIN, PAN). Errors name the argument and
//! never echo its value.

use super::{Report, hex_arg};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Subcommand, ValueEnum};
use paycrypto::card::{self, DecimalisationTable};
use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::emv::{self, ArpcMethod, CryptogramVersion, SessionKeyDerivation};
use paycrypto::mac::{self, Padding};
use paycrypto::pinblock::{self, FILL_BYTES, PinBlockFormat, PinKey};
use paycrypto::tr31::{self, Algorithm, Exportability, Header, KeyUsage, ModeOfUse, Version};
use paycrypto::{AesKey, Pan, Pin, PinBlock, SecretBytes, TdesKey, kcv, to_hex};

#[derive(Debug, Subcommand)]
pub enum CryptoTool {
    /// ISO 9564-1 PIN blocks (formats 0, 1, 3, 4): encode or decode.
    #[command(subcommand)]
    Pinblock(PinblockTool),
    /// DUKPT: initial key, transaction key and every working key for a BDK and KSN.
    Dukpt {
        /// Base derivation key (hex): 16 bytes TDES, or 16/32 bytes AES with --aes.
        #[arg(long)]
        bdk: String,
        /// Key serial number (hex): 10 bytes TDES, 12 bytes AES.
        #[arg(long)]
        ksn: String,
        /// ANSI X9.24-3 AES DUKPT instead of X9.24-1 TDES DUKPT.
        #[arg(long)]
        aes: bool,
        /// AES working key type (AES DUKPT only).
        #[arg(long, value_enum, default_value = "AES128")]
        key_type: AesKeyTypeArg,
    },
    /// CVV / CVC with CVV2 (service code 000) and iCVV (999) for the same card.
    Cvv {
        /// CVK pair KA||KB (hex, 16 bytes).
        #[arg(long)]
        cvk: String,
        #[arg(long)]
        pan: String,
        /// Expiry as encoded on track 2: YYMM.
        #[arg(long)]
        expiry: String,
        /// Service code (3 digits).
        #[arg(long)]
        service_code: String,
    },
    /// Visa PIN verification value.
    Pvv {
        /// PIN verification key pair (hex, 16 bytes).
        #[arg(long)]
        pvk: String,
        #[arg(long)]
        pan: String,
        #[arg(long)]
        pin: String,
        /// PIN verification key index (one digit).
        #[arg(long, default_value_t = 1)]
        pvki: u8,
    },
    /// IBM 3624 natural PIN and offset.
    PinOffset {
        /// PIN verification key (hex, 8 or 16 bytes).
        #[arg(long)]
        pvk: String,
        #[arg(long)]
        pin: String,
        /// Validation data (1-16 hex digits, usually 12 digits of the PAN).
        #[arg(long)]
        validation_data: String,
        /// Pad character for the validation data.
        #[arg(long, default_value = "F")]
        pad: char,
        /// Decimalisation table (16 digits).
        #[arg(long, default_value = "0123456789012345")]
        table: String,
    },
    /// Check a number's Luhn (mod 10) check digit, and give the digit that would complete it.
    Luhn {
        /// Digits to check (with their check digit).
        number: String,
    },
    /// Key check value: TDES E(K)[0], AES CMAC (X9 / TR-31) and legacy AES ECB.
    Kcv {
        /// Key (hex).
        #[arg(long)]
        key: String,
        /// Treat the key as AES (16 bytes is otherwise read as TDES).
        #[arg(long)]
        aes: bool,
    },
    /// ISO 9797-1 MAC algorithm 1 or 3 (retail), or AES-CMAC.
    Mac {
        #[arg(long, value_enum)]
        algorithm: MacAlgorithmArg,
        /// ISO 9797-1 padding method (ignored by cmac).
        #[arg(long, default_value_t = 1)]
        padding: u8,
        /// Key (hex).
        #[arg(long)]
        key: String,
        /// Message (hex).
        #[arg(long)]
        data: String,
    },
    /// EMV ICC master key (option A, or B for PANs over 16 digits) and session keys.
    EmvKeys {
        /// Issuer master key for application cryptograms (hex, 16 bytes).
        #[arg(long)]
        imk: String,
        #[arg(long)]
        pan: String,
        /// PAN sequence number (5F34), 2 digits.
        #[arg(long, default_value = "00")]
        psn: String,
        /// Application transaction counter (9F36), hex, 2 bytes.
        #[arg(long)]
        atc: String,
        /// Unpredictable number (9F37), hex, 4 bytes: adds the Mastercard SKD session key.
        #[arg(long)]
        un: Option<String>,
    },
    /// Generate or verify an ARQC from the issuer master key and the CDOL1 data.
    #[command(subcommand)]
    Arqc(ArqcTool),
    /// ARPC for a verified ARQC, with the method the cryptogram version prescribes.
    Arpc {
        #[command(flatten)]
        card: CardArgs,
        /// The ARQC (hex, 8 bytes).
        #[arg(long)]
        arqc: String,
        /// Authorisation response code (hex, 2 bytes; ASCII "00" is 3030): ARPC method 1.
        #[arg(long)]
        arc: Option<String>,
        /// Card status update (hex, 4 bytes): ARPC method 2.
        #[arg(long)]
        csu: Option<String>,
        /// Proprietary authentication data (hex, 0-8 bytes): ARPC method 2.
        #[arg(long, default_value = "")]
        proprietary: String,
    },
    /// ANSI TR-31 key blocks, versions B (TDES) and D (AES).
    #[command(subcommand)]
    Tr31(Tr31Tool),
}

#[derive(Debug, Subcommand)]
pub enum PinblockTool {
    /// Build a PIN block (and encrypt it when --key is given; format 4 needs --key).
    Encode {
        #[command(flatten)]
        common: PinblockArgs,
        #[arg(long)]
        pin: String,
        /// Fill for formats 1, 3 (nibbles after the PIN) and 4 (the random half), 8 bytes hex.
        #[arg(long)]
        fill: Option<String>,
    },
    /// Decrypt and check a PIN block, giving the PIN.
    Decode {
        #[command(flatten)]
        common: PinblockArgs,
        /// The enciphered PIN block (hex).
        #[arg(long)]
        block: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct PinblockArgs {
    /// ISO 9564-1 format: 0, 1, 3 or 4.
    #[arg(long)]
    format: u8,
    /// PAN (not used by format 1).
    #[arg(long)]
    pan: Option<String>,
    /// PIN key (hex): TDES for formats 0/1/3, AES for format 4.
    #[arg(long)]
    key: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CardArgs {
    /// Issuer master key for application cryptograms (hex, 16 bytes).
    #[arg(long)]
    imk: String,
    #[arg(long)]
    pan: String,
    /// PAN sequence number (5F34), 2 digits.
    #[arg(long, default_value = "00")]
    psn: String,
    /// Application transaction counter (9F36), hex, 2 bytes.
    #[arg(long)]
    atc: String,
    /// Cryptogram version number: 10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard), 133 (Interac).
    #[arg(long)]
    cvn: u8,
    /// Unpredictable number (9F37), hex, 4 bytes (Mastercard SKD).
    #[arg(long, default_value = "00000000")]
    un: String,
}

#[derive(Debug, Subcommand)]
pub enum ArqcTool {
    /// Compute the ARQC the card would produce.
    Generate {
        #[command(flatten)]
        card: CardArgs,
        /// CDOL1 data (hex).
        #[arg(long)]
        data: String,
    },
    /// Check an ARQC.
    Verify {
        #[command(flatten)]
        card: CardArgs,
        /// CDOL1 data (hex).
        #[arg(long)]
        data: String,
        /// The ARQC to check (hex, 8 bytes).
        #[arg(long)]
        arqc: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Tr31Tool {
    /// Wrap a key under a key-block protection key.
    Wrap {
        /// Key-block protection key (hex): TDES for version B, AES for D.
        #[arg(long)]
        kbpk: String,
        /// The key to wrap (hex).
        #[arg(long)]
        key: String,
        /// Key usage, two characters (P0, B0, M3, K1, ...).
        #[arg(long)]
        usage: String,
        /// Algorithm of the wrapped key: A (AES), T (TDES), D (DES), H (HMAC).
        #[arg(long)]
        algorithm: char,
        /// Mode of use: B, C, D, E, G, N, V, X.
        #[arg(long)]
        mode: char,
        /// Key block version: B or D.
        #[arg(long, default_value = "D")]
        version: char,
        /// Exportability: E, N or S.
        #[arg(long, default_value = "E")]
        exportability: char,
        /// Pad bytes (hex) to make the block reproducible; random otherwise.
        #[arg(long)]
        pad: Option<String>,
    },
    /// Unwrap a key block, verifying its MAC.
    Unwrap {
        #[arg(long)]
        kbpk: String,
        #[arg(long)]
        block: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AesKeyTypeArg {
    #[value(name = "AES128")]
    Aes128,
    #[value(name = "AES256")]
    Aes256,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MacAlgorithmArg {
    #[value(name = "1")]
    Alg1,
    #[value(name = "3")]
    Alg3,
    #[value(name = "cmac")]
    Cmac,
}

pub fn run(tool: CryptoTool) -> Result<Report> {
    match tool {
        CryptoTool::Pinblock(PinblockTool::Encode { common, pin, fill }) => {
            pinblock_encode(&common, &pin, fill.as_deref())
        }
        CryptoTool::Pinblock(PinblockTool::Decode { common, block }) => {
            pinblock_decode(&common, &block)
        }
        CryptoTool::Dukpt {
            bdk,
            ksn,
            aes,
            key_type,
        } => {
            if aes {
                dukpt_aes(&bdk, &ksn, key_type)
            } else {
                dukpt_tdes(&bdk, &ksn)
            }
        }
        CryptoTool::Cvv {
            cvk,
            pan,
            expiry,
            service_code,
        } => cvv(&cvk, &pan, &expiry, &service_code),
        CryptoTool::Pvv {
            pvk,
            pan,
            pin,
            pvki,
        } => pvv(&pvk, &pan, &pin, pvki),
        CryptoTool::PinOffset {
            pvk,
            pin,
            validation_data,
            pad,
            table,
        } => pin_offset(&pvk, &pin, &validation_data, pad, &table),
        CryptoTool::Luhn { number } => luhn(&number),
        CryptoTool::Kcv { key, aes } => key_check_value(&key, aes),
        CryptoTool::Mac {
            algorithm,
            padding,
            key,
            data,
        } => compute_mac(algorithm, padding, &key, &data),
        CryptoTool::EmvKeys {
            imk,
            pan,
            psn,
            atc,
            un,
        } => emv_keys(&imk, &pan, &psn, &atc, un.as_deref()),
        CryptoTool::Arqc(ArqcTool::Generate { card, data }) => arqc_generate(&card, &data),
        CryptoTool::Arqc(ArqcTool::Verify { card, data, arqc }) => arqc_verify(&card, &data, &arqc),
        CryptoTool::Arpc {
            card,
            arqc,
            arc,
            csu,
            proprietary,
        } => arpc(&card, &arqc, arc.as_deref(), csu.as_deref(), &proprietary),
        CryptoTool::Tr31(Tr31Tool::Wrap {
            kbpk,
            key,
            usage,
            algorithm,
            mode,
            version,
            exportability,
            pad,
        }) => {
            let spec = WrapSpec {
                usage,
                algorithm,
                mode,
                version,
                exportability,
            };
            tr31_wrap(&kbpk, &key, &spec, pad.as_deref())
        }
        CryptoTool::Tr31(Tr31Tool::Unwrap { kbpk, block }) => tr31_unwrap(&kbpk, &block),
    }
}

// ------------------------------------------------------------------ argument parsing

fn tdes_key(name: &str, value: &str) -> Result<TdesKey> {
    let bytes = SecretBytes::from_vec(hex_arg(name, value)?);
    TdesKey::new(bytes.expose()).map_err(|e| anyhow!("--{name}: {e}"))
}

fn aes_key(name: &str, value: &str) -> Result<AesKey> {
    let bytes = SecretBytes::from_vec(hex_arg(name, value)?);
    AesKey::new(bytes.expose()).map_err(|e| anyhow!("--{name}: {e}"))
}

fn fixed<const N: usize>(name: &str, value: &str) -> Result<[u8; N]> {
    let bytes = hex_arg(name, value)?;
    bytes.as_slice().try_into().map_err(|_| {
        anyhow!(
            "--{name}: must be {N} bytes ({} hex digits), got {}",
            2 * N,
            bytes.len()
        )
    })
}

fn pan_arg(value: &str) -> Result<Pan> {
    Pan::new(value).map_err(|e| anyhow!("--pan: {e}"))
}

fn pin_arg(value: &str) -> Result<Pin> {
    Pin::new(value).map_err(|e| anyhow!("--pin: {e}"))
}

fn psn_arg(value: &str) -> Result<u8> {
    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--psn: must be 2 decimal digits");
    }
    value.parse().context("--psn")
}

fn format_arg(format: u8) -> Result<PinBlockFormat> {
    PinBlockFormat::from_number(format).map_err(|_| anyhow!("--format: must be 0, 1, 3 or 4"))
}

fn hex(bytes: &[u8]) -> String {
    to_hex(bytes)
}

// ------------------------------------------------------------------ PIN blocks

fn pinblock_pan(format: PinBlockFormat, pan: Option<&str>) -> Result<Option<Pan>> {
    match (format.uses_pan(), pan) {
        (true, None) => bail!("--pan: required for formats 0, 3 and 4"),
        (_, Some(pan)) => Ok(Some(pan_arg(pan)?)),
        (false, None) => Ok(None),
    }
}

fn fill_arg(format: PinBlockFormat, fill: Option<&str>) -> Result<[u8; FILL_BYTES]> {
    match fill {
        Some(_) if format == PinBlockFormat::Iso0 => {
            bail!("--fill: format 0 has no fill to choose (it is always F)")
        }
        Some(fill) => fixed::<FILL_BYTES>("fill", fill),
        None => Ok(pinblock::fill_from_random(
            format,
            &hsm::random_bytes::<FILL_BYTES>(),
        )),
    }
}

fn pinblock_encode(args: &PinblockArgs, pin: &str, fill: Option<&str>) -> Result<Report> {
    let format = format_arg(args.format)?;
    let pan = pinblock_pan(format, args.pan.as_deref())?;
    let pin = pin_arg(pin)?;
    let fill = fill_arg(format, fill)?;
    let mut report = Report::new().field("format", args.format);
    if !format.is_aes() {
        let clear = pinblock::clear_tdes_block(format, &pin, pan.as_ref(), &fill)
            .map_err(|e| anyhow!("{e}"))?;
        report = report.field("clear_block", hex(&clear[..]));
    } else {
        report = report.field("random_fill", hex(&fill));
    }
    match (&args.key, format.is_aes()) {
        (None, true) => {
            bail!("--key: format 4 is always AES-encrypted, give a 16/24/32-byte AES key")
        }
        (None, false) => Ok(report),
        (Some(key), true) => {
            let key = aes_key("key", key)?;
            let block =
                pinblock::encrypt_pin_block(format, PinKey::Aes(&key), &pin, pan.as_ref(), &fill)?;
            Ok(report.field("pin_block", block.to_hex()))
        }
        (Some(key), false) => {
            let key = tdes_key("key", key)?;
            let block =
                pinblock::encrypt_pin_block(format, PinKey::Tdes(&key), &pin, pan.as_ref(), &fill)?;
            Ok(report.field("pin_block", block.to_hex()))
        }
    }
}

fn pinblock_decode(args: &PinblockArgs, block: &str) -> Result<Report> {
    let format = format_arg(args.format)?;
    let pan = pinblock_pan(format, args.pan.as_deref())?;
    let key = args
        .key
        .as_deref()
        .ok_or_else(|| anyhow!("--key: required to decode"))?;
    let block = PinBlock::new(&hex_arg("block", block)?).map_err(|e| anyhow!("--block: {e}"))?;
    let pin = if format.is_aes() {
        pinblock::decrypt_pin_block(
            format,
            PinKey::Aes(&aes_key("key", key)?),
            &block,
            pan.as_ref(),
        )
    } else {
        pinblock::decrypt_pin_block(
            format,
            PinKey::Tdes(&tdes_key("key", key)?),
            &block,
            pan.as_ref(),
        )
    }
    .map_err(|e| anyhow!("--block: {e}"))?;
    Ok(Report::new()
        .field("format", args.format)
        .field("pin", pin.expose().as_str())
        .field("pin_length", pin.len()))
}

// ------------------------------------------------------------------ DUKPT

fn dukpt_tdes(bdk: &str, ksn: &str) -> Result<Report> {
    let bdk = tdes_key("bdk", bdk)?;
    let ksn = tdes::Ksn::new(&hex_arg("ksn", ksn)?).map_err(|e| anyhow!("--ksn: {e}"))?;
    let ipek = tdes::derive_ipek(&bdk, &ksn).map_err(|e| anyhow!("--bdk: {e}"))?;
    let txn = tdes::transaction_key(&ipek, &ksn).map_err(|e| anyhow!("--ksn: {e}"))?;
    let mut report = Report::new()
        .field("scheme", "ANSI X9.24-1 TDES DUKPT")
        .field("ksn", ksn.to_hex())
        .field("counter", format!("{:06X}", ksn.counter()))
        .field("ipek", hex(ipek.expose()))
        .field("ipek_kcv", hex(&kcv::tdes(&ipek)))
        .field("transaction_key", hex(txn.expose()));
    for variant in tdes::Variant::ALL {
        let key = tdes::working_key(&txn, variant)?;
        report = report.field(
            &format!("{}_key", variant.name().replace('-', "_")),
            hex(key.expose()),
        );
    }
    let next = ksn
        .next()
        .map(|k| k.to_hex())
        .unwrap_or_else(|_| "exhausted".to_owned());
    Ok(report.field("next_ksn", next))
}

fn dukpt_aes(bdk: &str, ksn: &str, key_type: AesKeyTypeArg) -> Result<Report> {
    let bdk = aes_key("bdk", bdk)?;
    let ksn = aes_dukpt::Ksn::new(&hex_arg("ksn", ksn)?).map_err(|e| anyhow!("--ksn: {e}"))?;
    let key_type = match key_type {
        AesKeyTypeArg::Aes128 => aes_dukpt::KeyType::Aes128,
        AesKeyTypeArg::Aes256 => aes_dukpt::KeyType::Aes256,
    };
    let initial = aes_dukpt::initial_key(&bdk, &ksn.initial_key_id())?;
    let derivation =
        aes_dukpt::derivation_key(&initial, &ksn).map_err(|e| anyhow!("--ksn: {e}"))?;
    let mut report = Report::new()
        .field("scheme", "ANSI X9.24-3-2017 AES DUKPT")
        .field("ksn", ksn.to_hex())
        .field("counter", format!("{:08X}", ksn.counter()))
        .field("initial_key", hex(initial.expose()))
        .field("initial_key_kcv", hex(&kcv::aes_cmac_kcv(&initial)))
        .field("derivation_key", hex(derivation.expose()))
        .field("working_key_type", key_type.name());
    for usage in aes_dukpt::KeyUsage::WORKING {
        let key = aes_dukpt::working_key(&derivation, &ksn, usage, key_type)
            .map_err(|e| anyhow!("--key-type: {e}"))?;
        report = report.field(
            &format!("{}_key", usage.name().replace('-', "_")),
            hex(key.expose()),
        );
    }
    let next = ksn
        .next()
        .map(|k| k.to_hex())
        .unwrap_or_else(|_| "exhausted".to_owned());
    Ok(report.field("next_ksn", next))
}

// ------------------------------------------------------------------ card verification

fn cvv(cvk: &str, pan: &str, expiry: &str, service_code: &str) -> Result<Report> {
    let cvk = tdes_key("cvk", cvk)?;
    let pan = pan_arg(pan)?;
    let compute = |code: &str| card::cvv(&cvk, &pan, expiry, code);
    let value = compute(service_code).map_err(|e| anyhow!("--expiry / --service-code: {e}"))?;
    Ok(Report::new()
        .field("cvv", value)
        .field("cvv2", compute(card::CVV2_SERVICE_CODE)?)
        .field("icvv", compute(card::ICVV_SERVICE_CODE)?))
}

fn pvv(pvk: &str, pan: &str, pin: &str, pvki: u8) -> Result<Report> {
    let pvk = tdes_key("pvk", pvk)?;
    let value = card::pvv(&pvk, &pan_arg(pan)?, pvki, &pin_arg(pin)?)
        .map_err(|e| anyhow!("--pvki / --pan: {e}"))?;
    Ok(Report::new().field("pvki", pvki).field("pvv", value))
}

fn pin_offset(
    pvk: &str,
    pin: &str,
    validation_data: &str,
    pad: char,
    table: &str,
) -> Result<Report> {
    let pvk = tdes_key("pvk", pvk)?;
    let pin = pin_arg(pin)?;
    let table = DecimalisationTable::new(table).map_err(|e| anyhow!("--table: {e}"))?;
    let natural = card::ibm3624_natural_pin(&pvk, validation_data, pad, &table, pin.len())
        .map_err(|e| anyhow!("--validation-data / --pad: {e}"))?;
    let offset = card::ibm3624_offset(&pvk, validation_data, pad, &table, &pin)?;
    let natural: String = natural.iter().map(|d| char::from(b'0' + d)).collect();
    Ok(Report::new()
        .field("natural_pin", natural)
        .field("offset", offset))
}

fn luhn(number: &str) -> Result<Report> {
    let valid = card::luhn_valid(number).map_err(|e| anyhow!("NUMBER: {e}"))?;
    let complete = card::luhn_check_digit(number).map_err(|e| anyhow!("NUMBER: {e}"))?;
    Ok(Report::new()
        .field("valid", valid)
        .field("check_digit_to_append", complete))
}

// ------------------------------------------------------------------ KCV and MAC

fn key_check_value(key: &str, aes: bool) -> Result<Report> {
    if aes {
        let key = aes_key("key", key)?;
        return Ok(Report::new()
            .field("algorithm", "AES")
            .field("kcv_cmac", hex(&kcv::aes_cmac_kcv(&key)))
            .field("kcv_ecb_legacy", hex(&kcv::aes_ecb_kcv(&key))));
    }
    let key = tdes_key("key", key)?;
    Ok(Report::new()
        .field("algorithm", "TDES")
        .field("kcv", hex(&kcv::tdes(&key))))
}

fn compute_mac(algorithm: MacAlgorithmArg, padding: u8, key: &str, data: &str) -> Result<Report> {
    let data = hex_arg("data", data)?;
    let padding_method =
        Padding::from_number(padding).map_err(|_| anyhow!("--padding: must be 1 or 2"))?;
    let (name, value) = match algorithm {
        MacAlgorithmArg::Alg1 => (
            "ISO 9797-1 algorithm 1",
            mac::iso9797_alg1(&tdes_key("key", key)?, &data, padding_method).to_vec(),
        ),
        MacAlgorithmArg::Alg3 => {
            let key = tdes_key("key", key)?;
            (
                "ISO 9797-1 algorithm 3",
                mac::iso9797_alg3(&key, &data, padding_method)
                    .map_err(|e| anyhow!("--key: {e}"))?
                    .to_vec(),
            )
        }
        MacAlgorithmArg::Cmac => (
            "AES-CMAC",
            mac::aes_cmac(&aes_key("key", key)?, &data).to_vec(),
        ),
    };
    let mut report = Report::new().field("algorithm", name);
    if !matches!(algorithm, MacAlgorithmArg::Cmac) {
        report = report.field("padding", padding);
    }
    Ok(report.field("mac", hex(&value)))
}

// ------------------------------------------------------------------ EMV

struct Card {
    icc_master_key: TdesKey,
    session_key: TdesKey,
    version: CryptogramVersion,
}

fn card_keys(args: &CardArgs) -> Result<Card> {
    let imk = tdes_key("imk", &args.imk)?;
    let pan = pan_arg(&args.pan)?;
    let psn = psn_arg(&args.psn)?;
    let atc = fixed::<2>("atc", &args.atc)?;
    let un = fixed::<4>("un", &args.un)?;
    let version = CryptogramVersion::from_number(args.cvn).map_err(|e| anyhow!("--cvn: {e}"))?;
    let icc_master_key = emv::icc_master_key(&imk, &pan, psn).map_err(|e| anyhow!("--imk: {e}"))?;
    let session_key = emv::session_key(&icc_master_key, atc, version.session_derivation(un))?;
    Ok(Card {
        icc_master_key,
        session_key,
        version,
    })
}

fn emv_keys(imk: &str, pan: &str, psn: &str, atc: &str, un: Option<&str>) -> Result<Report> {
    let imk = tdes_key("imk", imk)?;
    let pan = pan_arg(pan)?;
    let psn = psn_arg(psn)?;
    let atc = fixed::<2>("atc", atc)?;
    let mk = emv::icc_master_key(&imk, &pan, psn).map_err(|e| anyhow!("--imk: {e}"))?;
    let option = if pan.len() > 16 { "B" } else { "A" };
    let common = emv::session_key(&mk, atc, SessionKeyDerivation::Common)?;
    let mut report = Report::new()
        .field("derivation_option", option)
        .field("icc_master_key", hex(mk.expose()))
        .field("icc_master_key_kcv", hex(&kcv::tdes(&mk)))
        .field("session_key_common", hex(common.expose()));
    if let Some(un) = un {
        let unpredictable_number = fixed::<4>("un", un)?;
        let skd = emv::session_key(
            &mk,
            atc,
            SessionKeyDerivation::Mastercard {
                unpredictable_number,
            },
        )?;
        report = report.field("session_key_mastercard", hex(skd.expose()));
    }
    Ok(report)
}

fn arqc_generate(args: &CardArgs, data: &str) -> Result<Report> {
    let card = card_keys(args)?;
    let data = hex_arg("data", data)?;
    let arqc = emv::generate_arqc(&card.session_key, &data, card.version.padding())?;
    Ok(Report::new()
        .field("cvn", args.cvn)
        .field("session_key", hex(card.session_key.expose()))
        .field("arqc", hex(&arqc)))
}

fn arqc_verify(args: &CardArgs, data: &str, arqc: &str) -> Result<Report> {
    let card = card_keys(args)?;
    let data = hex_arg("data", data)?;
    let arqc = fixed::<8>("arqc", arqc)?;
    let valid = emv::verify_arqc(&card.session_key, &data, card.version.padding(), &arqc)?;
    Ok(Report::new().field("cvn", args.cvn).field("valid", valid))
}

fn arpc(
    args: &CardArgs,
    arqc: &str,
    arc: Option<&str>,
    csu: Option<&str>,
    proprietary: &str,
) -> Result<Report> {
    let card = card_keys(args)?;
    let arqc = fixed::<8>("arqc", arqc)?;
    let method = card.version.arpc_method();
    let (method_name, arpc, tag_91) = match (method, arc, csu) {
        (ArpcMethod::Method2, _, Some(csu)) => {
            let csu = fixed::<4>("csu", csu)?;
            let proprietary = hex_arg("proprietary", proprietary)?;
            let arpc = emv::arpc_method2(&card.session_key, &arqc, &csu, &proprietary)
                .map_err(|e| anyhow!("--proprietary: {e}"))?;
            (
                "2 (session key)",
                arpc.to_vec(),
                [arpc.as_slice(), &csu, &proprietary].concat(),
            )
        }
        (ArpcMethod::Method2, _, None) => bail!(
            "--csu: CVN {} uses ARPC method 2, which needs a card status update",
            args.cvn
        ),
        (_, Some(arc), _) => {
            let arc = fixed::<2>("arc", arc)?;
            let (name, key) = match method {
                ArpcMethod::Method1UnderMasterKey => ("1 (ICC master key)", &card.icc_master_key),
                _ => ("1 (session key)", &card.session_key),
            };
            let arpc = emv::arpc_method1(key, &arqc, &arc)?;
            (name, arpc.to_vec(), [arpc.as_slice(), &arc].concat())
        }
        (_, None, _) => bail!(
            "--arc: CVN {} uses ARPC method 1, which needs an authorisation response code",
            args.cvn
        ),
    };
    Ok(Report::new()
        .field("cvn", args.cvn)
        .field("method", method_name)
        .field("arpc", hex(&arpc))
        .field("tag_91", hex(&tag_91)))
}

// ------------------------------------------------------------------ TR-31

struct WrapSpec {
    usage: String,
    algorithm: char,
    mode: char,
    version: char,
    exportability: char,
}

fn wrap_header(spec: &WrapSpec) -> Result<Header> {
    let usage: [u8; 2] = spec
        .usage
        .as_bytes()
        .try_into()
        .ok()
        .filter(|u: &[u8; 2]| u.iter().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| anyhow!("--usage: must be two letters or digits, such as P0"))?;
    let algorithm = match spec.algorithm {
        'A' => Algorithm::Aes,
        'T' => Algorithm::Tdes,
        'D' => Algorithm::Des,
        'H' => Algorithm::Hmac,
        _ => bail!("--algorithm: must be A, T, D or H"),
    };
    let mode = ModeOfUse::from_id(spec.mode)
        .map_err(|_| anyhow!("--mode: must be one of B C D E G N V X"))?;
    let version = match spec.version {
        'B' => Version::B,
        'D' => Version::D,
        _ => bail!("--version: must be B or D"),
    };
    let exportability = match spec.exportability {
        'E' => Exportability::Exportable,
        'N' => Exportability::NonExportable,
        'S' => Exportability::Sensitive,
        _ => bail!("--exportability: must be E, N or S"),
    };
    Ok(Header::new(version, KeyUsage(usage), algorithm, mode).with_exportability(exportability))
}

fn tr31_wrap(kbpk: &str, key: &str, spec: &WrapSpec, pad: Option<&str>) -> Result<Report> {
    let header = wrap_header(spec)?;
    let kbpk = SecretBytes::from_vec(hex_arg("kbpk", kbpk)?);
    let key = SecretBytes::from_vec(hex_arg("key", key)?);
    let pad = match pad {
        Some(pad) => hex_arg("pad", pad)?,
        None => hsm::random_bytes::<48>().to_vec(),
    };
    let block = tr31::wrap(kbpk.expose(), &header, key.expose(), &pad).map_err(|e| match e {
        paycrypto::Error::Length { what: "KBPK", .. } => anyhow!("--kbpk: {e}"),
        paycrypto::Error::Invalid(_) => anyhow!("--pad: {e}"),
        _ => anyhow!("--key: {e}"),
    })?;
    Ok(Report::new().field("key_block", block))
}

fn tr31_unwrap(kbpk: &str, block: &str) -> Result<Report> {
    let kbpk = SecretBytes::from_vec(hex_arg("kbpk", kbpk)?);
    let (header, key) = tr31::unwrap(kbpk.expose(), block.trim()).map_err(|e| match e {
        paycrypto::Error::Length { .. } => anyhow!("--kbpk: {e}"),
        _ => anyhow!("--block: {e}"),
    })?;
    let kcv = match header.algorithm {
        Algorithm::Aes => AesKey::new(key.expose())
            .map(|k| hex(&kcv::aes_cmac_kcv(&k)))
            .unwrap_or_default(),
        _ => TdesKey::new(key.expose())
            .map(|k| hex(&kcv::tdes(&k)))
            .unwrap_or_default(),
    };
    Ok(Report::new()
        .field("version", format!("{:?}", header.version))
        .field("usage", header.usage.as_str())
        .field("algorithm", format!("{:?}", header.algorithm))
        .field("mode_of_use", header.mode_of_use.id().to_string())
        .field("exportability", format!("{:?}", header.exportability))
        .field("key", hex(key.expose()))
        .field("kcv", kcv))
}
