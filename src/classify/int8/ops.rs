//! The int8 operators of mini-Xception as tract ops that compute exactly what TFLite's reference
//! integer kernels compute (`reference_integer_ops::ConvPerChannel`, `DepthwiseConvPerChannel`,
//! `MaxPool`, `AddElementwise`): integer sums, then [`QuantizedMultiplier::apply`] per output
//! channel, the output zero point and the fused activation's clamp. Tensors are NHWC `i8`; the
//! quantization parameters live in the ops, not in the tensors' datum types.

use std::cell::RefCell;

use tract_tflite::internal::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_tflite::internal::*;

use super::fixed::QuantizedMultiplier;
use super::kernels::{add, convolve, packed_full_len, Filter, Geometry};

/// How a window meets the border: TFLite's `SAME` (output `ceil(in / stride)`, zero-point padding
/// split with the smaller half before) or `VALID` (no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Padded so that the output is `ceil(in / stride)`.
    Same,
    /// Only windows wholly inside the input.
    Valid,
}

/// One spatial axis of a window: its size, stride and padding, and what comes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride along height and width.
    pub stride: (usize, usize),
    /// Border handling.
    pub padding: Padding,
}

impl Window {
    /// The output size and the padding before, along one axis of `input` values; `None` where a
    /// `VALID` window does not fit.
    fn axis(
        input: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
    ) -> Option<(usize, usize)> {
        let out = match padding {
            Padding::Same => input.div_ceil(stride),
            Padding::Valid => (input.checked_sub(kernel)?) / stride + 1,
        };
        let needed = (out - 1) * stride + kernel;
        Some((out, needed.saturating_sub(input) / 2))
    }

    /// Output height, width and the padding above and to the left, for an `h` x `w` input.
    pub fn output(&self, h: usize, w: usize) -> Option<(usize, usize, usize, usize)> {
        let (oh, top) = Self::axis(h, self.kernel.0, self.stride.0, self.padding)?;
        let (ow, left) = Self::axis(w, self.kernel.1, self.stride.1, self.padding)?;
        (oh > 0 && ow > 0).then_some((oh, ow, top, left))
    }
}

/// What happens to an integer sum on its way out: a multiplier per channel (one, for a tensor-wide
/// scale), the output zero point and the activation's clamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requantize {
    /// One per output channel, or one for all.
    pub multipliers: Vec<QuantizedMultiplier>,
    /// The output tensor's zero point.
    pub zero_point: i32,
    /// The fused activation's range in the output's quantized units.
    pub clamp: (i32, i32),
}

impl Requantize {
    /// One sum of output channel `channel` in int8, as TFLite computes it.
    #[inline]
    pub fn apply(&self, channel: usize, acc: i32) -> i8 {
        let m = self.multipliers[if self.multipliers.len() == 1 {
            0
        } else {
            channel
        }];
        (m.apply(acc).saturating_add(self.zero_point)).clamp(self.clamp.0, self.clamp.1) as i8
    }
}

fn nhwc(fact: &TypedFact) -> TractResult<[usize; 4]> {
    let shape = fact
        .shape
        .as_concrete()
        .context("int8 ops need concrete shapes")?;
    match *shape {
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => bail!("int8 ops need NHWC tensors, got shape {shape:?}"),
    }
}

fn input_i8(value: &TValue) -> TractResult<(&[i8], [usize; 4])> {
    let shape = match *value.shape() {
        [n, h, w, c] => [n, h, w, c],
        ref other => bail!("expected an NHWC tensor, got {other:?}"),
    };
    Ok((value.try_as_plain_ram()?.as_slice::<i8>()?, shape))
}

fn output_i8(shape: [usize; 4], fill: impl FnOnce(&mut [i8])) -> TractResult<TVec<TValue>> {
    let mut tensor = Tensor::zero::<i8>(&shape)?;
    fill(tensor.try_as_plain_ram_mut()?.as_slice_mut::<i8>()?);
    Ok(tvec!(tensor.into_tvalue()))
}

thread_local! {
    /// The zero-point-shifted, padded input of the convolution being run on this thread and one
    /// output row of its sums: reused from face to face, so a run allocates only its output
    /// tensors.
    static SCRATCH: RefCell<(Vec<i16>, Vec<i32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A convolution or depthwise convolution over int8, as TFLite's per-channel reference kernels
/// compute it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conv {
    /// Depthwise (one filter per channel, depth multiplier 1) rather than a full convolution.
    pub depthwise: bool,
    /// The window.
    pub window: Window,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// The weights widened to i16: for a convolution as [`pack_full`](super::kernels::pack_full) orders them (TFLite's OHWI
    /// goes through it), HWC for a depthwise one.
    pub weights: Vec<i16>,
    /// One int32 bias per output channel (scale: input scale times the channel's weight scale).
    pub bias: Vec<i32>,
    /// Minus the input's zero point (TFLite's `input_offset`).
    pub input_offset: i32,
    /// Scaling to the output.
    pub requantize: Requantize,
}

impl Conv {
    /// Writes `(input + offset)` into `padded`, a `ph` x `pw` x `c` buffer whose border stays 0:
    /// a padded tap then adds nothing, as the reference kernels skip taps outside the input.
    fn pad(
        &self,
        input: &[i8],
        (h, w, c): (usize, usize, usize),
        (ph, pw, top, left): (usize, usize, usize, usize),
        padded: &mut Vec<i16>,
    ) {
        padded.clear();
        // One spare value at the end: the second of the last pixel's last input pair when the
        // channel count is odd (its weight is 0).
        padded.resize(ph * pw * c + 1, 0);
        for py in 0..ph {
            let Some(iy) = py.checked_sub(top).filter(|&y| y < h) else {
                continue;
            };
            let x0 = left;
            let x1 = (left + w).min(pw);
            if x1 <= x0 {
                continue;
            }
            let src = &input[(iy * w) * c..][..(x1 - x0) * c];
            let dst = &mut padded[(py * pw + x0) * c..][..(x1 - x0) * c];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s as i16 + self.input_offset as i16;
            }
        }
    }
}

impl Op for Conv {
    fn name(&self) -> StaticName {
        if self.depthwise {
            "TfliteDepthwiseConvI8".into()
        } else {
            "TfliteConvI8".into()
        }
    }

    op_as_typed_op!();
}

impl EvalOp for Conv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (input, [n, h, w, c]) = input_i8(&inputs[0])?;
        ensure!(
            c == self.in_channels,
            "{c} input channels, {} expected",
            self.in_channels
        );
        let (oh, ow, top, left) = self
            .window
            .output(h, w)
            .with_context(|| format!("a {h}x{w} input is smaller than the window"))?;
        let (kh, kw) = self.window.kernel;
        let (sh, sw) = self.window.stride;
        let (ph, pw) = ((oh - 1) * sh + kh, (ow - 1) * sw + kw);
        let oc = self.out_channels;
        let geometry = Geometry {
            padded_width: pw,
            channels: c,
            outputs: oc,
            out_size: (oh, ow),
            kernel: (kh, kw),
            stride: (sh, sw),
        };
        let filter = Filter {
            weights: &self.weights,
            bias: &self.bias,
            depthwise: self.depthwise,
            requantize: &self.requantize,
        };
        ensure!(
            self.weights.len()
                == if self.depthwise {
                    kh * kw * c
                } else {
                    packed_full_len(oc, kh * kw, c)
                }
                && self.bias.len() == oc
                && (self.requantize.multipliers.len() == 1
                    || self.requantize.multipliers.len() == oc),
            "weights, bias or multipliers do not fit {kh}x{kw}x{c} -> {oc}"
        );
        output_i8([n, oh, ow, oc], |out| {
            SCRATCH.with_borrow_mut(|(padded, acc)| {
                for b in 0..n {
                    let image = &input[b * h * w * c..][..h * w * c];
                    self.pad(image, (h, w, c), (ph, pw, top, left), padded);
                    let out = &mut out[b * oh * ow * oc..][..oh * ow * oc];
                    convolve(padded, &geometry, &filter, acc, out);
                }
            })
        })
    }
}

impl TypedOp for Conv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let [n, h, w, c] = nhwc(inputs[0])?;
        ensure!(
            c == self.in_channels,
            "{c} input channels, {} expected",
            self.in_channels
        );
        let (oh, ow, _, _) = self
            .window
            .output(h, w)
            .with_context(|| format!("a {h}x{w} input is smaller than the window"))?;
        Ok(tvec!(i8::fact([n, oh, ow, self.out_channels])))
    }

    as_op!();
}

/// Max pooling over int8: the largest value among the taps inside the input (padding never
/// wins), then the activation's clamp, as TFLite's reference `MaxPool` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MaxPool {
    /// The window.
    pub window: Window,
    /// The fused activation's range.
    pub clamp: (i32, i32),
}

impl Op for MaxPool {
    fn name(&self) -> StaticName {
        "TfliteMaxPoolI8".into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (input, [n, h, w, c]) = input_i8(&inputs[0])?;
        let (oh, ow, top, left) = self
            .window
            .output(h, w)
            .with_context(|| format!("a {h}x{w} input is smaller than the window"))?;
        let (kh, kw) = self.window.kernel;
        let (sh, sw) = self.window.stride;
        output_i8([n, oh, ow, c], |out| {
            for b in 0..n {
                let image = &input[b * h * w * c..][..h * w * c];
                for oy in 0..oh {
                    let y0 = (oy * sh).saturating_sub(top);
                    let y1 = (oy * sh + kh - top).min(h);
                    for ox in 0..ow {
                        let x0 = (ox * sw).saturating_sub(left);
                        let x1 = (ox * sw + kw - left).min(w);
                        let px = &mut out[((b * oh + oy) * ow + ox) * c..][..c];
                        px.fill(i8::MIN);
                        for y in y0..y1 {
                            for x in x0..x1 {
                                let tap = &image[(y * w + x) * c..][..c];
                                for (p, &t) in px.iter_mut().zip(tap) {
                                    *p = (*p).max(t);
                                }
                            }
                        }
                        for p in px.iter_mut() {
                            *p = (*p as i32).clamp(self.clamp.0, self.clamp.1) as i8;
                        }
                    }
                }
            }
        })
    }
}

impl TypedOp for MaxPool {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let [n, h, w, c] = nhwc(inputs[0])?;
        let (oh, ow, _, _) = self
            .window
            .output(h, w)
            .with_context(|| format!("a {h}x{w} input is smaller than the window"))?;
        Ok(tvec!(i8::fact([n, oh, ow, c])))
    }

    as_op!();
}

/// Element-wise addition of two int8 tensors of one shape with their own scales, as TFLite's
/// reference `AddElementwise` does it: both operands shifted left by 20 bits and brought to twice
/// the larger input scale, summed, then scaled to the output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Add {
    /// Minus each input's zero point.
    pub offsets: (i32, i32),
    /// Each input's multiplier (at most 1/2).
    pub inputs: (QuantizedMultiplier, QuantizedMultiplier),
    /// The sum's multiplier, the output zero point and the clamp.
    pub output: Requantize,
}

/// TFLite's `left_shift` for int8 addition.
pub const ADD_LEFT_SHIFT: i32 = 20;

impl Op for Add {
    fn name(&self) -> StaticName {
        "TfliteAddI8".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Add {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, shape) = input_i8(&inputs[0])?;
        let (b, other) = input_i8(&inputs[1])?;
        ensure!(shape == other, "ADD of shapes {shape:?} and {other:?}");
        ensure!(
            self.output.multipliers.len() == 1,
            "ADD has {} output multipliers, 1 expected",
            self.output.multipliers.len()
        );
        output_i8(shape, |out| {
            add(
                (a, b),
                self.offsets,
                self.inputs,
                ADD_LEFT_SHIFT as u32,
                &self.output,
                out,
            )
        })
    }
}

impl TypedOp for Add {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let a = nhwc(inputs[0])?;
        let b = nhwc(inputs[1])?;
        ensure!(a == b, "ADD of shapes {a:?} and {b:?}");
        Ok(tvec!(i8::fact(a)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_tflite_padding() {
        let same = |k, s| Window {
            kernel: (k, k),
            stride: (s, s),
            padding: Padding::Same,
        };
        // 3x3 stride 2 on 60: 30 out, one padding row below and none above.
        assert_eq!(same(3, 2).output(60, 60), Some((30, 30, 0, 0)));
        // 3x3 stride 2 on 15: 8 out, one padding row on each side.
        assert_eq!(same(3, 2).output(15, 15), Some((8, 8, 1, 1)));
        assert_eq!(same(1, 2).output(15, 15), Some((8, 8, 0, 0)));
        let valid = Window {
            padding: Padding::Valid,
            ..same(3, 1)
        };
        assert_eq!(valid.output(64, 64), Some((62, 62, 0, 0)));
        assert_eq!(valid.output(2, 64), None);
    }
}
