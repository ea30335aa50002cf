//! The int8 convolutions' inner loops, apart from the tract ops that plan them ([`super::ops`]).
//!
//! Integer sums are exact whatever the order, so the loops are free to go the way a vector unit
//! likes: a full convolution takes [`BLOCK`] output pixels at a time and adds one input channel's
//! weight row (every output channel) to all of them, a depthwise one goes across channels, and
//! each output row is requantized in one pass ([`requantize_row`]). Written as plain loops that
//! the compiler vectorizes (NEON's widening multiply-adds on aarch64); on x86-64 the same code is
//! also compiled for AVX2 and picked when the CPU has it, as tract picks its kernels.

use super::fixed::QuantizedMultiplier;
use super::ops::Requantize;

/// Output pixels a full convolution computes together, sharing every weight row it loads.
const BLOCK: usize = 4;

/// The shape of one convolution over a padded, zero-point-shifted input.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Width of the padded input, in pixels.
    pub padded_width: usize,
    /// Input channels.
    pub channels: usize,
    /// Output channels (equal to `channels` for a depthwise convolution).
    pub outputs: usize,
    /// Output height and width.
    pub out_size: (usize, usize),
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride along height and width.
    pub stride: (usize, usize),
}

/// What one convolution multiplies by and how it requantizes.
#[derive(Debug, Clone, Copy)]
pub struct Filter<'a> {
    /// Depthwise: `[tap][channel]`; full: as [`pack_full`] orders them.
    pub weights: &'a [i16],
    /// One sum to start from per output channel.
    pub bias: &'a [i32],
    /// Depthwise rather than full.
    pub depthwise: bool,
    /// The way out to int8.
    pub requantize: &'a Requantize,
}

/// Convolves one padded image into `out` (`out_size` pixels of `outputs` int8 values), using
/// `acc` for one output row of sums.
pub fn convolve(padded: &[i16], g: &Geometry, f: &Filter, acc: &mut Vec<i32>, out: &mut [i8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `convolve_avx2` needs nothing but AVX2, which the CPU has just reported.
        return unsafe { convolve_avx2(padded, g, f, acc, out) };
    }
    convolve_any(padded, g, f, acc, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn convolve_avx2(padded: &[i16], g: &Geometry, f: &Filter, acc: &mut Vec<i32>, out: &mut [i8]) {
    // A closure here has the function's target features, so it may call the AVX2 rows.
    convolve_rows(padded, g, f, acc, out, |padded, g, f, oy, acc| {
        if f.depthwise {
            depthwise_row_avx2(padded, g, f, oy, acc)
        } else {
            full_row_avx2(padded, g, f, oy, acc)
        }
    })
}

fn convolve_any(padded: &[i16], g: &Geometry, f: &Filter, acc: &mut Vec<i32>, out: &mut [i8]) {
    convolve_rows(padded, g, f, acc, out, |padded, g, f, oy, acc| {
        if f.depthwise {
            depthwise_row(padded, g, f, oy, acc)
        } else {
            full_row(padded, g, f, oy, acc)
        }
    })
}

/// The rows of one convolution, each row's sums made by `sums`, then requantized.
#[inline(always)]
fn convolve_rows(
    padded: &[i16],
    g: &Geometry,
    f: &Filter,
    acc: &mut Vec<i32>,
    out: &mut [i8],
    sums: impl Fn(&[i16], &Geometry, &Filter, usize, &mut [i32]),
) {
    let (oh, ow) = g.out_size;
    let row = ow * g.outputs;
    acc.clear();
    acc.resize(row, 0);
    for (oy, out_row) in out.chunks_exact_mut(row).take(oh).enumerate() {
        sums(padded, g, f, oy, acc);
        requantize_row(f.requantize, acc, g.outputs, out_row);
    }
}

/// Index of the first value of input pixel (`y`, `x`) in the padded image.
#[inline(always)]
fn at(g: &Geometry, y: usize, x: usize) -> usize {
    (y * g.padded_width + x) * g.channels
}

/// The kernel taps of one output pixel: for each, the index of its first input value in the
/// padded image and its `len` weights. A struct rather than a closure-made iterator, so that it
/// compiles inside whichever build (portable or AVX2) uses it.
struct Taps<'a> {
    g: &'a Geometry,
    weights: &'a [i16],
    len: usize,
    top_left: (usize, usize),
    tap: usize,
}

impl<'a> Taps<'a> {
    /// The taps of output pixel `(oy, ox)`, `len` weights each.
    #[inline(always)]
    fn new(g: &'a Geometry, weights: &'a [i16], len: usize, (oy, ox): (usize, usize)) -> Self {
        let top_left = (oy * g.stride.0, ox * g.stride.1);
        Self {
            g,
            weights,
            len,
            top_left,
            tap: 0,
        }
    }
}

impl<'a> Iterator for Taps<'a> {
    type Item = (usize, &'a [i16]);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let (kh, kw) = self.g.kernel;
        if self.tap == kh * kw {
            return None;
        }
        let (y, x) = self.top_left;
        let first = at(self.g, y + self.tap / kw, x + self.tap % kw);
        let weights = &self.weights[self.tap * self.len..][..self.len];
        self.tap += 1;
        Some((first, weights))
    }
}

#[inline(always)]
fn depthwise_row(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, acc: &mut [i32]) {
    let c = g.channels;
    for (ox, sums) in acc.chunks_exact_mut(c).enumerate() {
        sums.copy_from_slice(f.bias);
        for (first, k) in Taps::new(g, f.weights, c, (oy, ox)) {
            let x = &padded[first..][..c];
            for ((s, &x), &k) in sums.iter_mut().zip(x).zip(k) {
                *s = s.wrapping_add(x as i32 * k as i32);
            }
        }
    }
}

/// [`depthwise_row`] with AVX2: 8 channels of one pixel held in a register over every tap, for
/// channel counts that are a multiple of 8 (the others go to [`depthwise_row`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn depthwise_row_avx2(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, acc: &mut [i32]) {
    use std::arch::x86_64::*;
    let c = g.channels;
    if c % 8 != 0 {
        return depthwise_row(padded, g, f, oy, acc);
    }
    // Each load and store goes through a bounds-checked slice of exactly the 8 values (16 or 32
    // bytes) it reads or writes; loadu/storeu need no alignment.
    let widen =
        |s: &[i16]| _mm256_cvtepi16_epi32(unsafe { _mm_loadu_si128(s[..8].as_ptr().cast()) });
    for (ox, sums) in acc.chunks_exact_mut(c).enumerate() {
        for ch in (0..c).step_by(8) {
            let mut s = unsafe { _mm256_loadu_si256(f.bias[ch..][..8].as_ptr().cast()) };
            for (first, k) in Taps::new(g, f.weights, c, (oy, ox)) {
                let x = widen(&padded[first + ch..]);
                s = _mm256_add_epi32(s, _mm256_mullo_epi32(x, widen(&k[ch..])));
            }
            unsafe { _mm256_storeu_si256(sums[ch..][..8].as_mut_ptr().cast(), s) };
        }
    }
}

/// TFLite's OHWI convolution weights (`outputs` filters of `taps` x `inputs` values) in the order
/// the full convolution reads them: `[tap][input pair][output][2]`, the two values of a pair being
/// input channels `2j` and `2j + 1` (the second 0 when `inputs` is odd). A pair of inputs times a
/// pair of weights is one `vpmaddwd` lane on x86-64.
pub fn pack_full(ohwi: &[i16], outputs: usize, taps: usize, inputs: usize) -> Vec<i16> {
    let pairs = inputs.div_ceil(2);
    let mut out = vec![0; packed_full_len(outputs, taps, inputs)];
    for (o, filter) in ohwi.chunks_exact(taps * inputs).enumerate().take(outputs) {
        for (t, tap) in filter.chunks_exact(inputs).enumerate() {
            for (i, &w) in tap.iter().enumerate() {
                out[((t * pairs + i / 2) * outputs + o) * 2 + i % 2] = w;
            }
        }
    }
    out
}

/// The length [`pack_full`] gives.
pub fn packed_full_len(outputs: usize, taps: usize, inputs: usize) -> usize {
    taps * inputs.div_ceil(2) * outputs * 2
}

/// The two input values of pair `j` at `first` (the second beyond the pixel when the channel
/// count is odd, where its weight is 0; the padded input has one spare value at its end for it).
#[inline(always)]
fn pair(padded: &[i16], first: usize, j: usize) -> (i32, i32) {
    let x = &padded[first + 2 * j..][..2];
    (x[0] as i32, x[1] as i32)
}

#[inline(always)]
fn full_row(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, acc: &mut [i32]) {
    let (o, c) = (g.outputs, g.channels);
    let sw = g.stride.1;
    let pairs = c.div_ceil(2);
    let step = sw * c;
    let mut blocks = acc.chunks_exact_mut(BLOCK * o);
    let mut ox = 0;
    // Plain loops, no closures: a closure would be compiled on its own, without the caller's
    // target features, and the zips leave the compiler no bounds to check in the inner loop.
    for sums in &mut blocks {
        let (s0, rest) = sums.split_at_mut(o);
        let (s1, rest) = rest.split_at_mut(o);
        let (s2, s3) = rest.split_at_mut(o);
        for s in [&mut *s0, &mut *s1, &mut *s2, &mut *s3] {
            s.copy_from_slice(f.bias);
        }
        for (first, rows) in Taps::new(g, f.weights, pairs * o * 2, (oy, ox)) {
            for (j, w) in rows.chunks_exact(o * 2).enumerate() {
                let (x0, y0) = pair(padded, first, j);
                let (x1, y1) = pair(padded, first + step, j);
                let (x2, y2) = pair(padded, first + 2 * step, j);
                let (x3, y3) = pair(padded, first + 3 * step, j);
                let lanes = s0.iter_mut().zip(&mut *s1).zip(&mut *s2).zip(&mut *s3);
                for ((((a0, a1), a2), a3), w) in lanes.zip(w.chunks_exact(2)) {
                    let (u, v) = (w[0] as i32, w[1] as i32);
                    *a0 = a0.wrapping_add(x0 * u + y0 * v);
                    *a1 = a1.wrapping_add(x1 * u + y1 * v);
                    *a2 = a2.wrapping_add(x2 * u + y2 * v);
                    *a3 = a3.wrapping_add(x3 * u + y3 * v);
                }
            }
        }
        ox += BLOCK;
    }
    for sums in blocks.into_remainder().chunks_exact_mut(o) {
        full_pixel(padded, g, f, oy, ox, sums);
        ox += 1;
    }
}

/// One output pixel of a full convolution, every output channel.
#[inline(always)]
fn full_pixel(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, ox: usize, sums: &mut [i32]) {
    let (o, pairs) = (g.outputs, g.channels.div_ceil(2));
    sums.copy_from_slice(f.bias);
    for (first, rows) in Taps::new(g, f.weights, pairs * o * 2, (oy, ox)) {
        for (j, w) in rows.chunks_exact(o * 2).enumerate() {
            let (x, y) = pair(padded, first, j);
            for (s, w) in sums.iter_mut().zip(w.chunks_exact(2)) {
                *s = s.wrapping_add(x * w[0] as i32 + y * w[1] as i32);
            }
        }
    }
}

/// [`full_row`] with AVX2: [`BLOCK`] pixels times `8 * V` output channels held in registers
/// over every tap and input pair, each step one `vpmaddwd` per pixel and 8 outputs (two
/// multiply-adds per lane, exact: a product is at most 255 x 128 in magnitude). Output counts
/// that are not a multiple of 8 go to [`full_row`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn full_row_avx2(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, acc: &mut [i32]) {
    match g.outputs {
        o if o % 16 == 0 => full_row_tiles::<2>(padded, g, f, oy, acc),
        o if o % 8 == 0 => full_row_tiles::<1>(padded, g, f, oy, acc),
        _ => full_row(padded, g, f, oy, acc),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn full_row_tiles<const V: usize>(
    padded: &[i16],
    g: &Geometry,
    f: &Filter,
    oy: usize,
    acc: &mut [i32],
) {
    use std::arch::x86_64::*;
    let (o, c) = (g.outputs, g.channels);
    let sw = g.stride.1;
    let pairs = c.div_ceil(2);
    let step = sw * c;
    // Every load and store below goes through a bounds-checked slice of exactly the width read
    // or written (16 i16 or 8 i32, 32 bytes), so the pointers are valid; loadu/storeu need no
    // alignment.
    let load = |s: &[i16]| unsafe { _mm256_loadu_si256(s[..16].as_ptr().cast()) };
    let load32 = |s: &[i32]| unsafe { _mm256_loadu_si256(s[..8].as_ptr().cast()) };
    let broadcast = |first: usize, j: usize| {
        let (x, y) = pair(padded, first, j);
        _mm256_set1_epi32((x as u16 as u32 | (y as u16 as u32) << 16) as i32)
    };
    let blocks = g.out_size.1 / BLOCK;
    for b in 0..blocks {
        let ox = b * BLOCK;
        for oc in (0..o).step_by(8 * V) {
            let mut sums = [[_mm256_setzero_si256(); V]; BLOCK];
            for px in sums.iter_mut() {
                for (v, s) in px.iter_mut().enumerate() {
                    *s = load32(&f.bias[oc + 8 * v..]);
                }
            }
            for (first, rows) in Taps::new(g, f.weights, pairs * o * 2, (oy, ox)) {
                for j in 0..pairs {
                    let mut w = [_mm256_setzero_si256(); V];
                    for (v, w) in w.iter_mut().enumerate() {
                        *w = load(&rows[(j * o + oc + 8 * v) * 2..]);
                    }
                    for (p, px) in sums.iter_mut().enumerate() {
                        let x = broadcast(first + p * step, j);
                        for (s, &w) in px.iter_mut().zip(&w) {
                            *s = _mm256_add_epi32(*s, _mm256_madd_epi16(x, w));
                        }
                    }
                }
            }
            for (p, px) in sums.iter().enumerate() {
                for (v, s) in px.iter().enumerate() {
                    let out = &mut acc[(ox + p) * o + oc + 8 * v..][..8];
                    // SAFETY: `out` is 8 i32, the 32 bytes stored.
                    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), *s) };
                }
            }
        }
    }
    let tail = &mut acc[blocks * BLOCK * o..];
    for (k, sums) in tail.chunks_exact_mut(o).enumerate() {
        full_pixel(padded, g, f, oy, blocks * BLOCK + k, sums);
    }
}

/// Requantizes a row of sums, `channels` to a pixel, into int8: exactly what
/// [`Requantize::apply`] gives for each, in a form a vector unit can take many at a time.
#[inline(always)]
pub fn requantize_row(r: &Requantize, acc: &[i32], channels: usize, out: &mut [i8]) {
    let (zero, clamp) = (r.zero_point, r.clamp);
    if let [m] = r.multipliers[..] {
        for (o, &a) in out.iter_mut().zip(acc) {
            *o = requantize_one(a, m, zero, clamp);
        }
    } else {
        let ms = &r.multipliers[..channels];
        for (px, sums) in out
            .chunks_exact_mut(channels)
            .zip(acc.chunks_exact(channels))
        {
            for ((o, &a), &m) in px.iter_mut().zip(sums).zip(ms) {
                *o = requantize_one(a, m, zero, clamp);
            }
        }
    }
}

/// [`QuantizedMultiplier::apply`], the zero point and the clamp, without branches.
#[inline(always)]
fn requantize_one(acc: i32, m: QuantizedMultiplier, zero: i32, (lo, hi): (i32, i32)) -> i8 {
    scale(acc, m).saturating_add(zero).clamp(lo, hi) as i8
}

/// [`QuantizedMultiplier::apply`] without branches: the rounding high multiply as
/// `(ab + 2^30) >> 31`, which is gemmlowp's nudge-and-truncate (for a negative product, truncating
/// `ab + 1 - 2^30` toward zero is flooring `ab + 2^30`), and the rounding shift with its threshold
/// as a comparison.
#[inline(always)]
fn scale(acc: i32, m: QuantizedMultiplier) -> i32 {
    let left = m.shift.clamp(0, 30) as u32;
    let right = (-m.shift).clamp(0, 31) as u32;
    let x = acc.wrapping_shl(left);
    let high = ((x as i64 * m.multiplier as i64 + (1 << 30)) >> 31) as i32;
    // The one product that overflows: gemmlowp saturates it.
    let high = if x == i32::MIN && m.multiplier == i32::MIN {
        i32::MAX
    } else {
        high
    };
    let mask = (1u32 << right).wrapping_sub(1) as i32;
    let threshold = (mask >> 1) + i32::from(high < 0);
    (high >> right) + i32::from(high & mask > threshold)
}

/// TFLite's int8 `AddElementwise` over two operands of one shape: each value plus its offset,
/// shifted left by `left_shift` and scaled by its multiplier, the two summed and requantized by
/// `output` (one multiplier). Picks the AVX2 build on x86-64 where the CPU has it.
pub fn add(
    (a, b): (&[i8], &[i8]),
    offsets: (i32, i32),
    multipliers: (QuantizedMultiplier, QuantizedMultiplier),
    left_shift: u32,
    output: &Requantize,
    out: &mut [i8],
) {
    #[inline(always)]
    fn run(
        (a, b): (&[i8], &[i8]),
        (oa, ob): (i32, i32),
        (ma, mb): (QuantizedMultiplier, QuantizedMultiplier),
        left_shift: u32,
        r: &Requantize,
        out: &mut [i8],
    ) {
        let m = r.multipliers[0];
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            let a = scale((a as i32 + oa) << left_shift, ma);
            let b = scale((b as i32 + ob) << left_shift, mb);
            *o = requantize_one(a.wrapping_add(b), m, r.zero_point, r.clamp);
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(
        inputs: (&[i8], &[i8]),
        offsets: (i32, i32),
        multipliers: (QuantizedMultiplier, QuantizedMultiplier),
        left_shift: u32,
        r: &Requantize,
        out: &mut [i8],
    ) {
        run(inputs, offsets, multipliers, left_shift, r, out)
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `run_avx2` needs nothing but AVX2, which the CPU has just reported.
        return unsafe { run_avx2((a, b), offsets, multipliers, left_shift, output, out) };
    }
    run((a, b), offsets, multipliers, left_shift, output, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift for test data.
    fn noise(seed: &mut u32) -> u32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        *seed
    }

    /// The portable build and the one [`convolve`] picks on this CPU both give `want`.
    fn assert_both_builds_give(padded: &[i16], g: &Geometry, f: &Filter, want: &[i8], what: &str) {
        let mut acc = Vec::new();
        let (mut any, mut picked) = (vec![0i8; want.len()], vec![0i8; want.len()]);
        convolve_any(padded, g, f, &mut acc, &mut any);
        convolve(padded, g, f, &mut acc, &mut picked);
        assert_eq!(any, want, "portable build, {what}");
        assert_eq!(picked, want, "picked build, {what}");
    }

    /// Full convolutions, odd and even channel counts, output counts on and off the AVX2 tiles,
    /// strides 1 and 2: every build of the kernels (the portable one and, where the CPU has it,
    /// AVX2) gives the sums of the textbook loop over TFLite's OHWI weights, requantized.
    #[test]
    fn full_convolutions_equal_the_textbook_loop() {
        let mut seed = 99;
        for (c, o, k, stride) in [(1, 8, 3, 1), (6, 16, 3, 2), (5, 24, 1, 1), (4, 7, 3, 1)] {
            let (ph, pw) = (9, 11);
            let (oh, ow) = ((ph - k) / stride + 1, (pw - k) / stride + 1);
            let mut padded: Vec<i16> = (0..ph * pw * c)
                .map(|_| (noise(&mut seed) % 511) as i16 - 255)
                .collect();
            padded.push(0);
            let ohwi: Vec<i16> = (0..o * k * k * c)
                .map(|_| (noise(&mut seed) % 255) as i16 - 127)
                .collect();
            let bias: Vec<i32> = (0..o).map(|_| noise(&mut seed) as i32 >> 16).collect();
            let r = Requantize {
                multipliers: (0..o)
                    .map(|j| QuantizedMultiplier::new(0.0007 * (j + 1) as f64))
                    .collect(),
                zero_point: -3,
                clamp: (-128, 127),
            };
            let g = Geometry {
                padded_width: pw,
                channels: c,
                outputs: o,
                out_size: (oh, ow),
                kernel: (k, k),
                stride: (stride, stride),
            };
            let weights = pack_full(&ohwi, o, k * k, c);
            assert_eq!(weights.len(), packed_full_len(o, k * k, c));
            let f = Filter {
                weights: &weights,
                bias: &bias,
                depthwise: false,
                requantize: &r,
            };
            let mut want = vec![0i8; oh * ow * o];
            for (n, w) in want.iter_mut().enumerate() {
                let (y, x, j) = (n / (ow * o), n / o % ow, n % o);
                let mut sum = bias[j];
                for ky in 0..k {
                    for kx in 0..k {
                        for i in 0..c {
                            let v = padded[((y * stride + ky) * pw + x * stride + kx) * c + i];
                            sum += v as i32 * ohwi[((j * k + ky) * k + kx) * c + i] as i32;
                        }
                    }
                }
                *w = r.apply(j, sum);
            }
            let what = format!("{c} -> {o}, {k}x{k} stride {stride}");
            assert_both_builds_give(&padded, &g, &f, &want, &what);
        }
    }

    /// Depthwise convolutions, channel counts on and off the AVX2 path: every build gives the
    /// textbook sums, requantized.
    #[test]
    fn depthwise_convolutions_equal_the_textbook_loop() {
        let mut seed = 5;
        for (c, k, stride) in [(16, 3, 1), (8, 3, 2), (5, 3, 1)] {
            let (ph, pw) = (8, 10);
            let (oh, ow) = ((ph - k) / stride + 1, (pw - k) / stride + 1);
            let mut padded: Vec<i16> = (0..ph * pw * c)
                .map(|_| (noise(&mut seed) % 511) as i16 - 255)
                .collect();
            padded.push(0);
            let weights: Vec<i16> = (0..k * k * c)
                .map(|_| (noise(&mut seed) % 255) as i16 - 127)
                .collect();
            let bias: Vec<i32> = (0..c).map(|_| noise(&mut seed) as i32 >> 18).collect();
            let r = Requantize {
                multipliers: (0..c)
                    .map(|j| QuantizedMultiplier::new(0.002 * (j + 1) as f64))
                    .collect(),
                zero_point: 4,
                clamp: (-128, 127),
            };
            let g = Geometry {
                padded_width: pw,
                channels: c,
                outputs: c,
                out_size: (oh, ow),
                kernel: (k, k),
                stride: (stride, stride),
            };
            let f = Filter {
                weights: &weights,
                bias: &bias,
                depthwise: true,
                requantize: &r,
            };
            let mut want = vec![0i8; oh * ow * c];
            for (n, w) in want.iter_mut().enumerate() {
                let (y, x, j) = (n / (ow * c), n / c % ow, n % c);
                let mut sum = bias[j];
                for ky in 0..k {
                    for kx in 0..k {
                        let v = padded[((y * stride + ky) * pw + x * stride + kx) * c + j];
                        sum += v as i32 * weights[(ky * k + kx) * c + j] as i32;
                    }
                }
                *w = r.apply(j, sum);
            }
            let what = format!("depthwise {c}, {k}x{k} stride {stride}");
            assert_both_builds_give(&padded, &g, &f, &want, &what);
        }
    }

    /// ADD's row equals the scalar TFLite arithmetic, value for value.
    #[test]
    fn add_equals_the_scalar_addition() {
        let mut seed = 7;
        let a: Vec<i8> = (0..1000).map(|_| noise(&mut seed) as i8).collect();
        let b: Vec<i8> = (0..1000).map(|_| noise(&mut seed) as i8).collect();
        let ms = (
            QuantizedMultiplier::new(0.31),
            QuantizedMultiplier::new(0.5),
        );
        let r = Requantize {
            multipliers: vec![QuantizedMultiplier::new(1.7e-6)],
            zero_point: 5,
            clamp: (-128, 127),
        };
        let mut out = vec![0i8; a.len()];
        add((&a, &b), (12, -4), ms, 20, &r, &mut out);
        for ((&o, &a), &b) in out.iter().zip(&a).zip(&b) {
            let sum = ms.0.apply((a as i32 + 12) << 20) + ms.1.apply((b as i32 - 4) << 20);
            assert_eq!(o, r.apply(0, sum), "{a} + {b}");
        }
    }

    /// The branch-free requantization equals the scalar one, value for value, over multipliers
    /// of every shift and sums from the extremes through the small ones a layer makes.
    #[test]
    fn requantize_row_equals_the_scalar_requantization() {
        let mut multipliers: Vec<QuantizedMultiplier> = [
            1e-9, 3.1e-5, 0.000_731, 0.0042, 0.013, 0.25, 0.3, 0.5, 0.999_999, 1.0, 3.0, 1234.5,
        ]
        .iter()
        .map(|&r| QuantizedMultiplier::new(r))
        .collect();
        multipliers.push(QuantizedMultiplier {
            multiplier: i32::MIN,
            shift: 0,
        });
        multipliers.push(QuantizedMultiplier {
            multiplier: i32::MAX,
            shift: -31,
        });
        let mut sums: Vec<i32> = vec![i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
        let mut x: u32 = 12345;
        for _ in 0..4000 {
            // A small xorshift: spread values, some huge, most within a layer's range.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            sums.push(x as i32 >> (x % 24));
        }
        for r in [
            Requantize {
                multipliers: multipliers.clone(),
                zero_point: -7,
                clamp: (-128, 127),
            },
            Requantize {
                multipliers: vec![QuantizedMultiplier::new(0.0061)],
                zero_point: 3,
                clamp: (-100, 90),
            },
        ] {
            let channels = r.multipliers.len();
            let n = sums.len() / channels * channels;
            let mut out = vec![0i8; n];
            requantize_row(&r, &sums[..n], channels, &mut out);
            for (k, (&got, &a)) in out.iter().zip(&sums[..n]).enumerate() {
                assert_eq!(
                    got,
                    r.apply(k % channels, a),
                    "sum {a}, channel {}",
                    k % channels
                );
            }
        }
    }
}
