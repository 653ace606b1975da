//! Just enough TrueType to embed a subset of a font in a PDF: read a font's character map,
//! advance widths and `glyf` outlines, and write a new font holding only the glyphs a document
//! uses, renumbered from 1 (glyph 0 stays `.notdef`).
//!
//! The subset keeps the tables a PDF reader needs to draw a `CIDFontType2` through a
//! `CIDToGIDMap` (PDF 1.7, 9.9 "Embedded font programs"): `head`, `hhea`, `maxp`, `hmtx`,
//! `loca`, `glyf`, and the hinting tables `cvt `, `fpgm`, `prep` when the font has them. No
//! `cmap`: the PDF maps codes to glyphs itself. Composite glyphs bring their components, whose
//! indices are rewritten to the new numbering.
//!
//! Every read is bounds-checked; a malformed font is an error, never a panic.

use std::collections::BTreeMap;

/// Why a font could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed TrueType font: {0}")]
pub struct FontError(&'static str);

/// The most glyphs a composite glyph may pull in through nested components, so a malicious
/// cycle cannot loop forever (TrueType itself allows a nesting depth of a few levels).
const MAX_COMPONENT_DEPTH: usize = 8;

/// Composite glyph flags (TrueType `glyf`, "Composite glyph description").
const ARG_1_AND_2_ARE_WORDS: u16 = 0x0001;
const WE_HAVE_A_SCALE: u16 = 0x0008;
const MORE_COMPONENTS: u16 = 0x0020;
const WE_HAVE_AN_X_AND_Y_SCALE: u16 = 0x0040;
const WE_HAVE_A_TWO_BY_TWO: u16 = 0x0080;

fn u16_at(data: &[u8], at: usize) -> Result<u16, FontError> {
    data.get(at..at + 2)
        .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
        .ok_or(FontError("a read past the end of a table"))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, FontError> {
    data.get(at..at + 4)
        .map(|bytes| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .ok_or(FontError("a read past the end of a table"))
}

/// A parsed TrueType font (borrowing its bytes).
#[derive(Clone, Debug)]
pub struct Font<'a> {
    tables: BTreeMap<[u8; 4], &'a [u8]>,
    units_per_em: u16,
    glyph_count: u16,
    metrics_count: u16,
    long_loca: bool,
    /// Character → glyph, from the Unicode `cmap` subtable.
    map: BTreeMap<u32, u16>,
}

impl<'a> Font<'a> {
    /// Reads the table directory, `head`, `hhea`, `maxp` and the Unicode character map.
    pub fn parse(data: &'a [u8]) -> Result<Font<'a>, FontError> {
        let version = u32_at(data, 0)?;
        if version != 0x0001_0000 && version != u32::from_be_bytes(*b"true") {
            return Err(FontError("not a TrueType (glyf) font"));
        }
        let count = usize::from(u16_at(data, 4)?);
        let mut tables = BTreeMap::new();
        for index in 0..count {
            let record = 12 + 16 * index;
            let tag: [u8; 4] = data
                .get(record..record + 4)
                .and_then(|tag| tag.try_into().ok())
                .ok_or(FontError("truncated table directory"))?;
            let offset = u32_at(data, record + 8)? as usize;
            let length = u32_at(data, record + 12)? as usize;
            let table = data
                .get(offset..offset.saturating_add(length))
                .ok_or(FontError("a table past the end of the file"))?;
            tables.insert(tag, table);
        }
        let table = |tag: &[u8; 4]| {
            tables
                .get(tag)
                .copied()
                .ok_or(FontError("a required table is missing"))
        };
        let head = table(b"head")?;
        let units_per_em = u16_at(head, 18)?;
        let long_loca = u16_at(head, 50)? == 1;
        let metrics_count = u16_at(table(b"hhea")?, 34)?;
        let glyph_count = u16_at(table(b"maxp")?, 4)?;
        table(b"glyf")?;
        table(b"loca")?;
        table(b"hmtx")?;
        if units_per_em == 0 || metrics_count == 0 || metrics_count > glyph_count {
            return Err(FontError("inconsistent head, hhea or maxp"));
        }
        // A subset made for a PDF has no character map: the PDF maps codes to glyphs.
        let map = match tables.get(b"cmap") {
            Some(cmap) => character_map(cmap)?,
            None => BTreeMap::new(),
        };
        Ok(Font {
            tables,
            units_per_em,
            glyph_count,
            metrics_count,
            long_loca,
            map,
        })
    }

    /// The glyph of `character`, if the font has one (glyph 0 is `.notdef`: no).
    pub fn glyph(&self, character: char) -> Option<u16> {
        self.map
            .get(&u32::from(character))
            .copied()
            .filter(|glyph| *glyph != 0 && *glyph < self.glyph_count)
    }

    /// How many characters the font maps.
    pub fn character_count(&self) -> usize {
        self.map.len()
    }

    pub fn units_per_em(&self) -> u16 {
        self.units_per_em
    }

    /// The font's bounding box and ascender/descender, in thousandths of an em (for the PDF
    /// font descriptor).
    pub fn metrics(&self) -> Result<FontMetrics, FontError> {
        let head = self.table(b"head")?;
        let hhea = self.table(b"hhea")?;
        let scale = |value: u16| i32::from(value as i16) * 1000 / i32::from(self.units_per_em);
        Ok(FontMetrics {
            bounding_box: [
                scale(u16_at(head, 36)?),
                scale(u16_at(head, 38)?),
                scale(u16_at(head, 40)?),
                scale(u16_at(head, 42)?),
            ],
            ascent: scale(u16_at(hhea, 4)?),
            descent: scale(u16_at(hhea, 6)?),
        })
    }

    fn table(&self, tag: &[u8; 4]) -> Result<&'a [u8], FontError> {
        self.tables
            .get(tag)
            .copied()
            .ok_or(FontError("a required table is missing"))
    }

    /// The advance width and left side bearing of `glyph`.
    fn horizontal_metric(&self, glyph: u16) -> Result<(u16, u16), FontError> {
        let hmtx = self.table(b"hmtx")?;
        let last = usize::from(self.metrics_count) - 1;
        let glyph = usize::from(glyph);
        let advance = u16_at(hmtx, 4 * glyph.min(last))?;
        let bearing = if glyph <= last {
            u16_at(hmtx, 4 * glyph + 2)?
        } else {
            u16_at(hmtx, 4 * (last + 1) + 2 * (glyph - last - 1))?
        };
        Ok((advance, bearing))
    }

    /// The outline bytes of `glyph` (empty for a glyph without contours).
    fn outline(&self, glyph: u16) -> Result<&'a [u8], FontError> {
        let loca = self.table(b"loca")?;
        let glyph = usize::from(glyph);
        let (start, end) = if self.long_loca {
            (
                u32_at(loca, 4 * glyph)? as usize,
                u32_at(loca, 4 * glyph + 4)? as usize,
            )
        } else {
            (
                2 * usize::from(u16_at(loca, 2 * glyph)?),
                2 * usize::from(u16_at(loca, 2 * glyph + 2)?),
            )
        };
        if end < start {
            return Err(FontError("loca goes backwards"));
        }
        self.table(b"glyf")?
            .get(start..end)
            .ok_or(FontError("a glyph past the end of glyf"))
    }

    /// The components of a composite glyph (none for a simple one), with the offset of each
    /// component's glyph index in the outline.
    fn components(outline: &[u8]) -> Result<Vec<(usize, u16)>, FontError> {
        if outline.len() < 10 || (u16_at(outline, 0)? as i16) >= 0 {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut at = 10;
        loop {
            let flags = u16_at(outline, at)?;
            found.push((at + 2, u16_at(outline, at + 2)?));
            at += 4 + if flags & ARG_1_AND_2_ARE_WORDS != 0 {
                4
            } else {
                2
            };
            at += if flags & WE_HAVE_A_SCALE != 0 {
                2
            } else if flags & WE_HAVE_AN_X_AND_Y_SCALE != 0 {
                4
            } else if flags & WE_HAVE_A_TWO_BY_TWO != 0 {
                8
            } else {
                0
            };
            if flags & MORE_COMPONENTS == 0 {
                return Ok(found);
            }
        }
    }

    /// A font of `.notdef` and `glyphs` (old glyph numbers, in that order; repeats are
    /// dropped), plus the components composite glyphs need. Returns the font and, for each
    /// old glyph number, its new one.
    pub fn subset(&self, glyphs: &[u16]) -> Result<(Vec<u8>, BTreeMap<u16, u16>), FontError> {
        let mut order: Vec<u16> = vec![0];
        let mut renumber: BTreeMap<u16, u16> = BTreeMap::from([(0, 0)]);
        let mut pending: Vec<(u16, usize)> = glyphs.iter().rev().map(|glyph| (*glyph, 0)).collect();
        while let Some((glyph, depth)) = pending.pop() {
            if glyph >= self.glyph_count || renumber.contains_key(&glyph) {
                continue;
            }
            if depth > MAX_COMPONENT_DEPTH {
                return Err(FontError("composite glyphs nested too deep"));
            }
            let new = u16::try_from(order.len()).map_err(|_| FontError("too many glyphs"))?;
            renumber.insert(glyph, new);
            order.push(glyph);
            for (_, component) in Font::components(self.outline(glyph)?)? {
                pending.push((component, depth + 1));
            }
        }
        let mut glyf = Vec::new();
        let mut loca = Vec::with_capacity(4 * (order.len() + 1));
        let mut hmtx = Vec::with_capacity(4 * order.len());
        for glyph in &order {
            loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());
            let mut outline = self.outline(*glyph)?.to_vec();
            for (at, component) in Font::components(&outline)? {
                let new = renumber
                    .get(&component)
                    .copied()
                    .ok_or(FontError("a component outside the font"))?;
                outline[at..at + 2].copy_from_slice(&new.to_be_bytes());
            }
            glyf.extend_from_slice(&outline);
            while glyf.len() % 4 != 0 {
                glyf.push(0);
            }
            let (advance, bearing) = self.horizontal_metric(*glyph)?;
            hmtx.extend_from_slice(&advance.to_be_bytes());
            hmtx.extend_from_slice(&bearing.to_be_bytes());
        }
        loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());
        let count = (order.len() as u16).to_be_bytes();

        let mut head = self.table(b"head")?.to_vec();
        let mut hhea = self.table(b"hhea")?.to_vec();
        let mut maxp = self.table(b"maxp")?.to_vec();
        if head.len() < 54 || hhea.len() < 36 || maxp.len() < 6 {
            return Err(FontError("head, hhea or maxp too short"));
        }
        head[8..12].copy_from_slice(&[0; 4]);
        head[50..52].copy_from_slice(&1u16.to_be_bytes());
        hhea[34..36].copy_from_slice(&count);
        maxp[4..6].copy_from_slice(&count);

        let mut tables: BTreeMap<[u8; 4], Vec<u8>> = BTreeMap::from([
            (*b"glyf", glyf),
            (*b"head", head),
            (*b"hhea", hhea),
            (*b"hmtx", hmtx),
            (*b"loca", loca),
            (*b"maxp", maxp),
        ]);
        for tag in [b"cvt ", b"fpgm", b"prep"] {
            if let Some(table) = self.tables.get(tag) {
                tables.insert(*tag, table.to_vec());
            }
        }
        Ok((write_font(&tables), renumber))
    }
}

/// A font's box and vertical metrics in thousandths of an em.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FontMetrics {
    pub bounding_box: [i32; 4],
    pub ascent: i32,
    pub descent: i32,
}

/// The TrueType checksum: the sum of the big-endian 32-bit words, the last one zero-padded.
fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, chunk| {
        let mut word = [0; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}

/// A font file of `tables` (sorted by tag, as the directory must be), with checksums and the
/// `head` checksum adjustment set.
fn write_font(tables: &BTreeMap<[u8; 4], Vec<u8>>) -> Vec<u8> {
    let count = tables.len() as u16;
    let entry_selector = 15 - count.leading_zeros() as u16;
    let search_range = 16u16 << entry_selector;
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&search_range.to_be_bytes());
    out.extend_from_slice(&entry_selector.to_be_bytes());
    out.extend_from_slice(&(count * 16 - search_range).to_be_bytes());
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = None;
    for (tag, table) in tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(table).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(table.len() as u32).to_be_bytes());
        if tag == b"head" {
            head_at = Some(offset);
        }
        offset += table.len().div_ceil(4) * 4;
    }
    for table in tables.values() {
        out.extend_from_slice(table);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}

/// The Unicode character map: the (3,10) format 12 subtable if there is one, else (3,1) or
/// (0,x) format 4.
fn character_map(cmap: &[u8]) -> Result<BTreeMap<u32, u16>, FontError> {
    let count = usize::from(u16_at(cmap, 2)?);
    let mut best: Option<(u8, usize)> = None;
    for index in 0..count {
        let record = 4 + 8 * index;
        let platform = u16_at(cmap, record)?;
        let encoding = u16_at(cmap, record + 2)?;
        let offset = u32_at(cmap, record + 4)? as usize;
        let format = u16_at(cmap, offset)?;
        let rank = match (platform, encoding, format) {
            (3, 10, 12) | (0, _, 12) => 2,
            (3, 1, 4) | (0, _, 4) => 1,
            _ => continue,
        };
        if best.is_none_or(|(held, _)| rank > held) {
            best = Some((rank, offset));
        }
    }
    let (_, offset) = best.ok_or(FontError("no Unicode character map"))?;
    let table = cmap
        .get(offset..)
        .ok_or(FontError("cmap subtable past the end"))?;
    let mut map = BTreeMap::new();
    if u16_at(table, 0)? == 12 {
        let groups = u32_at(table, 12)? as usize;
        for group in 0..groups {
            let at = 16 + 12 * group;
            let (start, end, first) = (
                u32_at(table, at)?,
                u32_at(table, at + 4)?,
                u32_at(table, at + 8)?,
            );
            if end < start || end - start > 0x10_FFFF {
                return Err(FontError("a cmap group goes backwards"));
            }
            for code in start..=end {
                let glyph = u16::try_from(first + (code - start))
                    .map_err(|_| FontError("a glyph number past 65535"))?;
                map.insert(code, glyph);
            }
        }
        return Ok(map);
    }
    let segments = usize::from(u16_at(table, 6)? / 2);
    let ends = 14;
    let starts = ends + 2 * segments + 2;
    let deltas = starts + 2 * segments;
    let range_offsets = deltas + 2 * segments;
    for segment in 0..segments {
        let end = u16_at(table, ends + 2 * segment)?;
        let start = u16_at(table, starts + 2 * segment)?;
        let delta = u16_at(table, deltas + 2 * segment)?;
        let range_offset = usize::from(u16_at(table, range_offsets + 2 * segment)?);
        if start > end {
            continue;
        }
        for code in start..=end {
            if code == 0xFFFF {
                break;
            }
            let glyph = if range_offset == 0 {
                code.wrapping_add(delta)
            } else {
                let at = range_offsets + 2 * segment + range_offset + 2 * usize::from(code - start);
                match u16_at(table, at)? {
                    0 => 0,
                    glyph => glyph.wrapping_add(delta),
                }
            };
            if glyph != 0 {
                map.insert(u32::from(code), glyph);
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checksums_pad_the_last_word_and_the_directory_is_sorted_with_its_search_fields() {
        assert_eq!(checksum(&[0, 0, 0, 1, 0, 0, 0, 2]), 3);
        assert_eq!(checksum(&[1]), 0x0100_0000);
        let tables = BTreeMap::from([(*b"zzzz", vec![1, 2, 3]), (*b"aaaa", vec![4])]);
        let font = write_font(&tables);
        assert_eq!(&font[12..16], b"aaaa");
        assert_eq!(&font[28..32], b"zzzz");
        // 2 tables: searchRange 32, entrySelector 1, rangeShift 0.
        assert_eq!(&font[6..12], &[0, 32, 0, 1, 0, 0]);
        assert_eq!(font.len() % 4, 0);
    }

    #[test]
    fn a_malformed_font_is_an_error() {
        assert!(Font::parse(b"").is_err());
        assert!(Font::parse(b"OTTO\0\0\0\0\0\0\0\0").is_err());
        assert!(Font::parse(&[0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
