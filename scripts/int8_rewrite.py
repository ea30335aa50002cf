#!/usr/bin/env python3
"""Rewrites a full-int8 .tflite so that every ADD's two operands share one quantization.

tract-tflite 0.23 refuses an int8 ADD whose inputs have different scales ("No super type"). Before each
such ADD this inserts, on both operands, an identity 1x1 DEPTHWISE_CONV_2D (weights 127 at scale 1/127,
zero bias) whose output is quantized to the union of the two operands' ranges. The arithmetic stays
integer; the only change is the requantization the ADD would have done itself.

Usage: int8_rewrite.py IN.tflite OUT.tflite
"""
import sys

import numpy as np
from tensorflow.lite.python import schema_py_generated as fb
from tensorflow.lite.tools import flatbuffer_utils


def opcode_index(model, builtin):
    for i, c in enumerate(model.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == builtin:
            return i
    code = fb.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def quant(scale, zero_point):
    q = fb.QuantizationParametersT()
    q.scale = [float(scale)]
    q.zeroPoint = [int(zero_point)]
    return q


def add_tensor(model, sg, name, shape, dtype, q, data=None):
    t = fb.TensorT()
    t.name = name.encode()
    t.shape = np.array(shape, np.int32)
    t.type = dtype
    t.quantization = q
    buf = fb.BufferT()
    if data is not None:
        buf.data = np.frombuffer(data.tobytes(), np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model = flatbuffer_utils.read_model(src)
    sg = model.subgraphs[0]
    add_code = fb.BuiltinOperator.ADD
    dw = opcode_index(model, fb.BuiltinOperator.DEPTHWISE_CONV_2D)
    ops = []
    rewritten = 0
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != add_code:
            ops.append(op)
            continue
        a, b = (sg.tensors[i] for i in op.inputs)
        (sa, za), (sb, zb) = [(t.quantization.scale[0], t.quantization.zeroPoint[0]) for t in (a, b)]
        if (sa, za) == (sb, zb):
            ops.append(op)
            continue
        lo = min(sa * (-128 - za), sb * (-128 - zb), 0.0)
        hi = max(sa * (127 - za), sb * (127 - zb), 0.0)
        scale = np.float32((hi - lo) / 255.0)
        zero = int(np.clip(np.round(-128 - lo / scale), -128, 127))
        new_inputs = []
        for k, idx in enumerate(op.inputs):
            t = sg.tensors[idx]
            c = int(t.shape[-1])
            s_in = t.quantization.scale[0]
            w = add_tensor(model, sg, f"requant{rewritten}_{k}/w", [1, 1, 1, c], fb.TensorType.INT8,
                           quant(np.float32(1 / 127), 0), np.full(c, 127, np.int8))
            bias = add_tensor(model, sg, f"requant{rewritten}_{k}/b", [c], fb.TensorType.INT32,
                              quant(np.float32(s_in) * np.float32(1 / 127), 0), np.zeros(c, np.int32))
            out = add_tensor(model, sg, f"requant{rewritten}_{k}/out", list(t.shape), fb.TensorType.INT8,
                             quant(scale, zero))
            opt = fb.DepthwiseConv2DOptionsT()
            opt.padding = fb.Padding.VALID
            opt.strideW = opt.strideH = 1
            opt.depthMultiplier = 1
            opt.dilationWFactor = opt.dilationHFactor = 1
            opt.fusedActivationFunction = fb.ActivationFunctionType.NONE
            req = fb.OperatorT()
            req.opcodeIndex = dw
            req.inputs = np.array([idx, w, bias], np.int32)
            req.outputs = np.array([out], np.int32)
            req.builtinOptionsType = fb.BuiltinOptions.DepthwiseConv2DOptions
            req.builtinOptions = opt
            ops.append(req)
            new_inputs.append(out)
        op.inputs = np.array(new_inputs, np.int32)
        ops.append(op)
        rewritten += 1
    sg.operators = ops
    flatbuffer_utils.write_model(model, dst)
    print(f"wrote {dst}: {rewritten} ADDs given one input quantization")


if __name__ == "__main__":
    main()
