//! Occlusion sensitivity (Zeiler and Fergus, 2014): which parts of a face the network's answer rests
//! on. A gray patch slides over the 64x64 input; at each position the predicted class's probability
//! is measured again, and the drop is what that patch of face was worth.

use image::RgbImage;
use thiserror::Error;

use crate::classify::crop::{normalise, INPUT_LEN, INPUT_SIDE};
use crate::classify::model::{EmotionModel, ModelError};
use crate::classify::{Emotion, Probs, CLASS_COUNT};
use crate::render::{heat, Align, Canvas, FONT_9X15_BOLD};

/// The value of the occluding patch in the network's input range: 0.0 is mid-gray (127.5).
pub const PATCH_VALUE: f32 = 0.0;

/// How the patch moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occlusion {
    /// The patch's side in input pixels (1 to 64).
    pub patch: usize,
    /// The step between patch positions in input pixels (at least 1).
    pub stride: usize,
}

impl Default for Occlusion {
    fn default() -> Self {
        Self {
            patch: 12,
            stride: 4,
        }
    }
}

/// Why a map cannot be made.
#[derive(Debug, Error)]
pub enum ExplainError {
    /// The patch or stride is out of range.
    #[error("occlusion patch {patch} with stride {stride}: the patch must be 1 to {INPUT_SIDE} pixels and the stride at least 1")]
    Params {
        /// The patch side asked for.
        patch: usize,
        /// The stride asked for.
        stride: usize,
    },
    /// The network failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl Occlusion {
    /// The patch's top-left positions along one axis: every `stride` from 0, and the last position
    /// that touches the far edge, so every pixel is covered.
    pub fn positions(&self) -> Result<Vec<usize>, ExplainError> {
        if self.patch == 0 || self.patch > INPUT_SIDE || self.stride == 0 {
            return Err(ExplainError::Params {
                patch: self.patch,
                stride: self.stride,
            });
        }
        let last = INPUT_SIDE - self.patch;
        let mut at: Vec<usize> = (0..=last).step_by(self.stride).collect();
        if at.last() != Some(&last) {
            at.push(last);
        }
        Ok(at)
    }
}

/// The drop in the predicted class's probability with the patch at one position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchDrop {
    /// The patch's left column in the 64x64 input.
    pub x: usize,
    /// The patch's top row.
    pub y: usize,
    /// Probability without the patch minus probability with it (negative where covering helps).
    pub drop: f32,
}

/// The occlusion map of one face.
#[derive(Debug, Clone)]
pub struct OcclusionMap {
    /// The patch geometry used.
    pub occlusion: Occlusion,
    /// The network's answer on the whole face.
    pub base: Probs,
    /// The class whose probability is followed (the top one).
    pub class: Emotion,
    /// Every patch position, row by row.
    pub patches: Vec<PatchDrop>,
    /// Per input pixel, the mean drop of the patches that cover it (64x64, row-major).
    pub heat: Vec<f32>,
}

impl OcclusionMap {
    /// The patch whose cover lowers the class most.
    pub fn strongest(&self) -> PatchDrop {
        self.patches
            .iter()
            .copied()
            .fold(self.patches[0], |a, b| if b.drop > a.drop { b } else { a })
    }
}

/// Makes the occlusion map of `input` (64x64 values in [-1, 1]). Occluded copies are run
/// `model.batch()` at a time.
pub fn occlusion_map(
    model: &mut EmotionModel,
    input: &[f32],
    occlusion: Occlusion,
) -> Result<OcclusionMap, ExplainError> {
    if input.len() != INPUT_LEN {
        return Err(ModelError::run(format!(
            "an input of {} values; the network takes {INPUT_LEN}",
            input.len()
        ))
        .into());
    }
    let at = occlusion.positions()?;
    let batch = model.batch();
    let mut probs = vec![[0.0f32; CLASS_COUNT]; batch];
    model.with_input(|x| x[..INPUT_LEN].copy_from_slice(input));
    model.run_batch(&mut probs[..1])?;
    let base = Probs(probs[0]);
    let class = base.top();
    let base_p = base.get(class);

    let grid: Vec<(usize, usize)> = at
        .iter()
        .flat_map(|&y| at.iter().map(move |&x| (x, y)))
        .collect();
    let mut patches = Vec::with_capacity(grid.len());
    for chunk in grid.chunks(batch) {
        model.with_input(|x| {
            for (slot, &(px, py)) in chunk.iter().enumerate() {
                let face = &mut x[slot * INPUT_LEN..(slot + 1) * INPUT_LEN];
                face.copy_from_slice(input);
                for row in face
                    .chunks_exact_mut(INPUT_SIDE)
                    .skip(py)
                    .take(occlusion.patch)
                {
                    row[px..px + occlusion.patch].fill(PATCH_VALUE);
                }
            }
        });
        model.run_batch(&mut probs[..chunk.len()])?;
        for (&(x, y), p) in chunk.iter().zip(&probs) {
            patches.push(PatchDrop {
                x,
                y,
                drop: base_p - p[class.index()],
            });
        }
    }

    let mut sum = vec![0.0f32; INPUT_LEN];
    let mut cover = vec![0u32; INPUT_LEN];
    for p in &patches {
        for y in p.y..p.y + occlusion.patch {
            for x in p.x..p.x + occlusion.patch {
                sum[y * INPUT_SIDE + x] += p.drop;
                cover[y * INPUT_SIDE + x] += 1;
            }
        }
    }
    let heat = sum
        .iter()
        .zip(&cover)
        .map(|(s, &n)| s / n.max(1) as f32)
        .collect();
    Ok(OcclusionMap {
        occlusion,
        base,
        class,
        patches,
        heat,
    })
}

/// Makes the occlusion map of a 64x64 gray crop (as `classify`'s crop gives it).
pub fn occlusion_map_of_crop(
    model: &mut EmotionModel,
    crop: &[u8; INPUT_LEN],
    occlusion: Occlusion,
) -> Result<OcclusionMap, ExplainError> {
    let mut input = vec![0.0; INPUT_LEN];
    normalise(crop, &mut input);
    occlusion_map(model, &input, occlusion)
}

/// How many screen pixels each input pixel becomes in [`render`].
pub const ZOOM: u32 = 4;

/// Draws `crop` enlarged with the map blended over it (clear where covering changed nothing, hot
/// where it lowered the class most), the class and its probability above, and a colour scale of
/// the drop beside it.
pub fn render(crop: &[u8; INPUT_LEN], map: &OcclusionMap) -> RgbImage {
    let side = INPUT_SIDE as u32 * ZOOM;
    let (top, right) = (30u32, 80u32);
    let mut c = Canvas::new(side + right, side + top, [255, 255, 255]);
    let max = map.heat.iter().copied().fold(0.0f32, f32::max);
    for y in 0..side {
        for x in 0..side {
            let i = (y / ZOOM) as usize * INPUT_SIDE + (x / ZOOM) as usize;
            let t = if max > 0.0 {
                (map.heat[i] / max).max(0.0)
            } else {
                0.0
            };
            let hot = heat(t);
            let a = 0.7 * t;
            let g = f32::from(crop[i]);
            let px = hot.map(|h| (g * (1.0 - a) + f32::from(h) * a).round() as u8);
            c.image_mut().put_pixel(x, y + top, image::Rgb(px));
        }
    }
    let label = format!("{} {:.2}", map.class.name(), map.base.get(map.class));
    c.text(
        &label,
        (side / 2) as i32,
        15,
        &FONT_9X15_BOLD,
        [0, 0, 0],
        Align::Center,
    );
    c.text(
        "drop",
        (side + 10) as i32,
        15,
        &crate::render::FONT_7X13,
        [0, 0, 0],
        Align::Left,
    );
    c.color_scale(
        (i64::from(side) + 10, i64::from(top), 14, i64::from(side)),
        heat,
        &[(0.0, "0".into()), (1.0, format!("{max:.3}"))],
    );
    c.into_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_cover_the_far_edge() {
        let at = |patch, stride| Occlusion { patch, stride }.positions().unwrap();
        assert_eq!(at(12, 4).len(), 14);
        assert_eq!(*at(12, 4).last().unwrap(), 52);
        assert_eq!(
            at(10, 4),
            vec![0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 54]
        );
        assert_eq!(at(64, 1), vec![0]);
        assert!(Occlusion {
            patch: 0,
            stride: 4
        }
        .positions()
        .is_err());
        assert!(Occlusion {
            patch: 65,
            stride: 4
        }
        .positions()
        .is_err());
        assert!(Occlusion {
            patch: 8,
            stride: 0
        }
        .positions()
        .is_err());
    }
}
