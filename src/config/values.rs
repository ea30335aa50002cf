//! The generic pieces the stages' settings are built from: the out-of-range message every check
//! shares, whole-number and seconds ranges, the 0-to-1 [`Fraction`], and `read`, which turns a
//! stage's rule into a serde `deserialize_with` check. The settings themselves, and the rules that
//! say which values are right, live with the stage that owns them (`crate::source::settings`,
//! `crate::detect::settings`, ...); each rule fails with a message that says what would be right,
//! and the TOML reader adds the line.

use std::fmt;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

/// Reads a `R` and passes it through `rule`, whose message becomes the serde error (and so gets
/// the line): how a stage's settings apply its rules as they are read.
pub(crate) fn read<'de, D, R, T>(d: D, rule: fn(R) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
{
    rule(R::deserialize(d)?).map_err(D::Error::custom)
}

/// `v` when `ok`, else an out-of-range message saying what was `expected`.
pub(crate) fn in_range<T: fmt::Display>(v: T, ok: bool, expected: &str) -> Result<T, String> {
    if ok {
        Ok(v)
    } else {
        Err(format!("{v} is out of range: {expected}"))
    }
}

/// A whole number from `lo` to `hi` (both at least 0, at most `u32::MAX`).
pub(crate) fn count(v: i64, lo: i64, hi: i64, expected: &str) -> Result<u32, String> {
    in_range(v, (lo..=hi).contains(&v), expected).map(|v| v as u32)
}

/// A count of frames or steps: 1 to 10000.
pub(crate) fn positive(v: i64) -> Result<u32, String> {
    count(v, 1, 10_000, "expected 1 to 10000")
}

/// An interval: 0 to 86400 seconds (a day).
pub(crate) fn seconds(v: f64) -> Result<f64, String> {
    let ok = v.is_finite() && (0.0..=86_400.0).contains(&v);
    in_range(v, ok, "expected seconds from 0 to 86400")
}

/// A number from 0 to 1 (the rule behind [`Fraction`]).
pub(crate) fn fraction(v: f32) -> Result<f32, String> {
    let ok = v.is_finite() && (0.0..=1.0).contains(&v);
    in_range(v, ok, "expected a number from 0 to 1")
}

/// A number from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fraction(pub f32);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        fraction(v as f32).map(Fraction).map_err(D::Error::custom)
    }
}
