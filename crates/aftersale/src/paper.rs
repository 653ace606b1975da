//! Plain A4 documents of text lines, shared by the transaction certificate and the evidence
//! pack's PDF: 8 pt lines wrapped to the page's width (a CJK character takes two columns, as
//! `pdf::is_wide` says), on as many pages as they take.

/// Columns per line on an A4 page at 8 pt Courier, within the margins (100 × 4.8 pt = 480 pt
/// of the 523 pt between them).
pub const COLUMNS: usize = 100;
const LINE_POINTS: f32 = 10.0;
const MARGIN_POINTS: f32 = 36.0;
const TEXT_POINTS: f32 = 8.0;

/// `line` cut into pieces of at most `columns` columns (at least one piece, maybe empty).
pub fn wrap(line: &str, columns: usize) -> Vec<String> {
    let columns = columns.max(2);
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut used = 0;
    for c in line.chars() {
        let width = if pdf::is_wide(c) { 2 } else { 1 };
        if used + width > columns {
            pieces.push(std::mem::take(&mut piece));
            used = 0;
        }
        piece.push(c);
        used += width;
    }
    pieces.push(piece);
    pieces
}

/// An A4 PDF titled `title` showing `lines`, each wrapped to [`COLUMNS`].
pub fn a4_text(title: &str, lines: &[String]) -> Vec<u8> {
    let wrapped: Vec<String> = lines.iter().flat_map(|line| wrap(line, COLUMNS)).collect();
    let per_page = ((pdf::Size::A4_HEIGHT - 2.0 * MARGIN_POINTS) / LINE_POINTS) as usize;
    let mut document = pdf::Document::new(title);
    for page_lines in wrapped.chunks(per_page.max(1)) {
        let mut page = pdf::Page::new(pdf::Size::A4_WIDTH, pdf::Size::A4_HEIGHT);
        let mut y = pdf::Size::A4_HEIGHT - MARGIN_POINTS;
        for line in page_lines {
            page.text(MARGIN_POINTS, y, TEXT_POINTS, line);
            y -= LINE_POINTS;
        }
        document = document.page(page);
    }
    document.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_by_columns_and_a_wide_character_takes_two() {
        assert_eq!(wrap("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("陆家嘴咖啡", 4), ["陆家", "嘴咖", "啡"]);
        assert_eq!(wrap("ab陆家", 4), ["ab陆", "家"]);
    }
}
