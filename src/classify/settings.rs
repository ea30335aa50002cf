//! `[classify]`: the model and the face crop, and the crop's rules for its margins, which the
//! configuration, [`CropRule::validate`] and `--offsets`/`--relative-offsets` all apply.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::crop::{CropRule, Offsets};

/// `[classify]`: the model and the face crop.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyConfig {
    /// The `.tflite` model; unset means `emotion_mini_xception_f32.tflite` from the models directory.
    pub model: Option<PathBuf>,
    /// Margin around the squared face in pixels, `[x, y]` (fer's `[10, 10]` when neither this nor
    /// `relative_offsets` is set; [`pixel_offsets`]).
    #[serde(deserialize_with = "read_pixel_offsets")]
    pub offsets: Option<[i32; 2]>,
    /// Margin as a fraction of the face side, `[fx, fy]`, instead of pixels ([`relative_offsets`]).
    #[serde(deserialize_with = "read_relative_offsets")]
    pub relative_offsets: Option<[f32; 2]>,
}

impl ClassifyConfig {
    /// The crop rule these settings give.
    pub fn rule(&self) -> CropRule {
        match (self.relative_offsets, self.offsets) {
            (Some([x, y]), _) => CropRule {
                offsets: Offsets::Proportional { x, y },
            },
            (None, Some([x, y])) => CropRule {
                offsets: Offsets::Pixels { x, y },
            },
            (None, None) => CropRule::fer(),
        }
    }

    /// Why these settings cannot be used together, if they cannot: both kinds of margin set.
    pub fn problem(&self) -> Option<String> {
        (self.offsets.is_some() && self.relative_offsets.is_some())
            .then(|| "classify: set offsets or relative_offsets, not both".to_string())
    }
}

/// Pixel margins, left/right and above/below: whole pixels from 0 to 1000 each.
pub fn pixel_offsets(x: i64, y: i64) -> Result<[i32; 2], String> {
    if [x, y].iter().all(|v| (0..=1000).contains(v)) {
        Ok([x as i32, y as i32])
    } else {
        Err(format!(
            "pixel offsets {x}, {y}: expected two whole pixel counts from 0 to 1000 (fer's are 10, 10)"
        ))
    }
}

/// Proportional margins, as fractions of the squared box side: numbers from 0 to 2 each.
pub fn relative_offsets(x: f32, y: f32) -> Result<[f32; 2], String> {
    if [x, y]
        .iter()
        .all(|v| v.is_finite() && (0.0..=2.0).contains(v))
    {
        Ok([x, y])
    } else {
        Err(format!(
            "relative offsets {x}, {y}: expected two fractions from 0 to 2 (0.1, 0.1 adds 10% each side)"
        ))
    }
}

fn read_pixel_offsets<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[i32; 2]>, D::Error> {
    let [x, y] = <[i64; 2]>::deserialize(d)?;
    pixel_offsets(x, y)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn read_relative_offsets<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[f32; 2]>, D::Error> {
    let [x, y] = <[f64; 2]>::deserialize(d)?;
    relative_offsets(x as f32, y as f32)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::config_says;

    #[test]
    fn the_config_and_the_crop_refuse_offsets_with_the_same_words() {
        let from_config = config_says("[classify]\nrelative_offsets = [-0.1, 0]\n");
        let err = CropRule {
            offsets: Offsets::Proportional { x: -0.1, y: 0.0 },
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert_eq!(err, from_config);
        let from_config = config_says("[classify]\noffsets = [1001, 0]\n");
        let err = CropRule {
            offsets: Offsets::Pixels { x: 1001, y: 0 },
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert_eq!(err, from_config);
        assert_eq!(pixel_offsets(10, 10), Ok([10, 10]));
        assert!(relative_offsets(f32::NAN, 0.0).is_err());
    }

    #[test]
    fn both_margins_at_once_are_a_problem() {
        let both = ClassifyConfig {
            offsets: Some([10, 10]),
            relative_offsets: Some([0.1, 0.1]),
            ..ClassifyConfig::default()
        };
        assert!(both.problem().unwrap().contains("not both"));
        assert_eq!(ClassifyConfig::default().problem(), None);
    }
}
