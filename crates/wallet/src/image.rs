//! Reading a QR code from a picture the consumer uploads on the wallet page (no camera needed):
//! the picture is decoded to grey pixels (PNG with `png`, JPEG with `jpeg-decoder`) and `rqrr`
//! finds and decodes the code. Everything is bounded before it is allocated: the upload's
//! bytes, the picture's pixels, and the codes looked at.

use crate::WalletError;

/// An upload's size: a phone's photo of a code, scaled by the browser, is well under this.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// Pixels decoded at most (4096 × 4096): a bound on memory (one byte per pixel for the
/// search, a few for decoding) whatever the picture's header claims.
pub const MAX_PIXELS: usize = 4096 * 4096;
/// Candidate codes tried in one picture; a picture of a counter has one or two.
const MAX_GRIDS: usize = 8;

/// The text of the first QR code found in a PNG or JPEG picture.
pub fn decode_qr(bytes: &[u8]) -> Result<String, WalletError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(WalletError::BadImage("the picture is larger than 4 MiB"));
    }
    let grey = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png_grey(bytes)?
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_grey(bytes)?
    } else {
        return Err(WalletError::BadImage("only PNG and JPEG pictures are read"));
    };
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(grey.width, grey.height, |x, y| {
            grey.pixels[y * grey.width + x]
        });
    for grid in prepared.detect_grids().into_iter().take(MAX_GRIDS) {
        if let Ok((_, text)) = grid.decode() {
            return Ok(text);
        }
    }
    Err(WalletError::NoCodeInImage)
}

/// A picture as one luminance byte per pixel, row by row.
struct Grey {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

fn checked_size(width: usize, height: usize) -> Result<(), WalletError> {
    match width.checked_mul(height) {
        Some(pixels) if pixels > 0 && pixels <= MAX_PIXELS => Ok(()),
        _ => Err(WalletError::BadImage(
            "the picture is empty or over 4096 × 4096 pixels",
        )),
    }
}

/// ITU-R BT.601 luma in integers: (299 R + 587 G + 114 B) / 1000.
fn luma(red: u8, green: u8, blue: u8) -> u8 {
    let sum = 299 * u32::from(red) + 587 * u32::from(green) + 114 * u32::from(blue);
    u8::try_from(sum / 1000).unwrap_or(u8::MAX)
}

fn png_grey(bytes: &[u8]) -> Result<Grey, WalletError> {
    let bad = |_| WalletError::BadImage("the PNG picture is damaged");
    // The decoder's own allocation limit, so a lying header cannot make it allocate more.
    let limits = png::Limits {
        bytes: MAX_PIXELS * 4,
    };
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    // 8 bits per channel, palettes expanded: every picture becomes grey, grey+alpha, RGB or RGBA.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let info = decoder.read_header_info().map_err(bad)?;
    let (width, height) = (info.width as usize, info.height as usize);
    checked_size(width, height)?;
    let mut reader = decoder.read_info().map_err(bad)?;
    let size = reader
        .output_buffer_size()
        .ok_or(WalletError::BadImage("the PNG picture is too large"))?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(bad)?;
    let channels = frame.color_type.samples();
    let line = frame.line_size;
    let mut pixels = Vec::with_capacity(width * height);
    for row in buffer.chunks(line).take(height) {
        for pixel in row.chunks(channels).take(width) {
            pixels.push(match pixel {
                [grey] | [grey, _] => *grey,
                [red, green, blue] | [red, green, blue, _] => luma(*red, *green, *blue),
                _ => return Err(WalletError::BadImage("the PNG picture is damaged")),
            });
        }
    }
    if pixels.len() != width * height {
        return Err(WalletError::BadImage("the PNG picture is damaged"));
    }
    Ok(Grey {
        width,
        height,
        pixels,
    })
}

fn jpeg_grey(bytes: &[u8]) -> Result<Grey, WalletError> {
    let bad = |_| WalletError::BadImage("the JPEG picture is damaged");
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(MAX_PIXELS * 4);
    decoder.read_info().map_err(bad)?;
    let info = decoder
        .info()
        .ok_or(WalletError::BadImage("the JPEG picture is damaged"))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    checked_size(width, height)?;
    let data = decoder.decode().map_err(bad)?;
    let pixels: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => data,
        // Big-endian 16-bit grey: the high byte is the 8-bit value.
        jpeg_decoder::PixelFormat::L16 => data.chunks(2).map(|pair| pair[0]).collect(),
        jpeg_decoder::PixelFormat::RGB24 => data
            .chunks(3)
            .map(|rgb| match rgb {
                [red, green, blue] => luma(*red, *green, *blue),
                _ => 0,
            })
            .collect(),
        jpeg_decoder::PixelFormat::CMYK32 => {
            return Err(WalletError::BadImage("CMYK JPEG pictures are not read"));
        }
    };
    if pixels.len() != width * height {
        return Err(WalletError::BadImage("the JPEG picture is damaged"));
    }
    Ok(Grey {
        width,
        height,
        pixels,
    })
}

/// A PNG picture of `text` as a QR code, `scale` pixels per module with the quiet zone: what a
/// screenshot of a code looks like (tests and the wallet's own checks use it).
pub fn png_of(text: &str, scale: usize) -> Result<Vec<u8>, WalletError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|_| WalletError::Setup("the text does not fit a QR code".into()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (row, column) = (index / modules + quiet, index % modules + quiet);
            for y in row * scale..(row + 1) * scale {
                for x in column * scale..(column + 1) * scale {
                    pixels[y * side + x] = 0;
                }
            }
        }
    }
    let mut out = Vec::new();
    let side = u32::try_from(side).map_err(|_| WalletError::Setup("picture too large".into()))?;
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|_| WalletError::Setup("cannot write the PNG header".into()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|_| WalletError::Setup("cannot write the PNG picture".into()))?;
    writer
        .finish()
        .map_err(|_| WalletError::Setup("cannot finish the PNG picture".into()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "00020101021226420019cn.easypos.pandapay0115898310058120001520458145303156540512.345802CN5915Lujiazui Coffee6008Shanghai62290511o-jpeg-test0708100000016304";

    #[test]
    fn a_png_of_a_code_reads_back() {
        let png = png_of("000201010212 hello", 4).unwrap();
        assert_eq!(decode_qr(&png).unwrap(), "000201010212 hello");
    }

    #[test]
    fn a_jpeg_photo_of_a_code_reads_back() {
        // tests/data/code.jpg: png_of(PAYLOAD + "ABCD", 6) saved as an RGB JPEG at quality 75
        // with Pillow (`Image.open(png).convert("RGB").save(jpg, quality=75)`), so JPEG's
        // blur is in it.
        let jpeg = include_bytes!("../tests/data/code.jpg");
        assert_eq!(decode_qr(jpeg).unwrap(), format!("{PAYLOAD}ABCD"));
    }

    #[test]
    fn a_picture_too_large_is_refused_from_its_header_before_it_is_decoded() {
        // A PNG header claiming 5000 × 5000 pixels and no pixel data at all: the size is
        // refused before anything is allocated for it.
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, 5000, 5000);
        encoder.set_color(png::ColorType::Grayscale);
        drop(encoder.write_header().unwrap());
        let error = decode_qr(&out).unwrap_err();
        assert_eq!(error.code(), "bad_image");
        assert!(error.to_string().contains("4096"), "{error}");
        // A JPEG whose frame header claims 65 535 × 65 535 pixels.
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[
            0xFF, 0xC0, 0x00, 0x0B, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01, 0x11, 0x00,
        ]);
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(decode_qr(&jpeg).unwrap_err().code(), "bad_image");
    }

    #[test]
    fn the_fuzz_seed_is_a_picture_of_a_code() {
        // fuzz/seeds/qr_image/png-code: png_of(PAYLOAD + "ABCD", 2), so the fuzzer starts from
        // a picture that decodes.
        let seed = include_bytes!("../../../fuzz/seeds/qr_image/png-code");
        assert_eq!(decode_qr(seed).unwrap(), format!("{PAYLOAD}ABCD"));
        assert!(
            seed.len() <= 4096,
            "scripts/fuzz.sh reads at most 4096 bytes"
        );
    }

    #[test]
    fn other_pictures_are_refused_with_a_reason() {
        assert_eq!(decode_qr(b"GIF89a....").unwrap_err().code(), "bad_image");
        assert_eq!(
            decode_qr(b"\x89PNG\r\n\x1a\nbroken").unwrap_err().code(),
            "bad_image"
        );
        assert_eq!(
            decode_qr(&[0xFF, 0xD8, 0xFF, 0x00]).unwrap_err().code(),
            "bad_image"
        );
        assert_eq!(
            decode_qr(&vec![0; MAX_IMAGE_BYTES + 1]).unwrap_err().code(),
            "bad_image"
        );
        // A blank picture: no code in it.
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, 64, 64);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[255; 64 * 64]).unwrap();
        writer.finish().unwrap();
        assert_eq!(decode_qr(&out).unwrap_err().code(), "no_code_in_image");
    }
}
