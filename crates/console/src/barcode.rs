//! Code 128 (ISO/IEC 15417) barcodes of digit strings, drawn as SVG, for the wallet page's
//! payment code: pairs of digits in code set C, and a last odd digit in code set B, which
//! every counter scanner reads.

/// The 107 symbol patterns (ISO/IEC 15417 table 1): widths of bar, space, bar, space, bar,
/// space in modules (11 in all); the stop pattern (106) has a seventh, final bar.
const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];
const START_C: usize = 105;
/// In code set C, the symbol that switches to code set B.
const CODE_B: usize = 100;
const STOP: usize = 106;
/// Blank modules before and after the code, as the standard asks (at least 10).
const QUIET_MODULES: usize = 10;
/// Digits drawn at most: a payment code has 21.
pub const MAX_DIGITS: usize = 64;

/// The symbol values of `digits`, with the start, the check symbol and the stop.
fn symbols(digits: &str) -> Option<Vec<usize>> {
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let bytes = digits.as_bytes();
    let mut values = vec![START_C];
    for pair in bytes.chunks(2) {
        match pair {
            [tens, units] => values.push(usize::from(tens - b'0') * 10 + usize::from(units - b'0')),
            [single] => {
                values.push(CODE_B);
                // Code set B: a character's value is its ASCII code minus 32.
                values.push(usize::from(*single) - 32);
            }
            _ => return None,
        }
    }
    // The check symbol: the start's value plus each symbol's value times its position, mod 103.
    let check = values
        .iter()
        .enumerate()
        .map(|(position, value)| position.max(1) * value)
        .sum::<usize>()
        % 103;
    values.push(check);
    values.push(STOP);
    Some(values)
}

/// The bars of `digits` as (first module, width) runs, and the code's width in modules.
fn bars(digits: &str) -> Option<(Vec<(usize, usize)>, usize)> {
    let mut runs = Vec::new();
    let mut x = QUIET_MODULES;
    for value in symbols(digits)? {
        for (index, width) in PATTERNS[value].bytes().enumerate() {
            let width = usize::from(width - b'0');
            if index % 2 == 0 {
                runs.push((x, width));
            }
            x += width;
        }
    }
    Some((runs, x + QUIET_MODULES))
}

/// An SVG Code 128 barcode of `digits`, scaled to its box (no inline style: the page's CSP).
pub fn code128_svg(digits: &str) -> Option<String> {
    let (runs, width) = bars(digits)?;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} 50\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"barcode\"><rect width=\"{width}\" height=\"50\" fill=\"#fff\"/>"
    );
    for (x, bar) in runs {
        svg.push_str(&format!(
            "<rect x=\"{x}\" width=\"{bar}\" height=\"50\" fill=\"#000\"/>"
        ));
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_is_eleven_modules_and_the_stop_thirteen() {
        for (value, pattern) in PATTERNS.iter().enumerate() {
            let modules: u32 = pattern.bytes().map(|b| u32::from(b - b'0')).sum();
            assert_eq!(modules, if value == STOP { 13 } else { 11 }, "{value}");
        }
    }

    #[test]
    fn digits_are_encoded_in_pairs_with_the_check_symbol() {
        // "1234": start C (105), 12, 34; check (105 + 1·12 + 2·34) mod 103 = 82; stop.
        assert_eq!(symbols("1234").unwrap(), vec![105, 12, 34, 82, 106]);
        // An odd count ends in code set B: "123" is 12, Code B, '3' (19).
        // Check: (105 + 12 + 2·100 + 3·19) mod 103 = 374 mod 103 = 65.
        assert_eq!(symbols("123").unwrap(), vec![105, 12, 100, 19, 65, 106]);
        assert!(symbols("12a").is_none() && symbols("").is_none());
        // A 21-digit payment code: start, 10 pairs, Code B, a digit, check, stop = 15 symbols.
        let (_, width) = bars("882345678901234567890").unwrap();
        assert_eq!(width, 2 * QUIET_MODULES + 14 * 11 + 13);
        let svg = code128_svg("882345678901234567890").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
