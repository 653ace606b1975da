//! Chip data from field 55: the ARQC and what it covers.
//!
//! The bytes a chip MACs into its ARQC are named by its CDOL1, which the host does not see.
//! easypos's cards (and its card simulator) use the Visa CVN 18 layout, so the host rebuilds
//! the covered data from field 55 in this order ([`ARQC_DATA_TAGS`]): amount authorised
//! (9F02), amount other (9F03), terminal country (9F1A), TVR (95), transaction currency (5F2A),
//! transaction date (9A), transaction type (9C), unpredictable number (9F37), AIP (82), ATC
//! (9F36), issuer application data (9F10). A card with another CDOL1 needs its own list.

use crate::message::Reject;
use emv::tlv::Tag;
use iso8583::ResponseCode;

/// The data objects the ARQC covers, in order (see the module documentation).
pub const ARQC_DATA_TAGS: [u32; 11] = [
    0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36, 0x9F10,
];

/// What the host needs from field 55 to verify the cryptogram.
#[derive(Clone, PartialEq, Eq)]
pub struct ChipFields {
    pub arqc: [u8; 8],
    pub atc: u16,
    pub unpredictable_number: [u8; 4],
    /// PAN sequence number (5F34, else field 23, else 0).
    pub psn: u8,
    /// The covered data, in [`ARQC_DATA_TAGS`] order.
    pub data: Vec<u8>,
    /// Amount authorised (9F02) in minor units: it must equal field 4.
    pub amount_minor: u64,
}

impl std::fmt::Debug for ChipFields {
    /// The cryptogram and the data are card data: Debug shows the ATC only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipFields")
            .field("atc", &self.atc)
            .finish_non_exhaustive()
    }
}

fn reject(reason: impl Into<String>) -> Reject {
    Reject {
        response: ResponseCode::FormatError,
        field: Some(55),
        reason: reason.into(),
    }
}

fn fixed<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], Reject> {
    value
        .try_into()
        .map_err(|_| reject(format!("{what} must be {N} bytes")))
}

/// Decimal digits of packed BCD.
fn bcd_value(value: &[u8]) -> Option<u64> {
    value.iter().try_fold(0_u64, |total, byte| {
        let (high, low) = (byte >> 4, byte & 0x0F);
        (high < 10 && low < 10).then(|| total * 100 + u64::from(high) * 10 + u64::from(low))
    })
}

/// Reads field 55 (and field 23 for the PAN sequence number when 5F34 is absent).
pub fn chip_fields(field55: &[u8], field23: Option<&str>) -> Result<ChipFields, Reject> {
    let objects = emv::field55::parse(field55).map_err(|error| reject(error.to_string()))?;
    let find = |tag: u32| {
        objects
            .iter()
            .find(|object| object.tag == Tag(tag))
            .map(|object| object.value)
    };
    let require = |tag: u32| find(tag).ok_or_else(|| reject(format!("tag {tag:X} is missing")));
    let mut data = Vec::with_capacity(64);
    for tag in ARQC_DATA_TAGS {
        data.extend_from_slice(require(tag)?);
    }
    let psn = match (find(0x5F34), field23) {
        (Some([psn]), _) => bcd_value(&[*psn])
            .and_then(|value| u8::try_from(value).ok())
            .ok_or_else(|| reject("5F34 is not BCD"))?,
        (Some(_), _) => return Err(reject("5F34 must be 1 byte")),
        (None, Some(text)) => text
            .trim()
            .parse::<u8>()
            .map_err(|_| reject("field 23 is not a number"))?,
        (None, None) => 0,
    };
    Ok(ChipFields {
        arqc: fixed(require(0x9F26)?, "9F26 (ARQC)")?,
        atc: u16::from_be_bytes(fixed(require(0x9F36)?, "9F36 (ATC)")?),
        unpredictable_number: fixed(require(0x9F37)?, "9F37 (unpredictable number)")?,
        psn,
        amount_minor: bcd_value(require(0x9F02)?).ok_or_else(|| reject("9F02 is not BCD"))?,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field55(skip: u32) -> Vec<u8> {
        let objects: Vec<(Tag, Vec<u8>)> = vec![
            (Tag(0x9F26), vec![0x11; 8]),
            (Tag(0x9F27), vec![0x80]),
            (Tag(0x9F10), hex("06010A03A0A000")),
            (Tag(0x9F37), hex("3804823E")),
            (Tag(0x9F36), hex("0005")),
            (Tag(0x95), hex("0000008000")),
            (Tag(0x9A), hex("261125")),
            (Tag(0x9C), hex("00")),
            (Tag(0x9F02), hex("000000001200")),
            (Tag(0x5F2A), hex("0156")),
            (Tag(0x82), hex("5C00")),
            (Tag(0x9F1A), hex("0156")),
            (Tag(0x9F03), hex("000000000000")),
            (Tag(0x5F34), hex("01")),
        ];
        let kept: Vec<(Tag, &[u8])> = objects
            .iter()
            .filter(|(tag, _)| tag.0 != skip)
            .map(|(tag, value)| (*tag, value.as_slice()))
            .collect();
        emv::field55::build(&kept).unwrap()
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_covered_data_follows_the_cdol_order_not_the_field_order() {
        let chip = chip_fields(&field55(0), None).unwrap();
        let expected =
            hex("000000001200000000000000015600000080000156261125003804823E5C00000506010A03A0A000");
        assert_eq!(chip.data, expected);
        assert_eq!(
            (chip.atc, chip.psn, chip.amount_minor, chip.arqc),
            (5, 1, 1_200, [0x11; 8])
        );
        assert_eq!(chip.unpredictable_number, [0x38, 0x04, 0x82, 0x3E]);
        assert!(
            !format!("{chip:?}").contains("1111"),
            "Debug hides the cryptogram"
        );
    }

    #[test]
    fn missing_objects_are_format_errors_in_field_55() {
        for tag in [0x9F26, 0x9F36, 0x9F37, 0x9F02, 0x9F10] {
            let error = chip_fields(&field55(tag), None).unwrap_err();
            assert_eq!(
                (error.response, error.field),
                (ResponseCode::FormatError, Some(55)),
                "{tag:X}"
            );
        }
        let without_psn = chip_fields(&field55(0x5F34), Some("002")).unwrap();
        assert_eq!(without_psn.psn, 2, "field 23 when 5F34 is absent");
        assert!(
            chip_fields(&[0x9F, 0x26, 0x08, 0x11], None).is_err(),
            "truncated TLV"
        );
    }
}
