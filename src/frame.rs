//! The gray frame every stage shares.
//!
//! Sources produce a [`GrayFrame`], the detector reads it, the classifier crops faces from it. It is a
//! plain row-major 8-bit luma buffer with no padding, so its length is always `width * height`.
//! Stages that need a frame per tick keep one and refill it with [`GrayFrame::reset`], which reuses the
//! allocation when the size does not grow. A [`Rect`] is a box in a frame's pixels, as every stage
//! from the detector to the serial protocol passes faces around.

use std::fmt;

/// The longest frame side any source takes, in pixels.
pub const MAX_SIDE: usize = 8192;
/// The most pixels any source's frame may have: 4096 x 3072 (12.6 megapixels), above the full
/// resolution of every Raspberry Pi camera module (the HQ camera's 4056 x 3040 is the largest). With
/// the detector's tables this keeps a frame's cost well inside a 512 MiB Pi Zero 2 W.
pub const MAX_PIXELS: usize = 4096 * 3072;

/// A frame size from outside (a file header, a decoder, a camera) beyond [`MAX_SIDE`] or
/// [`MAX_PIXELS`], or with no pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {width}x{height} frame is outside what emotiond takes (1 to {MAX_SIDE} pixels a side, at \
     most {MAX_PIXELS} pixels in all); scale it down"
)]
pub struct FrameTooLarge {
    /// Width in pixels.
    pub width: u64,
    /// Height in pixels.
    pub height: u64,
}

/// Checks a frame size that came from outside against the one memory bound every source shares.
pub fn check_size(width: u64, height: u64) -> Result<(usize, usize), FrameTooLarge> {
    let side_ok = |v: u64| (1..=MAX_SIDE as u64).contains(&v);
    if side_ok(width) && side_ok(height) && width * height <= MAX_PIXELS as u64 {
        Ok((width as usize, height as usize))
    } else {
        Err(FrameTooLarge { width, height })
    }
}

/// An 8-bit single-channel image, row-major, `width * height` bytes, no row padding.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct GrayFrame {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl fmt::Debug for GrayFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrayFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// A frame buffer whose length does not match its declared size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {width}x{height} gray frame needs {expected} bytes, got {actual}")]
pub struct FrameSizeError {
    /// Declared width in pixels.
    pub width: usize,
    /// Declared height in pixels.
    pub height: usize,
    /// `width * height`.
    pub expected: usize,
    /// Length of the buffer that was offered.
    pub actual: usize,
}

impl GrayFrame {
    /// A frame of the given size filled with `value`.
    pub fn filled(width: usize, height: usize, value: u8) -> Self {
        GrayFrame {
            width,
            height,
            pixels: vec![value; width * height],
        }
    }

    /// Wraps an existing row-major buffer; fails unless `pixels.len() == width * height`.
    pub fn from_vec(width: usize, height: usize, pixels: Vec<u8>) -> Result<Self, FrameSizeError> {
        let expected = width.saturating_mul(height);
        if pixels.len() != expected {
            return Err(FrameSizeError {
                width,
                height,
                expected,
                actual: pixels.len(),
            });
        }
        Ok(GrayFrame {
            width,
            height,
            pixels,
        })
    }

    /// Converts interleaved 8-bit RGB to gray exactly as OpenCV's `cvtColor(COLOR_BGR2GRAY)` does for
    /// 8-bit input: `(B*3735 + G*19235 + R*9798 + 16384) >> 15`. `rgb` holds `width * height * 3` bytes
    /// in R, G, B order (the channel order image decoders give).
    pub fn from_rgb8(width: usize, height: usize, rgb: &[u8]) -> Result<Self, FrameSizeError> {
        let mut frame = GrayFrame::default();
        frame.set_from_rgb8(width, height, rgb)?;
        Ok(frame)
    }

    /// Refills this frame from RGB bytes (see [`GrayFrame::from_rgb8`]), reusing its buffer.
    pub fn set_from_rgb8(
        &mut self,
        width: usize,
        height: usize,
        rgb: &[u8],
    ) -> Result<(), FrameSizeError> {
        let expected = width.saturating_mul(height);
        if rgb.len() / 3 != expected || rgb.len() % 3 != 0 {
            return Err(FrameSizeError {
                width,
                height,
                expected: expected.saturating_mul(3),
                actual: rgb.len(),
            });
        }
        self.reset(width, height);
        for (dst, px) in self.pixels.iter_mut().zip(rgb.chunks_exact(3)) {
            *dst = rgb_to_gray(px[0], px[1], px[2]);
        }
        Ok(())
    }

    /// Resizes the frame to `width x height` without keeping its contents, reusing the allocation.
    pub fn reset(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.pixels.clear();
        self.pixels.resize(width * height, 0);
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// True when the frame has no pixels.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// All pixels, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All pixels, row-major, mutable.
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        &mut self.pixels
    }

    /// One row of pixels.
    ///
    /// # Panics
    /// When `y >= height`.
    pub fn row(&self, y: usize) -> &[u8] {
        &self.pixels[y * self.width..(y + 1) * self.width]
    }

    /// The pixel at `(x, y)`.
    ///
    /// # Panics
    /// When the point lies outside the frame.
    pub fn get(&self, x: usize, y: usize) -> u8 {
        assert!(x < self.width, "x {x} outside a frame {} wide", self.width);
        self.pixels[y * self.width + x]
    }
}

/// A box in image pixels, OpenCV's `cv::Rect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl Rect {
    /// The box at `(x, y)` of size `w x h`.
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Rect { x, y, w, h }
    }

    /// Parses `x,y,w,h` in whole pixels (x and y may be negative; w and h at least 1), as `--box`
    /// takes it.
    pub fn parse(s: &str) -> Result<Rect, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let nums: Option<Vec<i32>> = parts.iter().map(|p| p.parse().ok()).collect();
        match nums.as_deref() {
            Some(&[x, y, w, h]) if w > 0 && h > 0 => Ok(Rect::new(x, y, w, h)),
            Some(&[_, _, _, _]) => Err(format!("{s:?}: width and height must be at least 1")),
            _ => Err(format!(
                "{s:?}: expected a box as x,y,w,h in whole pixels, e.g. 170,60,120,90"
            )),
        }
    }

    /// The box as `[x, y, w, h]`, the order OpenCV and the JSON output use.
    pub fn to_array(self) -> [i32; 4] {
        [self.x, self.y, self.w, self.h]
    }
}

/// OpenCV's 8-bit BGR-to-gray rule (15-bit fixed point), checked exhaustively against OpenCV 4.14.
#[inline]
pub fn rgb_to_gray(r: u8, g: u8, b: u8) -> u8 {
    ((b as u32 * 3735 + g as u32 * 19235 + r as u32 * 9798 + 16384) >> 15) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_weights_sum_to_one() {
        for v in 0..=255u8 {
            assert_eq!(rgb_to_gray(v, v, v), v);
        }
    }

    #[test]
    fn gray_matches_known_opencv_values() {
        // Values where the classic 14-bit formula differs from OpenCV 4.x's 15-bit one.
        // (B*1868 + G*9617 + R*4899 + 8192) >> 14 would give 1 here; OpenCV 4.14 gives 0.
        assert_eq!(rgb_to_gray(0, 0, 5), 1);
        assert_eq!(rgb_to_gray(255, 0, 0), 76);
        assert_eq!(rgb_to_gray(0, 255, 0), 150);
        assert_eq!(rgb_to_gray(0, 0, 255), 29);
    }

    #[test]
    fn sizes_from_outside_are_bounded() {
        assert_eq!(check_size(640, 480), Ok((640, 480)));
        assert_eq!(check_size(4096, 3072), Ok((4096, 3072)));
        assert!(check_size(4096, 3073).is_err());
        assert!(check_size(8193, 1).is_err());
        assert!(check_size(0, 480).is_err());
        assert!(check_size(u64::MAX, u64::MAX).is_err());
        let e = check_size(13000, 13000).unwrap_err().to_string();
        assert!(
            e.contains("13000x13000") && e.contains("scale it down"),
            "{e}"
        );
    }

    #[test]
    fn from_vec_checks_length() {
        assert!(GrayFrame::from_vec(3, 2, vec![0; 6]).is_ok());
        let err = GrayFrame::from_vec(3, 2, vec![0; 5]).unwrap_err();
        assert_eq!(err.expected, 6);
        assert!(GrayFrame::from_rgb8(2, 2, &[0; 11]).is_err());
    }
}
