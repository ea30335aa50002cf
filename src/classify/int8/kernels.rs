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
    /// Depthwise: `[tap][channel]`; full: `[tap][input channel][output channel]`.
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
    convolve_any(padded, g, f, acc, out)
}

#[inline(always)]
fn convolve_any(padded: &[i16], g: &Geometry, f: &Filter, acc: &mut Vec<i32>, out: &mut [i8]) {
    let (oh, ow) = g.out_size;
    let row = ow * g.outputs;
    acc.clear();
    acc.resize(row, 0);
    for (oy, out_row) in out.chunks_exact_mut(row).take(oh).enumerate() {
        if f.depthwise {
            depthwise_row(padded, g, f, oy, acc);
        } else {
            full_row(padded, g, f, oy, acc);
        }
        requantize_row(f.requantize, acc, g.outputs, out_row);
    }
}

/// Index of the first value of input pixel (`y`, `x`) in the padded image.
#[inline(always)]
fn at(g: &Geometry, y: usize, x: usize) -> usize {
    (y * g.padded_width + x) * g.channels
}

#[inline(always)]
fn depthwise_row(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, acc: &mut [i32]) {
    let c = g.channels;
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    for (ox, sums) in acc.chunks_exact_mut(c).enumerate() {
        sums.copy_from_slice(f.bias);
        for ky in 0..kh {
            for kx in 0..kw {
                let x = &padded[at(g, oy * sh + ky, ox * sw + kx)..][..c];
                let k = &f.weights[(ky * kw + kx) * c..][..c];
                for ((s, &x), &k) in sums.iter_mut().zip(x).zip(k) {
                    *s = s.wrapping_add(x as i32 * k as i32);
                }
            }
        }
    }
}

#[inline(always)]
fn full_row(padded: &[i16], g: &Geometry, f: &Filter, oy: usize, acc: &mut [i32]) {
    let o = g.outputs;
    let mut blocks = acc.chunks_exact_mut(BLOCK * o);
    let mut ox = 0;
    for sums in &mut blocks {
        let (s0, rest) = sums.split_at_mut(o);
        let (s1, rest) = rest.split_at_mut(o);
        let (s2, s3) = rest.split_at_mut(o);
        for s in [&mut *s0, &mut *s1, &mut *s2, &mut *s3] {
            s.copy_from_slice(f.bias);
        }
        each_tap(g, oy, ox, |tap, first| {
            let step = g.stride.1 * g.channels;
            for i in 0..g.channels {
                let w = &f.weights[(tap * g.channels + i) * o..][..o];
                let x = |p: usize| padded[first + p * step + i] as i32;
                let (x0, x1, x2, x3) = (x(0), x(1), x(2), x(3));
                for (j, &w) in w.iter().enumerate() {
                    let w = w as i32;
                    s0[j] = s0[j].wrapping_add(x0 * w);
                    s1[j] = s1[j].wrapping_add(x1 * w);
                    s2[j] = s2[j].wrapping_add(x2 * w);
                    s3[j] = s3[j].wrapping_add(x3 * w);
                }
            }
        });
        ox += BLOCK;
    }
    for sums in blocks.into_remainder().chunks_exact_mut(o) {
        sums.copy_from_slice(f.bias);
        each_tap(g, oy, ox, |tap, first| {
            for i in 0..g.channels {
                let w = &f.weights[(tap * g.channels + i) * o..][..o];
                let x = padded[first + i] as i32;
                for (s, &w) in sums.iter_mut().zip(w) {
                    *s = s.wrapping_add(x * w as i32);
                }
            }
        });
        ox += 1;
    }
}

/// Calls `add(tap, first)` for every kernel tap of output pixel (`oy`, `ox`), `first` being the
/// index of that tap's first input value.
#[inline(always)]
fn each_tap(g: &Geometry, oy: usize, ox: usize, mut add: impl FnMut(usize, usize)) {
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    for ky in 0..kh {
        for kx in 0..kw {
            add(ky * kw + kx, at(g, oy * sh + ky, ox * sw + kx));
        }
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

/// [`QuantizedMultiplier::apply`], the zero point and the clamp, without branches: the rounding
/// high multiply as `(ab + 2^30) >> 31`, which is gemmlowp's nudge-and-truncate (for a negative
/// product, truncating `ab + 1 - 2^30` toward zero is flooring `ab + 2^30`), and the rounding
/// shift with its threshold as a comparison.
#[inline(always)]
fn requantize_one(acc: i32, m: QuantizedMultiplier, zero: i32, (lo, hi): (i32, i32)) -> i8 {
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
    let scaled = (high >> right) + i32::from(high & mask > threshold);
    scaled.saturating_add(zero).clamp(lo, hi) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

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
