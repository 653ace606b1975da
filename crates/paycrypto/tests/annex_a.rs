//! ANSI X9.24-1 Annex A, the full 38-row table: host-side derivation at every listed counter
//! (including 0xEFF800.., the counters with many bits that broke PyPI `dukpt`), and a device
//! run from the first transaction to exhaustion that meets every listed KSN on its way.
//!
//! Source: X9.24-1 Annex A as published in marianovolker/jmps-public `GVRlib/dukpt3.py`
//! (`dukpt2000_verify_table`, STANDARDS.md [30]): BDK 0123456789ABCDEFFEDCBA9876543210, IPEK
//! 6AC292FAA1315B4D858AB3A3D7D5933A, clear PIN block 041274EDCBA9876F (PIN 1234, PAN
//! 4012345678909), X9.19 MAC over ASCII "1234567890" x 4, first 4 bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paycrypto::dukpt::tdes;
use paycrypto::mac::{self, Padding};
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{Error, Pan, Pin, TdesKey, to_hex};

/// (KSN, PIN variant key, MAC request variant key, encrypted PIN block, MAC).
const ROWS: [[&str; 5]; 38] = [
    [
        "FFFF9876543210E00001",
        "042666B49184CF5C68DE9628D0397B36",
        "042666B4918430A368DE9628D03984C9",
        "1B9C1845EB993A7A",
        "BF3DF9F4",
    ],
    [
        "FFFF9876543210E00002",
        "C46551CEF9FD244FAA9AD834130D3B38",
        "C46551CEF9FDDBB0AA9AD834130DC4C7",
        "10A01C8D02C69107",
        "1F05D23A",
    ],
    [
        "FFFF9876543210E00003",
        "0DF3D9422ACA561A47676D07AD6BAD05",
        "0DF3D9422ACAA9E547676D07AD6B52FA",
        "18DC07B94797B466",
        "70D151A4",
    ],
    [
        "FFFF9876543210E00004",
        "279C0F6AEED0BE9A2B2C733E1383AE6E",
        "279C0F6AEED041652B2C733E13835191",
        "0BC79509D5645DF7",
        "00B50910",
    ],
    [
        "FFFF9876543210E00005",
        "5F8DC6D2C845C1DA508DDC048093B8C0",
        "5F8DC6D2C8453E25508DDC048093473F",
        "5BC0AF22AD87B327",
        "581ED2C6",
    ],
    [
        "FFFF9876543210E00006",
        "5E415CB0BAF9F0C3D0C14B63FB62FFBC",
        "5E415CB0BAF90F3CD0C14B63FB620043",
        "A16DF70AE36158D8",
        "39B5EE87",
    ],
    [
        "FFFF9876543210E00007",
        "0C8F780B7C8B492FAE84A9EB2A6CE69F",
        "0C8F780B7C8BB6D0AE84A9EB2A6C1960",
        "27711C16CB257F8E",
        "226C141F",
    ],
    [
        "FFFF9876543210E00008",
        "27F66D5244FF621EAA6F6120EDEB427F",
        "27F66D5244FF9DE1AA6F6120EDEBBD80",
        "50E55547A5027551",
        "40412159",
    ],
    [
        "FFFF9876543210E00009",
        "27E31064FDC565968900E2057F658E81",
        "27E31064FDC59A698900E2057F65717E",
        "536CF7F678ACFC8D",
        "621F9B4F",
    ],
    [
        "FFFF9876543210E0000A",
        "6CF2500A22507C83C776CEADC1E330EB",
        "6CF2500A2250837CC776CEADC1E3CF14",
        "EDABBA23221833FE",
        "7B79E6A3",
    ],
    [
        "FFFF9876543210E0000B",
        "3E8260BA04B2D6DFC01482B3819A1848",
        "3E8260BA04B22920C01482B3819AE7B7",
        "2328981C57B4BDBA",
        "CC92E456",
    ],
    [
        "FFFF9876543210E0000C",
        "B716E1E11CF53D7F726CAEE75C3A62B0",
        "B716E1E11CF5C280726CAEE75C3A9D4F",
        "038D03CC926CF286",
        "1BA8BCA1",
    ],
    [
        "FFFF9876543210E0000D",
        "E072EDF9534053A0B6C581C58FBF25CC",
        "E072EDF95340AC5FB6C581C58FBFDA33",
        "6C8AA97088B62C68",
        "A733F330",
    ],
    [
        "FFFF9876543210E0000E",
        "A80046087F5B8FDB5AAD95E1842908B0",
        "A80046087F5B70245AAD95E18429F74F",
        "F17C9E1D72CD4950",
        "8844EEAA",
    ],
    [
        "FFFF9876543210E0000F",
        "93DD5B956C4878B82E453AAEFD32A555",
        "93DD5B956C4887472E453AAEFD325AAA",
        "B170F6E7F7F2F64A",
        "1B1A40E7",
    ],
    [
        "FFFF9876543210E00010",
        "59598DCBD9BD943F94165CE453585FA8",
        "59598DCBD9BD6BC094165CE45358A057",
        "D5D9638559EF53D6",
        "DB05312F",
    ],
    [
        "FFFF9876543210E00011",
        "2B5F01F4F0CC0515639D523231BF1B5D",
        "2B5F01F4F0CCFAEA639D523231BFE4A2",
        "D544F8CDD292C863",
        "9C4253EB",
    ],
    [
        "FFFF9876543210E00012",
        "9CF640F279C2AE1915F725EEEAC2CB50",
        "9CF640F279C251E615F725EEEAC234AF",
        "7A21BD10F36DC41D",
        "9237DD4E",
    ],
    [
        "FFFF9876543210E00013",
        "C3DF489FDF11534BF03DE97C27DC4CD0",
        "C3DF489FDF11ACB4F03DE97C27DCB32F",
        "78649BD17D0DFA60",
        "5402D529",
    ],
    [
        "FFFF9876543210E00014",
        "658488507721B30E4737FA93F923CB2D",
        "6584885077214CF14737FA93F92334D2",
        "7E7E16EA0C31AD56",
        "99DC2A04",
    ],
    [
        "FFFF9876543210E00015",
        "E161D1956A61F62DF37AFD7F9CC36965",
        "E161D1956A6109D2F37AFD7F9CC3969A",
        "72105C22EBC791E6",
        "2B42A5B7",
    ],
    [
        "FFFF9876543210E10000",
        "2F9A0C0B46ECCBA1F8287A7A071AF54B",
        "2F9A0C0B46EC345EF8287A7A071A0AB4",
        "19776D96D73AF1E2",
        "D9DFF7D6",
    ],
    [
        "FFFF9876543210E20000",
        "DEFDE0EA1043B58D2FA013DE6C4B8F04",
        "DEFDE0EA10434A722FA013DE6C4B70FB",
        "83F14581B8946B2D",
        "AB8E57A9",
    ],
    [
        "FFFF9876543210E40000",
        "9F59E8536BDB056513C856FCCF9A0981",
        "9F59E8536BDBFA9A13C856FCCF9AF67E",
        "96B3ADCBF9F5219C",
        "B72B23BF",
    ],
    [
        "FFFF9876543210E80000",
        "87B9983D9D23047A8D199F5CA0C3DEEC",
        "87B9983D9D23FB858D199F5CA0C32113",
        "1E0F453FD55FCE45",
        "B27DF964",
    ],
    [
        "FFFF9876543210EFF800",
        "F9CDFEBF4F5B1D61B3EC12454527E189",
        "F9CDFEBF4F5BE29EB3EC124545271E76",
        "33365F5CC6F23C35",
        "3F7A0CE1",
    ],
    [
        "FFFF9876543210EFF801",
        "5BEE92627E9782A3911BF619DF72CAC4",
        "5BEE92627E977D5C911BF619DF72353B",
        "3A86BF003F835C9D",
        "72653326",
    ],
    [
        "FFFF9876543210EFF802",
        "64CA2F8AB93F614F1620B00BF77C73FE",
        "64CA2F8AB93F9EB01620B00BF77C8C01",
        "3DB977D05C36DF3F",
        "FB38BE77",
    ],
    [
        "FFFF9876543210EFF804",
        "35A168695B3BA8CC07E871C42021DDC8",
        "35A168695B3B573307E871C420212237",
        "BA83243305712099",
        "22BFAA61",
    ],
    [
        "FFFF9876543210EFF808",
        "12C380FCB72ED33D6FC6079AF63F4778",
        "12C380FCB72E2CC26FC6079AF63FB887",
        "B0DA04AC90A36D85",
        "08602C13",
    ],
    [
        "FFFF9876543210EFF810",
        "D8007C833A1E3CB6C6889B97A68C5400",
        "D8007C833A1EC349C6889B97A68CABFF",
        "2CF02BD9C309EEDA",
        "2E033EBC",
    ],
    [
        "FFFF9876543210EFF820",
        "A9C9FF9B735FDDB6591F296B0BF0FD8F",
        "A9C9FF9B735F2249591F296B0BF00270",
        "9D1E2F77AEEE81C6",
        "A821E7C7",
    ],
    [
        "FFFF9876543210EFF840",
        "0E3E221062CB5EFCA384602783A00405",
        "0E3E221062CBA103A384602783A0FBFA",
        "40870B0F8BA2011C",
        "F765BD9E",
    ],
    [
        "FFFF9876543210EFF880",
        "CA8225C587124D04B87F279C0BE297D8",
        "CA8225C58712B2FBB87F279C0BE26827",
        "22E340D6ABB40981",
        "393982DC",
    ],
    [
        "FFFF9876543210EFF900",
        "906AAC1751D497E5144D52C76C6E1F68",
        "906AAC1751D4681A144D52C76C6EE097",
        "1A4C10AFBA03A430",
        "8A7D5738",
    ],
    [
        "FFFF9876543210EFFA00",
        "2B9E2CE7C27503C8E10B54D2989EA650",
        "2B9E2CE7C275FC37E10B54D2989E59AF",
        "849763B43E5F9CFF",
        "2A15EFF9",
    ],
    [
        "FFFF9876543210EFFC00",
        "F9430DF97508246EC77BE4EF4FDB9111",
        "F9430DF97508DB91C77BE4EF4FDB6EEE",
        "DEFC6F09F8927B71",
        "2EBFA205",
    ],
    [
        "FFFF9876543210F00000",
        "AA4D58DB653EC7B548C75F2F047DD24A",
        "AA4D58DB653E384A48C75F2F047D2DB5",
        "73EC88AD0AC5830E",
        "E771B48A",
    ],
];

const MAC_DATA: &[u8] = b"1234567890123456789012345678901234567890";

fn key(hex: &str) -> TdesKey {
    TdesKey::new(&hex::decode(hex).unwrap()).unwrap()
}

/// Checks one row against a transaction key, however it was obtained.
fn check_row(row: &[&str; 5], transaction_key: &TdesKey) {
    let [ksn, pin_key, mac_key, epb, mac] = row;
    let pin_variant = tdes::working_key(transaction_key, tdes::Variant::Pin).unwrap();
    assert_eq!(to_hex(pin_variant.expose()), *pin_key, "PIN key at {ksn}");
    let mac_variant = tdes::working_key(transaction_key, tdes::Variant::MacRequest).unwrap();
    assert_eq!(to_hex(mac_variant.expose()), *mac_key, "MAC key at {ksn}");
    let pan = Pan::new("4012345678909").unwrap();
    let pin = Pin::new("1234").unwrap();
    let block = pinblock::encrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&pin_variant),
        &pin,
        Some(&pan),
        &[0; 8],
    )
    .unwrap();
    assert_eq!(block.to_hex(), *epb, "PIN block at {ksn}");
    let computed = mac::iso9797_alg3(&mac_variant, MAC_DATA, Padding::Method1).unwrap();
    assert_eq!(to_hex(&computed[..4]), *mac, "MAC at {ksn}");
}

#[test]
fn host_side_matches_every_row() {
    let bdk = key("0123456789ABCDEFFEDCBA9876543210");
    for row in &ROWS {
        let ksn = tdes::Ksn::new(&hex::decode(row[0]).unwrap()).unwrap();
        check_row(row, &tdes::host_transaction_key(&bdk, &ksn).unwrap());
    }
}

/// About a million transactions: the device must visit every valid counter in order, meet each
/// row's KSN with the row's keys, and refuse the transaction after 0x1FF800.
#[test]
fn device_runs_to_exhaustion_through_every_row() {
    let ipek = key("6AC292FAA1315B4D858AB3A3D7D5933A");
    let initial = tdes::Ksn::new(&hex::decode("FFFF9876543210E00000").unwrap()).unwrap();
    let mut device = tdes::Device::load_initial_key(&ipek, &initial).unwrap();
    let mut rows = ROWS.iter().peekable();
    let mut transactions = 0u32;
    loop {
        let (ksn, transaction_key) = match device.next_transaction() {
            Ok(next) => next,
            Err(Error::CounterExhausted) => break,
            Err(other) => panic!("{other}"),
        };
        transactions += 1;
        assert!(ksn.counter().count_ones() <= tdes::MAX_ONE_BITS);
        if rows.peek().is_some_and(|row| row[0] == ksn.to_hex()) {
            check_row(rows.next().unwrap(), &transaction_key);
        }
    }
    assert!(rows.next().is_none(), "every Annex A KSN is met in order");
    // Counters of 21 bits with 1 to 10 one bits: sum of C(21, k) for k = 1..=10 = 2^20 - 1.
    assert_eq!(transactions, (1 << 20) - 1);
}
