//! Still images from files (PNG, JPEG), converted to gray exactly as OpenCV does.
//!
//! A file is decoded to 8-bit RGB (alpha dropped without compositing, gray files replicated, as
//! `cv2.imread(path, IMREAD_COLOR)` does) and converted with OpenCV's `COLOR_BGR2GRAY` weights. PNG
//! decoding is lossless, so PNG input gives OpenCV's gray image exactly. JPEG decoders are allowed to
//! differ in the last bit (libjpeg-turbo's IDCT vs this crate's), so a JPEG can give a slightly different
//! gray image, and boxes can then differ from OpenCV's near a decision threshold.

use std::path::{Path, PathBuf};

use crate::frame::GrayFrame;

/// Why an image file could not become a frame. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StillError {
    /// The file could not be opened or read.
    #[error("cannot read image {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an image this build can decode, or it is corrupt.
    #[error("cannot decode image {path}: {source} (PNG and JPEG are supported)")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The image is larger than the frame bound every source shares.
    #[error("image {path}: {source}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size against the bound.
        #[source]
        source: crate::frame::FrameTooLarge,
    },
    /// The file is larger than any image emotiond reads.
    #[error("image {path} is larger than {} MiB; emotiond reads smaller images", MAX_FILE_BYTES >> 20)]
    FileTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The image decodes to zero pixels.
    #[error("image {path} is empty ({width}x{height}); there is nothing to look at")]
    Empty {
        /// The file.
        path: PathBuf,
        /// Decoded width.
        width: u32,
        /// Decoded height.
        height: u32,
    },
}

/// The largest image file read, in bytes (a 12.6-megapixel PNG of noise is about 38 MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The most the decoder may allocate for one image (RGBA at 16 bits of the largest frame is 101 MB).
const MAX_DECODE_BYTES: u64 = 128 << 20;

/// Loads an image file as a gray frame.
pub fn load_gray(path: impl AsRef<Path>) -> Result<GrayFrame, StillError> {
    let mut frame = GrayFrame::default();
    load_gray_into(path.as_ref(), &mut frame)?;
    Ok(frame)
}

/// Decodes an image file into `frame` (its buffer reused), gray as OpenCV makes it. The file's size
/// and its pixel count are checked against the shared frame bound ([`crate::frame::MAX_PIXELS`])
/// before anything that large is allocated.
pub fn load_gray_into(path: &Path, frame: &mut GrayFrame) -> Result<(), StillError> {
    let too_large = |e: crate::frame::FrameTooLarge| StillError::TooLarge {
        path: path.to_path_buf(),
        source: e,
    };
    let image = decode(path)?;
    let (w, h) = crate::frame::check_size(u64::from(image.width()), u64::from(image.height()))
        .map_err(too_large)?;
    match &image {
        // Gray replicated to three channels and weighted back gives the gray value itself.
        image::DynamicImage::ImageLuma8(g) => {
            frame.reset(w, h);
            frame.pixels_mut().copy_from_slice(g.as_raw());
        }
        image::DynamicImage::ImageRgb8(rgb) => {
            frame
                .set_from_rgb8(w, h, rgb.as_raw())
                .expect("w*h*3 bytes");
        }
        image::DynamicImage::ImageRgba8(rgba) => {
            frame.reset(w, h);
            for (dst, px) in frame
                .pixels_mut()
                .iter_mut()
                .zip(rgba.as_raw().chunks_exact(4))
            {
                *dst = crate::frame::rgb_to_gray(px[0], px[1], px[2]);
            }
        }
        other => {
            let rgb = other.to_rgb8();
            frame
                .set_from_rgb8(w, h, rgb.as_raw())
                .expect("w*h*3 bytes");
        }
    }
    Ok(())
}

/// Loads an image file as 8-bit RGB (for drawing annotations over it).
pub fn load_rgb(path: impl AsRef<Path>) -> Result<image::RgbImage, StillError> {
    Ok(decode(path.as_ref())?.to_rgb8())
}

/// Reads and decodes a file within [`MAX_FILE_BYTES`], the frame bound and the decoder's limits.
fn decode(path: &Path) -> Result<image::DynamicImage, StillError> {
    use std::io::Read;
    let io = |source| StillError::Io {
        path: path.to_path_buf(),
        source,
    };
    let decode_err = |source: image::ImageError| StillError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(StillError::FileTooLarge {
            path: path.to_path_buf(),
        });
    }
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(io)
    };
    // The header first, so the size is checked against the shared bound before any decoding.
    let (w, h) = reader()?.into_dimensions().map_err(decode_err)?;
    if w == 0 || h == 0 {
        return Err(StillError::Empty {
            path: path.to_path_buf(),
            width: w,
            height: h,
        });
    }
    crate::frame::check_size(u64::from(w), u64::from(h)).map_err(|source| {
        StillError::TooLarge {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(crate::frame::MAX_SIDE as u32);
    limits.max_image_height = Some(crate::frame::MAX_SIDE as u32);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(decode_err)?;
    image::DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => StillError::TooLarge {
            path: path.to_path_buf(),
            source: crate::frame::FrameTooLarge {
                width: u64::from(w),
                height: u64::from(h),
            },
        },
        e => decode_err(e),
    })
}
