//! Emotions: the mini-Xception network (Arriaga et al. 2017) on each face box.
//!
//! [`Classifier`] joins the two halves: [`crop`] turns a box on a gray frame into the exact 64x64
//! input the `fer` package builds, and [`model`] runs the `.tflite` graph with tract-tflite. Both
//! keep their buffers between faces. The crop's settings and their rules are in [`settings`].

pub mod crop;
pub mod int8;
pub mod model;
pub mod settings;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use thiserror::Error;

use crate::frame::GrayFrame;
use crate::frame::Rect;
pub use crop::{CropBuilder, CropError, CropRegion, CropRule, Offsets};
pub use model::{EmotionModel, ModelError};
pub use settings::ClassifyConfig;

/// Number of emotion classes the network tells apart.
pub const CLASS_COUNT: usize = 7;

/// The file name of the model emotiond ships and loads by default.
pub const DEFAULT_MODEL: &str = "emotion_mini_xception_f32.tflite";

/// One of the seven FER-2013 expressions, in the network's output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Emotion {
    /// Class 0.
    Angry,
    /// Class 1.
    Disgust,
    /// Class 2.
    Fear,
    /// Class 3.
    Happy,
    /// Class 4.
    Sad,
    /// Class 5.
    Surprise,
    /// Class 6.
    Neutral,
}

impl Emotion {
    /// All classes in output order.
    pub const ALL: [Emotion; CLASS_COUNT] = [
        Emotion::Angry,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Sad,
        Emotion::Surprise,
        Emotion::Neutral,
    ];

    /// The lower-case name fer uses (`"angry"`, ..., `"neutral"`).
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Angry => "angry",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Sad => "sad",
            Emotion::Surprise => "surprise",
            Emotion::Neutral => "neutral",
        }
    }

    /// The class index in the network's output.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An emotion name that is not one of the seven.
#[derive(Debug, Error)]
#[error(
    "unknown emotion {0:?}; expected one of angry, disgust, fear, happy, sad, surprise, neutral"
)]
pub struct UnknownEmotion(pub String);

impl FromStr for Emotion {
    type Err = UnknownEmotion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Emotion::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEmotion(s.to_string()))
    }
}

/// The seven class probabilities for one face, in [`Emotion::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Probs(pub [f32; CLASS_COUNT]);

impl Probs {
    /// The most probable class (the first one on a tie, as numpy's argmax and fer's `max` pick).
    pub fn top(&self) -> Emotion {
        let mut best = 0;
        for i in 1..CLASS_COUNT {
            if self.0[i] > self.0[best] {
                best = i;
            }
        }
        Emotion::ALL[best]
    }

    /// The probability of `e`.
    pub fn get(&self, e: Emotion) -> f32 {
        self.0[e.index()]
    }
}

/// Why a face could not be classified.
#[derive(Debug, Error)]
pub enum ClassifyError {
    /// The box cannot be cropped.
    #[error(transparent)]
    Crop(#[from] CropError),
    /// The network failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A thread count out of range, or a pool that could not be started.
    #[error(transparent)]
    Threads(#[from] crate::detect::ThreadsError),
}

/// Classifiers for the faces of one image at a time on several threads: a pool made once and a
/// classifier twin per thread ([`Classifier::twin`]); see [`classify_parallel`].
#[derive(Debug)]
pub struct ParallelClassifier {
    classifiers: Vec<Classifier>,
    pool: Option<rayon::ThreadPool>,
}

impl ParallelClassifier {
    /// `classifier` and its twins on `threads` threads (0: one per core).
    pub fn new(classifier: Classifier, threads: usize) -> Result<Self, ClassifyError> {
        let (threads, pool) = crate::detect::thread_pool(threads, "classifier")?;
        Ok(Self {
            classifiers: classifier.with_twins(threads)?,
            pool,
        })
    }

    /// The threads faces are classified on.
    pub fn threads(&self) -> usize {
        self.classifiers.len()
    }

    /// Classifies every box in `faces` on `frame`, one result per box in the same order, as
    /// [`Classifier::classify_all`] does.
    pub fn classify_all(
        &mut self,
        frame: &GrayFrame,
        faces: &[Rect],
        out: &mut Vec<Result<Probs, ClassifyError>>,
    ) -> Result<(), CropError> {
        classify_parallel(self.pool.as_ref(), &mut self.classifiers, frame, faces, out)
    }
}

/// Crops faces and classifies them, reusing every buffer from face to face.
#[derive(Debug)]
pub struct Classifier {
    model: EmotionModel,
    crops: CropBuilder,
}

impl Classifier {
    /// Loads the model at `path` and uses `rule` to crop faces.
    pub fn load(path: impl AsRef<Path>, rule: CropRule) -> Result<Self, ClassifyError> {
        let crops = CropBuilder::new(rule)?;
        Ok(Self {
            model: EmotionModel::load(path)?,
            crops,
        })
    }

    /// A classifier over an already loaded model.
    pub fn new(model: EmotionModel, rule: CropRule) -> Result<Self, ClassifyError> {
        Ok(Self {
            model,
            crops: CropBuilder::new(rule)?,
        })
    }

    /// A second classifier sharing this one's network, for another thread (see
    /// [`EmotionModel::twin`]).
    pub fn twin(&self) -> Result<Self, ClassifyError> {
        Ok(Self {
            model: self.model.twin()?,
            crops: CropBuilder::new(self.crops.rule())?,
        })
    }

    /// This classifier followed by twins of it, `count` in all (at least this one), one per thread.
    pub fn with_twins(self, count: usize) -> Result<Vec<Self>, ClassifyError> {
        let mut all = Vec::with_capacity(count.max(1));
        for _ in 1..count {
            all.push(self.twin()?);
        }
        all.insert(0, self);
        Ok(all)
    }

    /// The crop rule in use.
    pub fn rule(&self) -> CropRule {
        self.crops.rule()
    }

    /// The model in use.
    pub fn model(&self) -> &EmotionModel {
        &self.model
    }

    /// Classifies every box in `faces` on `frame`, one result per box in the same order.
    pub fn classify_all(
        &mut self,
        frame: &GrayFrame,
        faces: &[Rect],
        out: &mut Vec<Result<Probs, ClassifyError>>,
    ) -> Result<(), CropError> {
        out.clear();
        if faces.is_empty() {
            return Ok(());
        }
        let pad = crop::pad_value(frame)?;
        for &face in faces {
            out.push(self.classify_with_pad(frame, pad, face));
        }
        Ok(())
    }

    /// Classifies one box on `frame`.
    pub fn classify(&mut self, frame: &GrayFrame, face: Rect) -> Result<Probs, ClassifyError> {
        let pad = crop::pad_value(frame)?;
        self.classify_with_pad(frame, pad, face)
    }

    /// Classifies one box given the frame's pad value ([`crop::pad_value`]), which callers with
    /// several faces compute once.
    pub fn classify_with_pad(
        &mut self,
        frame: &GrayFrame,
        pad: u8,
        face: Rect,
    ) -> Result<Probs, ClassifyError> {
        let crops = &mut self.crops;
        self.model
            .with_input(|input| crops.input(frame, pad, face, input))?;
        let mut probs = [0.0; CLASS_COUNT];
        self.model.run(&mut probs)?;
        Ok(Probs(probs))
    }

    /// Runs the network on a prepared 64x64 input (row-major, already in [-1, 1]).
    pub fn classify_tensor(&mut self, input: &[f32]) -> Result<Probs, ModelError> {
        self.model.with_input(|dst| {
            if input.len() != dst.len() {
                return Err(ModelError::run(format!(
                    "an input of {} values; the network takes {}",
                    input.len(),
                    dst.len()
                )));
            }
            dst.copy_from_slice(input);
            Ok(())
        })?;
        let mut probs = [0.0; CLASS_COUNT];
        self.model.run(&mut probs)?;
        Ok(Probs(probs))
    }
}

/// Classifies `faces` on `frame` into `out` (one result per face, in order), splitting the faces into
/// groups that run in parallel on `pool`, one group per classifier of `classifiers` (twins of one
/// another, [`Classifier::twin`]). Without a pool, or with one classifier, they run in turn on the
/// first. Each face's result is the one [`Classifier::classify`] gives, bit for bit.
///
/// # Panics
/// When `classifiers` is empty.
pub fn classify_parallel(
    pool: Option<&rayon::ThreadPool>,
    classifiers: &mut [Classifier],
    frame: &GrayFrame,
    faces: &[Rect],
    out: &mut Vec<Result<Probs, ClassifyError>>,
) -> Result<(), CropError> {
    use rayon::prelude::*;
    assert!(
        !classifiers.is_empty(),
        "classify_parallel needs a classifier"
    );
    out.clear();
    if faces.is_empty() {
        return Ok(());
    }
    let groups = classifiers.len().min(faces.len());
    match pool {
        Some(pool) if groups > 1 => {
            let pad = crop::pad_value(frame)?;
            // Placeholders, each overwritten by its face's result below.
            out.resize_with(faces.len(), || Ok(Probs([0.0; CLASS_COUNT])));
            let per = faces.len().div_ceil(groups);
            pool.install(|| {
                classifiers
                    .par_iter_mut()
                    .zip(out.par_chunks_mut(per))
                    .zip(faces.par_chunks(per))
                    .for_each(|((c, res), faces)| {
                        for (r, &face) in res.iter_mut().zip(faces) {
                            *r = c.classify_with_pad(frame, pad, face);
                        }
                    })
            });
            Ok(())
        }
        _ => classifiers[0].classify_all(frame, faces, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emotion_names_round_trip_in_output_order() {
        for (i, e) in Emotion::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(e.name().parse::<Emotion>().unwrap(), e);
        }
        assert!("joy".parse::<Emotion>().is_err());
    }

    #[test]
    fn top_takes_the_first_of_equal_maxima() {
        let p = Probs([0.1, 0.3, 0.3, 0.1, 0.1, 0.05, 0.05]);
        assert_eq!(p.top(), Emotion::Disgust);
    }
}
