//! TFLite's fixed-point requantization, exactly: real multipliers turned into a 31-bit significand
//! and a power of two (`QuantizeMultiplier`), and the integer product that applies them
//! (`SaturatingRoundingDoublingHighMul`, then `RoundingDivideByPOT`), as in TFLite's
//! `kernels/internal/common.h` and gemmlowp's `fixedpoint.h` (the default, double-rounding build).

/// A real multiplier as TFLite stores it: `multiplier * 2^(shift - 31)`, the significand in
/// `[2^30, 2^31)` (or 0 for a multiplier of 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizedMultiplier {
    /// The significand, a Q0.31 fixed-point number.
    pub multiplier: i32,
    /// The power of two: positive shifts left, negative right.
    pub shift: i32,
}

impl QuantizedMultiplier {
    /// TFLite's `QuantizeMultiplier`: `frexp`, the fraction rounded half away from zero to 31 bits,
    /// a fraction that rounds up to 1 taken back to 1/2 with the exponent raised, and multipliers
    /// below 2^-31 flushed to 0.
    pub fn new(real: f64) -> Self {
        if real == 0.0 || !real.is_finite() {
            return Self {
                multiplier: 0,
                shift: 0,
            };
        }
        let (fraction, mut shift) = frexp(real);
        let mut fixed = (fraction * (1i64 << 31) as f64).round() as i64;
        if fixed == 1i64 << 31 {
            fixed /= 2;
            shift += 1;
        }
        if shift < -31 {
            return Self {
                multiplier: 0,
                shift: 0,
            };
        }
        Self {
            multiplier: fixed as i32,
            shift,
        }
    }

    /// TFLite's `MultiplyByQuantizedMultiplier(x, multiplier, shift)`.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        // Shifts are within [-31, 30] for every multiplier the loader accepts.
        let left = self.shift.clamp(0, 30);
        let right = (-self.shift).clamp(0, 31);
        rounding_divide_by_pot(
            saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left), self.multiplier),
            right,
        )
    }
}

/// `frexp` for finite non-zero `x`: `x = fraction * 2^exponent` with `|fraction|` in `[0.5, 1)`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (f, e) = frexp(x * (1u64 << 54) as f64);
        return (f, e - 54);
    }
    let exponent = biased - 1022;
    let fraction = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (fraction, exponent)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2ab`, rounded to nearest
/// (ties upward: -3.5 gives -3), saturating the one overflowing case `a = b = i32::MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    // Rust's `/` truncates toward zero, as C++'s does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_matches_the_c_library() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    #[test]
    fn multipliers_quantize_as_tflite_does() {
        // 0.5 = 2^30 * 2^(0-31)
        assert_eq!(
            QuantizedMultiplier::new(0.5),
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        // A fraction that rounds up to 1 becomes 1/2 with the exponent one higher.
        let q = QuantizedMultiplier::new(1.0 - 1e-12);
        assert_eq!((q.multiplier, q.shift), (1 << 30, 1));
        assert_eq!(QuantizedMultiplier::new(1e-12).multiplier, 0);
        assert_eq!(QuantizedMultiplier::new(0.0).multiplier, 0);
    }

    #[test]
    fn rounding_is_to_nearest_with_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        // x * 0.5: 3.5 rounds to 4, but -3.5 to -3: the high-mul's nudge for a negative product
        // is 1 - 2^30, and the division then truncates toward zero.
        let half = QuantizedMultiplier::new(0.5);
        assert_eq!(half.apply(7), 4);
        assert_eq!(half.apply(-7), -3);
        // A left shift: x * 3.0.
        assert_eq!(QuantizedMultiplier::new(3.0).apply(1000), 3000);
        // Double rounding, as TFLite's default build does it: 0.3 * 5 = 1.5 -> 2 here.
        let q = QuantizedMultiplier::new(0.3);
        let exact = 5.0 * 0.3;
        assert!((q.apply(5) as f64 - exact).abs() <= 0.5 + 1e-9);
    }
}
