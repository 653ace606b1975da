//! A small PDF 1.4 writer for receipts, statements and certificates: pages of text lines,
//! filled rectangles, rules and QR codes, written by hand (no dependency but `qrcode`).
//!
//! Text is laid out in columns, as a receipt printer prints it: an ASCII character takes one
//! column (0.6 em), a wide character ([`is_wide`]: Chinese) two. Each line is cut into runs:
//! - ASCII runs are set in **Courier**, one of the 14 standard fonts every reader has;
//! - any other run (Chinese) is set in an **embedded** font, a subset of Droid Sans Fallback
//!   (Apache-2.0, `fonts/`), so a Chinese merchant name prints the same in every reader and on
//!   every printer, with no font installed. The crate carries a GB2312 subset of the font
//!   (`fonts/DroidSansFallback-GB2312.ttf`, made from Debian's `fonts-droid-fallback` by the
//!   committed `fonts/subset.sh`); each document embeds only the glyphs it uses, as a Type 0
//!   font (`Identity-H`) over a `CIDFontType2` with a `CIDToGIDMap`, its widths (`W`) one or
//!   two columns, and the TrueType subset in `FontFile2` ([`truetype`]). Its `ToUnicode` CMap
//!   lets the text be searched and copied.
//! - **A character the font lacks** (outside GB2312, say 𠀀 or 😀) is drawn as the geta mark
//!   [`MISSING_GLYPH_MARK`] 〓, the CJK typesetter's sign for a missing character, so a reader
//!   sees something is missing; the `ToUnicode` map still gives the real character, so the
//!   text extracts and searches as it was written.
//!
//! Coordinates are in points (1/72 inch) from the bottom left corner of the page. Content
//! streams are not compressed: the files are small, and tests and auditors can read them.
//!
//! ```
//! let mut page = pdf::Page::new(pdf::Size::RECEIPT_80MM, 400.0);
//! page.text(10.0, 380.0, 9.0, "MERCHANT COPY");
//! page.text(10.0, 368.0, 9.0, "商户名称 陆家嘴咖啡");
//! page.rule(10.0, 360.0, 216.0, 360.0, 0.5);
//! page.qr(10.0, 200.0, 2.0, "easypos:receipt/10000001/000001/000012").unwrap();
//! let bytes = pdf::Document::new("Receipt").page(page).to_bytes();
//! assert!(bytes.starts_with(b"%PDF-1.4"));
//! ```

pub mod truetype;

use std::fmt::Write as _;

/// Why a drawing could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the QR code cannot hold this text: {0}")]
    Qr(String),
}

/// Page sizes in points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size;

impl Size {
    /// The width of an 80 mm thermal receipt roll (72 mm printable, 226.77 pt wide).
    pub const RECEIPT_80MM: f32 = 226.77;
    /// ISO A4 width and height.
    pub const A4_WIDTH: f32 = 595.28;
    pub const A4_HEIGHT: f32 = 841.89;
}

/// The font embedded for text that is not ASCII: the GB2312 subset of Droid Sans Fallback
/// (`fonts/`, Apache-2.0), of which each document embeds the glyphs it uses.
static CJK_FONT: &[u8] = include_bytes!("../fonts/DroidSansFallback-GB2312.ttf");
/// The PostScript name of the embedded font, after its subset tag (`ABCDEF+`).
pub const CJK_FONT_NAME: &str = "DroidSansFallback";
/// What a character the embedded font lacks is drawn as: U+3013 GETA MARK 〓, the mark CJK
/// typesetting puts where a character is missing. The text still extracts as written.
pub const MISSING_GLYPH_MARK: char = '\u{3013}';
/// The advance of one text column, in thousandths of the text size: Courier's.
const COLUMN_WIDTH: u32 = 600;
/// The most distinct characters one document can show in the embedded font: codes are two
/// bytes and 0 is `.notdef`. Further characters are drawn as `.notdef` (an empty box).
const MAX_EMBEDDED_CHARACTERS: usize = u16::MAX as usize - 1;

/// The embedded font, parsed once. `None` only if the committed font were corrupt (a test
/// reads it); text is then drawn as `.notdef` rather than failing the document.
fn cjk_font() -> Option<&'static truetype::Font<'static>> {
    static FONT: std::sync::OnceLock<Option<truetype::Font<'static>>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| truetype::Font::parse(CJK_FONT).ok())
        .as_ref()
}

/// Whether a character takes two columns on screen and on a printer: the East Asian wide
/// ranges (Hangul Jamo, CJK radicals to Yi, Hangul syllables, CJK compatibility, vertical and
/// full-width forms, the supplementary ideographic planes).
pub fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD)
}

/// The widest page (and tallest) a reader must accept in PDF 1.4: 200 inches.
pub const MAX_PAGE_POINTS: f32 = 14_400.0;
/// The most drawing operations on one page: bounds the memory a caller's loop can take.
pub const MAX_OPERATIONS_PER_PAGE: usize = 200_000;

#[derive(Clone, Debug, PartialEq)]
enum Operation {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Rectangle {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
    },
    Rule {
        from: (f32, f32),
        to: (f32, f32),
        width: f32,
    },
}

/// The side in points of the QR code [`Page::qr`] draws for `data`, to lay out a page before
/// drawing it.
pub fn qr_side(data: &str, module: f32) -> Result<f32, PdfError> {
    let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M)
        .map_err(|error| PdfError::Qr(error.to_string()))?;
    Ok(code.width() as f32 * module)
}

/// One page and what is drawn on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    width: f32,
    height: f32,
    operations: Vec<Operation>,
}

/// A number as PDF writes it: at most two decimals, no exponent.
fn number(value: f32) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

impl Page {
    /// A page `width` × `height` points (each clamped to 1 ..= [`MAX_PAGE_POINTS`]).
    pub fn new(width: f32, height: f32) -> Page {
        Page {
            width: width.clamp(1.0, MAX_PAGE_POINTS),
            height: height.clamp(1.0, MAX_PAGE_POINTS),
            operations: Vec::new(),
        }
    }

    pub fn width(&self) -> f32 {
        self.width
    }

    pub fn height(&self) -> f32 {
        self.height
    }

    fn push(&mut self, operation: Operation) {
        if self.operations.len() < MAX_OPERATIONS_PER_PAGE {
            self.operations.push(operation);
        }
    }

    /// One line of text, its baseline starting at (`x`, `y`), `size` points high.
    pub fn text(&mut self, x: f32, y: f32, size: f32, text: &str) {
        self.push(Operation::Text {
            x,
            y,
            size,
            text: text.to_owned(),
        });
    }

    /// A filled black rectangle.
    pub fn rectangle(&mut self, x: f32, y: f32, width: f32, height: f32) {
        self.push(Operation::Rectangle {
            x,
            y,
            width,
            height,
        });
    }

    /// A straight line `width` points thick.
    pub fn rule(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32) {
        self.push(Operation::Rule {
            from: (x1, y1),
            to: (x2, y2),
            width,
        });
    }

    /// A QR code of `data` (error correction M) with its bottom left corner at (`x`, `y`),
    /// each module `module` points square, drawn as filled rectangles (one per run of dark
    /// modules in a row). Returns the side of the code in points, without a quiet zone.
    pub fn qr(&mut self, x: f32, y: f32, module: f32, data: &str) -> Result<f32, PdfError> {
        let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M)
            .map_err(|error| PdfError::Qr(error.to_string()))?;
        let side = code.width();
        let colors = code.to_colors();
        for row in 0..side {
            let top = y + (side - row) as f32 * module;
            let mut column = 0;
            while column < side {
                if colors[row * side + column] == qrcode::Color::Dark {
                    let start = column;
                    while column < side && colors[row * side + column] == qrcode::Color::Dark {
                        column += 1;
                    }
                    self.rectangle(
                        x + start as f32 * module,
                        top - module,
                        (column - start) as f32 * module,
                        module,
                    );
                } else {
                    column += 1;
                }
            }
        }
        Ok(side as f32 * module)
    }

    /// The page's content stream; `codes` gives the embedded font's code of each character
    /// that is not ASCII.
    fn content(&self, codes: &Codes) -> String {
        let mut out = String::new();
        for operation in &self.operations {
            match operation {
                Operation::Text { x, y, size, text } => {
                    // Each run starts at its column: ASCII in Courier, one column a
                    // character; the rest in the embedded font, whose widths are one or two
                    // columns, so both line up as on a receipt printer.
                    let mut column = 0;
                    for run in runs(text) {
                        let (font, string) = if run.ascii {
                            ("F1", latin_string(run.text))
                        } else {
                            ("F2", codes.hex_string(run.text))
                        };
                        let left = *x + column as f32 * *size * COLUMN_WIDTH as f32 / 1000.0;
                        let _ = writeln!(
                            out,
                            "BT /{font} {} Tf {} {} Td {string} Tj ET",
                            number(*size),
                            number(left),
                            number(*y)
                        );
                        column += run.columns;
                    }
                }
                Operation::Rectangle {
                    x,
                    y,
                    width,
                    height,
                } => {
                    let _ = writeln!(
                        out,
                        "{} {} {} {} re f",
                        number(*x),
                        number(*y),
                        number(*width),
                        number(*height)
                    );
                }
                Operation::Rule { from, to, width } => {
                    let _ = writeln!(
                        out,
                        "{} w {} {} m {} {} l S",
                        number(*width),
                        number(from.0),
                        number(from.1),
                        number(to.0),
                        number(to.1)
                    );
                }
            }
        }
        out
    }
}

/// An ASCII string as a PDF literal string, with `\`, `(` and `)` escaped and control
/// characters written as spaces.
fn latin_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push(')');
    out
}

/// A run of a line of text in one font.
struct Run<'a> {
    text: &'a str,
    ascii: bool,
    columns: usize,
}

/// `text` cut into runs of ASCII and of other characters, with the columns each takes.
fn runs(text: &str) -> Vec<Run<'_>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        let columns = if is_wide(c) { 2 } else { 1 };
        match runs.last_mut() {
            Some(run) if run.ascii == c.is_ascii() => {
                run.columns += columns;
                run.text = &text[start..at + c.len_utf8()];
            }
            _ => {
                start = at;
                runs.push(Run {
                    text: &text[at..at + c.len_utf8()],
                    ascii: c.is_ascii(),
                    columns,
                });
            }
        }
    }
    runs
}

/// Text as a PDF hex string of UTF-16BE code units (for text strings such as the title).
fn utf16_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 4 + 2);
    out.push('<');
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}

/// The embedded font's codes: one two-byte code (a CID, `Identity-H`) per distinct character
/// that is not ASCII, from 1 in order of first appearance.
#[derive(Debug, Default)]
struct Codes {
    by_character: std::collections::BTreeMap<char, u16>,
    characters: Vec<char>,
}

impl Codes {
    /// The codes of every character outside ASCII on `pages`.
    fn of(pages: &[Page]) -> Codes {
        let mut codes = Codes::default();
        for operation in pages.iter().flat_map(|page| &page.operations) {
            let Operation::Text { text, .. } = operation else {
                continue;
            };
            for c in text.chars().filter(|c| !c.is_ascii()) {
                if codes.by_character.contains_key(&c)
                    || codes.characters.len() >= MAX_EMBEDDED_CHARACTERS
                {
                    continue;
                }
                codes.characters.push(c);
                // At most MAX_EMBEDDED_CHARACTERS (< 65535) characters: the code fits.
                codes.by_character.insert(c, codes.characters.len() as u16);
            }
        }
        codes
    }

    /// A run's codes as a hex string (0, `.notdef`, past the limit).
    fn hex_string(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() * 4 + 2);
        out.push('<');
        for c in text.chars() {
            let code = self.by_character.get(&c).copied().unwrap_or(0);
            let _ = write!(out, "{code:04X}");
        }
        out.push('>');
        out
    }

    /// The `W` array: each code's width, two columns for a wide character, one otherwise.
    fn widths(&self) -> String {
        let widths: Vec<String> = self
            .characters
            .iter()
            .map(|c| {
                let columns = if is_wide(*c) { 2 } else { 1 };
                (columns * COLUMN_WIDTH).to_string()
            })
            .collect();
        if widths.is_empty() {
            "[]".to_owned()
        } else {
            format!("[1 [{}]]", widths.join(" "))
        }
    }

    /// The ToUnicode CMap: each code back to its character (UTF-16BE).
    fn to_unicode_cmap(&self) -> String {
        let mut out = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        let entries: Vec<String> = self
            .characters
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let units: String = c
                    .encode_utf16(&mut [0; 2])
                    .iter()
                    .map(|unit| format!("{unit:04X}"))
                    .collect();
                format!("<{:04X}> <{units}>", index + 1)
            })
            .collect();
        // At most 100 entries per block (PDF reference, 5.9.2).
        for block in entries.chunks(100) {
            let _ = writeln!(out, "{} beginbfchar", block.len());
            for entry in block {
                out.push_str(entry);
                out.push('\n');
            }
            out.push_str("endbfchar\n");
        }
        out.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
        out
    }

    /// The subset of the embedded font these codes need, its `CIDToGIDMap` (two bytes per
    /// code from 0) and its subset tag; `None` when the font could not be read.
    fn font_subset(&self) -> Option<(Vec<u8>, Vec<u8>, String)> {
        let font = cjk_font()?;
        let missing = font.glyph(MISSING_GLYPH_MARK).unwrap_or(0);
        let glyphs: Vec<u16> = self
            .characters
            .iter()
            .map(|c| font.glyph(*c).unwrap_or(missing))
            .collect();
        let (program, renumbered) = font.subset(&glyphs).ok()?;
        let mut map = vec![0, 0];
        for glyph in &glyphs {
            let new = renumbered.get(glyph).copied().unwrap_or(0);
            map.extend_from_slice(&new.to_be_bytes());
        }
        Some((program, map, self.subset_tag()))
    }

    /// Six capital letters naming the subset (PDF 1.7, 9.6.4), from its characters (FNV-1a).
    fn subset_tag(&self) -> String {
        let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
        for c in &self.characters {
            hash = (hash ^ u64::from(u32::from(*c))).wrapping_mul(0x0000_0100_0000_01B3);
        }
        (0..6)
            .map(|index| char::from(b'A' + ((hash >> (index * 5)) % 26) as u8))
            .collect()
    }
}

/// A document: pages in order, and a title for the document information dictionary.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    title: String,
    pages: Vec<Page>,
}

impl Document {
    pub fn new(title: &str) -> Document {
        Document {
            title: title.to_owned(),
            pages: Vec::new(),
        }
    }

    /// Adds a page at the end.
    pub fn page(mut self, page: Page) -> Document {
        self.pages.push(page);
        self
    }

    pub fn pages(&self) -> &[Page] {
        &self.pages
    }

    /// The PDF file. Objects: 1 catalog, 2 page tree, 3 Courier, 4 the embedded font (Type 0),
    /// 5 its CID font, 6 its descriptor, 7 its ToUnicode CMap, 8 the information dictionary,
    /// 9 the font program (`FontFile2`), 10 its `CIDToGIDMap`, then a page and its content
    /// per page.
    pub fn to_bytes(&self) -> Vec<u8> {
        const FIRST_PAGE_OBJECT: usize = 11;
        let page_ids: Vec<usize> = (0..self.pages.len())
            .map(|index| FIRST_PAGE_OBJECT + 2 * index)
            .collect();
        let kids = page_ids
            .iter()
            .map(|id| format!("{id} 0 R"))
            .collect::<Vec<_>>()
            .join(" ");
        let codes = Codes::of(&self.pages);
        let cmap = codes.to_unicode_cmap();
        let (program, gid_map, tag) = codes.font_subset().unwrap_or_else(|| {
            (
                Vec::new(),
                vec![0; 2 * (codes.characters.len() + 1)],
                "AAAAAA".to_owned(),
            )
        });
        let metrics =
            cjk_font()
                .and_then(|font| font.metrics().ok())
                .unwrap_or(truetype::FontMetrics {
                    bounding_box: [0, -120, 1000, 880],
                    ascent: 880,
                    descent: -120,
                });
        let name = format!("{tag}+{CJK_FONT_NAME}");
        let [left, bottom, right, top] = metrics.bounding_box;
        let font_file = if program.is_empty() {
            String::new()
        } else {
            " /FontFile2 9 0 R".to_owned()
        };
        let mut objects: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            format!(
                "<< /Type /Pages /Kids [{kids}] /Count {} >>",
                self.pages.len()
            )
            .into_bytes(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>"
                .to_vec(),
            format!("<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [5 0 R] /ToUnicode 7 0 R >>").into_bytes(),
            format!(
                "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 6 0 R /DW {} /W {} /CIDToGIDMap 10 0 R >>",
                2 * COLUMN_WIDTH,
                codes.widths()
            )
            .into_bytes(),
            format!(
                "<< /Type /FontDescriptor /FontName /{name} /Flags 4 /FontBBox [{left} {bottom} {right} {top}] /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight {} /StemV 80{font_file} >>",
                metrics.ascent, metrics.descent, metrics.ascent
            )
            .into_bytes(),
            format!("<< /Length {} >>\nstream\n{cmap}endstream", cmap.len()).into_bytes(),
            format!(
                "<< /Title {} /Producer (easypos) >>",
                // A text string in UTF-16BE with its byte order mark.
                utf16_hex(&format!("\u{FEFF}{}", self.title))
            )
            .into_bytes(),
            binary_stream(&format!("/Length1 {}", program.len()), &program),
            binary_stream("", &gid_map),
        ];
        for (page, id) in self.pages.iter().zip(&page_ids) {
            let content = page.content(&codes);
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                number(page.width),
                number(page.height),
                id + 1
            ).into_bytes());
            objects.push(
                format!(
                    "<< /Length {} >>\nstream\n{content}endstream",
                    content.len()
                )
                .into_bytes(),
            );
        }
        let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
            out.extend_from_slice(object);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for offset in offsets {
            let _ = writeln!(table, "{offset:010} 00000 n ");
        }
        let _ = write!(
            table,
            "trailer\n<< /Size {} /Root 1 0 R /Info 8 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        );
        out.extend_from_slice(table.as_bytes());
        out
    }
}

/// A stream of binary `data` with more dictionary `entries`; the end of line before
/// `endstream` is not part of the data (PDF 1.7, 7.3.8.1).
fn binary_stream(entries: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "<< /Length {}{}{entries} >>\nstream\n",
        data.len(),
        if entries.is_empty() { "" } else { " " }
    )
    .into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_never_exponents() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.004), "0");
        assert_eq!(number(-3.25), "-3.25");
        assert_eq!(number(f32::NAN), "0");
        assert_eq!(number(1.0e9), "1000000000");
    }

    #[test]
    fn strings_are_escaped_and_lines_cut_into_runs_by_font_and_columns() {
        assert_eq!(latin_string("a(b)\\c\n"), "(a\\(b\\)\\\\c )");
        assert_eq!(utf16_hex("中 A😀"), "<4E2D00200041D83DDE00>");
        let cut: Vec<(&str, bool, usize)> = runs("商户 A1·中")
            .iter()
            .map(|run| (run.text, run.ascii, run.columns))
            .collect();
        assert_eq!(
            cut,
            [("商户", false, 4), (" A1", true, 3), ("·中", false, 3)]
        );
        assert!(runs("").is_empty());
    }

    #[test]
    fn codes_are_given_in_order_once_and_map_back_to_their_characters() {
        let mut page = Page::new(100.0, 100.0);
        page.text(0.0, 0.0, 9.0, "陆家 ABC 陆😀·");
        let codes = Codes::of(&[page]);
        assert_eq!(codes.characters, ['陆', '家', '😀', '·']);
        assert_eq!(codes.hex_string("家陆"), "<00020001>");
        assert_eq!(codes.widths(), "[1 [1200 1200 600 600]]", "😀 is not wide");
        let cmap = codes.to_unicode_cmap();
        assert!(cmap.contains("4 beginbfchar\n<0001> <9646>\n<0002> <5BB6>\n<0003> <D83DDE00>\n<0004> <00B7>\nendbfchar"), "{cmap}");
        assert_eq!(codes.subset_tag().len(), 6);
        assert!(codes.subset_tag().chars().all(|c| c.is_ascii_uppercase()));
        assert_eq!(Codes::default().widths(), "[]");
    }

    #[test]
    fn the_committed_font_has_gb2312_and_the_missing_glyph_mark() {
        let font = cjk_font().unwrap();
        assert!(font.character_count() > 7000, "GB2312 and punctuation");
        for c in "陆家嘴咖啡王府井书店，。：（）"
            .chars()
            .chain([MISSING_GLYPH_MARK])
        {
            assert!(font.glyph(c).is_some(), "{c}");
        }
        assert_eq!(font.glyph('😀'), None);
        assert_eq!(font.glyph('A'), None, "ASCII is Courier's");
    }
}
