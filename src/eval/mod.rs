//! Offline evaluation of the emotion network on labelled faces: FER-2013's CSV
//! ([`fer_csv`]) or a folder per class ([`folders`]), scored into a confusion matrix
//! ([`metrics`]) and drawn as a heat map ([`chart`]).
//!
//! Faces go to the network as the reference training pipeline prepared them (Arriaga et al.'s
//! `load_fer2013` and `preprocess_input`): resized to 64x64 with OpenCV's INTER_LINEAR (bit for bit,
//! [`crate::resize::Resizer::resize_linear`]), then scaled to [-1, 1].

pub mod chart;
pub mod fer_csv;
pub mod folders;
pub mod metrics;

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use crate::classify::crop::{normalise, INPUT_LEN, INPUT_SIDE};
use crate::classify::model::{EmotionModel, ModelError};
use crate::classify::{Emotion, Probs, CLASS_COUNT};
use crate::resize::Resizer;

pub use metrics::Confusion;

/// Where a face came from: a line of a CSV file or an image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A 1-based line number of the CSV file.
    Line(u64),
    /// An image file.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One labelled face, as a data set holds it. Readers refill the same value face after face.
#[derive(Debug, Clone)]
pub struct LabeledFace {
    /// Where it came from.
    pub origin: Origin,
    /// The label the data set gives it.
    pub label: Emotion,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Gray pixels, row-major, `width * height` of them.
    pub pixels: Vec<u8>,
}

impl Default for LabeledFace {
    fn default() -> Self {
        Self {
            origin: Origin::Line(0),
            label: Emotion::Neutral,
            width: 0,
            height: 0,
            pixels: Vec::new(),
        }
    }
}

/// A row or file that is not a usable labelled face, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSample {
    /// Where it is.
    pub origin: Origin,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for BadSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

/// What a reader gives next.
#[derive(Debug)]
pub enum Next {
    /// The face buffer now holds the next face.
    Face,
    /// A malformed row or unreadable file, to be counted and reported.
    Bad(BadSample),
    /// No more faces.
    End,
}

/// Why an evaluation cannot go on.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The data file or folder could not be opened or read.
    #[error("{path}: {message}")]
    Data {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong (quoting the cause), with the fix where there is one.
        message: String,
        /// The underlying error (the OS's, the CSV reader's), if any.
        #[source]
        cause: Option<crate::Cause>,
    },
    /// A malformed row or file under `--strict`.
    #[error("{data}: {bad} (--strict stops at the first malformed row or file)")]
    Strict {
        /// The data set.
        data: PathBuf,
        /// The bad row or file.
        bad: BadSample,
    },
    /// The network failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A source of labelled faces.
pub trait LabeledFaces {
    /// Fills `face` with the next face, or says why the next row is bad, or that there is no more.
    fn next_face(&mut self, face: &mut LabeledFace) -> Result<Next, EvalError>;
    /// How far the reader has got and how far it will go, in the unit of [`LabeledFaces::unit`].
    fn progress(&self) -> (u64, u64);
    /// What [`LabeledFaces::progress`] counts: `"bytes"` or `"files"`.
    fn unit(&self) -> &'static str;
}

/// Runs the network on labelled faces prepared as in training: each face is resized to 64x64 with
/// OpenCV's INTER_LINEAR and scaled to [-1, 1]. Buffers are reused from face to face.
#[derive(Debug)]
pub struct FaceScorer {
    model: EmotionModel,
    resizer: Resizer,
    small: Vec<u8>,
}

impl FaceScorer {
    /// Scores faces with `model` (a single-face model).
    pub fn new(model: EmotionModel) -> Self {
        Self {
            model,
            resizer: Resizer::new(),
            small: vec![0; INPUT_LEN],
        }
    }

    /// The model in use.
    pub fn model(&self) -> &EmotionModel {
        &self.model
    }

    /// The seven class probabilities for `face`.
    pub fn score(&mut self, face: &LabeledFace) -> Result<Probs, ModelError> {
        if face.width == 0 || face.height == 0 || face.pixels.len() != face.width * face.height {
            return Err(ModelError::run(format!(
                "{}: a {}x{} face with {} pixels",
                face.origin,
                face.width,
                face.height,
                face.pixels.len()
            )));
        }
        self.resizer.resize_linear(
            &face.pixels,
            face.width,
            face.height,
            &mut self.small,
            INPUT_SIDE,
            INPUT_SIDE,
        );
        let small = &self.small;
        self.model.with_input(|input| normalise(small, input));
        let mut probs = [0.0; CLASS_COUNT];
        self.model.run(&mut probs)?;
        Ok(Probs(probs))
    }
}

/// How many malformed rows an [`Evaluation`] keeps word for word; the rest are only counted.
pub const KEPT_BAD_SAMPLES: usize = 50;

/// The running totals of an evaluation.
#[derive(Debug, Default, Clone)]
pub struct Evaluation {
    /// Truth against prediction.
    pub confusion: Confusion,
    /// How many malformed rows or files were met.
    pub bad_count: u64,
    /// The first [`KEPT_BAD_SAMPLES`] of them.
    pub bad: Vec<BadSample>,
}

impl Evaluation {
    /// Counts a malformed row or file, and returns it if it is among the first
    /// [`KEPT_BAD_SAMPLES`], which are kept word for word.
    pub fn record_bad(&mut self, bad: BadSample) -> Option<&BadSample> {
        self.bad_count += 1;
        if self.bad.len() >= KEPT_BAD_SAMPLES {
            return None;
        }
        self.bad.push(bad);
        self.bad.last()
    }
}

/// Evaluates every face of `faces` with `scorer`. `on_face` sees each scored face and its
/// probabilities (for a predictions file or a progress bar). Malformed rows are counted, logged at
/// warn level, and skipped; with `strict` the first one ends the run with [`EvalError::Strict`].
pub fn evaluate(
    data: &std::path::Path,
    faces: &mut dyn LabeledFaces,
    scorer: &mut FaceScorer,
    strict: bool,
    mut on_face: impl FnMut(&LabeledFace, &Probs, &dyn LabeledFaces) -> Result<(), EvalError>,
) -> Result<Evaluation, EvalError> {
    let mut eval = Evaluation::default();
    let mut face = LabeledFace::default();
    loop {
        match faces.next_face(&mut face)? {
            Next::End => return Ok(eval),
            Next::Bad(bad) => {
                if strict {
                    return Err(EvalError::Strict {
                        data: data.to_path_buf(),
                        bad,
                    });
                }
                if let Some(bad) = eval.record_bad(bad) {
                    log::warn!("{}: {bad}; skipped and counted", data.display());
                }
            }
            Next::Face => {
                let probs = scorer.score(&face)?;
                eval.confusion.add(face.label, probs.top());
                on_face(&face, &probs, faces)?;
            }
        }
    }
}
