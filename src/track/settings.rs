//! `[track]`: identity over time, smoothing and hysteresis, and the tracker's rules for them, which
//! the configuration applies as the keys are read and [`TrackParams::validate`] applies to
//! parameters from anywhere else.

use serde::{Deserialize, Deserializer};

use super::TrackParams;
use crate::config::values::{self, Fraction};

/// Which face drives the LEDs when several are in view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Drive {
    /// The largest box: usually the nearest person.
    #[default]
    Largest,
    /// The face whose reported emotion has the highest smoothed probability.
    MostConfident,
    /// The face seen first (the oldest track).
    First,
}

/// `[track]`: identity over time, smoothing and hysteresis.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackConfig {
    /// Least box overlap (IoU) for a face to continue a track, 0 to 1.
    pub min_iou: Fraction,
    /// Consecutive frames a face must be seen before it is reported ([`frames`]).
    #[serde(deserialize_with = "read_frames")]
    pub confirm_frames: u32,
    /// Consecutive frames without the face before its track ends ([`frames`]).
    #[serde(deserialize_with = "read_frames")]
    pub drop_frames: u32,
    /// Weight of the newest frame in the moving average of probabilities (1 = no smoothing;
    /// [`smoothing`]).
    #[serde(deserialize_with = "read_smoothing")]
    pub smoothing: f32,
    /// Margin another emotion must lead by before the reported emotion changes, 0 to 1.
    pub hysteresis: Fraction,
    /// Which face drives the LEDs: `largest`, `most-confident` or `first`.
    pub drive: Drive,
}

impl Default for TrackConfig {
    fn default() -> Self {
        let p = TrackParams::default();
        TrackConfig {
            min_iou: Fraction(p.min_iou),
            confirm_frames: p.confirm_hits,
            drop_frames: p.drop_misses,
            smoothing: p.alpha,
            hysteresis: Fraction(p.hysteresis),
            drive: Drive::Largest,
        }
    }
}

impl TrackConfig {
    /// The tracker parameters these settings give.
    pub fn params(&self) -> TrackParams {
        TrackParams {
            min_iou: self.min_iou.0,
            confirm_hits: self.confirm_frames,
            drop_misses: self.drop_frames,
            alpha: self.smoothing,
            hysteresis: self.hysteresis.0,
        }
    }
}

/// A frame count (`confirm_frames`, `drop_frames`): 1 to 10000.
pub fn frames(v: i64) -> Result<u32, String> {
    values::positive(v)
}

/// The smoothing weight (`smoothing`, the tracker's `alpha`): above 0 (0 would never let a new
/// frame in) and at most 1 (no smoothing).
pub fn smoothing(v: f32) -> Result<f32, String> {
    let ok = v > 0.0 && v <= 1.0;
    values::in_range(
        v,
        ok,
        "expected a weight above 0 and at most 1 (1 = no smoothing)",
    )
}

/// An overlap or a margin (`min_iou`, `hysteresis`): a number from 0 to 1, as [`Fraction`] reads.
pub fn fraction(v: f32) -> Result<f32, String> {
    values::fraction(v)
}

fn read_frames<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, frames)
}

fn read_smoothing<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f64::deserialize(d)?;
    smoothing(v as f32).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::config_says;

    #[test]
    fn smoothing_zero_is_refused_by_the_config_and_the_tracker_alike() {
        let from_config = config_says("[track]\nsmoothing = 0\n");
        let err = TrackParams {
            alpha: 0.0,
            ..TrackParams::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(from_config.contains("above 0"), "{from_config}");
        assert!(err.contains(&from_config), "{err} / {from_config}");
        assert_eq!(smoothing(1.0), Ok(1.0));
    }

    #[test]
    fn overlaps_and_frame_counts_have_one_rule() {
        for (text, params) in [
            (
                "[track]\nmin_iou = 1.5\n",
                TrackParams {
                    min_iou: 1.5,
                    ..TrackParams::default()
                },
            ),
            (
                "[track]\nconfirm_frames = 0\n",
                TrackParams {
                    confirm_hits: 0,
                    ..TrackParams::default()
                },
            ),
            (
                "[track]\ndrop_frames = 20000\n",
                TrackParams {
                    drop_misses: 20_000,
                    ..TrackParams::default()
                },
            ),
        ] {
            let from_config = config_says(text);
            let err = params.validate().unwrap_err().to_string();
            assert!(err.contains(&from_config), "{err} / {from_config}");
        }
    }
}
