//! A typical UnionPay-style POS purchase (消费, STANDARDS.md §2: DE3 000000, DE25 00, MTI 0200,
//! 60.1 = 22) with chip data, shared by the tests and the benchmark.

use iso8583::{Message, Mti, Tpdu};

/// Field 55 of a chip purchase: cryptogram, CID, IAD, UN, ATC, TVR, date, type, amount,
/// currency, AIP, country, other amount, capabilities, CVM results, terminal type.
pub const SALE_FIELD55: &str = concat!(
    "9F2608A1B2C3D4E5F60708",
    "9F270180",
    "9F101307010103A0A000010A010000000000A1B2C3D4",
    "9F370412345678",
    "9F36020001",
    "95050000000000",
    "9A03261125",
    "9C0100",
    "9F0206000000001000",
    "5F2A020156",
    "82025C00",
    "9F1A020156",
    "9F0306000000000000",
    "9F3303E0F1C8",
    "9F3403420300",
    "9F350122",
);

pub fn field55() -> Vec<u8> {
    hex::decode(SALE_FIELD55).unwrap()
}

pub fn cup_sale(icc: &[u8]) -> Message<'_> {
    let mut sale = Message::new(Mti::parse("0200").unwrap());
    sale.tpdu = Some(Tpdu {
        id: 0x60,
        destination: 0x0003,
        source: 0x0000,
    });
    sale.header = b"\x60\x31\x00\x31\x10\x00".as_slice().into();
    sale.set_text(2, "6222021234567890123");
    sale.set_text(3, "000000");
    sale.set_text(4, "000000001000");
    sale.set_text(11, "000042");
    sale.set_text(14, "2812");
    sale.set_text(22, "051");
    sale.set_text(23, "001");
    sale.set_text(25, "00");
    sale.set_text(26, "12");
    sale.set_text(35, "6222021234567890123=28122011234567890");
    sale.set_text(41, "TERM0001");
    sale.set_text(42, "898310048990001");
    sale.set_text(49, "156");
    sale.set_bytes(52, vec![0x1B, 0x9C, 0x18, 0x45, 0xEB, 0x99, 0x3A, 0x7A]);
    sale.set_text(53, "2600000000000000");
    sale.set_bytes(55, icc);
    sale.set_text(60, "22000001000500");
    sale.set_bytes(64, vec![0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    sale
}
