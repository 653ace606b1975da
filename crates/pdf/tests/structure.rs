#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The files `pdf` writes, read back as a PDF reader does: the cross-reference table points at
//! every object, the trailer names the catalog, each page has its content, and the text (Latin
//! and Chinese) is found again in the content streams.

/// The objects of a PDF, by number, through its cross-reference table; panics when an
/// offset does not point at its object.
fn objects(bytes: &[u8]) -> Vec<String> {
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
    let mut found = Vec::new();
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
        let body = String::from_utf8_lossy(&bytes[offset + head.len()..]);
        found.push(body[..body.find("\nendobj\n").unwrap()].to_owned());
    }
    assert_eq!(lines.next(), Some("trailer"));
    let trailer = lines.next().unwrap();
    assert!(trailer.contains(&format!("/Size {count}")), "{trailer}");
    assert!(trailer.contains("/Root 1 0 R"));
    found
}

/// A stream's declared length must be its content's.
fn stream(object: &str) -> &str {
    let length: usize = object
        .split("/Length ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let content = &object[object.find("stream\n").unwrap() + 7..];
    assert_eq!(&content[length..], "endstream", "the length is exact");
    &content[..length]
}

/// Every string shown with Tj, decoded: literal strings as ASCII, hex strings as UCS-2.
fn shown_text(content: &str) -> Vec<String> {
    content
        .lines()
        .filter_map(|line| line.strip_suffix(" Tj ET"))
        .map(|line| {
            if let Some(hex) = line.rsplit_once(" Td <").map(|(_, hex)| hex) {
                let hex = hex.trim_end_matches('>');
                let units: Vec<u16> = (0..hex.len())
                    .step_by(4)
                    .map(|at| u16::from_str_radix(&hex[at..at + 4], 16).unwrap())
                    .collect();
                String::from_utf16(&units).unwrap()
            } else {
                let literal = line.rsplit_once(" Td (").unwrap().1;
                literal
                    .strip_suffix(')')
                    .unwrap()
                    .replace("\\(", "(")
                    .replace("\\)", ")")
                    .replace("\\\\", "\\")
            }
        })
        .collect()
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
    assert_eq!(found[0], "<< /Type /Catalog /Pages 2 0 R >>");
    assert!(
        found[1].contains("/Kids [9 0 R 11 0 R] /Count 2"),
        "{}",
        found[1]
    );
    assert!(found[3].contains("/BaseFont /STSong-Light /Encoding /UniGB-UCS2-H"));
    assert!(
        !String::from_utf8_lossy(&bytes).contains("/FontFile"),
        "no embedded font"
    );
    assert!(
        stream(&found[6]).contains("<4E00> <4EFF> <4E00>"),
        "ToUnicode"
    );
    assert!(
        found[7].contains("/Title <FEFF6536636E0020"),
        "{}",
        found[7]
    );
    assert!(found[8].contains("/MediaBox [0 0 226.77 300]"));
    assert!(found[10].contains("/MediaBox [0 0 595.28 841.89]"));

    let content = stream(&found[9]);
    assert_eq!(
        shown_text(content),
        ["MERCHANT COPY (REPRINT)", "商户名称: 陆家嘴咖啡"]
    );
    assert!(content.contains("0.5 w 10 260 m 216 260 l S"));
    assert!(
        content.contains("BT /F2 9 Tf 120 Tz 10 268 Td <"),
        "Chinese, stretched to Courier's columns"
    );
    assert!(content.contains("BT /F1 9 Tf 100 Tz 10 280 Td ("));
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
    assert_eq!(shown_text(stream(&found[11])), ["Statement \\ 2026-11-25"]);
}

#[test]
fn an_empty_document_and_text_that_cannot_be_drawn() {
    let found = objects(&pdf::Document::new("").to_bytes());
    assert!(found[1].contains("/Kids [] /Count 0"));
    let mut page = pdf::Page::new(-5.0, 1.0e9);
    assert_eq!((page.width(), page.height()), (1.0, pdf::MAX_PAGE_POINTS));
    let too_long = "x".repeat(8_000);
    assert!(page.qr(0.0, 0.0, 1.0, &too_long).is_err());
}
