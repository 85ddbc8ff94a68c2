//! Photo conversion: JPEG and JPEG 2000 (JP2 and bare codestream) fixtures written by Pillow,
//! decoded and re-encoded as PNG; oversized headers refused before decoding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_card::image::{ImageError, MAX_DIMENSION, PhotoFormat, image_format, to_png};
use proptest::prelude::*;

const JPEG: &[u8] = include_bytes!("fixtures/face.jpg");
const JP2: &[u8] = include_bytes!("fixtures/face.jp2");
const J2K: &[u8] = include_bytes!("fixtures/face.j2k");
const JP2_GRAY: &[u8] = include_bytes!("fixtures/face_gray.jp2");

fn decode_png(png: &[u8]) -> image::RgbImage {
    assert!(png.starts_with(&[0x89, b'P', b'N', b'G']));
    image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

#[test]
fn formats_are_recognised_by_magic() {
    assert_eq!(image_format(JPEG), Some(PhotoFormat::Jpeg));
    assert_eq!(image_format(JP2), Some(PhotoFormat::Jp2));
    assert_eq!(image_format(J2K), Some(PhotoFormat::J2k));
    assert_eq!(image_format(b"GIF89a"), None);
    assert_eq!(image_format(&[]), None);
    assert!(matches!(to_png(b"GIF89a"), Err(ImageError::UnknownFormat)));
}

#[test]
fn jpeg_converts_to_png() {
    let img = decode_png(&to_png(JPEG).unwrap());
    assert_eq!(img.dimensions(), (24, 32));
    let p = img.get_pixel(2, 2);
    assert!(p[0] > 230 && p[1] < 30 && p[2] < 30, "{p:?}");
}

#[test]
fn jpeg2000_file_and_codestream_convert_to_png() {
    for data in [JP2, J2K] {
        let img = decode_png(&to_png(data).unwrap());
        assert_eq!(img.dimensions(), (24, 32));
        // Pillow wrote them losslessly: pixels are exact.
        assert_eq!(img.get_pixel(2, 2).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(20, 30).0, [200, 240, 128]);
    }
    let gray = decode_png(&to_png(JP2_GRAY).unwrap());
    assert_eq!(gray.dimensions(), (24, 32));
}

#[test]
fn oversized_codestream_is_refused_before_decoding() {
    let mut j2k = J2K.to_vec();
    j2k[8..12].copy_from_slice(&100_000u32.to_be_bytes()); // Xsiz
    j2k[12..16].copy_from_slice(&100_000u32.to_be_bytes()); // Ysiz
    match to_png(&j2k) {
        Err(ImageError::TooLarge { width, height }) => {
            assert_eq!((width, height), (100_000, 100_000))
        }
        other => panic!("{other:?}"),
    }
}

/// The fixture's codestream with its SIZ rewritten to declare `components` components (all
/// 8-bit, unsubsampled, Lsiz consistent), the rest of the codestream unchanged.
fn with_components(components: u16) -> Vec<u8> {
    let lsiz = usize::from(u16::from_be_bytes([J2K[4], J2K[5]]));
    let siz_end = 4 + lsiz;
    let mut out = J2K[..40].to_vec();
    out[4..6].copy_from_slice(&(38 + 3 * components).to_be_bytes());
    out.extend(components.to_be_bytes());
    for _ in 0..components {
        out.extend([0x07, 0x01, 0x01]);
    }
    out.extend(&J2K[siz_end..]);
    out
}

#[test]
fn codestream_with_many_components_is_refused_before_decoding() {
    // Each component is a full-size plane in the decoder: thousands of them in a few bytes of
    // header are a decompression bomb, refused from the header.
    assert_eq!(with_components(3), J2K);
    for n in [5u16, 300, 16384] {
        match to_png(&with_components(n)) {
            Err(ImageError::Header { reason, .. }) => assert!(reason.contains("components")),
            other => panic!("{n} components: {other:?}"),
        }
    }
}

#[test]
fn oversized_jp2_header_is_refused() {
    let mut jp2 = JP2.to_vec();
    let ihdr = jp2.windows(4).position(|w| w == b"ihdr").unwrap() + 4;
    jp2[ihdr..ihdr + 4].copy_from_slice(&(MAX_DIMENSION + 1).to_be_bytes());
    assert!(matches!(to_png(&jp2), Err(ImageError::TooLarge { .. })));
}

#[test]
fn oversized_jpeg_is_refused() {
    let mut jpeg = JPEG.to_vec();
    // SOF0 (FFC0): length(2), precision(1), height(2), width(2).
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    assert!(matches!(to_png(&jpeg), Err(ImageError::TooLarge { .. })));
}

#[test]
fn truncated_images_are_errors() {
    // (A JPEG missing only its EOI marker still decodes, as decoders allow; cut deeper.)
    for data in [JPEG, JP2, J2K] {
        for cut in [2, 10, 40, data.len() / 2] {
            assert!(to_png(&data[..cut]).is_err(), "cut at {cut}");
        }
    }
    for data in [JP2, J2K] {
        assert!(to_png(&data[..data.len() - 3]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn corrupted_images_never_panic(which in 0usize..3, flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut data = [JPEG, JP2, J2K][which].to_vec();
        for (i, v) in flips {
            let i = i.index(data.len());
            data[i] ^= v;
        }
        let _ = to_png(&data);
    }
}
