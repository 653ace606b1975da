//! The software HSM through the `Hsm` trait: key lifecycle, usage enforcement, PIN translation
//! and verification, ARQC/ARPC, MACs. Vectors are the paycrypto ones (sources named there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hsm::{
    ArpcInput, ArqcRequest, Hsm, HsmError, KeySpec, KeyToken, MacAlgorithm, PinDestination,
    PinSource, PinVerification, SoftHsm,
};
use paycrypto::card::DecimalisationTable;
use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::emv::{self, CryptogramVersion};
use paycrypto::mac::Padding;
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::tr31::{self, Algorithm, Exportability, KeyUsage, ModeOfUse};
use paycrypto::{AesKey, Error, Pan, Pin, PinBlock, TdesKey, to_hex};

const LMK: [u8; 32] = [0x42; 32];
const TDES_TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";

fn bytes(hex: &str) -> Vec<u8> {
    hex::decode(hex).unwrap()
}
fn soft() -> SoftHsm {
    SoftHsm::new(&LMK).unwrap()
}
fn pan(digits: &str) -> Pan {
    Pan::new(digits).unwrap()
}

#[test]
fn master_key_loads_from_env_and_file_and_is_identified_by_check_value() {
    let hex = hex::encode(LMK);
    // The environment is process-global and tests run in parallel, so the env path is tested
    // only for a missing variable; the file path carries the real load.
    let path = std::env::temp_dir().join(format!("easypos-hsm-lmk-{}", std::process::id()));
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    let from_file = SoftHsm::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        from_file.master_key_check_value(),
        soft().master_key_check_value()
    );
    assert_eq!(soft().master_key_check_value().len(), 6);
    assert!(matches!(
        SoftHsm::new(&[0; 16]),
        Err(HsmError::MasterKey(_))
    ));
    assert!(matches!(
        SoftHsm::from_env("EASYPOS_TEST_LMK_THAT_IS_NOT_SET"),
        Err(HsmError::MasterKey(_))
    ));
}

#[test]
fn a_token_from_another_lmk_or_with_an_edited_header_is_refused() {
    let token = soft().generate_key(&KeySpec::pin_zone_tdes()).unwrap();
    let other = SoftHsm::new(&[0x43; 32]).unwrap();
    assert!(matches!(
        other.key_check_value(&token),
        Err(HsmError::Crypto(Error::KeyBlockMac))
    ));
    // Turning a PIN key into a MAC key by editing the header breaks the MAC.
    let forged = KeyToken::new(token.as_str().replacen("P0TB", "M3TC", 1));
    assert!(matches!(
        soft().key_check_value(&forged),
        Err(HsmError::Crypto(Error::KeyBlockMac))
    ));
}

#[test]
fn a_rotation_opens_tokens_under_the_retired_key_and_rewraps_them_under_the_new_one() {
    const NEW: [u8; 32] = [0x77; 32];
    let old = soft();
    let token = old.generate_key(&KeySpec::pin_zone_tdes()).unwrap();
    let check = old.key_check_value(&token).unwrap();

    // New key first, old one retired: old tokens still open, with the same key inside.
    let rotating = SoftHsm::new(&NEW).unwrap().with_retired(&LMK).unwrap();
    assert_eq!(rotating.key_check_value(&token).unwrap(), check);
    assert_eq!(
        rotating.retired_check_values(),
        [old.master_key_check_value()]
    );
    let moved = rotating
        .rewrap(&token)
        .unwrap()
        .expect("under the retired key");
    assert_ne!(moved, token);
    assert_eq!(
        rotating.rewrap(&moved).unwrap(),
        None,
        "already under the new key"
    );

    // After the rotation only the new key is needed, and the old one no longer opens it.
    let new = SoftHsm::new(&NEW).unwrap();
    assert_eq!(new.key_check_value(&moved).unwrap(), check);
    assert!(new.key_check_value(&token).is_err());
    assert!(old.key_check_value(&moved).is_err());
    assert!(new.rewrap(&token).is_err(), "a token under no known key");
    // What is generated during a rotation is under the new key.
    let fresh = rotating.generate_key(&KeySpec::pin_zone_tdes()).unwrap();
    assert!(new.key_check_value(&fresh).is_ok());

    // The key file of a rotation: the new key first, comments and blank lines ignored.
    let path = std::env::temp_dir().join(format!("easypos-lmk-rotation-{}", std::process::id()));
    std::fs::write(
        &path,
        format!("# new\n{}\n\n# retired\n{}\n", to_hex(&NEW), to_hex(&LMK)),
    )
    .unwrap();
    let loaded = SoftHsm::from_file(&path).unwrap();
    assert_eq!(
        loaded.master_key_check_value(),
        new.master_key_check_value()
    );
    assert_eq!(loaded.key_check_value(&token).unwrap(), check);
    std::fs::write(&path, "# nothing\n").unwrap();
    assert!(SoftHsm::from_file(&path).is_err());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn export_and_import_under_a_kek_keeps_the_key_and_its_usage() {
    let hsm = soft();
    let kek = hsm
        .import_clear_key(&KeySpec::kbpk(Algorithm::Aes, 32), &[7; 32])
        .unwrap();
    let key = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let exported = hsm.export_key(&kek, &key).unwrap();
    assert!(exported.starts_with('D') && exported[5..9].eq("P0TB"));
    // The exported block opens under the clear KEK with paycrypto alone.
    let (_, clear) = tr31::unwrap(&[7; 32], &exported).unwrap();
    assert_eq!(to_hex(clear.expose()), TDES_TEST_KEY);
    let imported = hsm.import_key(&kek, &exported).unwrap();
    assert_eq!(
        hsm.key_check_value(&imported).unwrap(),
        hsm.key_check_value(&key).unwrap()
    );
    assert_eq!(to_hex(&hsm.key_check_value(&key).unwrap()), "08D7B4");
}

#[test]
fn export_refuses_non_exportable_keys_and_non_kek_wrapping_keys() {
    let hsm = soft();
    let kek = hsm
        .generate_key(&KeySpec::kbpk(Algorithm::Tdes, 16))
        .unwrap();
    let mut spec = KeySpec::pin_zone_tdes();
    spec.exportability = Exportability::NonExportable;
    let key = hsm.generate_key(&spec).unwrap();
    assert!(matches!(
        hsm.export_key(&kek, &key),
        Err(HsmError::NotExportable)
    ));
    let not_a_kek = hsm.generate_key(&KeySpec::mac_retail()).unwrap();
    let exportable = hsm.generate_key(&KeySpec::pin_zone_tdes()).unwrap();
    assert!(matches!(
        hsm.export_key(&not_a_kek, &exportable),
        Err(HsmError::Crypto(Error::UsageNotAllowed { .. }))
    ));
    // A TDES KEK exports version B.
    assert!(hsm.export_key(&kek, &exportable).unwrap().starts_with('B'));
}

#[test]
fn import_of_a_block_with_a_bad_mac_fails() {
    let hsm = soft();
    let kek = hsm
        .import_clear_key(&KeySpec::kbpk(Algorithm::Tdes, 16), &[0xAC; 16])
        .unwrap();
    // psec's example block, made under KBPK AB x16, not AC x16.
    let block = "B0096P0TE00N0000471D4FBE35E5865BDE20DBF4C15503161F55D681170BF8DD14D01B6822EF8550CB67C569DE8AC048";
    assert!(matches!(
        hsm.import_key(&kek, block),
        Err(HsmError::Crypto(Error::KeyBlockMac))
    ));
    let right = hsm
        .import_clear_key(&KeySpec::kbpk(Algorithm::Tdes, 16), &[0xAB; 16])
        .unwrap();
    let token = hsm.import_key(&right, block).unwrap();
    assert!(token.as_str()[5..9].eq("P0TE"));
}

const AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
const AES_IKID: [u8; 8] = [0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56];

#[test]
fn aes_dukpt_pin_translates_to_a_tdes_zone_in_format_0() {
    // The X9.24-3 example: counter 1's PIN key enciphers the ISO 9564 format-4 example block.
    let hsm = soft();
    let bdk = hsm
        .import_clear_key(&KeySpec::bdk_aes(16), &bytes(AES_BDK))
        .unwrap();
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let block = PinBlock::new(&bytes("A912150391AB65A67E52883D81CE2D15")).unwrap();
    let source = PinSource::AesDukpt {
        bdk: &bdk,
        ksn: aes_dukpt::Ksn::from_parts(&AES_IKID, 1),
        key_type: aes_dukpt::KeyType::Aes128,
    };
    let card = pan("4111111111111111");
    let out = hsm
        .translate_pin(
            &block,
            &source,
            &PinDestination {
                key: &zone,
                format: PinBlockFormat::Iso0,
            },
            &card,
        )
        .unwrap();
    let zone_key = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let pin = pinblock::decrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&zone_key),
        &out,
        Some(&card),
    )
    .unwrap();
    assert_eq!(pin.expose().as_str(), "1234");
}

#[test]
fn tdes_dukpt_pin_translates_to_an_aes_zone_in_format_4() {
    // X9.24-1 Annex A: EPB 1B9C1845EB993A7A for PIN 1234, PAN 4012345678909, KSN ...E00001.
    let hsm = soft();
    let bdk = hsm
        .import_clear_key(&KeySpec::bdk_tdes(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_aes(), &[0x11; 16])
        .unwrap();
    let block = PinBlock::new(&bytes("1B9C1845EB993A7A")).unwrap();
    let ksn = tdes::Ksn::new(&bytes("FFFF9876543210E00001")).unwrap();
    let source = PinSource::TdesDukpt {
        bdk: &bdk,
        ksn,
        format: PinBlockFormat::Iso0,
    };
    let card = pan("4012345678909");
    let out = hsm
        .translate_pin(
            &block,
            &source,
            &PinDestination {
                key: &zone,
                format: PinBlockFormat::Iso4,
            },
            &card,
        )
        .unwrap();
    let zone_key = AesKey::new(&[0x11; 16]).unwrap();
    let pin = pinblock::decrypt_pin_block(
        PinBlockFormat::Iso4,
        PinKey::Aes(&zone_key),
        &out,
        Some(&card),
    )
    .unwrap();
    assert_eq!(pin.expose().as_str(), "1234");
}

fn zone_block(key: &TdesKey, format: PinBlockFormat, pin: &str, card: &Pan) -> PinBlock {
    pinblock::encrypt_pin_block(
        format,
        PinKey::Tdes(key),
        &Pin::new(pin).unwrap(),
        Some(card),
        &[0xAB; 8],
    )
    .unwrap()
}

#[test]
fn translation_obeys_iso_9564_restrictions() {
    let hsm = soft();
    let key = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), key.expose())
        .unwrap();
    let card = pan("4012345678909");
    let block0 = zone_block(&key, PinBlockFormat::Iso0, "1234", &card);
    let from0 = PinSource::Zone {
        key: &zone,
        format: PinBlockFormat::Iso0,
    };
    let to1 = PinDestination {
        key: &zone,
        format: PinBlockFormat::Iso1,
    };
    assert!(matches!(
        hsm.translate_pin(&block0, &from0, &to1, &card),
        Err(HsmError::TranslationNotAllowed(_))
    ));
    // Format 1 to format 0 binds the PIN to the PAN: allowed.
    let block1 = zone_block(&key, PinBlockFormat::Iso1, "1234", &card);
    let from1 = PinSource::Zone {
        key: &zone,
        format: PinBlockFormat::Iso1,
    };
    let to0 = PinDestination {
        key: &zone,
        format: PinBlockFormat::Iso0,
    };
    assert_eq!(
        hsm.translate_pin(&block1, &from1, &to0, &card).unwrap(),
        block0
    );
    // 0 -> 3 works and decodes.
    let to3 = PinDestination {
        key: &zone,
        format: PinBlockFormat::Iso3,
    };
    let block3 = hsm.translate_pin(&block0, &from0, &to3, &card).unwrap();
    let pin = pinblock::decrypt_pin_block(
        PinBlockFormat::Iso3,
        PinKey::Tdes(&key),
        &block3,
        Some(&card),
    )
    .unwrap();
    assert_eq!(pin.expose().as_str(), "1234");
}

#[test]
fn keys_are_refused_for_operations_their_usage_does_not_allow() {
    let hsm = soft();
    let card = pan("4012345678909");
    let key = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let block = zone_block(&key, PinBlockFormat::Iso0, "1234", &card);
    let mac_key = hsm
        .import_clear_key(&KeySpec::mac_retail(), key.expose())
        .unwrap();
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), key.expose())
        .unwrap();
    let as_pin_key = PinSource::Zone {
        key: &mac_key,
        format: PinBlockFormat::Iso0,
    };
    let to0 = PinDestination {
        key: &zone,
        format: PinBlockFormat::Iso0,
    };
    let err = hsm
        .translate_pin(&block, &as_pin_key, &to0, &card)
        .unwrap_err();
    assert!(
        matches!(err, HsmError::Crypto(Error::UsageNotAllowed { .. })),
        "{err}"
    );
    // An encrypt-only PIN key cannot decrypt.
    let encrypt_only = hsm
        .import_clear_key(
            &KeySpec::new(
                KeyUsage::PIN_ENCRYPTION,
                Algorithm::Tdes,
                ModeOfUse::Encrypt,
                16,
            ),
            key.expose(),
        )
        .unwrap();
    let from = PinSource::Zone {
        key: &encrypt_only,
        format: PinBlockFormat::Iso0,
    };
    assert!(matches!(
        hsm.translate_pin(&block, &from, &to0, &card),
        Err(HsmError::Crypto(Error::UsageNotAllowed { .. }))
    ));
    // A retail-MAC key cannot compute a CMAC.
    assert!(matches!(
        hsm.generate_mac(&mac_key, MacAlgorithm::AesCmac, b"x"),
        Err(HsmError::Crypto(Error::UsageNotAllowed { .. }))
    ));
    // The error names the usage, not the key.
    assert!(!err.to_string().contains("0123456789"));
}

#[test]
fn double_and_triple_length_zone_keys_translate_and_verify_alike() {
    // A double-length key's schedules are cached with it; a triple-length one is prepared for
    // each use. Both must give the blocks and verdicts of the plain cipher, on every use.
    let hsm = soft();
    let card = pan("4012345678909");
    for hex in [
        TDES_TEST_KEY,
        "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567",
    ] {
        let key = TdesKey::new(&bytes(hex)).unwrap();
        let length = key.len();
        let spec = |usage| KeySpec::new(usage, Algorithm::Tdes, ModeOfUse::Both, length);
        let terminal = hsm
            .import_clear_key(&spec(KeyUsage::PIN_ENCRYPTION), key.expose())
            .unwrap();
        let zone = hsm.generate_key(&spec(KeyUsage::PIN_ENCRYPTION)).unwrap();
        let pvk = hsm
            .import_clear_key(
                &KeySpec::new(
                    KeyUsage::PIN_VERIFICATION_VISA_PVV,
                    Algorithm::Tdes,
                    ModeOfUse::Compute,
                    length,
                ),
                key.expose(),
            )
            .unwrap();
        let from = PinSource::Zone {
            key: &terminal,
            format: PinBlockFormat::Iso0,
        };
        let to = PinDestination {
            key: &zone,
            format: PinBlockFormat::Iso0,
        };
        let at_zone = PinSource::Zone {
            key: &zone,
            format: PinBlockFormat::Iso0,
        };
        let expected_pvv =
            paycrypto::card::pvv(&key, &card, 1, &Pin::new("1234").unwrap()).unwrap();
        let pvv = PinVerification::VisaPvv {
            pvk: &pvk,
            pvki: 1,
            pvv: &expected_pvv,
        };
        for _ in 0..2 {
            let good = zone_block(&key, PinBlockFormat::Iso0, "1234", &card);
            let bad = zone_block(&key, PinBlockFormat::Iso0, "1235", &card);
            // Back under the terminal's own key (the same key twice), the block is the plain one.
            let round_trip = PinDestination {
                key: &terminal,
                format: PinBlockFormat::Iso0,
            };
            assert_eq!(
                hsm.translate_pin(&good, &from, &round_trip, &card).unwrap(),
                good
            );
            let translated = hsm.translate_pin(&good, &from, &to, &card).unwrap();
            assert!(hsm.verify_pin(&translated, &at_zone, &card, &pvv).unwrap());
            let wrong = hsm.translate_pin(&bad, &from, &to, &card).unwrap();
            assert!(!hsm.verify_pin(&wrong, &at_zone, &card, &pvv).unwrap());
        }
    }
}

#[test]
fn pin_verification_by_pvv_and_by_offset() {
    let hsm = soft();
    let key = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), key.expose())
        .unwrap();
    let pvk = hsm
        .import_clear_key(&KeySpec::pvk_visa(), key.expose())
        .unwrap();
    let ibm = hsm
        .import_clear_key(&KeySpec::pvk_ibm3624(), key.expose())
        .unwrap();
    let card = pan("4012345678909");
    let source = PinSource::Zone {
        key: &zone,
        format: PinBlockFormat::Iso0,
    };
    let good = zone_block(&key, PinBlockFormat::Iso0, "1234", &card);
    let bad = zone_block(&key, PinBlockFormat::Iso0, "1235", &card);
    // PVV 5111 and offset 7484: psec cross-checks (see paycrypto tests/vectors.rs).
    let pvv = PinVerification::VisaPvv {
        pvk: &pvk,
        pvki: 1,
        pvv: "5111",
    };
    assert!(hsm.verify_pin(&good, &source, &card, &pvv).unwrap());
    assert!(!hsm.verify_pin(&bad, &source, &card, &pvv).unwrap());
    let offset = PinVerification::Ibm3624 {
        pvk: &ibm,
        validation_data: "401234567890",
        pad: 'F',
        table: DecimalisationTable::DEFAULT,
        offset: "7484",
    };
    assert!(hsm.verify_pin(&good, &source, &card, &offset).unwrap());
    assert!(!hsm.verify_pin(&bad, &source, &card, &offset).unwrap());
    // The PVV key is not an IBM 3624 key.
    let wrong = PinVerification::Ibm3624 {
        pvk: &pvk,
        validation_data: "401234567890",
        pad: 'F',
        table: DecimalisationTable::DEFAULT,
        offset: "7484",
    };
    assert!(hsm.verify_pin(&good, &source, &card, &wrong).is_err());
    // The offset the HSM generates for the PIN is the known one, and verifies.
    let generated = hsm
        .generate_pin_offset(
            &ibm,
            "401234567890",
            'F',
            &DecimalisationTable::DEFAULT,
            &paycrypto::Pin::new("1234").unwrap(),
        )
        .unwrap();
    assert_eq!(generated, "7484");
    assert!(
        hsm.generate_pin_offset(
            &pvk,
            "401234567890",
            'F',
            &DecimalisationTable::DEFAULT,
            &paycrypto::Pin::new("1234").unwrap()
        )
        .is_err(),
        "only an IBM 3624 key"
    );
}

#[test]
fn arqc_verification_and_arpc_for_visa_cvn18_and_mastercard_cvn16() {
    let hsm = soft();
    let imk_clear = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let imk = hsm
        .import_clear_key(&KeySpec::issuer_master_key(), imk_clear.expose())
        .unwrap();
    let card = pan("4761739001010119");
    let data = bytes("000000002000000000000000012400000080000124110309003804823E5C00000103A4A002");
    let un = [0x38, 0x04, 0x82, 0x3E];
    let icc = emv::icc_master_key(&imk_clear, &card, 1).unwrap();
    for version in [
        CryptogramVersion::Visa18,
        CryptogramVersion::Mastercard16,
        CryptogramVersion::Visa10,
    ] {
        let session = emv::session_key(&icc, [0, 1], version.session_derivation(un)).unwrap();
        let arqc = emv::generate_arqc(&session, &data, version.padding()).unwrap();
        let request = ArqcRequest {
            issuer_master_key: &imk,
            pan: &card,
            psn: 1,
            atc: [0, 1],
            unpredictable_number: un,
            cryptogram_version: version,
            data: &data,
            arqc,
        };
        let arpc_input = match version {
            CryptogramVersion::Visa18 => ArpcInput::Method2 {
                csu: [0, 0x82, 0, 0],
                proprietary: vec![],
            },
            _ => ArpcInput::Method1 { arc: *b"00" },
        };
        let outcome = hsm.verify_arqc(&request, Some(&arpc_input)).unwrap();
        assert!(outcome.arqc_valid, "{version:?}");
        let expected = match version {
            CryptogramVersion::Visa18 => emv::arpc_method2(&session, &arqc, &[0, 0x82, 0, 0], &[])
                .unwrap()
                .to_vec(),
            _ => emv::arpc_method1(&icc, &arqc, b"00").unwrap().to_vec(),
        };
        assert_eq!(outcome.arpc.unwrap(), expected);
        let forged = ArqcRequest {
            arqc: [0; 8],
            ..request
        };
        assert!(!hsm.verify_arqc(&forged, None).unwrap().arqc_valid);
        let wrong_method = match version {
            CryptogramVersion::Visa18 => ArpcInput::Method1 { arc: *b"00" },
            _ => ArpcInput::Method2 {
                csu: [0; 4],
                proprietary: vec![],
            },
        };
        assert!(hsm.verify_arqc(&request, Some(&wrong_method)).is_err());
    }
}

#[test]
fn icc_master_key_derivation_matches_paycrypto() {
    let hsm = soft();
    let imk = hsm
        .import_clear_key(&KeySpec::issuer_master_key(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let token = hsm
        .derive_icc_master_key(&imk, &pan("4761739001010119"), 1)
        .unwrap();
    // ICC MK 80A89B585BBF64C2F12915BF578FABE0 (pyemv cross-check in paycrypto's vectors).
    let expected = TdesKey::new(&bytes("80A89B585BBF64C2F12915BF578FABE0")).unwrap();
    assert_eq!(
        hsm.key_check_value(&token).unwrap(),
        paycrypto::kcv::tdes(&expected)
    );
    assert!(token.as_str()[5..9].eq("E0TC"));
}

#[test]
fn macs_generate_and_verify() {
    let hsm = soft();
    let key = hsm
        .import_clear_key(&KeySpec::mac_retail(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let algorithm = MacAlgorithm::Iso9797Alg3(Padding::Method1);
    let data = b"1234567890".repeat(4);
    let mac = hsm.generate_mac(&key, algorithm, &data).unwrap();
    assert_eq!(to_hex(&mac), "51383306AD1B97A2"); // psec cross-check (paycrypto vectors)
    assert!(hsm.verify_mac(&key, algorithm, &data, &mac).unwrap());
    assert!(hsm.verify_mac(&key, algorithm, &data, &mac[..4]).unwrap());
    assert!(!hsm.verify_mac(&key, algorithm, b"tampered", &mac).unwrap());
    assert!(hsm.verify_mac(&key, algorithm, &data, &mac[..3]).is_err());
    let cmac = hsm.generate_key(&KeySpec::mac_cmac()).unwrap();
    let tag = hsm
        .generate_mac(&cmac, MacAlgorithm::AesCmac, &data)
        .unwrap();
    assert_eq!(tag.len(), 16);
    assert!(
        hsm.verify_mac(&cmac, MacAlgorithm::AesCmac, &data, &tag)
            .unwrap()
    );
}

#[test]
fn cvv_verification() {
    let hsm = soft();
    let cvk = hsm
        .import_clear_key(&KeySpec::cvk(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let card = pan("4123456789012345");
    assert!(hsm.verify_cvv(&cvk, &card, "8701", "101", "561").unwrap()); // STANDARDS.md 5 [32]
    assert!(!hsm.verify_cvv(&cvk, &card, "8701", "101", "562").unwrap());
}

#[test]
fn debug_output_shows_no_key_material() {
    let hsm = soft();
    let token = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let shown = format!("{token:?} {hsm:?}");
    assert!(shown.contains("P0TB"));
    assert!(!shown.contains(&token.as_str()[16..40]));
    assert!(!shown.to_uppercase().contains("4242"));
}

#[test]
fn generated_tdes_keys_have_odd_parity_and_differ() {
    let hsm = soft();
    let kek = hsm
        .import_clear_key(&KeySpec::kbpk(Algorithm::Aes, 16), &[3; 16])
        .unwrap();
    let a = hsm.generate_key(&KeySpec::pin_zone_tdes()).unwrap();
    let b = hsm.generate_key(&KeySpec::pin_zone_tdes()).unwrap();
    let (_, clear_a) = tr31::unwrap(&[3; 16], &hsm.export_key(&kek, &a).unwrap()).unwrap();
    let (_, clear_b) = tr31::unwrap(&[3; 16], &hsm.export_key(&kek, &b).unwrap()).unwrap();
    assert_ne!(clear_a.expose(), clear_b.expose());
    assert!(
        clear_a
            .expose()
            .iter()
            .all(|byte| byte.count_ones() % 2 == 1)
    );
}

#[test]
fn pin_from_an_aes_dukpt_terminal_verifies_against_a_pvv_and_needs_a_bdk() {
    // The X9.24-3 example block (PIN 1234, PAN 4111111111111111) checked against the PVV that
    // paycrypto computes for that PIN (the PVV algorithm itself is checked against psec there).
    let hsm = soft();
    let bdk = hsm
        .import_clear_key(&KeySpec::bdk_aes(16), &bytes(AES_BDK))
        .unwrap();
    let pvk_clear = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let pvk = hsm
        .import_clear_key(&KeySpec::pvk_visa(), pvk_clear.expose())
        .unwrap();
    let card = pan("4111111111111111");
    let pvv = paycrypto::card::pvv(&pvk_clear, &card, 1, &Pin::new("1234").unwrap()).unwrap();
    let block = PinBlock::new(&bytes("A912150391AB65A67E52883D81CE2D15")).unwrap();
    let ksn = aes_dukpt::Ksn::from_parts(&AES_IKID, 1);
    let source = PinSource::AesDukpt {
        bdk: &bdk,
        ksn,
        key_type: aes_dukpt::KeyType::Aes128,
    };
    let method = PinVerification::VisaPvv {
        pvk: &pvk,
        pvki: 1,
        pvv: &pvv,
    };
    assert!(hsm.verify_pin(&block, &source, &card, &method).unwrap());
    // The wrong counter derives another key: the block no longer decodes.
    let other = PinSource::AesDukpt {
        bdk: &bdk,
        ksn: ksn.with_counter(2),
        key_type: aes_dukpt::KeyType::Aes128,
    };
    assert!(matches!(
        hsm.verify_pin(&block, &other, &card, &method),
        Err(HsmError::Crypto(Error::PinBlock(_)))
    ));
    // A PIN zone key is not a BDK.
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_aes(), &bytes(AES_BDK))
        .unwrap();
    let not_bdk = PinSource::AesDukpt {
        bdk: &zone,
        ksn,
        key_type: aes_dukpt::KeyType::Aes128,
    };
    assert!(matches!(
        hsm.verify_pin(&block, &not_bdk, &card, &method),
        Err(HsmError::Crypto(Error::UsageNotAllowed { .. }))
    ));
}

#[test]
fn card_number_fingerprints_are_keyed_hmacs() {
    use hmac::Mac;
    let hsm = soft();
    let key_bytes = [0x5A_u8; 32];
    let key = hsm
        .import_clear_key(&KeySpec::pan_fingerprint(), &key_bytes)
        .unwrap();
    let card = pan("6212340000100008");
    let fingerprint = hsm.pan_fingerprint(&key, &card).unwrap();
    let mut expected = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key_bytes).unwrap();
    expected.update(b"6212340000100008");
    assert_eq!(
        fingerprint.to_vec(),
        expected.finalize().into_bytes().to_vec()
    );
    assert_ne!(
        fingerprint,
        hsm.pan_fingerprint(&key, &pan("6212340000100016")).unwrap()
    );
    let other = hsm.generate_key(&KeySpec::pan_fingerprint()).unwrap();
    assert_ne!(
        fingerprint,
        hsm.pan_fingerprint(&other, &card).unwrap(),
        "without the key the fingerprint cannot be recomputed"
    );
    // A key of another usage is refused.
    let cvk = hsm.generate_key(&KeySpec::cvk()).unwrap();
    assert!(hsm.pan_fingerprint(&cvk, &card).is_err());
}

#[test]
fn a_generated_pvv_verifies_the_pin_it_was_made_from() {
    let hsm = soft();
    let clear = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let pvk = hsm
        .import_clear_key(&KeySpec::pvk_visa(), clear.expose())
        .unwrap();
    let card = pan("4000001234562000");
    let pin = Pin::new("1234").unwrap();
    let pvv = hsm.generate_pvv(&pvk, &card, 1, &pin).unwrap();
    assert_eq!(pvv, paycrypto::card::pvv(&clear, &card, 1, &pin).unwrap());
    let cvk = hsm.generate_key(&KeySpec::cvk()).unwrap();
    assert!(
        hsm.generate_pvv(&cvk, &card, 1, &pin).is_err(),
        "only a PVV key makes PVVs"
    );
}

#[test]
fn working_keys_are_delivered_under_the_terminal_master_key() {
    let hsm = soft();
    let tmk_clear = TdesKey::new(&bytes(TDES_TEST_KEY)).unwrap();
    let tmk = hsm
        .import_clear_key(&KeySpec::terminal_master_key(), tmk_clear.expose())
        .unwrap();
    let (mak, delivered) = hsm
        .generate_working_key(&tmk, &KeySpec::mac_retail(), 4)
        .unwrap();
    // The terminal's side: decrypt with the TMK, check the check value.
    let clear = paycrypto::session::decrypt_working_key(&tmk_clear, &delivered).unwrap();
    assert_eq!(delivered.check_value.len(), 4);
    // The host's token and the terminal's key are the same key: they MAC alike.
    let data = b"0200 sale";
    let host_mac = hsm
        .generate_mac(&mak, MacAlgorithm::Iso9797Alg3(Padding::Method1), data)
        .unwrap();
    let terminal_mac = paycrypto::mac::iso9797_alg3(&clear, data, Padding::Method1).unwrap();
    assert_eq!(host_mac, terminal_mac.to_vec());
    // Only a key-encryption key delivers, and only TDES working keys exist in this scheme.
    let cvk = hsm.generate_key(&KeySpec::cvk()).unwrap();
    assert!(
        hsm.generate_working_key(&cvk, &KeySpec::mac_retail(), 4)
            .is_err()
    );
    assert!(
        hsm.generate_working_key(&tmk, &KeySpec::mac_cmac(), 4)
            .is_err()
    );
}

#[test]
fn dukpt_macs_match_the_published_x9_24_vectors_and_verify_on_their_length() {
    use hsm::{DukptMacKey, MacDirection};
    let hsm = soft();
    // X9.24-1 Annex A: counter 1, X9.19 over ASCII "1234567890" x 4, first 4 bytes.
    let tdes_bdk = hsm
        .import_clear_key(&KeySpec::bdk_tdes(), &bytes(TDES_TEST_KEY))
        .unwrap();
    let tdes_key = DukptMacKey::Tdes {
        bdk: &tdes_bdk,
        ksn: tdes::Ksn::new(&bytes("FFFF9876543210E00001")).unwrap(),
    };
    let data = b"1234567890123456789012345678901234567890";
    let mac = hsm
        .generate_dukpt_mac(&tdes_key, MacDirection::Request, data)
        .unwrap();
    assert_eq!(to_hex(&mac[..4]), "BF3DF9F4");
    assert!(
        hsm.verify_dukpt_mac(&tdes_key, MacDirection::Request, data, &mac[..4])
            .unwrap()
    );
    assert!(
        !hsm.verify_dukpt_mac(&tdes_key, MacDirection::Response, data, &mac[..4])
            .unwrap(),
        "the response key is another key"
    );

    // X9.24-3 B.1: counter 1, AES-128 working keys 2000 (request) and 2001 (response).
    let aes_bdk = hsm
        .import_clear_key(
            &KeySpec::bdk_aes(16),
            &bytes("FEDCBA9876543210F1F1F1F1F1F1F1F1"),
        )
        .unwrap();
    let aes_key = DukptMacKey::Aes {
        bdk: &aes_bdk,
        ksn: aes_dukpt::Ksn::from_parts(&[0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56], 1),
        key_type: aes_dukpt::KeyType::Aes128,
    };
    let data = b"4012345678909D987";
    assert_eq!(
        to_hex(
            &hsm.generate_dukpt_mac(&aes_key, MacDirection::Request, data)
                .unwrap()
        ),
        "A2EB5C1C35809E58404E873C3C411E31"
    );
    assert_eq!(
        to_hex(
            &hsm.generate_dukpt_mac(&aes_key, MacDirection::Response, data)
                .unwrap()
        ),
        "DD4E1895FD9BF53D8DAF25568ABF551D"
    );
    let field64 = bytes("A2EB5C1C35809E58");
    assert!(
        hsm.verify_dukpt_mac(&aes_key, MacDirection::Request, data, &field64)
            .unwrap()
    );
    assert!(
        !hsm.verify_dukpt_mac(
            &aes_key,
            MacDirection::Request,
            b"4012345678909D988",
            &field64
        )
        .unwrap()
    );
    assert!(
        hsm.verify_dukpt_mac(&aes_key, MacDirection::Request, data, &field64[..3])
            .is_err(),
        "fewer than 4 bytes is refused"
    );
    // A BDK is needed: a MAC key token is refused as the derivation key.
    let not_bdk = hsm.generate_key(&KeySpec::mac_retail()).unwrap();
    assert!(
        hsm.generate_dukpt_mac(
            &DukptMacKey::Tdes {
                bdk: &not_bdk,
                ksn: tdes::Ksn::new(&bytes("FFFF9876543210E00001")).unwrap(),
            },
            MacDirection::Request,
            data
        )
        .is_err()
    );
}

/// RFC 8032 §7.1, test 1: the empty message under the first secret key.
#[test]
fn ed25519_signs_rfc_8032_test_1_inside_the_hsm() {
    let hsm = soft();
    let seed = bytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let token = hsm
        .import_clear_key(&KeySpec::receipt_signing(), &seed)
        .unwrap();
    assert_eq!(
        hex::encode(hsm.ed25519_public_key(&token).unwrap()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(
        hex::encode(hsm.ed25519_sign(&token, b"").unwrap()),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    // The token is bound to signing: it is not a MAC key, and a MAC key does not sign.
    assert!(
        hsm.generate_mac(&token, MacAlgorithm::AesCmac, b"data")
            .is_err()
    );
    let mac_key = hsm.generate_key(&KeySpec::mac_cmac()).unwrap();
    assert!(hsm.ed25519_sign(&mac_key, b"data").is_err());
    // Generated keys sign too, and never leave the HSM in clear.
    let generated = hsm.generate_key(&KeySpec::receipt_signing()).unwrap();
    assert_eq!(hsm.ed25519_sign(&generated, b"x").unwrap().len(), 64);
    let kek = hsm
        .generate_key(&KeySpec::kbpk(paycrypto::tr31::Algorithm::Aes, 32))
        .unwrap();
    assert!(hsm.export_key(&kek, &generated).is_err());
}

#[test]
fn an_aes_dukpt_initial_key_leaves_only_as_a_key_block_under_the_transport_key() {
    let hsm = soft();
    // X9.24-3-2017 B.1: BDK FEDCBA9876543210F1F1F1F1F1F1F1F1, initial key id 1234567890123456.
    let bdk = hsm
        .import_clear_key(
            &KeySpec::bdk_aes(16),
            &bytes("FEDCBA9876543210F1F1F1F1F1F1F1F1"),
        )
        .unwrap();
    let transport = [0x5A; 16];
    let kbpk = hsm
        .import_clear_key(&KeySpec::kbpk(Algorithm::Aes, 16), &transport)
        .unwrap();
    let id: [u8; 8] = bytes("1234567890123456").try_into().unwrap();
    let (block, check_value) = hsm.export_aes_dukpt_initial_key(&kbpk, &bdk, &id).unwrap();
    let (header, key) = tr31::unwrap(&transport, &block).unwrap();
    assert_eq!(header.usage, KeyUsage::DUKPT_INITIAL_KEY);
    assert_eq!(header.mode_of_use, ModeOfUse::Derive);
    assert_eq!(to_hex(key.expose()), "1273671EA26AC29AFA4D1084127652A1");
    let initial = AesKey::new(key.expose()).unwrap();
    assert_eq!(check_value, paycrypto::kcv::aes_cmac_kcv(&initial));
    assert!(!block.contains("1273671EA26AC29AFA4D1084127652A1"));
    // Only under an AES key-block protection key, and only from a BDK.
    let tdes_kek = hsm
        .import_clear_key(&KeySpec::kbpk(Algorithm::Tdes, 16), &bytes(TDES_TEST_KEY))
        .unwrap();
    assert!(
        hsm.export_aes_dukpt_initial_key(&tdes_kek, &bdk, &id)
            .is_err()
    );
    assert!(hsm.export_aes_dukpt_initial_key(&kbpk, &kbpk, &id).is_err());
}
