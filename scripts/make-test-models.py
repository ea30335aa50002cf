#!/usr/bin/env python3
"""Writes the small, deliberately wrong .tflite files the classifier's error tests load.

  tests/data/models/wrong_input_48x48.tflite   input [1,48,48,1] (FER-2013's size, not the 64x64 net)
  tests/data/models/wrong_classes_8.tflite     input [1,64,64,1], 8 outputs instead of 7
  tests/data/models/int8_io.tflite             input and output int8 (a full-int8 graph's interface)
                                               whose AVERAGE_POOL_2D and SOFTMAX emotiond's int8 runtime lacks
  tests/data/models/int8_zero_scale.tflite     models/emotion_mini_xception_int8.tflite with one weight
                                               channel's scale set to 0
  tests/data/models/int8_no_quantization.tflite  ... with the first convolution's output tensor
                                               stripped of its quantization parameters
  tests/data/models/int8_float_output.tflite   ... with the logits tensor's type changed to float32

Needs TensorFlow (scripts/convert-model sets up the venv); run by hand, the outputs are committed.
"""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/data/models"


def tiny(side, classes):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(side, side, 1), batch_size=1)
    x = keras.layers.Conv2D(classes, 3, strides=4)(inp)
    x = keras.layers.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
    x = keras.layers.Reshape((classes,))(x)
    return keras.Model(inp, keras.layers.Softmax()(x))


def write(name, data):
    (OUT / name).write_bytes(data)
    print(f"wrote tests/data/models/{name} ({len(data)} bytes)")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write("wrong_input_48x48.tflite", tf.lite.TFLiteConverter.from_keras_model(tiny(48, 7)).convert())
    write("wrong_classes_8.tflite", tf.lite.TFLiteConverter.from_keras_model(tiny(64, 8)).convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(tiny(64, 7))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 64, 64, 1)).astype(np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    write("int8_io.tflite", conv.convert())
    broken_int8()


def broken_int8():
    """Copies of the shipped int8 model with one thing wrong each, for the start-up errors."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    src = str(OUT.parent.parent.parent / "models/emotion_mini_xception_int8.tflite")

    def variant(name, change):
        model = flatbuffer_utils.read_model(src)
        change(model.subgraphs[0])
        path = OUT / name
        flatbuffer_utils.write_model(model, str(path))
        print(f"wrote tests/data/models/{name} ({path.stat().st_size} bytes)")

    def first_conv(sg):
        return sg.operators[0]

    def zero_scale(sg):
        weights = sg.tensors[first_conv(sg).inputs[1]]
        weights.quantization.scale[3] = 0.0

    def no_quantization(sg):
        sg.tensors[first_conv(sg).outputs[0]].quantization = None

    def float_output(sg):
        sg.tensors[sg.outputs[0]].type = fb.TensorType.FLOAT32

    variant("int8_zero_scale.tflite", zero_scale)
    variant("int8_no_quantization.tflite", no_quantization)
    variant("int8_float_output.tflite", float_output)


if __name__ == "__main__":
    main()
