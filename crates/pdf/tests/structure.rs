#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The files `pdf` writes, read back as a PDF reader does: the cross-reference table points at
//! every object, the trailer names the catalog, each page has its content, and the text (Latin
//! and Chinese) is found again in the content streams.

/// The objects of a PDF, by number, through its cross-reference table; panics when an
/// offset does not point at its object. Each object ends where `endobj` closes it.
fn objects(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    assert!(bytes.starts_with(b"%PDF-1.4\n"));
    assert!(text.ends_with("%%EOF\n"));
    let start: usize = text
        .rsplit("startxref\n")
        .next()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        bytes[start..].starts_with(b"xref\n0 "),
        "startxref points at the table"
    );
    let table = std::str::from_utf8(&bytes[start..]).unwrap();
    let mut lines = table.lines().skip(1);
    let header: Vec<usize> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|number| number.parse().unwrap())
        .collect();
    let count = header[1];
    assert_eq!(lines.next().unwrap(), "0000000000 65535 f ");
    let mut offsets = Vec::new();
    for number in 1..count {
        let entry = lines.next().unwrap();
        assert_eq!(
            entry.len() + 1,
            20,
            "entries are 20 bytes with the line end"
        );
        assert!(entry.ends_with(" 00000 n "), "{entry}");
        let offset: usize = entry[..10].parse().unwrap();
        let head = format!("{number} 0 obj\n");
        assert!(
            bytes[offset..].starts_with(head.as_bytes()),
            "object {number} is at {offset}"
        );
        offsets.push((offset, offset + head.len()));
    }
    let ends: Vec<usize> = offsets[1..]
        .iter()
        .map(|(object, _)| *object)
        .chain([start])
        .collect();
    let found = offsets
        .iter()
        .zip(ends)
        .map(|((_, from), to)| {
            let body = &bytes[*from..to];
            assert!(body.ends_with(b"\nendobj\n"));
            body[..body.len() - 8].to_vec()
        })
        .collect();
    assert_eq!(lines.next(), Some("trailer"));
    let trailer = lines.next().unwrap();
    assert!(trailer.contains(&format!("/Size {count}")), "{trailer}");
    assert!(trailer.contains("/Root 1 0 R"));
    found
}

/// An object as text (binary streams come out lossy).
fn text(object: &[u8]) -> String {
    String::from_utf8_lossy(object).into_owned()
}

/// A stream's data: its declared length must be exact, followed by `endstream` (after an end
/// of line that is not part of the data, for binary streams).
fn stream(object: &[u8]) -> &[u8] {
    let dictionary = text(&object[..object.windows(7).position(|w| w == b"stream\n").unwrap()]);
    let length: usize = dictionary
        .split("/Length ")
        .nth(1)
        .unwrap()
        .split([' ', '>'])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let content = &object[dictionary.len() + 7..];
    assert!(
        &content[length..] == b"endstream" || &content[length..] == b"\nendstream",
        "the length is exact"
    );
    &content[..length]
}

/// The ToUnicode CMap's code → text entries.
fn to_unicode(cmap: &str) -> std::collections::BTreeMap<u16, String> {
    cmap.lines()
        .filter_map(|line| {
            let (code, target) = line.strip_prefix('<')?.split_once("> <")?;
            let target = target.strip_suffix('>')?;
            if code.len() != 4 || code == "0000" {
                return None;
            }
            let units: Vec<u16> = (0..target.len())
                .step_by(4)
                .map(|at| u16::from_str_radix(&target[at..at + 4], 16).unwrap())
                .collect();
            Some((
                u16::from_str_radix(code, 16).unwrap(),
                String::from_utf16(&units).unwrap(),
            ))
        })
        .collect()
}

/// Every line of text shown, as a reader extracts it: the runs of one baseline joined,
/// literal strings as ASCII, hex strings through the ToUnicode map.
fn shown_text(content: &[u8], unicode: &std::collections::BTreeMap<u16, String>) -> Vec<String> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for line in text(content)
        .lines()
        .filter_map(|line| line.strip_suffix(" Tj ET"))
    {
        let (position, string) = line.split_once(" Td ").unwrap();
        let y = position.rsplit(' ').next().unwrap().to_owned();
        let run = if let Some(hex) = string.strip_prefix('<') {
            let hex = hex.trim_end_matches('>');
            (0..hex.len())
                .step_by(4)
                .map(|at| unicode[&u16::from_str_radix(&hex[at..at + 4], 16).unwrap()].clone())
                .collect()
        } else {
            string
                .strip_prefix('(')
                .unwrap()
                .strip_suffix(')')
                .unwrap()
                .replace("\\(", "(")
                .replace("\\)", ")")
                .replace("\\\\", "\\")
        };
        match lines.last_mut() {
            Some((last, text)) if *last == y => text.push_str(&run),
            _ => lines.push((y, run)),
        }
    }
    lines.into_iter().map(|(_, text)| text).collect()
}

#[test]
fn a_two_page_document_is_well_formed_and_its_text_is_found_again() {
    let mut first = pdf::Page::new(pdf::Size::RECEIPT_80MM, 300.0);
    first.text(10.0, 280.0, 9.0, "MERCHANT COPY (REPRINT)");
    first.text(10.0, 268.0, 9.0, "商户名称: 陆家嘴咖啡");
    first.rule(10.0, 260.0, 216.0, 260.0, 0.5);
    let side = first
        .qr(10.0, 20.0, 2.0, "easypos:receipt/10000001/000001/000012")
        .unwrap();
    assert!(side >= 42.0, "at least 21 modules");
    let mut second = pdf::Page::new(pdf::Size::A4_WIDTH, pdf::Size::A4_HEIGHT);
    second.text(72.0, 770.0, 12.0, "Statement \\ 2026-11-25");
    let bytes = pdf::Document::new("收据 Receipt")
        .page(first)
        .page(second)
        .to_bytes();

    let found = objects(&bytes);
    let found_text: Vec<String> = found.iter().map(|object| text(object)).collect();
    assert_eq!(found_text[0], "<< /Type /Catalog /Pages 2 0 R >>");
    assert!(
        found_text[1].contains("/Kids [11 0 R 13 0 R] /Count 2"),
        "{}",
        found_text[1]
    );
    assert!(found_text[3].contains("/Subtype /Type0 /BaseFont /"));
    assert!(found_text[3].contains("+DroidSansFallback /Encoding /Identity-H"));
    assert!(found_text[4].contains("/Subtype /CIDFontType2"));
    assert!(found_text[4].contains("/CIDToGIDMap 10 0 R"));
    assert!(
        found_text[5].contains("/FontFile2 9 0 R"),
        "{}",
        found_text[5]
    );
    assert!(
        found_text[7].contains("/Title <FEFF6536636E0020"),
        "{}",
        found_text[7]
    );
    assert!(found_text[10].contains("/MediaBox [0 0 226.77 300]"));
    assert!(found_text[12].contains("/MediaBox [0 0 595.28 841.89]"));

    let unicode = to_unicode(&text(stream(&found[6])));
    // 商户名称陆家嘴咖啡: nine characters, each once (the colon is ASCII, in Courier).
    assert_eq!(unicode.len(), 9, "{unicode:?}");
    let content = stream(&found[11]);
    assert_eq!(
        shown_text(content, &unicode),
        ["MERCHANT COPY (REPRINT)", "商户名称: 陆家嘴咖啡"]
    );
    let content = text(content);
    assert!(content.contains("0.5 w 10 260 m 216 260 l S"));
    assert!(content.contains("BT /F2 9 Tf 10 268 Td <0001000200030004> Tj ET"));
    assert!(
        content.contains("BT /F1 9 Tf 53.2 268 Td (: ) Tj ET"),
        "ASCII after four wide characters starts at column 8: 10 + 8 x 0.6 x 9 pt"
    );
    assert!(content.contains("BT /F1 9 Tf 10 280 Td ("));
    // The QR code: filled rectangles inside its square, on whole modules.
    let rectangles: Vec<Vec<f32>> = content
        .lines()
        .filter_map(|line| line.strip_suffix(" re f"))
        .map(|line| {
            line.split(' ')
                .map(|value| value.parse().unwrap())
                .collect()
        })
        .collect();
    assert!(rectangles.len() > 30);
    for rectangle in &rectangles {
        let (x, y, width, height) = (rectangle[0], rectangle[1], rectangle[2], rectangle[3]);
        assert!(
            x >= 10.0 && x + width <= 10.0 + side + 0.01,
            "{rectangle:?}"
        );
        assert!(
            y >= 20.0 && y + height <= 20.0 + side + 0.01,
            "{rectangle:?}"
        );
        assert_eq!(height, 2.0);
    }
    // The three finder patterns: the top left corner module is dark.
    assert!(rectangles.iter().any(|rectangle| rectangle[0] == 10.0
        && rectangle[1] + rectangle[3] == 20.0 + side
        && rectangle[2] >= 14.0));
    assert_eq!(
        shown_text(stream(&found[12 + 1]), &unicode),
        ["Statement \\ 2026-11-25"]
    );
}

#[test]
fn an_empty_document_and_text_that_cannot_be_drawn() {
    let found = objects(&pdf::Document::new("").to_bytes());
    assert!(text(&found[1]).contains("/Kids [] /Count 0"));
    let mut page = pdf::Page::new(-5.0, 1.0e9);
    assert_eq!((page.width(), page.height()), (1.0, pdf::MAX_PAGE_POINTS));
    let too_long = "x".repeat(8_000);
    assert!(page.qr(0.0, 0.0, 1.0, &too_long).is_err());
}

#[test]
fn the_embedded_font_holds_the_glyphs_used_and_a_missing_character_shows_the_geta_mark() {
    let mut page = pdf::Page::new(pdf::Size::RECEIPT_80MM, 100.0);
    page.text(10.0, 80.0, 9.0, "陆家嘴咖啡 陆");
    page.text(10.0, 68.0, 9.0, "😀𠀀");
    let bytes = pdf::Document::new("font").page(page).to_bytes();
    let found = objects(&bytes);

    // The font program: a TrueType font of .notdef and the glyphs of the six characters
    // (their components too), nothing else.
    let descriptor = text(&found[5]);
    let program_object = &found[8];
    let program = stream(program_object);
    assert!(text(&program_object[..40]).contains(&format!("/Length1 {}", program.len())));
    let font = pdf::truetype::Font::parse(program).unwrap();
    assert_eq!(font.character_count(), 0, "no cmap: the PDF maps codes");
    assert!(program.len() < 40_000, "a subset: {} bytes", program.len());
    assert!(descriptor.contains("/FontFile2 9 0 R"));

    // Codes 1-5 the five characters of the name, 6 and 7 the two the font lacks; each
    // code has a glyph, and the two missing ones share the geta mark's.
    let map = stream(&found[9]);
    assert_eq!(map.len(), 2 * 8, "codes 0 to 7");
    let glyphs: Vec<u16> = map
        .chunks(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    assert_eq!(glyphs[0], 0);
    assert!(glyphs[1..].iter().all(|glyph| *glyph != 0), "{glyphs:?}");
    assert_eq!(glyphs[6], glyphs[7], "both drawn as the geta mark");
    let distinct: std::collections::BTreeSet<u16> = glyphs[1..6].iter().copied().collect();
    assert_eq!(distinct.len(), 5);
    assert!(!distinct.contains(&glyphs[6]));

    // The text extracts as written, the missing characters included.
    let unicode = to_unicode(&text(stream(&found[6])));
    assert_eq!(
        shown_text(stream(&found[11]), &unicode),
        ["陆家嘴咖啡 陆", "😀𠀀"]
    );
    assert!(text(&found[4]).contains("/W [1 [1200 1200 1200 1200 1200 600 1200]]"));
}
