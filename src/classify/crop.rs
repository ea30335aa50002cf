//! The face crop the emotion network sees: fer's preprocessing, pixel for pixel.
//!
//! fer 25.10.3 builds each network input like this (`FER.detect_emotions`):
//! 1. pad the gray image by 40 px on every side with the mean of its bottom two rows
//!    (`cv2.mean`, then `saturate_cast<uchar>`: round half to even);
//! 2. make the box square (`tosquare`: the shorter side grows to the longer, centred with floor
//!    division);
//! 3. widen it by the offsets (10 px each side);
//! 4. slice the padded image with numpy's rules (the start clamped at 0; an end past the edge is
//!    clipped; a *negative* end counts from the far edge);
//! 5. resize to 64x64 with `cv2.resize`'s default INTER_LINEAR;
//! 6. `x / 255`, then `(x - 0.5) * 2` in float32.
//!
//! [`CropRule`] reproduces that exactly by default. [`Offsets::Proportional`] is the alternative
//! users of the original demo asked for: margins proportional to the box, with the image extended
//! by the pad value as far as the margins need, so a face at the frame edge is never cut short.

use thiserror::Error;

use super::settings::{pixel_offsets, relative_offsets};
use crate::frame::GrayFrame;
use crate::frame::Rect;
use crate::resize::Resizer;

/// fer's `PADDING`: the border, in pixels, added around the image before cropping.
pub const FER_PADDING: i64 = 40;

/// Side of the square network input, in pixels.
pub const INPUT_SIDE: usize = 64;

/// Number of values in one network input (64 x 64 x 1).
pub const INPUT_LEN: usize = INPUT_SIDE * INPUT_SIDE;

/// How far the crop reaches beyond the (squared) face box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Offsets {
    /// A fixed margin in pixels on each side, clipped by fer's 40-px border as fer does.
    /// fer's default is `Pixels { x: 10, y: 10 }`.
    Pixels {
        /// Margin left and right.
        x: i32,
        /// Margin above and below.
        y: i32,
    },
    /// A margin in proportion to the squared box side (0.1 adds 10% on each side), rounded to
    /// whole pixels. The image is extended with the pad value as far as needed, so the crop is
    /// always the full square.
    Proportional {
        /// Margin left and right, as a fraction of the side.
        x: f32,
        /// Margin above and below, as a fraction of the side.
        y: f32,
    },
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets::Pixels { x: 10, y: 10 }
    }
}

/// Why a box cannot be turned into a network input.
#[derive(Debug, Error, PartialEq)]
pub enum CropError {
    /// The box has no area.
    #[error("face box {x},{y},{w},{h} has no area: width and height must be at least 1")]
    EmptyBox {
        /// Left edge.
        x: i32,
        /// Top edge.
        y: i32,
        /// Width.
        w: i32,
        /// Height.
        h: i32,
    },
    /// The box (with its margins) does not overlap the image.
    #[error("face box {x},{y},{w},{h} lies outside the {width}x{height} image")]
    OutsideImage {
        /// Left edge.
        x: i32,
        /// Top edge.
        y: i32,
        /// Width.
        w: i32,
        /// Height.
        h: i32,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// The region to cut (the box squared, with its margins) is larger than any frame emotiond
    /// takes, so cutting it would take more memory than the device has.
    #[error(
        "face box {x},{y},{w},{h} with its margins is a {cw}x{ch} crop, more than the {} pixels of the largest frame; use a smaller box or smaller offsets",
        crate::frame::MAX_PIXELS
    )]
    TooLarge {
        /// Left edge.
        x: i32,
        /// Top edge.
        y: i32,
        /// Width.
        w: i32,
        /// Height.
        h: i32,
        /// The crop's width.
        cw: i64,
        /// The crop's height.
        ch: i64,
    },
    /// The image has no pixels.
    #[error("the image is empty")]
    EmptyImage,
    /// An offset out of range: [`pixel_offsets`] or [`relative_offsets`] says why.
    #[error("{0}")]
    BadOffsets(String),
}

/// The pixel rectangle a box turns into, in image coordinates (it may reach outside the image;
/// those pixels take the pad value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRegion {
    /// Left edge (inclusive).
    pub x0: i64,
    /// Top edge (inclusive).
    pub y0: i64,
    /// Right edge (exclusive).
    pub x1: i64,
    /// Bottom edge (exclusive).
    pub y1: i64,
}

impl CropRegion {
    /// Width in pixels.
    pub fn width(&self) -> usize {
        (self.x1 - self.x0) as usize
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        (self.y1 - self.y0) as usize
    }
}

/// fer's `tosquare`: grows the shorter side to the longer one, keeping the box centred (Python's
/// floor division decides the odd pixel).
pub fn to_square(r: Rect) -> Rect {
    let (x, y, w, h) = square(r);
    // The square of a box inside i32 can only leave it for boxes near i32's limits.
    let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    Rect::new(clamp(x), clamp(y), clamp(w), clamp(h))
}

/// [`to_square`] in i64, where no box from outside can overflow: `(x, y, w, h)`.
fn square(r: Rect) -> (i64, i64, i64, i64) {
    let (mut x, mut y, mut w, mut h) = (
        i64::from(r.x),
        i64::from(r.y),
        i64::from(r.w),
        i64::from(r.h),
    );
    if h > w {
        let diff = h - w;
        x -= diff.div_euclid(2);
        w += diff;
    } else if w > h {
        let diff = w - h;
        y -= diff.div_euclid(2);
        h += diff;
    }
    (x, y, w, h)
}

/// The value fer pads with: the mean of the bottom two rows (one row for a one-row image), as
/// `cv2.mean` computes it, rounded half to even and saturated to 0..=255.
pub fn pad_value(frame: &GrayFrame) -> Result<u8, CropError> {
    if frame.is_empty() {
        return Err(CropError::EmptyImage);
    }
    let rows = frame.height().min(2);
    let sum: u64 = (frame.height() - rows..frame.height())
        .flat_map(|y| frame.row(y).iter())
        .map(|&v| u64::from(v))
        .sum();
    let n = (rows * frame.width()) as f64;
    // cv::mean scales the sum by the reciprocal of the count.
    let mean = sum as f64 * (1.0 / n);
    Ok(mean.round_ties_even().clamp(0.0, 255.0) as u8)
}

/// Numpy's slice end for a dimension of `len`: negative counts from the end, then clipped.
fn numpy_end(end: i64, len: i64) -> i64 {
    let e = if end < 0 { end + len } else { end };
    e.clamp(0, len)
}

/// The crop rule: offsets, and how a box becomes a 64x64 network input.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CropRule {
    /// Margins around the squared box.
    pub offsets: Offsets,
}

impl CropRule {
    /// fer's defaults: 10-px offsets and the 40-px border.
    pub fn fer() -> Self {
        Self::default()
    }

    /// Checks the rule's numbers, by the rules the configuration applies.
    pub fn validate(&self) -> Result<(), CropError> {
        match self.offsets {
            Offsets::Pixels { x, y } => pixel_offsets(x.into(), y.into()).map(drop),
            Offsets::Proportional { x, y } => relative_offsets(x, y).map(drop),
        }
        .map_err(CropError::BadOffsets)
    }

    /// The image rectangle `face` turns into on a `width x height` image.
    pub fn region(&self, face: Rect, width: usize, height: usize) -> Result<CropRegion, CropError> {
        self.validate()?;
        let err_outside = || CropError::OutsideImage {
            x: face.x,
            y: face.y,
            w: face.w,
            h: face.h,
            width,
            height,
        };
        if face.w <= 0 || face.h <= 0 {
            return Err(CropError::EmptyBox {
                x: face.x,
                y: face.y,
                w: face.w,
                h: face.h,
            });
        }
        if width == 0 || height == 0 {
            return Err(CropError::EmptyImage);
        }
        let (sx, sy, side, _) = square(face);
        let region = match self.offsets {
            Offsets::Pixels { x: ox, y: oy } => {
                let (ox, oy) = (i64::from(ox), i64::from(oy));
                let (pw, ph) = (
                    width as i64 + 2 * FER_PADDING,
                    height as i64 + 2 * FER_PADDING,
                );
                // Slice bounds in the padded image, exactly as fer computes them.
                let x0 = (sx - ox + FER_PADDING).max(0).min(pw);
                let y0 = (sy - oy + FER_PADDING).max(0).min(ph);
                let x1 = numpy_end(sx + side + ox + FER_PADDING, pw);
                let y1 = numpy_end(sy + side + oy + FER_PADDING, ph);
                if x1 <= x0 || y1 <= y0 {
                    return Err(err_outside());
                }
                CropRegion {
                    x0: x0 - FER_PADDING,
                    y0: y0 - FER_PADDING,
                    x1: x1 - FER_PADDING,
                    y1: y1 - FER_PADDING,
                }
            }
            Offsets::Proportional { x: fx, y: fy } => {
                let ox = (f64::from(fx) * side as f64).round() as i64;
                let oy = (f64::from(fy) * side as f64).round() as i64;
                CropRegion {
                    x0: sx - ox,
                    y0: sy - oy,
                    x1: sx + side + ox,
                    y1: sy + side + oy,
                }
            }
        };
        // The crop must show some of the image: a slice of pure border (or of nothing past the
        // image) is not a face.
        let inside =
            region.x0 < width as i64 && region.x1 > 0 && region.y0 < height as i64 && region.y1 > 0;
        if !inside {
            return Err(err_outside());
        }
        let (cw, ch) = (region.x1 - region.x0, region.y1 - region.y0);
        if cw.saturating_mul(ch) > crate::frame::MAX_PIXELS as i64 {
            return Err(CropError::TooLarge {
                x: face.x,
                y: face.y,
                w: face.w,
                h: face.h,
                cw,
                ch,
            });
        }
        Ok(region)
    }
}

/// Builds network inputs from face boxes, reusing its buffers from face to face.
#[derive(Debug)]
pub struct CropBuilder {
    rule: CropRule,
    /// The cut-out region at its own size.
    crop: Vec<u8>,
    /// The region resized to 64x64, before scaling.
    small: Vec<u8>,
    resizer: Resizer,
}

impl CropBuilder {
    /// A builder for `rule`.
    pub fn new(rule: CropRule) -> Result<Self, CropError> {
        rule.validate()?;
        Ok(Self {
            rule,
            crop: Vec::new(),
            small: vec![0; INPUT_LEN],
            resizer: Resizer::new(),
        })
    }

    /// The rule this builder applies.
    pub fn rule(&self) -> CropRule {
        self.rule
    }

    /// Writes the 64x64 gray crop for `face` into `out` (row-major) and returns the region it came
    /// from. `pad` is the frame's [`pad_value`], computed once per frame.
    pub fn crop_u8(
        &mut self,
        frame: &GrayFrame,
        pad: u8,
        face: Rect,
        out: &mut [u8; INPUT_LEN],
    ) -> Result<CropRegion, CropError> {
        let region = self.rule.region(face, frame.width(), frame.height())?;
        cut_and_resize(&mut self.crop, &mut self.resizer, frame, pad, region, out);
        Ok(region)
    }

    /// Writes the normalised network input for `face` into `out`: the 64x64 crop scaled to [-1, 1]
    /// as fer does (`(x / 255 - 0.5) * 2` in float32).
    pub fn input(
        &mut self,
        frame: &GrayFrame,
        pad: u8,
        face: Rect,
        out: &mut [f32],
    ) -> Result<CropRegion, CropError> {
        let region = self.rule.region(face, frame.width(), frame.height())?;
        cut_and_resize(
            &mut self.crop,
            &mut self.resizer,
            frame,
            pad,
            region,
            &mut self.small,
        );
        normalise(&self.small, out);
        Ok(region)
    }
}

/// Cuts `region` out of `frame` into `crop` (pixels outside the image take `pad`) and resizes it to
/// 64x64 into `out` with OpenCV's INTER_LINEAR rule.
fn cut_and_resize(
    crop: &mut Vec<u8>,
    resizer: &mut Resizer,
    frame: &GrayFrame,
    pad: u8,
    region: CropRegion,
    out: &mut [u8],
) {
    let (cw, ch) = (region.width(), region.height());
    crop.clear();
    crop.resize(cw * ch, pad);
    // Copy the part of the region that lies inside the image; the rest keeps the pad value.
    let (w, h) = (frame.width() as i64, frame.height() as i64);
    let (ix0, ix1) = (region.x0.max(0), region.x1.min(w));
    let (iy0, iy1) = (region.y0.max(0), region.y1.min(h));
    for y in iy0..iy1 {
        let src = &frame.row(y as usize)[ix0 as usize..ix1 as usize];
        let start = (y - region.y0) as usize * cw + (ix0 - region.x0) as usize;
        crop[start..start + src.len()].copy_from_slice(src);
    }
    resizer.resize_linear(crop, cw, ch, out, INPUT_SIDE, INPUT_SIDE);
}

/// fer's scaling of a gray pixel to the network's range, in float32 as numpy computes it.
pub fn normalise_pixel(v: u8) -> f32 {
    (f32::from(v) / 255.0 - 0.5) * 2.0
}

/// Scales 64x64 gray pixels into `out` with [`normalise_pixel`].
pub fn normalise(pixels: &[u8], out: &mut [f32]) {
    for (o, &p) in out.iter_mut().zip(pixels) {
        *o = normalise_pixel(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_square_centres_with_floor_division() {
        assert_eq!(to_square(Rect::new(10, 10, 5, 8)), Rect::new(9, 10, 8, 8));
        assert_eq!(to_square(Rect::new(10, 10, 8, 5)), Rect::new(10, 9, 8, 8));
        assert_eq!(to_square(Rect::new(-3, 0, 4, 4)), Rect::new(-3, 0, 4, 4));
    }

    #[test]
    fn fer_region_follows_numpy_slicing() {
        let rule = CropRule::fer();
        // Inside: the square box plus 10 px each side.
        let r = rule.region(Rect::new(100, 100, 50, 50), 512, 512).unwrap();
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (90, 90, 160, 160));
        // Past the top-left corner: the start is clamped at the padded image's edge (-40).
        let r = rule
            .region(Rect::new(-60, -60, 100, 100), 512, 512)
            .unwrap();
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (-40, -40, 50, 50));
        // A negative end counts from the far edge of the padded image (592 wide): the padded end
        // -200 + 50 + 10 + 40 = -100 becomes 492, which is 452 in image coordinates.
        let r = rule.region(Rect::new(-200, 10, 50, 50), 512, 512).unwrap();
        assert_eq!((r.x0, r.x1), (-40, 452));
        // Entirely past the far edge: empty.
        assert!(matches!(
            rule.region(Rect::new(700, 700, 50, 50), 512, 512),
            Err(CropError::OutsideImage { .. })
        ));
        assert!(matches!(
            rule.region(Rect::new(100, 100, 0, 0), 512, 512),
            Err(CropError::EmptyBox { .. })
        ));
    }

    #[test]
    fn a_huge_box_with_wide_margins_is_an_error_not_an_abort() {
        // Issue 15: `classify --box 0,0,2147483647,2147483647 --relative-offsets 2,2` aborted
        // allocating the crop.
        let rule = CropRule {
            offsets: Offsets::Proportional { x: 2.0, y: 2.0 },
        };
        let e = rule
            .region(Rect::new(0, 0, i32::MAX, i32::MAX), 640, 480)
            .unwrap_err();
        assert!(matches!(e, CropError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("smaller"), "{e}");
        let sq = to_square(Rect::new(i32::MIN, i32::MIN, 1, i32::MAX));
        assert_eq!((sq.w, sq.h), (i32::MAX, i32::MAX));
        let fer = CropRule::fer();
        assert!(fer
            .region(Rect::new(i32::MAX, i32::MAX, i32::MAX, i32::MAX), 640, 480)
            .is_err());
        // fer's slicing clips a box reaching far outside to the padded image.
        let r = fer
            .region(Rect::new(i32::MIN, i32::MIN, i32::MAX, i32::MAX), 640, 480)
            .unwrap();
        assert!(
            r.x0 >= -40 && r.y0 >= -40 && r.x1 <= 680 && r.y1 <= 520,
            "{r:?}"
        );
    }

    #[test]
    fn proportional_region_is_never_clipped() {
        let rule = CropRule {
            offsets: Offsets::Proportional { x: 0.2, y: 0.1 },
        };
        let r = rule.region(Rect::new(-30, 5, 100, 100), 64, 64).unwrap();
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (-50, -5, 90, 115));
        assert!(CropRule {
            offsets: Offsets::Proportional { x: -0.1, y: 0.0 }
        }
        .validate()
        .is_err());
    }

    #[test]
    fn proportional_crop_fills_beyond_the_image_with_the_pad_value() {
        // 20x20 image: 200 everywhere but its bottom two rows, which are 0, so the pad value is 0.
        let mut pixels = vec![200u8; 400];
        pixels[360..].fill(0);
        let frame = GrayFrame::from_vec(20, 20, pixels).unwrap();
        let pad = pad_value(&frame).unwrap();
        assert_eq!(pad, 0);
        let mut builder = CropBuilder::new(CropRule {
            offsets: Offsets::Proportional { x: 0.5, y: 0.5 },
        })
        .unwrap();
        let mut out = [0u8; INPUT_LEN];
        let r = builder
            .crop_u8(&frame, pad, Rect::new(0, 0, 8, 8), &mut out)
            .unwrap();
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (-4, -4, 12, 12));
        // The top-left quarter of the 16x16 crop is padding, the rest is image.
        assert_eq!(out[0], 0);
        assert_eq!(out[INPUT_LEN - 1], 200);
        assert_eq!(out[63 * 64], 0, "left column is padding");
        assert_eq!(out[40 * 64 + 40], 200);
    }

    #[test]
    fn pad_value_rounds_half_to_even() {
        // Bottom rows 0 and 1 in a one-pixel-wide image: mean 0.5 rounds to 0.
        let f = GrayFrame::from_vec(1, 3, vec![200, 0, 1]).unwrap();
        assert_eq!(pad_value(&f).unwrap(), 0);
        // Mean 2.5 rounds to 2; 3.5 to 4.
        let f = GrayFrame::from_vec(1, 2, vec![2, 3]).unwrap();
        assert_eq!(pad_value(&f).unwrap(), 2);
        let f = GrayFrame::from_vec(1, 2, vec![3, 4]).unwrap();
        assert_eq!(pad_value(&f).unwrap(), 4);
    }

    #[test]
    fn normalise_spans_minus_one_to_one() {
        assert_eq!(normalise_pixel(0), -1.0);
        assert_eq!(normalise_pixel(255), 1.0);
    }
}
