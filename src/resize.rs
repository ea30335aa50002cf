//! OpenCV's bilinear resizes of 8-bit gray images, bit for bit.
//!
//! OpenCV has two bilinear rules and emotiond needs both:
//! - `INTER_LINEAR_EXACT` ([`Resizer::resize_linear_exact`]): the cascade detector builds its image
//!   pyramid with it (OpenCV 4.14's `FeatureEvaluator::setImage`), so the pyramid levels, and with them
//!   the boxes, are exactly OpenCV's. 8-bit weights and integer rounding:
//!   `f = (d + 0.5) * src/dst - 0.5` in double, `s = floor(f)`, weights `256 - c`, `c = round(256 (f - s))`;
//!   rows `(h0 (256 - c) + h1 c + 2^15) >> 16`; outputs whose `s` falls before the first or on/after the
//!   last source pixel copy the edge pixel.
//! - `INTER_LINEAR` ([`Resizer::resize_linear`]), `cv2.resize`'s default, used by the reference
//!   pipeline's face crops: 11-bit weights from `(float)((d + 0.5) * scale - 0.5)`, a horizontal pass into
//!   32-bit sums, then OpenCV's vectorised vertical pass
//!   `((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16)` rounded by `(v + 2) >> 2`, which OpenCV uses for
//!   every pixel (it is not the exact `(S0 b0 + S1 b1 + 2^21) >> 22`).
//!
//! Both were checked against `cv2.resize` of opencv-python 4.14 on every pyramid level of the test
//! photographs and on random sizes, up and down (`tests/resize_parity.rs`).

/// Checks the buffers against their sizes; copies and returns true when no resampling is needed.
fn copy_if_same_size(
    src: &[u8],
    sw: usize,
    sh: usize,
    dst: &mut [u8],
    dw: usize,
    dh: usize,
) -> bool {
    assert!(
        sw > 0 && sh > 0 && dw > 0 && dh > 0,
        "resize of an empty image"
    );
    assert!(
        src.len() >= sw * sh && dst.len() >= dw * dh,
        "resize buffer too short"
    );
    if sw == dw && sh == dh {
        dst[..dw * dh].copy_from_slice(&src[..sw * sh]);
        return true;
    }
    false
}

/// Per-axis interpolation table: the first source index and the two weights of each output index.
#[derive(Debug, Default, Clone)]
pub(crate) struct AxisTable {
    index: Vec<i64>,
    weights: Vec<[i32; 2]>,
}

impl AxisTable {
    /// Fills the table for `src` input and `dst` output samples. `clamp` is OpenCV's treatment of
    /// the horizontal axis (outside positions take weight 0 on the edge pixel); the vertical axis is not
    /// clamped there: an outside position keeps its fractional weights and both taps read the edge row.
    fn fill(&mut self, src: usize, dst: usize, clamp: bool) {
        self.index.clear();
        self.weights.clear();
        let scale = src as f64 / dst as f64;
        for d in 0..dst {
            let fx = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = fx.floor() as i64;
            let mut f = fx - s as f32;
            if clamp {
                if s < 0 {
                    f = 0.0;
                    s = 0;
                }
                if s >= src as i64 - 1 {
                    f = 0.0;
                    s = src as i64 - 1;
                }
            }
            let w0 = ((1.0f32 - f) * 2048.0).round_ties_even() as i32;
            let w1 = (f * 2048.0).round_ties_even() as i32;
            self.index.push(s);
            self.weights.push([w0, w1]);
        }
    }

    /// The horizontal pass of one source row: 11-bit weighted sums (clamped table only).
    fn row(&self, line: &[u8], out: &mut [i32]) {
        let last = line.len() - 1;
        for ((o, &sx), &[a0, a1]) in out.iter_mut().zip(&self.index).zip(&self.weights) {
            let sx = sx as usize;
            *o = line[sx] as i32 * a0 + line[(sx + 1).min(last)] as i32 * a1;
        }
    }
}

/// Reusable buffers for the resizes; keeping one avoids allocation per call once warm.
#[derive(Debug, Default)]
pub struct Resizer {
    xs: AxisTable,
    ys: AxisTable,
    rows: RowPair<i32>,
    exact_x: ExactAxis,
    exact_y: ExactAxis,
    exact_rows: RowPair<u32>,
}

/// The horizontal passes of the two source rows the current output row blends, kept while the next
/// output rows still need them.
#[derive(Debug, Default)]
struct RowPair<T> {
    rows: [Vec<T>; 2],
    /// Source row held by each slot (`usize::MAX`: none).
    held: [usize; 2],
}

impl<T: Copy + Default> RowPair<T> {
    fn reset(&mut self, len: usize) {
        for r in &mut self.rows {
            r.clear();
            r.resize(len, T::default());
        }
        self.held = [usize::MAX; 2];
    }

    /// The slot holding source row `sy`, filled by `fill` if no slot holds it yet. The slot `keep` is
    /// never evicted; otherwise the row further behind goes.
    fn slot(&mut self, sy: usize, keep: Option<usize>, fill: impl FnOnce(&mut [T])) -> usize {
        if let Some(slot) = self.held.iter().position(|&r| r == sy) {
            return slot;
        }
        let slot = match keep {
            Some(k) => 1 - k,
            None if self.held[0] == usize::MAX => 0,
            None if self.held[1] != usize::MAX && self.held[0] < self.held[1] => 0,
            None => 1,
        };
        fill(&mut self.rows[slot]);
        self.held[slot] = sy;
        slot
    }
}

/// Per-axis table of OpenCV's `interpolationLinear` (bit-exact rule): a first source index and an 8-bit
/// weight per output, and the output ranges that copy the first (`< min`) or last (`>= max`) pixel.
#[derive(Debug, Default, Clone)]
struct ExactAxis {
    index: Vec<usize>,
    frac: Vec<u32>,
    min: usize,
    max: usize,
    last: usize,
}

impl ExactAxis {
    fn fill(&mut self, src: usize, dst: usize) {
        self.index.clear();
        self.frac.clear();
        self.index.resize(dst, 0);
        self.frac.resize(dst, 0);
        self.min = 0;
        self.max = dst;
        self.last = src - 1;
        let scale = 1.0 / (dst as f64 / src as f64);
        for v in 0..dst {
            let f = scale * (v as f64 + 0.5) - 0.5;
            let i = f.floor();
            if i >= 0.0 && src > 1 {
                if (i as usize) < src - 1 {
                    self.index[v] = i as usize;
                    self.frac[v] = ((f - i) * 256.0).round_ties_even() as u32;
                } else {
                    self.max = self.max.min(v);
                }
            } else {
                self.min = self.min.max(v + 1);
            }
        }
        self.max = self.max.max(self.min);
    }

    /// The horizontal pass of one source row, in 1/256 units.
    fn row(&self, line: &[u8], out: &mut [u32]) {
        let first = line[0] as u32 * 256;
        let last = line[self.last] as u32 * 256;
        out[..self.min].fill(first);
        let middle = self.min..self.max;
        for ((o, &s), &c) in out[middle.clone()]
            .iter_mut()
            .zip(&self.index[middle.clone()])
            .zip(&self.frac[middle])
        {
            *o = line[s] as u32 * (256 - c) + line[s + 1] as u32 * c;
        }
        out[self.max..].fill(last);
    }
}

impl Resizer {
    /// A resizer with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resizes `src` (`sw x sh`, row-major, no padding) into `dst` (`dw x dh`) as OpenCV's
    /// `cv::resize(src, dst, Size(dw, dh), 0, 0, INTER_LINEAR)` does for 8-bit single-channel images.
    ///
    /// # Panics
    /// When a size is zero or a buffer is shorter than its size says.
    pub fn resize_linear(
        &mut self,
        src: &[u8],
        sw: usize,
        sh: usize,
        dst: &mut [u8],
        dw: usize,
        dh: usize,
    ) {
        if copy_if_same_size(src, sw, sh, dst, dw, dh) {
            return;
        }
        if sw == 2 * dw && sh == 2 * dh {
            // OpenCV switches an exact halving to INTER_AREA: the rounded mean of each 2x2 block.
            for y in 0..dh {
                let (a, b) = (&src[2 * y * sw..], &src[(2 * y + 1) * sw..]);
                for x in 0..dw {
                    let s = a[2 * x] as u32
                        + a[2 * x + 1] as u32
                        + b[2 * x] as u32
                        + b[2 * x + 1] as u32;
                    dst[y * dw + x] = ((s + 2) >> 2) as u8;
                }
            }
            return;
        }
        self.xs.fill(sw, dw, true);
        self.ys.fill(sh, dh, false);
        self.rows.reset(dw);

        for dy in 0..dh {
            let last = sh as i64 - 1;
            let sy0 = self.ys.index[dy].clamp(0, last) as usize;
            let sy1 = (self.ys.index[dy] + 1).clamp(0, last) as usize;
            let [b0, b1] = self.ys.weights[dy];
            let xs = &self.xs;
            let line = |sy: usize| &src[sy * sw..(sy + 1) * sw];
            let slot0 = self.rows.slot(sy0, None, |row| xs.row(line(sy0), row));
            let slot1 = self
                .rows
                .slot(sy1, Some(slot0), |row| xs.row(line(sy1), row));
            let (r0, r1) = (&self.rows.rows[slot0], &self.rows.rows[slot1]);
            let out = &mut dst[dy * dw..(dy + 1) * dw];
            for ((o, &s0), &s1) in out.iter_mut().zip(r0.iter()).zip(r1.iter()) {
                let v = (((s0 >> 4) * b0) >> 16) + (((s1 >> 4) * b1) >> 16);
                *o = ((v + 2) >> 2).clamp(0, 255) as u8;
            }
        }
    }

    /// Resizes `src` (`sw x sh`) into `dst` (`dw x dh`) as OpenCV's
    /// `cv::resize(src, dst, Size(dw, dh), 0, 0, INTER_LINEAR_EXACT)` does for 8-bit single-channel
    /// images.
    ///
    /// # Panics
    /// When a size is zero or a buffer is shorter than its size says.
    pub fn resize_linear_exact(
        &mut self,
        src: &[u8],
        sw: usize,
        sh: usize,
        dst: &mut [u8],
        dw: usize,
        dh: usize,
    ) {
        if copy_if_same_size(src, sw, sh, dst, dw, dh) {
            return;
        }
        self.exact_x.fill(sw, dw);
        self.exact_y.fill(sh, dh);
        self.exact_rows.reset(dw);
        let (ys, xs) = (&self.exact_y, &self.exact_x);
        let line = |sy: usize| &src[sy * sw..(sy + 1) * sw];
        for dy in 0..dh {
            let out = &mut dst[dy * dw..(dy + 1) * dw];
            if dy < ys.min || dy >= ys.max {
                let sy = if dy < ys.min { 0 } else { sh - 1 };
                let slot = self.exact_rows.slot(sy, None, |row| xs.row(line(sy), row));
                for (o, &h) in out.iter_mut().zip(&self.exact_rows.rows[slot]) {
                    *o = ((h + 128) >> 8).min(255) as u8;
                }
                continue;
            }
            let (s0, c) = (ys.index[dy], ys.frac[dy]);
            let slot0 = self.exact_rows.slot(s0, None, |row| xs.row(line(s0), row));
            let slot1 = self
                .exact_rows
                .slot(s0 + 1, Some(slot0), |row| xs.row(line(s0 + 1), row));
            let (upper, lower) = (&self.exact_rows.rows[slot0], &self.exact_rows.rows[slot1]);
            for ((o, &a), &b) in out.iter_mut().zip(upper).zip(lower) {
                *o = ((a * (256 - c) + b * c + (1 << 15)) >> 16).min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
        let mut out = vec![0; dw * dh];
        Resizer::new().resize_linear(src, sw, sh, &mut out, dw, dh);
        out
    }

    fn exact(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
        let mut out = vec![0; dw * dh];
        Resizer::new().resize_linear_exact(src, sw, sh, &mut out, dw, dh);
        out
    }

    #[test]
    fn exact_known_opencv_values() {
        // cv2.resize(np.arange(25, dtype=np.uint8).reshape(5,5)*10, (3,3),
        //            interpolation=cv2.INTER_LINEAR_EXACT) with OpenCV 4.14.
        let src: Vec<u8> = (0..25u8).map(|v| v * 10).collect();
        assert_eq!(exact(&src, 5, 5, 3, 3), EXACT_5X5_TO_3X3.to_vec());
        // Upscaling copies the edge pixels where the source position falls outside.
        assert_eq!(exact(&[0, 255], 2, 1, 4, 1), EXACT_2_TO_4.to_vec());
    }

    const EXACT_5X5_TO_3X3: [u8; 9] = [20, 37, 53, 103, 120, 137, 187, 203, 220];
    const EXACT_2_TO_4: [u8; 4] = [0, 64, 191, 255];

    #[test]
    fn exact_constant_image_stays_constant() {
        for v in [0u8, 1, 127, 255] {
            let src = vec![v; 37 * 23];
            assert!(exact(&src, 37, 23, 20, 11).iter().all(|&p| p == v));
            assert!(exact(&src, 37, 23, 50, 41).iter().all(|&p| p == v));
        }
    }

    #[test]
    fn same_size_is_a_copy() {
        let src: Vec<u8> = (0..12).collect();
        assert_eq!(resize(&src, 4, 3, 4, 3), src);
    }

    #[test]
    fn constant_image_stays_constant() {
        for v in [0u8, 1, 127, 200, 255] {
            let src = vec![v; 37 * 23];
            assert!(resize(&src, 37, 23, 20, 11).iter().all(|&p| p == v));
        }
    }

    #[test]
    fn halving_averages_pairs() {
        // 4x1 -> 2x1 (cv2.resize gives [15, 36]): each output sits midway between two inputs.
        // (30*1024 + 41*1024) = 72704; >>4 = 4544; *2048>>16 = 142; (142 + 2) >> 2 = 36.
        assert_eq!(resize(&[10, 20, 30, 41], 4, 1, 2, 1), vec![15, 36]);
    }

    #[test]
    fn known_opencv_values() {
        // cv2.resize(np.arange(25, dtype=np.uint8).reshape(5,5)*10, (3,3)) with OpenCV 4.14.
        let src: Vec<u8> = (0..25u8).map(|v| v * 10).collect();
        assert_eq!(
            resize(&src, 5, 5, 3, 3),
            vec![20, 37, 53, 103, 120, 137, 187, 203, 220]
        );
    }
}
