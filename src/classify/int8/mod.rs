//! The full-int8 mini-Xception: a `.tflite` whose input, weights and activations are int8, read
//! from its flatbuffer by emotiond and run by tract with emotiond's own integer ops ([`ops`]),
//! which compute what TFLite's reference integer kernels compute, bit for bit.
//!
//! Why not tract-tflite's own int8 path: tract 0.23 cannot load an ADD of two differently scaled
//! int8 tensors, keeps only the first of per-channel weight scales, and requantizes with its own
//! rounding rather than TFLite's fixed-point multipliers (`models/README.md` has what that cost).
//!
//! The graph takes the 64x64 face as int8 (quantized in Rust as TFLite's QUANTIZE does: divide by
//! the scale in f32, round half away from zero, add the zero point, clamp) and ends at int8
//! logits, one per class and position; [`Int8Graph::probabilities`] dequantizes them, averages the
//! positions (the network's global average pooling) and takes the softmax.

pub mod fixed;
pub mod kernels;
pub mod ops;

use tract_tflite::internal::*;
use tract_tflite::tflite::{self as fb, BuiltinOperator, TensorType};

use fixed::QuantizedMultiplier;
use ops::{Add, Conv, MaxPool, Padding, Requantize, Window};

/// An int8 tensor's affine quantization: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quant {
    /// The step between two quantized values.
    pub scale: f32,
    /// The quantized value of 0.0.
    pub zero_point: i32,
}

impl Quant {
    /// TFLite's QUANTIZE for one value: `round(x / scale)` (half away from zero, in f32) plus the
    /// zero point, clamped to int8.
    #[inline]
    pub fn quantize(self, x: f32) -> i8 {
        ((x / self.scale).round() as i32 + self.zero_point).clamp(-128, 127) as i8
    }

    /// The real value of `q`.
    #[inline]
    pub fn dequantize(self, q: i8) -> f64 {
        self.scale as f64 * (q as i32 - self.zero_point) as f64
    }
}

/// Why an int8 graph cannot be built: the tensor or operator at fault and what is wrong.
#[derive(Debug)]
pub struct Int8Error {
    /// `tensor NAME` or `operator N (KIND)`.
    pub what: String,
    /// What is wrong with it (quoting the cause).
    pub reason: String,
    /// The flatbuffer reader's or tract's error, when one of them refused it: the `source()`.
    pub cause: Option<crate::Cause>,
}

impl std::fmt::Display for Int8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.reason)
    }
}

impl std::error::Error for Int8Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

/// A loaded int8 graph, as a tract model of emotiond's ops.
#[derive(Debug)]
pub struct Int8Graph {
    /// The tract model: one `i8` NHWC input, one `i8` output `[batch, h, w, classes]`.
    pub model: TypedModel,
    /// The input's quantization.
    pub input: Quant,
    /// The logits' quantization.
    pub output: Quant,
    /// Positions per class in the output (`h * w`), averaged into one logit.
    pub positions: usize,
}

/// Whether `bytes` (a verified TFLite flatbuffer) has an int8 input: such a model is loaded by
/// [`Int8Graph::from_flatbuffer`] rather than tract-tflite.
pub fn has_int8_input(bytes: &[u8]) -> bool {
    let Ok(model) = fb::root_as_model(bytes) else {
        return false;
    };
    let Some(graph) = model
        .subgraphs()
        .and_then(|s| (!s.is_empty()).then(|| s.get(0)))
    else {
        return false;
    };
    let (Some(inputs), Some(tensors)) = (graph.inputs(), graph.tensors()) else {
        return false;
    };
    inputs.len() == 1
        && usize::try_from(inputs.get(0))
            .ok()
            .filter(|&i| i < tensors.len())
            .is_some_and(|i| tensors.get(i).type_() == TensorType::INT8)
}

struct Reader<'a> {
    model: fb::Model<'a>,
    tensors: Vec<fb::Tensor<'a>>,
}

fn tensor_name(t: &fb::Tensor) -> String {
    t.name().unwrap_or("(unnamed)").to_string()
}

impl<'a> Reader<'a> {
    fn tensor(&self, index: i32) -> Result<&fb::Tensor<'a>, Int8Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tensors.get(i))
            .ok_or_else(|| Int8Error {
                what: format!("tensor {index}"),
                reason: "no such tensor in the graph".into(),
                cause: None,
            })
    }

    fn fail(&self, index: i32, reason: impl Into<String>) -> Int8Error {
        let what = match self.tensor(index) {
            Ok(t) => format!("tensor {}", tensor_name(t)),
            Err(e) => e.what,
        };
        Int8Error {
            what,
            reason: reason.into(),
            cause: None,
        }
    }

    fn shape(&self, index: i32) -> Result<Vec<usize>, Int8Error> {
        let t = self.tensor(index)?;
        let shape = t
            .shape()
            .ok_or_else(|| self.fail(index, "it has no shape"))?;
        shape
            .iter()
            .map(|d| usize::try_from(d).ok().filter(|&d| d > 0 && d <= 1 << 16))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                self.fail(
                    index,
                    format!(
                        "its shape {:?} is not positive",
                        shape.iter().collect::<Vec<_>>()
                    ),
                )
            })
    }

    fn expect_type(&self, index: i32, want: TensorType) -> Result<(), Int8Error> {
        let t = self.tensor(index)?;
        if t.type_() == want {
            Ok(())
        } else {
            Err(self.fail(
                index,
                format!("its type is {:?}, {:?} expected", t.type_(), want),
            ))
        }
    }

    /// The tensor's scales (one, or one per channel) and checked zero points.
    fn scales(&self, index: i32) -> Result<(Vec<f32>, Vec<i64>), Int8Error> {
        let t = self.tensor(index)?;
        let q = t
            .quantization()
            .ok_or_else(|| self.fail(index, "it has no quantization parameters"))?;
        let scales: Vec<f32> = q.scale().map(|s| s.iter().collect()).unwrap_or_default();
        let zeros: Vec<i64> = q
            .zero_point()
            .map(|z| z.iter().collect())
            .unwrap_or_default();
        if scales.is_empty() {
            return Err(self.fail(index, "it has no quantization scale"));
        }
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(self.fail(
                index,
                format!("its quantization scale {bad} is not a positive number"),
            ));
        }
        if zeros.len() != scales.len() {
            return Err(self.fail(
                index,
                format!(
                    "it has {} scales and {} zero points",
                    scales.len(),
                    zeros.len()
                ),
            ));
        }
        Ok((scales, zeros))
    }

    /// An activation tensor's quantization: one scale, a zero point inside int8.
    fn quant(&self, index: i32) -> Result<Quant, Int8Error> {
        self.expect_type(index, TensorType::INT8)?;
        let (scales, zeros) = self.scales(index)?;
        if scales.len() != 1 {
            return Err(self.fail(
                index,
                format!("an activation needs one scale, it has {}", scales.len()),
            ));
        }
        if !(-128..=127).contains(&zeros[0]) {
            return Err(self.fail(
                index,
                format!("its zero point {} is outside int8", zeros[0]),
            ));
        }
        Ok(Quant {
            scale: scales[0],
            zero_point: zeros[0] as i32,
        })
    }

    fn data(&self, index: i32) -> Result<&'a [u8], Int8Error> {
        let t = self.tensor(index)?;
        let buffers = self
            .model
            .buffers()
            .ok_or_else(|| self.fail(index, "the model has no buffers"))?;
        let b = t.buffer() as usize;
        let data = (b > 0 && b < buffers.len())
            .then(|| buffers.get(b).data())
            .flatten()
            .ok_or_else(|| self.fail(index, "it is not a constant (no data in the file)"))?;
        Ok(data.bytes())
    }

    /// Constant int8 weights with symmetric scales, one or one per `channels`.
    fn weights(&self, index: i32, channels: usize) -> Result<(Vec<i16>, Vec<f32>), Int8Error> {
        self.expect_type(index, TensorType::INT8)?;
        let (scales, zeros) = self.scales(index)?;
        if scales.len() != 1 && scales.len() != channels {
            return Err(self.fail(
                index,
                format!("{} scales for {channels} output channels", scales.len()),
            ));
        }
        if zeros.iter().any(|&z| z != 0) {
            return Err(self.fail(index, "int8 weights must have zero point 0 (symmetric)"));
        }
        let count = self
            .shape(index)?
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| self.fail(index, "its shape is too large"))?;
        let data = self.data(index)?;
        if data.len() != count {
            return Err(self.fail(
                index,
                format!("{} bytes of data for {count} values", data.len()),
            ));
        }
        Ok((data.iter().map(|&b| b as i8 as i16).collect(), scales))
    }

    fn bias(&self, index: i32, channels: usize) -> Result<Vec<i32>, Int8Error> {
        if index < 0 {
            return Ok(vec![0; channels]);
        }
        self.expect_type(index, TensorType::INT32)?;
        let data = self.data(index)?;
        if data.len() != channels * 4 {
            return Err(self.fail(
                index,
                format!("{} bytes of bias for {channels} channels", data.len()),
            ));
        }
        Ok(data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

/// The clamp of a fused activation in `out`'s quantized units (TFLite's
/// `CalculateActivationRangeQuantized`).
fn activation(kind: fb::ActivationFunctionType, out: Quant) -> Result<(i32, i32), String> {
    let q = |x: f32| out.zero_point + (x / out.scale).round() as i32;
    match kind {
        fb::ActivationFunctionType::NONE => Ok((-128, 127)),
        fb::ActivationFunctionType::RELU => Ok((q(0.0).max(-128), 127)),
        fb::ActivationFunctionType::RELU6 => Ok((q(0.0).max(-128), q(6.0).min(127))),
        other => Err(format!("fused activation {other:?} is not supported")),
    }
}

fn window(padding: fb::Padding, kernel: (i32, i32), stride: (i32, i32)) -> Result<Window, String> {
    let pos = |v: i32, what: &str| {
        usize::try_from(v)
            .ok()
            .filter(|&v| (1..=super::crop::INPUT_SIDE).contains(&v))
            .ok_or_else(|| format!("{what} {v} is out of range"))
    };
    Ok(Window {
        kernel: (
            pos(kernel.0, "kernel height")?,
            pos(kernel.1, "kernel width")?,
        ),
        stride: (pos(stride.0, "stride")?, pos(stride.1, "stride")?),
        padding: match padding {
            fb::Padding::SAME => Padding::Same,
            fb::Padding::VALID => Padding::Valid,
            other => return Err(format!("padding {other:?} is not supported")),
        },
    })
}

/// A real multiplier as TFLite stores it, refused when it is 2^30 or more: applying it would
/// overflow 32 bits for any sum but 0, which no calibrated graph has.
fn multiplier(real: f64) -> Result<QuantizedMultiplier, String> {
    let q = QuantizedMultiplier::new(real);
    if q.shift > 30 {
        return Err(format!(
            "a requantization multiplier of {real:e} is out of range"
        ));
    }
    Ok(q)
}

/// TFLite's per-channel conv multipliers: `input_scale * weight_scale[c] / output_scale` in f64.
fn conv_multipliers(
    input: Quant,
    weights: &[f32],
    output: Quant,
) -> Result<Vec<QuantizedMultiplier>, String> {
    weights
        .iter()
        .map(|&w| multiplier(input.scale as f64 * w as f64 / output.scale as f64))
        .collect()
}

impl Int8Graph {
    /// Builds the graph of a verified TFLite flatbuffer for batches of `batch` faces.
    pub fn from_flatbuffer(bytes: &[u8], batch: usize) -> Result<Int8Graph, Int8Error> {
        let whole = |reason: String| Int8Error {
            what: "the model".into(),
            reason,
            cause: None,
        };
        let refused = |what: &str, reason: String, cause: crate::Cause| Int8Error {
            what: what.into(),
            reason,
            cause: Some(cause),
        };
        let tract = |e: TractError| refused("the model", format!("{e:#}"), e.into());
        let model =
            fb::root_as_model(bytes).map_err(|e| refused("the model", e.to_string(), e.into()))?;
        let graph = model
            .subgraphs()
            .filter(|s| !s.is_empty())
            .map(|s| s.get(0))
            .ok_or_else(|| whole("it has no subgraph".into()))?;
        let tensors = graph
            .tensors()
            .ok_or_else(|| whole("its graph has no tensors".into()))?
            .iter()
            .collect();
        let codes = model
            .operator_codes()
            .ok_or_else(|| whole("it has no operator codes".into()))?;
        let reader = Reader { model, tensors };
        let io = |v: Option<Vec<i32>>, what: &str| -> Result<i32, Int8Error> {
            match v {
                Some(v) if v.len() == 1 => Ok(v[0]),
                Some(v) => Err(whole(format!(
                    "it has {} {what}s, mini-Xception has one",
                    v.len()
                ))),
                None => Err(whole(format!("it has no {what}"))),
            }
        };
        let input = io(graph.inputs().map(|v| v.iter().collect()), "input")?;
        let output = io(graph.outputs().map(|v| v.iter().collect()), "output")?;

        let in_quant = reader.quant(input)?;
        let in_shape = reader.shape(input)?;
        if in_shape != [1, 64, 64, 1] {
            return Err(reader.fail(
                input,
                format!("its shape is {in_shape:?}, [1, 64, 64, 1] expected"),
            ));
        }
        let out_quant = reader.quant(output)?;
        let out_shape = reader.shape(output)?;
        let positions = match out_shape[..] {
            [1, h, w, 7] => h * w,
            [1, 7] => 1,
            _ => {
                return Err(reader.fail(
                    output,
                    format!(
                    "its shape is {out_shape:?}; the 7 logits per position expected ([1, h, w, 7])"
                ),
                ))
            }
        };

        let mut target = TypedModel::default();
        let mut outlets: HashMap<i32, OutletId> = HashMap::new();
        let source = target
            .add_source("input", i8::fact([batch, 64, 64, 1]))
            .map_err(tract)?;
        outlets.insert(input, source);

        let operators = graph
            .operators()
            .ok_or_else(|| whole("its graph has no operators".into()))?;
        for (n, op) in operators.iter().enumerate() {
            let code = usize::try_from(op.opcode_index())
                .ok()
                .filter(|&i| i < codes.len())
                .map(|i| codes.get(i))
                .ok_or_else(|| whole(format!("operator {n} names no operator code")))?;
            let kind = BuiltinOperator(
                code.builtin_code()
                    .0
                    .max(code.deprecated_builtin_code() as i32),
            );
            let label = format!("operator {n} ({})", kind.variant_name().unwrap_or("custom"));
            let fail = |reason: String| Int8Error {
                what: label.clone(),
                reason,
                cause: None,
            };
            let ins: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
            let outs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
            let [out] = outs[..] else {
                return Err(fail(format!("{} outputs, 1 expected", outs.len())));
            };
            let data_in = |i: usize| -> Result<(OutletId, Quant), Int8Error> {
                let t = *ins
                    .get(i)
                    .ok_or_else(|| fail(format!("input {i} is missing")))?;
                let outlet = *outlets
                    .get(&t)
                    .ok_or_else(|| reader.fail(t, "it is read before any operator writes it"))?;
                Ok((outlet, reader.quant(t)?))
            };
            let out_q = reader.quant(out)?;
            let (inputs, op): (Vec<OutletId>, Box<dyn TypedOp>) = match kind {
                BuiltinOperator::CONV_2D | BuiltinOperator::DEPTHWISE_CONV_2D => {
                    let depthwise = kind == BuiltinOperator::DEPTHWISE_CONV_2D;
                    let (x, x_q) = data_in(0)?;
                    let w = *ins.get(1).ok_or_else(|| fail("no weights".into()))?;
                    let shape = reader.shape(w)?;
                    let [o, kh, kw, i] = shape[..] else {
                        return Err(
                            reader.fail(w, format!("weights of shape {shape:?}, OHWI expected"))
                        );
                    };
                    let (win, act, (dh, dw)) = if depthwise {
                        let opt = op
                            .builtin_options_as_depthwise_conv_2_doptions()
                            .ok_or_else(|| fail("no depthwise options".into()))?;
                        if opt.depth_multiplier() != 1 || o != 1 {
                            return Err(fail(format!(
                                "depth multiplier {} is not supported",
                                opt.depth_multiplier()
                            )));
                        }
                        (
                            window(
                                opt.padding(),
                                (kh as i32, kw as i32),
                                (opt.stride_h(), opt.stride_w()),
                            ),
                            opt.fused_activation_function(),
                            (opt.dilation_h_factor(), opt.dilation_w_factor()),
                        )
                    } else {
                        let opt = op
                            .builtin_options_as_conv_2_doptions()
                            .ok_or_else(|| fail("no convolution options".into()))?;
                        (
                            window(
                                opt.padding(),
                                (kh as i32, kw as i32),
                                (opt.stride_h(), opt.stride_w()),
                            ),
                            opt.fused_activation_function(),
                            (opt.dilation_h_factor(), opt.dilation_w_factor()),
                        )
                    };
                    if (dh, dw) != (1, 1) {
                        return Err(fail(format!("dilation {dh}x{dw} is not supported")));
                    }
                    let (in_channels, out_channels) = if depthwise { (i, i) } else { (i, o) };
                    let (weights, w_scales) = reader.weights(w, out_channels)?;
                    let weights = if depthwise {
                        weights
                    } else {
                        kernels::pack_full(&weights, o, kh * kw, i)
                    };
                    let bias = reader.bias(ins.get(2).copied().unwrap_or(-1), out_channels)?;
                    let conv = Conv {
                        depthwise,
                        window: win.map_err(&fail)?,
                        in_channels,
                        out_channels,
                        weights,
                        bias,
                        input_offset: -x_q.zero_point,
                        requantize: Requantize {
                            multipliers: conv_multipliers(x_q, &w_scales, out_q)
                                .map_err(|e| reader.fail(w, e))?,
                            zero_point: out_q.zero_point,
                            clamp: activation(act, out_q).map_err(&fail)?,
                        },
                    };
                    (vec![x], Box::new(conv))
                }
                BuiltinOperator::MAX_POOL_2D => {
                    let (x, x_q) = data_in(0)?;
                    let opt = op
                        .builtin_options_as_pool_2_doptions()
                        .ok_or_else(|| fail("no pooling options".into()))?;
                    if x_q != out_q {
                        return Err(fail(
                            "MAX_POOL_2D must keep its input's quantization".into(),
                        ));
                    }
                    let pool = MaxPool {
                        window: window(
                            opt.padding(),
                            (opt.filter_height(), opt.filter_width()),
                            (opt.stride_h(), opt.stride_w()),
                        )
                        .map_err(&fail)?,
                        clamp: activation(opt.fused_activation_function(), out_q).map_err(&fail)?,
                    };
                    (vec![x], Box::new(pool))
                }
                BuiltinOperator::ADD => {
                    let (a, a_q) = data_in(0)?;
                    let (b, b_q) = data_in(1)?;
                    let act = op
                        .builtin_options_as_add_options()
                        .map(|o| o.fused_activation_function())
                        .unwrap_or(fb::ActivationFunctionType::NONE);
                    // TFLite's add.cc Prepare for int8.
                    let twice_max = 2.0 * a_q.scale.max(b_q.scale) as f64;
                    let add = Add {
                        offsets: (-a_q.zero_point, -b_q.zero_point),
                        inputs: (
                            QuantizedMultiplier::new(a_q.scale as f64 / twice_max),
                            QuantizedMultiplier::new(b_q.scale as f64 / twice_max),
                        ),
                        output: Requantize {
                            multipliers: vec![multiplier(
                                twice_max
                                    / ((1i64 << ops::ADD_LEFT_SHIFT) as f64 * out_q.scale as f64),
                            )
                            .map_err(|e| reader.fail(out, e))?],
                            zero_point: out_q.zero_point,
                            clamp: activation(act, out_q).map_err(&fail)?,
                        },
                    };
                    (vec![a, b], Box::new(add))
                }
                _ => {
                    return Err(fail(
                        "this operator is not one emotiond's int8 runtime has".into(),
                    ))
                }
            };
            let name = format!(
                "{n}:{}",
                reader.tensor(out).map(tensor_name).unwrap_or_default()
            );
            let wired = target
                .wire_node(name, op, &inputs)
                .map_err(|e| refused(&label, format!("{e:#}"), e.into()))?;
            outlets.insert(out, wired[0]);
        }
        let result = *outlets
            .get(&output)
            .ok_or_else(|| reader.fail(output, "no operator writes the graph's output"))?;
        let fact = target.outlet_fact(result).map_err(tract)?;
        let want: TVec<TDim> = if positions == 1 {
            tvec!(batch.to_dim(), 7.to_dim())
        } else {
            let [_, h, w, _] = out_shape[..] else {
                unreachable!()
            };
            tvec!(batch.to_dim(), h.to_dim(), w.to_dim(), 7.to_dim())
        };
        if fact.shape.dims() != &want[..] {
            return Err(reader.fail(
                output,
                format!(
                    "the operators make {:?}, the file says {out_shape:?}",
                    fact.shape
                ),
            ));
        }
        target.select_output_outlets(&[result]).map_err(tract)?;
        Ok(Int8Graph {
            model: target,
            input: in_quant,
            output: out_quant,
            positions,
        })
    }
}

/// One face's 7 probabilities from its int8 logits (`positions` x 7, NHWC order) quantized as
/// `output`: dequantized, averaged over the positions, softmax, all in f64.
pub fn probabilities(output: Quant, logits: &[i8], probs: &mut [f32; 7]) {
    let positions = (logits.len() / 7).max(1) as f64;
    let mut mean = [0.0f64; 7];
    for chunk in logits.chunks_exact(7) {
        for (m, &q) in mean.iter_mut().zip(chunk) {
            *m += output.dequantize(q) / positions;
        }
    }
    let top = mean.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut total = 0.0;
    for m in mean.iter_mut() {
        *m = (*m - top).exp();
        total += *m;
    }
    for (p, m) in probs.iter_mut().zip(mean) {
        *p = (m / total) as f32;
    }
}
