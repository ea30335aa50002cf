//! `[source]`: where frames come from, and the source's rules for its numbers (the frame rate and
//! the frame size), which the configuration and `emotiond run --fps` both apply.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

use crate::config::values;

/// Where frames come from, as `kind:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A V4L2 camera device.
    V4l2(PathBuf),
    /// The Pi camera module through `rpicam-vid`.
    Rpicam,
    /// A Y4M file, or standard input for `-`.
    Y4m(PathBuf),
    /// A folder of images in name order.
    Images(PathBuf),
}

impl SourceSpec {
    /// A camera (retried when missing or lost) rather than a file or a pipe.
    pub fn is_live(&self) -> bool {
        matches!(self, SourceSpec::V4l2(_) | SourceSpec::Rpicam)
    }
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "source {s:?}: expected v4l2:/dev/videoN, rpicam, y4m:PATH, y4m:- or images:DIR"
            )
        };
        if s == "rpicam" {
            return Ok(SourceSpec::Rpicam);
        }
        let (kind, path) = s.split_once(':').ok_or_else(bad)?;
        if path.is_empty() {
            return Err(bad());
        }
        let path = PathBuf::from(path);
        match kind {
            "v4l2" => Ok(SourceSpec::V4l2(path)),
            "y4m" => Ok(SourceSpec::Y4m(path)),
            "images" => Ok(SourceSpec::Images(path)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::V4l2(p) => write!(f, "v4l2:{}", p.display()),
            SourceSpec::Rpicam => f.write_str("rpicam"),
            SourceSpec::Y4m(p) => write!(f, "y4m:{}", p.display()),
            SourceSpec::Images(p) => write!(f, "images:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SourceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// The V4L2 pixel format to ask a camera for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormatChoice {
    /// The best the camera offers: GREY, NV12, YU12, YUYV, then MJPEG.
    #[default]
    Auto,
    /// 8-bit gray.
    Grey,
    /// Packed 4:2:2.
    Yuyv,
    /// Y plane then interleaved CbCr.
    Nv12,
    /// Y, U and V planes (I420).
    Yu12,
    /// Motion JPEG.
    Mjpeg,
}

/// `[source]`: where frames come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `v4l2:/dev/videoN`, `rpicam`, `y4m:PATH`, `y4m:-` or `images:DIR`.
    pub input: SourceSpec,
    /// Requested frame width for cameras (the driver may pick the nearest it has).
    #[serde(deserialize_with = "read_side")]
    pub width: u32,
    /// Requested frame height for cameras.
    #[serde(deserialize_with = "read_side")]
    pub height: u32,
    /// Requested frame rate for cameras; for `images` and `y4m` files, the replay rate (0 = as fast as
    /// the pipeline goes).
    #[serde(deserialize_with = "read_fps")]
    pub fps: f64,
    /// V4L2 pixel format: `auto` picks the best the camera offers (GREY, NV12, YU12, YUYV, MJPEG).
    pub format: PixelFormatChoice,
    /// The program that reads the Pi camera module (`rpicam` source).
    pub rpicam_command: PathBuf,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            input: SourceSpec::V4l2(PathBuf::from("/dev/video0")),
            width: 640,
            height: 480,
            fps: 15.0,
            format: PixelFormatChoice::Auto,
            rpicam_command: PathBuf::from("rpicam-vid"),
        }
    }
}

impl SourceConfig {
    /// Why `width x height` cannot be asked for, if it cannot: each side may be right while the two
    /// together are more pixels than any frame emotiond takes ([`crate::frame::check_size`]).
    pub fn problem(&self) -> Option<String> {
        crate::frame::check_size(u64::from(self.width), u64::from(self.height))
            .err()
            .map(|e| format!("source.width x source.height: {e}"))
    }
}

/// The one rule for a frame rate (`source.fps` and `run --fps`): 0 (files: as fast as the
/// pipeline goes) or 0.1 to 1000 frames per second.
pub fn check_fps(v: f64) -> Result<f64, String> {
    if v == 0.0 || (v.is_finite() && (0.1..=1000.0).contains(&v)) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is out of range: expected 0 (as fast as the pipeline goes) or 0.1 to 1000 frames per second"
        ))
    }
}

/// The rule for a requested frame side (`source.width`, `source.height`): 16 pixels to the shared
/// frame bound, [`crate::frame::MAX_SIDE`].
pub fn frame_side(v: i64) -> Result<u32, String> {
    let hi = crate::frame::MAX_SIDE as i64;
    values::count(v, 16, hi, &format!("expected 16 to {hi} pixels"))
}

fn read_fps<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    values::read(d, check_fps)
}

fn read_side<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, frame_side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_rule_sees_both_sides() {
        assert_eq!(SourceConfig::default().problem(), None);
        let big = SourceConfig {
            width: 8192,
            height: 8192,
            ..SourceConfig::default()
        };
        assert!(big.problem().unwrap().contains("8192x8192"));
        assert!(frame_side(15).unwrap_err().contains("16 to 8192"));
        assert_eq!(check_fps(0.0), Ok(0.0));
        assert!(check_fps(1e-20).is_err());
    }
}
