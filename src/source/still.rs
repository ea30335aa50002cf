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
    #[error("cannot decode image {path}: {message} (PNG and JPEG are supported)")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
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

/// Loads an image file as a gray frame.
pub fn load_gray(path: impl AsRef<Path>) -> Result<GrayFrame, StillError> {
    let path = path.as_ref();
    let rgb = load_rgb(path)?;
    let (w, h) = rgb.dimensions();
    Ok(GrayFrame::from_rgb8(w as usize, h as usize, rgb.as_raw())
        .expect("decoder gave w*h*3 bytes"))
}

/// Loads an image file as 8-bit RGB (for drawing annotations over it).
pub fn load_rgb(path: impl AsRef<Path>) -> Result<image::RgbImage, StillError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| StillError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let decoded = image::load_from_memory(&bytes).map_err(|e| StillError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let rgb = decoded.to_rgb8();
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(StillError::Empty {
            path: path.to_path_buf(),
            width: rgb.width(),
            height: rgb.height(),
        });
    }
    Ok(rgb)
}
