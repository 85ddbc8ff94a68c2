//! Card photos (JPEG, JPEG 2000) converted to PNG for display.
//!
//! eMRTD DG2 (ISO/IEC 19794-5) and the Citizen Card photo carry JPEG (ISO/IEC 10918-1) or JPEG 2000
//! (ISO/IEC 15444-1: a JP2 file or a bare codestream). The image dimensions are read from the
//! header first and anything larger than [`MAX_DIMENSION`] in either direction is refused before
//! a decoder allocates pixels, so a hostile chip cannot exhaust memory with a small file.

use std::io::Cursor;

use thiserror::Error;

/// Largest accepted width or height, in pixels. Passport photos are a few hundred pixels wide.
pub const MAX_DIMENSION: u32 = 8000;

/// Why a photo could not be converted. Whose fault: the card (malformed or hostile image data).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Neither JPEG nor JPEG 2000 (nor PNG).
    #[error("not a JPEG or JPEG 2000 image")]
    UnknownFormat,
    /// The header is malformed or cut short.
    #[error("malformed {format:?} header: {reason}")]
    Header {
        format: PhotoFormat,
        reason: &'static str,
    },
    /// Larger than [`MAX_DIMENSION`]: refused before decoding.
    #[error("image of {width}x{height} pixels exceeds the {MAX_DIMENSION}x{MAX_DIMENSION} limit")]
    TooLarge { width: u32, height: u32 },
    /// The decoder rejected the image data.
    #[error("cannot decode the {format:?} image: {reason}")]
    Decode { format: PhotoFormat, reason: String },
    /// PNG encoding failed (a bug, or out of memory).
    #[error("cannot encode PNG: {0}")]
    Encode(String),
}

/// The encoding of a photo, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoFormat {
    /// JPEG: `FF D8`.
    Jpeg,
    /// JPEG 2000 file (JP2 signature box `00 00 00 0C 6A 50 20 20`).
    Jp2,
    /// JPEG 2000 codestream (`FF 4F FF 51`: SOC then SIZ).
    J2k,
    /// PNG (already displayable).
    Png,
}

/// Recognises the encoding of `data` by its magic bytes.
pub fn image_format(data: &[u8]) -> Option<PhotoFormat> {
    if data.starts_with(&[0xFF, 0xD8]) {
        Some(PhotoFormat::Jpeg)
    } else if data.starts_with(&[0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) {
        Some(PhotoFormat::Jp2)
    } else if data.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        Some(PhotoFormat::J2k)
    } else if data.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(PhotoFormat::Png)
    } else {
        None
    }
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// Width and height from a codestream's SIZ marker segment (ISO/IEC 15444-1 §A.5.1):
/// `FF4F FF51 Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz ...`.
fn j2k_dimensions(cs: &[u8]) -> Result<(u32, u32), ImageError> {
    let bad = |reason| ImageError::Header {
        format: PhotoFormat::J2k,
        reason,
    };
    if !cs.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Err(bad("no SOC/SIZ marker"));
    }
    let x = be32(cs, 8).ok_or(bad("SIZ truncated"))?;
    let y = be32(cs, 12).ok_or(bad("SIZ truncated"))?;
    let xo = be32(cs, 16).ok_or(bad("SIZ truncated"))?;
    let yo = be32(cs, 20).ok_or(bad("SIZ truncated"))?;
    let w = x.checked_sub(xo).ok_or(bad("SIZ offset beyond size"))?;
    let h = y.checked_sub(yo).ok_or(bad("SIZ offset beyond size"))?;
    // Csiz (up to 16384 components, each a full w x h plane in the decoder): a few bytes of
    // header could otherwise make the decoder allocate many gigabytes. A photo has 1 to 4
    // (grey, grey + alpha, colour, colour + alpha), which is all the conversion handles anyway.
    let csiz = cs
        .get(40..42)
        .map(|b| b.iter().fold(0u16, |a, &x| a << 8 | u16::from(x)))
        .ok_or(bad("SIZ truncated"))?;
    if !(1..=4).contains(&csiz) {
        return Err(bad("SIZ declares more than 4 image components"));
    }
    Ok((w, h))
}

/// (box type, content range) of each box of one level.
type Boxes = Vec<([u8; 4], std::ops::Range<usize>)>;

/// Width and height of a JP2 file (ISO/IEC 15444-1 §I.4): the Image Header box inside the JP2
/// Header box, and the codestream's SIZ, both checked. Walks at most 64 boxes per level.
fn jp2_dimensions(file: &[u8]) -> Result<(u32, u32), ImageError> {
    let bad = |reason| ImageError::Header {
        format: PhotoFormat::Jp2,
        reason,
    };
    let boxes = |level: &[u8]| -> Result<Boxes, ImageError> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < level.len() {
            if out.len() >= 64 {
                return Err(bad("too many boxes"));
            }
            let lbox = be32(level, pos).ok_or(bad("box truncated"))?;
            let ty = level
                .get(pos + 4..pos + 8)
                .and_then(|t| <[u8; 4]>::try_from(t).ok())
                .ok_or(bad("box truncated"))?;
            let (header, len) = match lbox {
                0 => (8usize, level.len() - pos),
                1 => {
                    let hi = u64::from(be32(level, pos + 8).ok_or(bad("box truncated"))?);
                    let lo = u64::from(be32(level, pos + 12).ok_or(bad("box truncated"))?);
                    let len = usize::try_from(hi << 32 | lo).map_err(|_| bad("box too long"))?;
                    (16, len)
                }
                2..=7 => return Err(bad("box length below its header")),
                n => (8, usize::try_from(n).map_err(|_| bad("box too long"))?),
            };
            let end = pos
                .checked_add(len)
                .filter(|&e| e <= level.len() && len >= header)
                .ok_or(bad("box overruns the file"))?;
            out.push((ty, pos + header..end));
            pos = end;
        }
        Ok(out)
    };
    let top = boxes(file)?;
    let mut ihdr = None;
    let mut codestream = None;
    for (ty, range) in &top {
        let content = file.get(range.clone()).unwrap_or_default();
        match ty {
            b"jp2h" => {
                for (cty, crange) in boxes(content)? {
                    if &cty == b"ihdr" {
                        let c = content.get(crange).unwrap_or_default();
                        let h = be32(c, 0).ok_or(bad("ihdr truncated"))?;
                        let w = be32(c, 4).ok_or(bad("ihdr truncated"))?;
                        ihdr = Some((w, h));
                    }
                }
            }
            b"jp2c" if codestream.is_none() => codestream = Some(content),
            _ => {}
        }
    }
    let (w, h) = ihdr.ok_or(bad("no image header box"))?;
    let cs = codestream.ok_or(bad("no codestream box"))?;
    let (cw, ch) = j2k_dimensions(cs)?;
    Ok((w.max(cw), h.max(ch)))
}

fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ImageError::TooLarge { width, height });
    }
    Ok(())
}

fn limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(MAX_DIMENSION);
    l.max_image_height = Some(MAX_DIMENSION);
    l.max_alloc = Some(u64::from(MAX_DIMENSION) * u64::from(MAX_DIMENSION) * 4);
    l
}

fn decode_with_image_crate(
    data: &[u8],
    format: PhotoFormat,
    image_format: image::ImageFormat,
) -> Result<image::DynamicImage, ImageError> {
    let dec = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge {
            width: u32::MAX,
            height: u32::MAX,
        },
        other => ImageError::Decode {
            format,
            reason: other.to_string(),
        },
    };
    // Header only first: refuse oversized images before any pixel buffer exists.
    let mut probe = image::ImageReader::with_format(Cursor::new(data), image_format);
    probe.limits(limits());
    let (w, h) = probe.into_dimensions().map_err(dec)?;
    check_size(w, h)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(data), image_format);
    reader.limits(limits());
    reader.decode().map_err(dec)
}

/// ITU-T T.871 YCbCr to RGB for an sYCC JPEG 2000 image with three full-resolution 8-bit
/// components (what openjpeg leaves to the application).
fn sycc_to_rgb(img: &jpeg2k::Image) -> Option<image::DynamicImage> {
    let comps = img.components();
    let [y, cb, cr] = comps else { return None };
    let (w, h) = (y.width(), y.height());
    if [cb, cr].iter().any(|c| c.width() != w || c.height() != h)
        || comps.iter().any(|c| c.precision() != 8 || c.is_signed())
    {
        return None;
    }
    let mut rgb = Vec::with_capacity(y.data().len().checked_mul(3)?);
    for ((&yv, &cbv), &crv) in y.data().iter().zip(cb.data()).zip(cr.data()) {
        let (yf, cbf, crf) = (yv as f32, cbv as f32 - 128.0, crv as f32 - 128.0);
        let px = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        rgb.push(px(yf + 1.402 * crf));
        rgb.push(px(yf - 0.344_136 * cbf - 0.714_136 * crf));
        rgb.push(px(yf + 1.772 * cbf));
    }
    image::RgbImage::from_raw(w, h, rgb).map(image::DynamicImage::ImageRgb8)
}

fn decode_jpeg2000(data: &[u8], format: PhotoFormat) -> Result<image::DynamicImage, ImageError> {
    let (w, h) = match format {
        PhotoFormat::Jp2 => jp2_dimensions(data)?,
        _ => j2k_dimensions(data)?,
    };
    check_size(w, h)?;
    let dec = |reason: String| ImageError::Decode { format, reason };
    let img = jpeg2k::Image::from_bytes(data).map_err(|e| dec(e.to_string()))?;
    check_size(img.width(), img.height())?;
    if matches!(img.color_space(), jpeg2k::ColorSpace::SYCC) {
        return sycc_to_rgb(&img).ok_or_else(|| dec("unsupported sYCC layout".into()));
    }
    // Not `DynamicImage::try_from(&img)`: jpeg2k's conversion `expect`s that the pixel buffer fits
    // the first component's size, which a hostile file with subsampled or mismatched components
    // breaks (found by our proptest). Every component must have the image's size, and the buffer
    // is checked again here.
    let comps = img.components();
    let (w, h) = (img.width(), img.height());
    if comps.iter().any(|c| c.width() != w || c.height() != h) {
        return Err(dec("components of different sizes are not supported".into()));
    }
    let pixels = img.get_pixels(None).map_err(|e| dec(e.to_string()))?;
    let size_error = || dec("pixel data does not match the image size".into());
    let (w, h) = (pixels.width, pixels.height);
    use image::{DynamicImage as D, ImageBuffer};
    use jpeg2k::ImagePixelData as P;
    Ok(match pixels.data {
        P::L8(v) => D::ImageLuma8(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::La8(v) => D::ImageLumaA8(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::Rgb8(v) => D::ImageRgb8(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::Rgba8(v) => D::ImageRgba8(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::L16(v) => D::ImageLuma16(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::La16(v) => D::ImageLumaA16(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::Rgb16(v) => D::ImageRgb16(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
        P::Rgba16(v) => D::ImageRgba16(ImageBuffer::from_vec(w, h, v).ok_or_else(size_error)?),
    })
}

/// Decodes a JPEG or JPEG 2000 photo (PNG passes through after the same checks) and encodes it
/// as PNG.
pub fn to_png(data: &[u8]) -> Result<Vec<u8>, ImageError> {
    let format = image_format(data).ok_or(ImageError::UnknownFormat)?;
    let img = match format {
        PhotoFormat::Jpeg => decode_with_image_crate(data, format, image::ImageFormat::Jpeg)?,
        PhotoFormat::Png => decode_with_image_crate(data, format, image::ImageFormat::Png)?,
        PhotoFormat::Jp2 | PhotoFormat::J2k => decode_jpeg2000(data, format)?,
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}
