//! The emotion network: a `.tflite` file loaded once with tract-tflite and run face by face.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tract_tflite::internal::tract_core::model::translator::Translate;
use tract_tflite::internal::{OutletId, TypedFact, TypedNode, TypedOp};
use tract_tflite::prelude::*;

use super::crop::INPUT_SIDE;
use super::int8::{self, Int8Error, Int8Graph, Quant};
use super::CLASS_COUNT;
use crate::Cause;

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
        /// tract's error chain, or what emotiond refuses in the graph.
        reason: String,
        /// tract's error (none for a graph emotiond refuses itself).
        #[source]
        cause: Option<Cause>,
    },
    /// The graph's input or output is not what the classifier feeds or reads.
    #[error("emotion model {path}: {what}; emotiond needs a float32 input of shape [1,64,64,1] and a float32 output of 7 class probabilities (mini-Xception)")]
    WrongShape {
        /// The model file.
        path: PathBuf,
        /// What was found.
        what: String,
    },
    /// An int8 model whose tensors or operators emotiond's int8 runtime cannot take.
    #[error("emotion model {path}: int8 graph: {source}; emotiond runs int8 graphs like the one scripts/convert-model makes (int8 input and logits, CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D and ADD)")]
    Int8 {
        /// The model file.
        path: PathBuf,
        /// The tensor or operator at fault.
        source: Int8Error,
    },
    /// Running the graph failed.
    #[error("running the emotion model failed: {reason}")]
    Run {
        /// What went wrong: tract's error chain, or what came out wrong.
        reason: String,
        /// tract's error, if it failed.
        #[source]
        cause: Option<Cause>,
    },
    /// The network produced something other than 7 finite probabilities.
    #[error("the emotion model produced non-finite or out-of-range probabilities {0:?}")]
    BadOutput(Vec<f32>),
}

/// The first convolution or pooling whose window, stride or dilation is wider than the network's
/// input, described: no such layer means anything in a 64x64 network, and tract lays out a window's
/// taps while it optimises, before any check of its own (a fuzzed file whose max pool asked for a
/// 1,694,498,819 x 3 window took more than 1 GiB there).
fn oversized_window(model: &TypedModel) -> Option<String> {
    use tract_tflite::internal::tract_core::ops::cnn::{Conv, MaxPool, PoolSpec, SumPool};
    model.nodes().iter().find_map(|node| {
        let spec: &PoolSpec = if let Some(op) = node.op_as::<Conv>() {
            &op.pool_spec
        } else if let Some(op) = node.op_as::<MaxPool>() {
            &op.pool_spec
        } else if let Some(op) = node.op_as::<SumPool>() {
            &op.pool_spec
        } else {
            return None;
        };
        let mut sizes = spec
            .kernel_shape
            .iter()
            .chain(spec.strides.iter().flatten())
            .chain(spec.dilations.iter().flatten());
        sizes.any(|&d| d > INPUT_SIDE).then(|| {
            format!(
                "layer {:?} has a {:?} window (strides {:?}, dilations {:?}), wider than the \
                 {INPUT_SIDE}x{INPUT_SIDE} input",
                node.name, spec.kernel_shape, spec.strides, spec.dilations
            )
        })
    })
}

impl ModelError {
    /// A [`ModelError::Run`] with no underlying error.
    pub(crate) fn run(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ModelError::Run {
            reason,
            cause: None,
        }
    }

    /// A [`ModelError::Run`] for tract's error, its chain quoted and the error kept.
    fn tract_run(e: TractError) -> Self {
        ModelError::Run {
            reason: chain(&e),
            cause: Some(e.into()),
        }
    }
}

fn chain(e: &TractError) -> String {
    format!("{e:#}")
}

/// Re-types a graph for a batch of `N` inputs: the source's first axis becomes `N` and every other
/// node is wired again so that its output shape follows. (mini-Xception has no axis that fixes the
/// batch; a graph that had one would fail here with tract's reason.)
#[derive(Debug)]
struct Rebatch(usize);

impl Translate<TypedFact, Box<dyn TypedOp>, TypedFact, Box<dyn TypedOp>> for Rebatch {
    fn translate_node(
        &self,
        source: &TypedModel,
        node: &TypedNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        if source.inputs.contains(&OutletId::new(node.id, 0)) {
            let mut fact = node.outputs[0].fact.clone();
            fact.shape.set(0, self.0.to_dim());
            Ok(tvec!(target.add_source(&node.name, fact)?))
        } else {
            let inputs: TVec<OutletId> = node.inputs.iter().map(|i| mapping[i]).collect();
            target.wire_node(&node.name, node.op.clone(), &inputs)
        }
    }
}

/// A loaded, optimised mini-Xception graph and the run state reused for every face (or every batch
/// of faces, for a model loaded with [`EmotionModel::load_batched`]).
pub struct EmotionModel {
    path: PathBuf,
    state: TypedSimpleState,
    /// The f32 faces [`EmotionModel::with_input`] fills (the network's input, for a float model).
    input: Arc<Tensor>,
    batch: usize,
    int8: Option<Int8Run>,
}

/// What an int8 model needs around its graph: the quantized input and the logits' arithmetic.
#[derive(Debug, Clone)]
struct Int8Run {
    input: Arc<Tensor>,
    input_quant: Quant,
    output_quant: Quant,
    positions: usize,
}

impl std::fmt::Debug for EmotionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmotionModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmotionModel {
    /// Loads `path`, checks its input and output shapes, and optimises it for running one face at
    /// a time.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        Self::load_batched(path, 1)
    }

    /// Loads `path` for batches of `batch` faces per run (at least 1): the network's input becomes
    /// `[batch,64,64,1]` and its output `[batch,7]`. Each face's result equals its single-face run
    /// to within float rounding (tract may order the sums differently).
    pub fn load_batched(path: impl AsRef<Path>, batch: usize) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| ModelError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_bytes_batched(&path, &bytes, batch)
    }

    /// Loads a model from its bytes; `path` only names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        Self::from_bytes_batched(path, bytes, 1)
    }

    fn from_bytes_batched(path: &Path, bytes: &[u8], batch: usize) -> Result<Self, ModelError> {
        let batch = batch.max(1);
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
            cause: Some(e.into()),
        };
        if tract_tflite::tflite::root_as_model(bytes).is_ok() && int8::has_int8_input(bytes) {
            return Self::int8_from_bytes(path, bytes, batch);
        }
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
        if let Some(reason) = oversized_window(&model) {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                reason,
                cause: None,
            });
        }
        let model = if batch == 1 {
            model
        } else {
            Rebatch(batch)
                .translate_model(&model)
                .map_err(unsupported)?
        };
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(unsupported)?;
        let state = plan.spawn().map_err(unsupported)?;
        let input =
            Tensor::zero::<f32>(&[batch, INPUT_SIDE, INPUT_SIDE, 1]).map_err(unsupported)?;
        Ok(Self {
            path: path.to_path_buf(),
            state,
            input: Arc::new(input),
            batch,
            int8: None,
        })
    }

    fn int8_from_bytes(path: &Path, bytes: &[u8], batch: usize) -> Result<Self, ModelError> {
        let unsupported = |e: TractError| ModelError::Unsupported {
            path: path.to_path_buf(),
            reason: chain(&e),
            cause: Some(e.into()),
        };
        let graph =
            Int8Graph::from_flatbuffer(bytes, batch).map_err(|source| ModelError::Int8 {
                path: path.to_path_buf(),
                source,
            })?;
        let plan = graph
            .model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(unsupported)?;
        let state = plan.spawn().map_err(unsupported)?;
        let shape = [batch, INPUT_SIDE, INPUT_SIDE, 1];
        Ok(Self {
            path: path.to_path_buf(),
            state,
            input: Arc::new(Tensor::zero::<f32>(&shape).map_err(unsupported)?),
            batch,
            int8: Some(Int8Run {
                input: Arc::new(Tensor::zero::<i8>(&shape).map_err(unsupported)?),
                input_quant: graph.input,
                output_quant: graph.output,
                positions: graph.positions,
            }),
        })
    }

    /// Whether the model is the full-int8 graph (run by emotiond's integer ops) rather than float.
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// A second model over the same optimised graph, with run state of its own, for classifying on
    /// another thread; the graph is shared, not loaded or optimised again.
    pub fn twin(&self) -> Result<Self, ModelError> {
        let state = self.state.plan().spawn().map_err(ModelError::tract_run)?;
        Ok(Self {
            path: self.path.clone(),
            state,
            input: Arc::new(self.input.as_ref().clone()),
            batch: self.batch,
            int8: self.int8.as_ref().map(|run| Int8Run {
                input: Arc::new(run.input.as_ref().clone()),
                ..run.clone()
            }),
        })
    }

    /// How many faces one run takes.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The file the model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the input of the next [`EmotionModel::run`]: `fill` gets the 64x64 values,
    /// row-major (`batch` such images one after the other), and its result is passed back.
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

    /// Runs the network on the input buffer and writes the 7 class probabilities to `probs`
    /// (the first face's, for a batched model).
    pub fn run(&mut self, probs: &mut [f32; CLASS_COUNT]) -> Result<(), ModelError> {
        self.run_batch(std::slice::from_mut(probs))
    }

    /// Runs the network on the input buffer and writes each face's 7 class probabilities to
    /// `probs`, which holds at most [`EmotionModel::batch`] entries (the rest of the batch is
    /// computed and not read).
    pub fn run_batch(&mut self, probs: &mut [[f32; CLASS_COUNT]]) -> Result<(), ModelError> {
        if self.int8.is_some() {
            return self.run_batch_int8(probs);
        }
        let result = self
            .state
            .run(tvec!(TValue::from_const(self.input.clone())));
        let outputs = result.map_err(ModelError::tract_run)?;
        let out = outputs[0]
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(ModelError::tract_run)?;
        if out.len() != CLASS_COUNT * self.batch || probs.len() > self.batch {
            return Err(ModelError::run(format!(
                "{} outputs for a batch of {}, {} asked for",
                out.len(),
                self.batch,
                probs.len()
            )));
        }
        for (dst, src) in probs.iter_mut().zip(out.chunks_exact(CLASS_COUNT)) {
            dst.copy_from_slice(src);
            let sane = dst.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p));
            if !sane {
                return Err(ModelError::BadOutput(dst.to_vec()));
            }
        }
        Ok(())
    }
}

impl EmotionModel {
    /// Quantizes the input buffer and runs the int8 graph; the logits of the whole batch.
    fn run_int8(&mut self) -> Result<TValue, ModelError> {
        let Some(run) = self.int8.as_mut() else {
            return Err(ModelError::run("not an int8 model"));
        };
        let faces = self
            .input
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(ModelError::tract_run)?;
        {
            let tensor = Arc::make_mut(&mut run.input);
            let mut view = tensor
                .as_plain_ram_mut()
                .expect("a tensor made by Tensor::zero has plain storage");
            let q = view.as_slice_mut::<i8>().expect("the int8 input is i8");
            for (q, &x) in q.iter_mut().zip(faces) {
                *q = run.input_quant.quantize(x);
            }
        }
        let mut outputs = self
            .state
            .run(tvec!(TValue::from_const(run.input.clone())))
            .map_err(ModelError::tract_run)?;
        Ok(outputs.remove(0))
    }

    fn run_batch_int8(&mut self, probs: &mut [[f32; CLASS_COUNT]]) -> Result<(), ModelError> {
        let logits = self.run_int8()?;
        let logits = logits
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<i8>())
            .map_err(ModelError::tract_run)?;
        let run = self.int8.as_ref().expect("run_int8 checked the kind");
        let per_face = run.positions * CLASS_COUNT;
        if logits.len() != per_face * self.batch || probs.len() > self.batch {
            return Err(ModelError::run(format!(
                "{} logits for a batch of {}, {} asked for",
                logits.len(),
                self.batch,
                probs.len()
            )));
        }
        for (dst, face) in probs.iter_mut().zip(logits.chunks_exact(per_face)) {
            int8::probabilities(run.output_quant, face, dst);
        }
        Ok(())
    }

    /// For an int8 model, the input buffer quantized as the graph takes it and the int8 logits it
    /// gives (NHWC, the whole batch): what the parity tests compare with the TFLite interpreter.
    pub fn int8_logits(&mut self) -> Result<(Vec<i8>, Vec<i8>), ModelError> {
        let logits = self.run_int8()?;
        let logits = logits
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<i8>())
            .map_err(ModelError::tract_run)?
            .to_vec();
        let run = self.int8.as_ref().expect("run_int8 checked the kind");
        let input = run
            .input
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<i8>())
            .map_err(ModelError::tract_run)?
            .to_vec();
        Ok((input, logits))
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

    #[test]
    fn a_batch_gives_each_face_its_single_run_result() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion_mini_xception_f32.tflite");
        let mut single = EmotionModel::load(&path).unwrap();
        let mut batched = EmotionModel::load_batched(&path, 5).unwrap();
        assert_eq!(batched.batch(), 5);
        // Five different inputs: a ramp shifted per face, so every face gets its own answer.
        let face = |b: usize, i: usize| ((i * 31 + b * 977) % 256) as f32 / 127.5 - 1.0;
        batched.with_input(|x| {
            for (i, v) in x.iter_mut().enumerate() {
                *v = face(i / 4096, i % 4096);
            }
        });
        let mut all = [[0.0; CLASS_COUNT]; 5];
        batched.run_batch(&mut all).unwrap();
        for (b, got) in all.iter().enumerate() {
            single.with_input(|x| {
                for (i, v) in x.iter_mut().enumerate() {
                    *v = face(b, i);
                }
            });
            let mut want = [0.0; CLASS_COUNT];
            single.run(&mut want).unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "face {b}: {got:?} vs {want:?}");
            }
        }
        assert_ne!(all[0], all[1]);
        let mut too_many = [[0.0; CLASS_COUNT]; 6];
        assert!(batched.run_batch(&mut too_many).is_err());
    }
}
