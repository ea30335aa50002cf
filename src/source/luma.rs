//! Luma out of camera pixel formats, into a reused [`GrayFrame`].
//!
//! GREY, NV12 and YU12 (I420) start with a full-resolution Y plane, and YUYV interleaves Y with
//! chroma, so for those the gray frame is the camera's own luma with no conversion. MJPEG is decoded
//! straight to its luma channel (zune-jpeg), which is the same Y. Camera luma is usually video range
//! (16 to 235) where a gray image converted from RGB spans 0 to 255; the detector normalises each
//! window's contrast, so boxes barely change, but the classifier sees the camera's contrast as is.

use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::frame::GrayFrame;

/// A camera pixel format emotiond can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 8-bit gray.
    Grey,
    /// Y plane, then interleaved CbCr at half resolution.
    Nv12,
    /// Y, U, V planes (I420).
    Yu12,
    /// Y0 U Y1 V, packed.
    Yuyv,
    /// Motion JPEG.
    Mjpeg,
}

impl PixelFormat {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Grey => *b"GREY",
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Yu12 => *b"YU12",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }

    /// The format with this code, if it is one emotiond reads.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        [
            PixelFormat::Grey,
            PixelFormat::Nv12,
            PixelFormat::Yu12,
            PixelFormat::Yuyv,
            PixelFormat::Mjpeg,
        ]
        .into_iter()
        .find(|f| f.fourcc() == code)
    }

    /// The preference order for `format = "auto"`: luma that needs no work first, JPEG last.
    pub const PREFERENCE: [PixelFormat; 5] = [
        PixelFormat::Grey,
        PixelFormat::Nv12,
        PixelFormat::Yu12,
        PixelFormat::Yuyv,
        PixelFormat::Mjpeg,
    ];
}

/// Why a buffer could not be turned into a frame.
#[derive(Debug, thiserror::Error)]
pub enum LumaError {
    /// The buffer is shorter than the format and size need.
    #[error("{format:?} buffer of {got} bytes is too short for {width}x{height} (stride {stride}): need {need}")]
    Short {
        /// The format.
        format: PixelFormat,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// Bytes per row.
        stride: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A JPEG frame did not decode.
    #[error("MJPEG frame does not decode: {reason}")]
    Jpeg {
        /// What the decoder said.
        reason: String,
        /// The decoder's error (none for a JPEG it read without finding a frame header).
        #[source]
        source: Option<DecodeErrors>,
    },
}

/// Copies the luma of one `width x height` buffer in `format` into `frame`. `stride` is the bytes per
/// row of the first plane as the driver reports it (`bytesperline`; 0 means tightly packed).
pub fn luma_into(
    format: PixelFormat,
    buf: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    frame: &mut GrayFrame,
) -> Result<(), LumaError> {
    if format == PixelFormat::Mjpeg {
        return jpeg_luma(buf, frame);
    }
    let bytes_per_px = if format == PixelFormat::Yuyv { 2 } else { 1 };
    let stride = if stride == 0 {
        width * bytes_per_px
    } else {
        stride
    };
    let row_bytes = width * bytes_per_px;
    let need = if height == 0 {
        0
    } else {
        stride * (height - 1) + row_bytes
    };
    if buf.len() < need || stride < row_bytes {
        return Err(LumaError::Short {
            format,
            width,
            height,
            stride,
            need,
            got: buf.len(),
        });
    }
    frame.reset(width, height);
    let out = frame.pixels_mut();
    for (y, dst) in out.chunks_exact_mut(width.max(1)).take(height).enumerate() {
        let src = &buf[y * stride..y * stride + row_bytes];
        if bytes_per_px == 1 {
            dst.copy_from_slice(src);
        } else {
            for (d, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = pair[0];
            }
        }
    }
    Ok(())
}

fn jpeg_luma(buf: &[u8], frame: &mut GrayFrame) -> Result<(), LumaError> {
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(8192)
        .set_max_height(8192);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(buf), options);
    let failed = |e: DecodeErrors| LumaError::Jpeg {
        reason: e.to_string(),
        source: Some(e),
    };
    decoder.decode_headers().map_err(failed)?;
    let (w, h) = decoder.dimensions().ok_or_else(|| LumaError::Jpeg {
        reason: "no frame header".into(),
        source: None,
    })?;
    frame.reset(w, h);
    decoder.decode_into(frame.pixels_mut()).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x2 picture in each format, with its luma 10, 20, ..., 80 and chroma 200/201.
    const LUMA: [u8; 8] = [10, 20, 30, 40, 50, 60, 70, 80];

    fn check(format: PixelFormat, buf: &[u8], stride: usize) {
        let mut f = GrayFrame::default();
        luma_into(format, buf, 4, 2, stride, &mut f).unwrap();
        assert_eq!((f.width(), f.height()), (4, 2), "{format:?}");
        assert_eq!(f.pixels(), LUMA, "{format:?}");
    }

    #[test]
    fn planar_formats_give_their_y_plane() {
        let mut grey = LUMA.to_vec();
        check(PixelFormat::Grey, &grey, 0);
        let nv12: Vec<u8> = LUMA.iter().copied().chain([200, 201, 200, 201]).collect();
        check(PixelFormat::Nv12, &nv12, 4);
        let yu12: Vec<u8> = LUMA.iter().copied().chain([200, 200, 201, 201]).collect();
        check(PixelFormat::Yu12, &yu12, 0);
        // A driver that pads rows to 6 bytes.
        grey = vec![10, 20, 30, 40, 0, 0, 50, 60, 70, 80];
        check(PixelFormat::Grey, &grey, 6);
    }

    #[test]
    fn yuyv_gives_every_other_byte() {
        let yuyv = [
            10, 200, 20, 201, 30, 200, 40, 201, 50, 200, 60, 201, 70, 200, 80, 201,
        ];
        check(PixelFormat::Yuyv, &yuyv, 8);
        check(PixelFormat::Yuyv, &yuyv, 0);
    }

    #[test]
    fn a_short_buffer_is_an_error_not_a_panic() {
        let mut f = GrayFrame::default();
        let err = luma_into(PixelFormat::Yuyv, &[0; 15], 4, 2, 8, &mut f).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Yuyv buffer of 15 bytes is too short for 4x2 (stride 8): need 16"
        );
        assert!(
            luma_into(PixelFormat::Grey, &[0; 8], 4, 2, 3, &mut f).is_err(),
            "stride below width"
        );
    }

    #[test]
    fn mjpeg_decodes_to_the_luma_of_a_real_jpeg() {
        // A real JPEG, written by the image crate from a known gradient; its luma must come back
        // within JPEG's loss.
        let (w, h) = (64u32, 48u32);
        let gray = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 3 + y) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&image::DynamicImage::ImageLuma8(gray.clone()).to_rgb8())
            .unwrap();
        let mut f = GrayFrame::default();
        luma_into(PixelFormat::Mjpeg, &jpeg, 0, 0, 0, &mut f).unwrap();
        assert_eq!((f.width(), f.height()), (64, 48));
        let worst = f
            .pixels()
            .iter()
            .zip(gray.as_raw())
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max()
            .unwrap();
        assert!(worst <= 4, "largest luma error {worst}");
        let err = luma_into(PixelFormat::Mjpeg, b"not a jpeg", 0, 0, 0, &mut f).unwrap_err();
        assert!(matches!(err, LumaError::Jpeg { .. }));
        // The decoder's own error is kept as the source, not only its text.
        let cause = std::error::Error::source(&err).expect("the decoder's error");
        assert!(cause.downcast_ref::<DecodeErrors>().is_some(), "{cause:?}");
        assert!(err.to_string().ends_with(&cause.to_string()), "{err}");
    }
}
