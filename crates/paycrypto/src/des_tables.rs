//! DES with lookup tables built at compile time (FIPS 46-3), for speed: the `des` crate computes
//! permutations bit by bit, which made EMV cryptogram checks (about 20 DES operations) miss the
//! 3 µs budget. Tables are derived by `const fn` from the standard's own tables, so nothing here
//! is a magic number except those tables; a property test checks it against the `des` crate.

/// Bit-position tables of FIPS 46-3 (1 = most significant bit).
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61,
    53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
#[cfg(test)]
const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18,
    19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
/// S-boxes indexed directly by the 6 input bits (row = first and last bit, column = middle four).
#[rustfmt::skip]
const SBOXES: [[u8; 64]; 8] = [
    [
        14,  0,  4, 15, 13,  7,  1,  4,  2, 14, 15,  2, 11, 13,  8,  1,
         3, 10, 10,  6,  6, 12, 12, 11,  5,  9,  9,  5,  0,  3,  7,  8,
         4, 15,  1, 12, 14,  8,  8,  2, 13,  4,  6,  9,  2,  1, 11,  7,
        15,  5, 12, 11,  9,  3,  7, 14,  3, 10, 10,  0,  5,  6,  0, 13,
    ],
    [
        15,  3,  1, 13,  8,  4, 14,  7,  6, 15, 11,  2,  3,  8,  4, 14,
         9, 12,  7,  0,  2,  1, 13, 10, 12,  6,  0,  9,  5, 11, 10,  5,
         0, 13, 14,  8,  7, 10, 11,  1, 10,  3,  4, 15, 13,  4,  1,  2,
         5, 11,  8,  6, 12,  7,  6, 12,  9,  0,  3,  5,  2, 14, 15,  9,
    ],
    [
        10, 13,  0,  7,  9,  0, 14,  9,  6,  3,  3,  4, 15,  6,  5, 10,
         1,  2, 13,  8, 12,  5,  7, 14, 11, 12,  4, 11,  2, 15,  8,  1,
        13,  1,  6, 10,  4, 13,  9,  0,  8,  6, 15,  9,  3,  8,  0,  7,
        11,  4,  1, 15,  2, 14, 12,  3,  5, 11, 10,  5, 14,  2,  7, 12,
    ],
    [
         7, 13, 13,  8, 14, 11,  3,  5,  0,  6,  6, 15,  9,  0, 10,  3,
         1,  4,  2,  7,  8,  2,  5, 12, 11,  1, 12, 10,  4, 14, 15,  9,
        10,  3,  6, 15,  9,  0,  0,  6, 12, 10, 11,  1,  7, 13, 13,  8,
        15,  9,  1,  4,  3,  5, 14, 11,  5, 12,  2,  7,  8,  2,  4, 14,
    ],
    [
         2, 14, 12, 11,  4,  2,  1, 12,  7,  4, 10,  7, 11, 13,  6,  1,
         8,  5,  5,  0,  3, 15, 15, 10, 13,  3,  0,  9, 14,  8,  9,  6,
         4, 11,  2,  8,  1, 12, 11,  7, 10,  1, 13, 14,  7,  2,  8, 13,
        15,  6,  9, 15, 12,  0,  5,  9,  6, 10,  3,  4,  0,  5, 14,  3,
    ],
    [
        12, 10,  1, 15, 10,  4, 15,  2,  9,  7,  2, 12,  6,  9,  8,  5,
         0,  6, 13,  1,  3, 13,  4, 14, 14,  0,  7, 11,  5,  3, 11,  8,
         9,  4, 14,  3, 15,  2,  5, 12,  2,  9,  8,  5, 12, 15,  3, 10,
         7, 11,  0, 14,  4,  1, 10,  7,  1,  6, 13,  0, 11,  8,  6, 13,
    ],
    [
         4, 13, 11,  0,  2, 11, 14,  7, 15,  4,  0,  9,  8,  1, 13, 10,
         3, 14, 12,  3,  9,  5,  7, 12,  5,  2, 10, 15,  6,  8,  1,  6,
         1,  6,  4, 11, 11, 13, 13,  8, 12,  1,  3,  4,  7, 10, 14,  7,
        10,  9, 15,  5,  6,  0,  8, 15,  0, 14,  5,  2,  9,  3,  2, 12,
    ],
    [
        13,  1,  2, 15,  8, 13,  4,  8,  6, 10, 15,  3, 11,  7,  1,  4,
        10, 12,  9,  5,  3,  6, 14, 11,  5,  0,  0, 14, 12,  9,  7,  2,
         7,  2, 11,  1,  4, 14,  1,  7,  9,  4, 12, 10, 14,  8,  2, 13,
         0, 15,  6, 12, 10,  9, 13,  0, 15,  3,  3,  5,  5,  6,  8, 11,
    ],
];

/// A permutation of a 64-bit word (bits MSB-aligned) as 16 nibble-indexed tables: the output
/// is the OR of one lookup per input nibble. Nibble tables (2 KiB each) rather than byte tables
/// (16 KiB) keep every table of the cipher in the L1 cache together.
type Permutation = [[u64; 16]; 16];

const fn permutation(table: &[u8]) -> Permutation {
    let mut tables = [[0u64; 16]; 16];
    let mut out = 0;
    while out < table.len() {
        let source = table[out] as usize - 1;
        let (nibble, shift) = (source / 4, 3 - source % 4);
        let mut value = 0;
        while value < 16 {
            if (value >> shift) & 1 == 1 {
                tables[nibble][value] |= 1 << (63 - out);
            }
            value += 1;
        }
        out += 1;
    }
    tables
}

const fn inverse(table: &[u8; 64]) -> [u8; 64] {
    let mut inverse = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        inverse[table[i] as usize - 1] = i as u8 + 1;
        i += 1;
    }
    inverse
}

/// Bits of the even S-boxes' half of a split round key: the odd half sits above them.
const EVEN_BITS: u32 = 34;

/// PC2 straight into a split round key ([`Schedule`]): the even S-boxes' half in the low
/// [`EVEN_BITS`] bits, the odd half above, so building a schedule costs no more than PC2.
const fn pc2_split() -> Permutation {
    let mut tables = [[0u64; 16]; 16];
    let mut out = 0;
    while out < PC2.len() {
        let source = PC2[out] as usize - 1;
        let (nibble, shift) = (source / 4, 3 - source % 4);
        let (sbox, bit) = (out / 6, out % 6);
        let mut position = (28 - 4 * sbox) + (5 - bit);
        if sbox % 2 == 1 {
            position += EVEN_BITS as usize;
        }
        let mut value = 0;
        while value < 16 {
            if (value >> shift) & 1 == 1 {
                tables[nibble][value] |= 1 << position;
            }
            value += 1;
        }
        out += 1;
    }
    tables
}

/// S-box output through P, one table per S-box: the round function is 8 lookups.
const fn sp_tables() -> [[u32; 64]; 8] {
    let mut tables = [[0u32; 64]; 8];
    let mut sbox = 0;
    while sbox < 8 {
        let mut input = 0;
        while input < 64 {
            let value = (SBOXES[sbox][input] as u32) << (28 - 4 * sbox);
            let mut permuted = 0u32;
            let mut out = 0;
            while out < 32 {
                if (value >> (32 - P[out] as u32)) & 1 == 1 {
                    permuted |= 1 << (31 - out);
                }
                out += 1;
            }
            tables[sbox][input] = permuted;
            input += 1;
        }
        sbox += 1;
    }
    tables
}

static IP_TABLE: Permutation = permutation(&IP);
static FP_TABLE: Permutation = permutation(&inverse(&IP));
static PC1_TABLE: Permutation = permutation(&PC1);
#[cfg(test)]
static PC2_TABLE: Permutation = permutation(&PC2);
static PC2_SPLIT_TABLE: Permutation = pc2_split();
static SP: [[u32; 64]; 8] = sp_tables();

fn permute(tables: &Permutation, word: u64) -> u64 {
    let mut out = 0;
    for (index, table) in tables.iter().enumerate() {
        out |= table[((word >> (60 - 4 * index)) & 0xF) as usize];
    }
    out
}

/// The 16 round keys of one DES key, each split for [`Schedule::round`]: the 6-bit chunks of
/// the even S-boxes in one word and of the odd ones in the other, each chunk at the place of
/// its S-box's group in the expanded half block. Groups overlap within the expanded word, but
/// not within a half, so a round XORs its key in with two operations instead of eight.
#[derive(Clone)]
pub(crate) struct Schedule([[u64; 2]; 16]);

impl Drop for Schedule {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A 48-bit round key (MSB-aligned) split into its even and odd S-boxes' chunks (what
/// [`PC2_SPLIT_TABLE`] makes directly).
#[cfg(test)]
fn split(key: u64) -> [u64; 2] {
    let mut halves = [0u64; 2];
    for sbox in 0..8 {
        halves[sbox % 2] |= ((key >> (58 - 6 * sbox)) & 0x3F) << (28 - 4 * sbox);
    }
    halves
}

impl Schedule {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut word = [0u8; 8];
        word.copy_from_slice(&key[..8]);
        let permuted = permute(&PC1_TABLE, u64::from_be_bytes(word));
        const HALF: u64 = 0x0FFF_FFFF;
        let (mut c, mut d) = (permuted >> 36, (permuted >> 8) & HALF);
        let mut keys = [[0u64; 2]; 16];
        for (round, shift) in SHIFTS.iter().enumerate() {
            c = ((c << shift) | (c >> (28 - shift))) & HALF;
            d = ((d << shift) | (d >> (28 - shift))) & HALF;
            let packed = permute(&PC2_SPLIT_TABLE, (c << 36) | (d << 8));
            keys[round] = [packed & ((1 << EVEN_BITS) - 1), packed >> EVEN_BITS];
        }
        Self(keys)
    }

    /// The round function. E is done with shifts: the 34-bit word `R32 || R1..R32 || R1` holds
    /// every 6-bit E group at a 4-bit stride, so no table is needed for it.
    fn round(r: u32, key: &[u64; 2]) -> u32 {
        let r = u64::from(r);
        let wrapped = ((r & 1) << 33) | (r << 1) | (r >> 31);
        let halves = [wrapped ^ key[0], wrapped ^ key[1]];
        let mut f = 0;
        for (sbox, table) in SP.iter().enumerate() {
            let group = (halves[sbox % 2] >> (28 - 4 * sbox)) & 0x3F;
            f |= table[group as usize];
        }
        f
    }

    /// The 16 rounds of a block already through IP; the result still has to go through FP.
    fn rounds(&self, permuted: u64, decrypt: bool) -> u64 {
        // Truncations split the 64-bit block into its halves.
        let (mut l, mut r) = ((permuted >> 32) as u32, permuted as u32);
        for index in 0..16 {
            let key = if decrypt {
                &self.0[15 - index]
            } else {
                &self.0[index]
            };
            let next = l ^ Self::round(r, key);
            l = r;
            r = next;
        }
        (u64::from(r) << 32) | u64::from(l)
    }

    fn crypt(&self, block: u64, decrypt: bool) -> u64 {
        permute(&FP_TABLE, self.rounds(permute(&IP_TABLE, block), decrypt))
    }

    pub(crate) fn encrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        self.crypt(u64::from_be_bytes(*block), false).to_be_bytes()
    }

    pub(crate) fn decrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        self.crypt(u64::from_be_bytes(*block), true).to_be_bytes()
    }

    /// CBC encryption of `data` with a zero IV, keeping only the last block (the CBC-MAC):
    /// `data` is taken in 8-byte blocks, a short last one as if padded with zeros.
    ///
    /// IP and FP are bit permutations and inverses of each other, so between two blocks FP
    /// then IP cancel, and IP of an XOR is the XOR of the IPs: the chain stays in the permuted
    /// domain, each data block goes through IP on its way in, and only the last result goes
    /// through FP. That saves two of the three permutations of every block but the last.
    pub(crate) fn cbc_mac(&self, data: &[u8]) -> [u8; 8] {
        let mut chain = 0u64;
        for chunk in data.chunks(8) {
            let mut block = [0u8; 8];
            block[..chunk.len()].copy_from_slice(chunk);
            chain = self.rounds(chain ^ permute(&IP_TABLE, u64::from_be_bytes(block)), false);
        }
        permute(&FP_TABLE, chain).to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;
    use cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};

    #[test]
    fn fips_81_example() {
        // FIPS 81 / the classic textbook example: key 0123456789ABCDEF, "Now is t" -> 3FA40E8A984D4815.
        let schedule = Schedule::new(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]);
        let out = schedule.encrypt(b"Now is t");
        assert_eq!(out, [0x3F, 0xA4, 0x0E, 0x8A, 0x98, 0x4D, 0x48, 0x15]);
        assert_eq!(&schedule.decrypt(&out), b"Now is t");
    }

    #[test]
    fn shift_expansion_matches_the_e_table() {
        // With the round key equal to E(R), every S-box sees input 0; so the round function
        // returns the OR of the S-boxes' zero entries exactly when the shifts build E(R).
        let table = super::permutation(&super::E);
        let all_zero_inputs = super::SP.iter().fold(0, |acc, sbox| acc | sbox[0]);
        for r in [0u32, 1, 0x8000_0001, 0xDEAD_BEEF, 0x1234_5678, u32::MAX] {
            let expanded = super::permute(&table, u64::from(r) << 32);
            assert_eq!(Schedule::round(r, &super::split(expanded)), all_zero_inputs);
        }
    }

    #[test]
    fn agrees_with_the_des_crate() {
        // A simple deterministic generator is enough to cover many keys and blocks.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()
        };
        for _ in 0..2000 {
            let (key, block) = (next(), next());
            let reference = des::Des::new(GenericArray::from_slice(&key));
            let mut expected = GenericArray::clone_from_slice(&block);
            reference.encrypt_block(&mut expected);
            let schedule = Schedule::new(&key);
            assert_eq!(schedule.encrypt(&block)[..], expected[..]);
            assert_eq!(schedule.decrypt(&schedule.encrypt(&block)), block);
        }
    }

    #[test]
    fn split_pc2_is_pc2_then_split() {
        let mut word = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..1000 {
            word ^= word << 13;
            word ^= word >> 7;
            word ^= word << 17;
            let packed = super::permute(&super::PC2_SPLIT_TABLE, word);
            let expected = super::split(super::permute(&super::PC2_TABLE, word));
            assert_eq!(
                [
                    packed & ((1 << super::EVEN_BITS) - 1),
                    packed >> super::EVEN_BITS
                ],
                expected
            );
        }
    }

    #[test]
    fn cbc_mac_agrees_with_chained_encryptions() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()
        };
        for length in 0..=41usize {
            let schedule = Schedule::new(&next());
            let data: Vec<u8> = (0..length.div_ceil(8))
                .flat_map(|_| next())
                .take(length)
                .collect();
            let mut chain = [0u8; 8];
            for chunk in data.chunks(8) {
                for (byte, input) in chain.iter_mut().zip(chunk) {
                    *byte ^= input;
                }
                chain = schedule.encrypt(&chain);
            }
            assert_eq!(schedule.cbc_mac(&data), chain, "{length} bytes");
        }
    }
}
