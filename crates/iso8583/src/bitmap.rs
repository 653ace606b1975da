//! Primary and secondary bitmaps: bit 1 is the most significant bit of the first byte.

/// The set of fields present, as bits 1–128 of a `u128` (bit 1 = most significant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bitmap(pub u128);

impl Bitmap {
    fn mask(field: u8) -> u128 {
        1u128 << (128 - u32::from(field))
    }

    pub fn is_set(self, field: u8) -> bool {
        (1..=128).contains(&field) && self.0 & Self::mask(field) != 0
    }

    pub fn set(&mut self, field: u8) {
        if (1..=128).contains(&field) {
            self.0 |= Self::mask(field);
        }
    }

    pub fn clear(&mut self, field: u8) {
        if (1..=128).contains(&field) {
            self.0 &= !Self::mask(field);
        }
    }

    /// Whether any field above 64 is present, which requires a secondary bitmap.
    pub fn needs_secondary(self) -> bool {
        self.0 & u128::from(u64::MAX) != 0
    }

    /// The 8 bytes of the primary bitmap (bit 1 not adjusted).
    pub fn primary_bytes(self) -> [u8; 8] {
        ((self.0 >> 64) as u64).to_be_bytes()
    }

    pub fn secondary_bytes(self) -> [u8; 8] {
        (self.0 as u64).to_be_bytes()
    }

    pub fn from_halves(primary: [u8; 8], secondary: [u8; 8]) -> Self {
        Self(
            (u128::from(u64::from_be_bytes(primary)) << 64)
                | u128::from(u64::from_be_bytes(secondary)),
        )
    }

    /// Data fields present (2–128), ascending; bit 1 is the bitmap itself, not a field.
    pub fn fields(self) -> impl Iterator<Item = u8> {
        (2u8..=128).filter(move |&field| self.is_set(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_example_lists_its_fields() {
        // STANDARDS.md §1.2, source [1]: 4210001102C04804 = fields 2, 7, 12, 28, 32, 39, 41, 42, 50, 53, 62.
        let primary: [u8; 8] = [0x42, 0x10, 0x00, 0x11, 0x02, 0xC0, 0x48, 0x04];
        let bitmap = Bitmap::from_halves(primary, [0; 8]);
        let fields: Vec<u8> = bitmap.fields().collect();
        assert_eq!(fields, [2, 7, 12, 28, 32, 39, 41, 42, 50, 53, 62]);
        assert_eq!(bitmap.primary_bytes(), primary);
        assert!(!bitmap.needs_secondary());
    }

    #[test]
    fn fields_above_64_need_a_secondary_bitmap() {
        let mut bitmap = Bitmap::default();
        bitmap.set(70);
        assert!(bitmap.needs_secondary());
        assert_eq!(bitmap.secondary_bytes(), [0x04, 0, 0, 0, 0, 0, 0, 0]);
        bitmap.clear(70);
        assert_eq!(bitmap, Bitmap::default());
    }
}
