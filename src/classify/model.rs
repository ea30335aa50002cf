//! The emotion network: a `.tflite` file loaded once with tract-tflite and run face by face.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tract_tflite::prelude::*;

use super::crop::INPUT_SIDE;
use super::CLASS_COUNT;

/// Why a model cannot be loaded or run.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("emotion model {path}: {source}")]
    Read {
        /// The model file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are not a TFLite flatbuffer.
    #[error("emotion model {path}: not a TFLite model ({reason}); expected a .tflite file such as models/emotion_mini_xception_f32.tflite")]
    NotTflite {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// tract could not load, type or optimise the graph.
    #[error("emotion model {path}: tract-tflite cannot run it: {reason}")]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// tract's error chain.
        reason: String,
    },
    /// The graph's input or output is not what the classifier feeds or reads.
    #[error("emotion model {path}: {what}; emotiond needs a float32 input of shape [1,64,64,1] and a float32 output of 7 class probabilities (mini-Xception)")]
    WrongShape {
        /// The model file.
        path: PathBuf,
        /// What was found.
        what: String,
    },
    /// Running the graph failed.
    #[error("running the emotion model failed: {0}")]
    Run(String),
    /// The network produced something other than 7 finite probabilities.
    #[error("the emotion model produced non-finite or out-of-range probabilities {0:?}")]
    BadOutput(Vec<f32>),
}

fn chain(e: &TractError) -> String {
    format!("{e:#}")
}

/// A loaded, optimised mini-Xception graph and the run state reused for every face.
pub struct EmotionModel {
    path: PathBuf,
    state: TypedSimpleState,
    input: Arc<Tensor>,
}

impl std::fmt::Debug for EmotionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmotionModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmotionModel {
    /// Loads `path`, checks its input and output shapes, and optimises it for running.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| ModelError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_bytes(&path, &bytes)
    }

    /// Loads a model from its bytes; `path` only names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let not_tflite = |reason: &str| ModelError::NotTflite {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < 8 || &bytes[4..8] != b"TFL3" {
            return Err(not_tflite("no TFL3 identifier in its first 8 bytes"));
        }
        let unsupported = |e: TractError| ModelError::Unsupported {
            path: path.to_path_buf(),
            reason: chain(&e),
        };
        let wrong = |what: String| ModelError::WrongShape {
            path: path.to_path_buf(),
            what,
        };
        // The flatbuffer is verified before it is read, so damage normally comes back as an error;
        // a panic from deeper in the reader would still be reported as a damaged file, not crash.
        let loaded =
            std::panic::catch_unwind(|| tract_tflite::tflite().model_for_read(&mut &*bytes))
                .map_err(|_| not_tflite("the flatbuffer is damaged or truncated"))?;
        let model = loaded.map_err(unsupported)?;
        if model.inputs.len() != 1 || model.outputs.len() != 1 {
            return Err(wrong(format!(
                "it has {} inputs and {} outputs",
                model.inputs.len(),
                model.outputs.len()
            )));
        }
        let in_fact = model.input_fact(0).map_err(unsupported)?.clone();
        let want = [1, INPUT_SIDE, INPUT_SIDE, 1];
        let in_shape: Option<Vec<usize>> = in_fact.shape.as_concrete().map(|s| s.to_vec());
        if in_fact.datum_type != f32::datum_type() || in_shape.as_deref() != Some(&want[..]) {
            return Err(wrong(format!(
                "its input is {:?} {:?}",
                in_fact.datum_type,
                in_fact.shape.dims()
            )));
        }
        let out_fact = model.output_fact(0).map_err(unsupported)?.clone();
        let out_len = out_fact
            .shape
            .as_concrete()
            .map(|s| s.iter().product::<usize>());
        if out_fact.datum_type != f32::datum_type() || out_len != Some(CLASS_COUNT) {
            return Err(wrong(format!(
                "its output is {:?} {:?}",
                out_fact.datum_type,
                out_fact.shape.dims()
            )));
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(unsupported)?;
        let state = plan.spawn().map_err(unsupported)?;
        let input = Tensor::zero::<f32>(&want).map_err(unsupported)?;
        Ok(Self {
            path: path.to_path_buf(),
            state,
            input: Arc::new(input),
        })
    }

    /// The file the model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the input of the next [`EmotionModel::run`]: `fill` gets the 64x64 values,
    /// row-major, and its result is passed back.
    pub fn with_input<R>(&mut self, fill: impl FnOnce(&mut [f32]) -> R) -> R {
        // tract drops its reference to the input when a run ends (checked by a test below), so
        // this is a plain borrow; were it still shared, make_mut would copy it rather than alias it.
        let tensor = Arc::make_mut(&mut self.input);
        let mut view = tensor
            .as_plain_ram_mut()
            .expect("a tensor made by Tensor::zero has plain storage");
        let slice = view.as_slice_mut::<f32>().expect("the input tensor is f32");
        fill(slice)
    }

    /// Runs the network on the input buffer and writes the 7 class probabilities to `probs`.
    pub fn run(&mut self, probs: &mut [f32; CLASS_COUNT]) -> Result<(), ModelError> {
        let result = self
            .state
            .run(tvec!(TValue::from_const(self.input.clone())));
        let outputs = result.map_err(|e| ModelError::Run(chain(&e)))?;
        let out = outputs[0]
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(|e| ModelError::Run(chain(&e)))?;
        if out.len() != CLASS_COUNT {
            return Err(ModelError::Run(format!("{} outputs, not 7", out.len())));
        }
        probs.copy_from_slice(out);
        let sane = probs
            .iter()
            .all(|p| p.is_finite() && (0.0..=1.0).contains(p));
        if !sane {
            return Err(ModelError::BadOutput(probs.to_vec()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_tensor_is_reused_not_copied() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion_mini_xception_f32.tflite");
        let mut model = EmotionModel::load(path).unwrap();
        let before = Arc::as_ptr(&model.input);
        let mut probs = [0.0; CLASS_COUNT];
        for _ in 0..3 {
            model.with_input(|x| x.fill(0.5));
            model.run(&mut probs).unwrap();
            assert_eq!(Arc::strong_count(&model.input), 1, "tract kept the input");
        }
        assert_eq!(Arc::as_ptr(&model.input), before);
    }
}
