//! A small PDF 1.4 writer for receipts, statements and certificates: pages of text lines,
//! filled rectangles, rules and QR codes, written by hand (no dependency but `qrcode`).
//!
//! Text takes one of two fonts, chosen per string:
//! - ASCII text is set in **Courier**, one of the 14 standard fonts every reader has, so
//!   columns laid out in characters stay aligned;
//! - any other text (Chinese) is set in **STSong-Light**, a predefined CID font of the
//!   Adobe-GB1 collection, as a Type 0 font with the predefined CMap `UniGB-UCS2-H`: the
//!   string is its UCS-2 code units, and no font file is embedded (the reader supplies the
//!   font, as reportlab's `UnicodeCIDFont` does). Its widths are declared half an em for
//!   ASCII and a full em for the rest, and the text is stretched to 120 % (`Tz`), so an
//!   ASCII character takes one Courier column and a wide character two. A
//!   `ToUnicode` CMap lets text be searched and extracted. Characters outside the Basic
//!   Multilingual Plane are written as `?`.
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

/// Horizontal scaling (percent) of Chinese text, so that its columns line up with Courier's.
pub const CJK_HORIZONTAL_SCALE: u32 = 120;

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

    /// The page's content stream.
    fn content(&self) -> String {
        let mut out = String::new();
        for operation in &self.operations {
            match operation {
                Operation::Text { x, y, size, text } => {
                    // Chinese is stretched to 120 %: its half-width ASCII (0.5 em) then
                    // takes a Courier column (0.6 em), and a wide character two.
                    let (font, scale, string) = if text.is_ascii() {
                        ("F1", 100, latin_string(text))
                    } else {
                        ("F2", CJK_HORIZONTAL_SCALE, cjk_string(text))
                    };
                    let _ = writeln!(
                        out,
                        "BT /{font} {} Tf {scale} Tz {} {} Td {string} Tj ET",
                        number(*size),
                        number(*x),
                        number(*y)
                    );
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

/// Text as a hex string of UCS-2 code units, for `UniGB-UCS2-H`.
fn cjk_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 4 + 2);
    out.push('<');
    for c in text.chars() {
        let unit = match u16::try_from(c as u32) {
            Ok(unit) if !(0xD800..=0xDFFF).contains(&unit) && !c.is_control() => unit,
            _ => u16::from(b'?'),
        };
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}

/// The ToUnicode CMap of the Chinese font: every 2-byte code is its own UCS-2 value.
fn to_unicode_cmap() -> String {
    let mut ranges = Vec::new();
    for high in (0x00..=0xFFu32).filter(|high| !(0xD8..=0xDF).contains(high)) {
        ranges.push(format!("<{high:02X}00> <{high:02X}FF> <{high:02X}00>"));
    }
    let mut out = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    // At most 100 entries per block (PDF reference, 5.9.2).
    for block in ranges.chunks(100) {
        let _ = writeln!(out, "{} beginbfrange", block.len());
        for range in block {
            out.push_str(range);
            out.push('\n');
        }
        out.push_str("endbfrange\n");
    }
    out.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    out
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

    /// The PDF file. Objects: 1 catalog, 2 page tree, 3 Courier, 4 STSong-Light (Type 0),
    /// 5 its CID font, 6 its descriptor, 7 its ToUnicode CMap, 8 the information dictionary,
    /// then a page and its content per page.
    pub fn to_bytes(&self) -> Vec<u8> {
        const FIRST_PAGE_OBJECT: usize = 9;
        let page_ids: Vec<usize> = (0..self.pages.len())
            .map(|index| FIRST_PAGE_OBJECT + 2 * index)
            .collect();
        let kids = page_ids
            .iter()
            .map(|id| format!("{id} 0 R"))
            .collect::<Vec<_>>()
            .join(" ");
        let cmap = to_unicode_cmap();
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{kids}] /Count {} >>",
                self.pages.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>"
                .to_owned(),
            "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [5 0 R] /ToUnicode 7 0 R >>".to_owned(),
            "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor 6 0 R /DW 1000 /W [1 95 500] >>".to_owned(),
            "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{cmap}endstream", cmap.len()),
            format!(
                "<< /Title {} /Producer (easypos) >>",
                // A text string in UTF-16BE with its byte order mark.
                cjk_string(&format!("\u{FEFF}{}", self.title))
            ),
        ];
        for (page, id) in self.pages.iter().zip(&page_ids) {
            let content = page.content();
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                number(page.width),
                number(page.height),
                id + 1
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}endstream",
                content.len()
            ));
        }
        let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
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
    fn strings_are_escaped_and_chinese_is_ucs2() {
        assert_eq!(latin_string("a(b)\\c\n"), "(a\\(b\\)\\\\c )");
        assert_eq!(cjk_string("中文 A"), "<4E2D65870020 0041>".replace(' ', ""));
        assert_eq!(cjk_string("😀"), "<003F>", "outside the BMP");
    }

    #[test]
    fn the_to_unicode_cmap_covers_the_plane_without_surrogates() {
        let cmap = to_unicode_cmap();
        assert_eq!(cmap.matches("beginbfrange").count(), 3);
        assert!(cmap.contains("<4E00> <4EFF> <4E00>"));
        assert!(!cmap.contains("<D800>"));
    }
}
