//! `[detect]`: the cascade and `detectMultiScale`'s parameters, and the detector's rules for them.
//!
//! Each rule is a plain function that the configuration applies as a key is read,
//! [`DetectParams::validate`] applies to parameters from anywhere else (`emotiond detect`'s flags,
//! the library), and [`super::thread_pool`] applies to thread counts, so a value is refused by one
//! check with the same words wherever it comes from.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::{DetectParams, MAX_THREADS};
use crate::config::values;
use crate::frame::MAX_SIDE;

/// `[detect]`: the cascade and `detectMultiScale`'s parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Cascade XML; unset means `haarcascade_frontalface_default.xml` from the models directory.
    pub cascade: Option<PathBuf>,
    /// Pyramid step, above 1 and at most 4 ([`scale_factor`]).
    #[serde(deserialize_with = "read_scale_factor")]
    pub scale_factor: f64,
    /// Candidates a face needs (OpenCV's `minNeighbors`), 0 to 100 ([`min_neighbors`]).
    #[serde(deserialize_with = "read_min_neighbors")]
    pub min_neighbors: u32,
    /// Smallest face side in pixels (0 = no limit; [`face_side`]).
    #[serde(deserialize_with = "read_face_side")]
    pub min_size: u32,
    /// Largest face side in pixels (0 = no limit; [`face_side`], [`size_order`]).
    #[serde(deserialize_with = "read_face_side")]
    pub max_size: u32,
    /// Run the full-frame detector on every Kth frame and only a local search around known faces in
    /// between; 1 (the default) detects on every frame, exactly as the reference does.
    #[serde(deserialize_with = "read_every")]
    pub every: u32,
    /// Detector threads; 0 (the default) means one per core ([`threads`]). The boxes are the same
    /// at any count.
    #[serde(deserialize_with = "read_threads")]
    pub threads: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        let p = DetectParams::fer();
        DetectConfig {
            cascade: None,
            scale_factor: p.scale_factor,
            min_neighbors: p.min_neighbors as u32,
            min_size: p.min_size as u32,
            max_size: p.max_size as u32,
            every: 1,
            threads: 0,
        }
    }
}

impl DetectConfig {
    /// The detector parameters these settings give.
    pub fn params(&self) -> DetectParams {
        DetectParams {
            scale_factor: self.scale_factor,
            min_neighbors: self.min_neighbors as i32,
            min_size: self.min_size as usize,
            max_size: self.max_size as usize,
        }
    }

    /// Why these settings cannot be used together, if they cannot: [`size_order`].
    pub fn problem(&self) -> Option<String> {
        size_order(self.min_size, self.max_size)
            .err()
            .map(|e| format!("detect: {e}"))
    }
}

/// The pyramid step (`scaleFactor`): a number above 1 and at most 4.
pub fn scale_factor(v: f64) -> Result<f64, String> {
    let ok = v.is_finite() && v > 1.0 && v <= 4.0;
    values::in_range(
        v,
        ok,
        "the pyramid step must be above 1 and at most 4 (1.1 is usual; larger is faster and coarser)",
    )
}

/// The raw candidates a face needs (`minNeighbors`): 0 (every raw window) to 100.
pub fn min_neighbors(v: i64) -> Result<u32, String> {
    values::count(v, 0, 100, "expected 0 to 100 neighbours")
}

/// A face side limit (`minSize`, `maxSize`): 0 (no limit) to the shared frame bound,
/// [`MAX_SIDE`] pixels.
pub fn face_side(v: i64) -> Result<u32, String> {
    let hi = MAX_SIDE as i64;
    values::count(v, 0, hi, &format!("expected 0 (no limit) to {hi} pixels"))
}

/// The two limits together: `max_size` at least `min_size`, unless it is 0 (no limit).
pub fn size_order(min_size: u32, max_size: u32) -> Result<(), String> {
    if max_size != 0 && max_size < min_size {
        Err(format!(
            "max_size {max_size} is below min_size {min_size}; raise it or use 0 for no limit"
        ))
    } else {
        Ok(())
    }
}

/// A thread count: 0 (one per core) to [`MAX_THREADS`].
pub fn threads(v: i64) -> Result<u32, String> {
    values::count(
        v,
        0,
        MAX_THREADS as i64,
        &format!("expected 0 (one per core) to {MAX_THREADS} threads"),
    )
}

fn read_scale_factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    values::read(d, scale_factor)
}

fn read_min_neighbors<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, min_neighbors)
}

fn read_face_side<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, face_side)
}

fn read_every<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, values::positive)
}

fn read_threads<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::config_says;

    #[test]
    fn the_config_and_the_detector_refuse_a_scale_factor_with_the_same_words() {
        let from_config = config_says("[detect]\nscale_factor = 9\n");
        let err = DetectParams {
            scale_factor: 9.0,
            ..DetectParams::fer()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(from_config.contains("at most 4"), "{from_config}");
        assert!(err.contains(&from_config), "{err} / {from_config}");
    }

    #[test]
    fn neighbours_and_sizes_have_one_rule() {
        let from_config = config_says("[detect]\nmin_neighbors = 101\n");
        let err = DetectParams {
            min_neighbors: 101,
            ..DetectParams::fer()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains(&from_config), "{err} / {from_config}");
        let from_config = config_says("[detect]\nmax_size = 9000\n");
        let err = DetectParams {
            max_size: 9000,
            ..DetectParams::fer()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains(&from_config), "{err} / {from_config}");
        let from_config = config_says("[detect]\nmin_size = 80\nmax_size = 40\n");
        let err = DetectParams {
            min_size: 80,
            max_size: 40,
            ..DetectParams::fer()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            from_config.ends_with(&size_order(80, 40).unwrap_err()),
            "{from_config}"
        );
        assert!(err.contains(&size_order(80, 40).unwrap_err()), "{err}");
    }

    #[test]
    fn thread_counts_have_one_rule() {
        let from_config = config_says("[detect]\nthreads = 300\n");
        let err = super::super::thread_pool(300, "detector")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&from_config), "{err} / {from_config}");
        assert_eq!(threads(256), Ok(256));
    }
}
