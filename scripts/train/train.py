#!/usr/bin/env python3
"""Trains mini-Xception (Arriaga, Ploger and Valdenegro 2017, arXiv:1710.07557) on FER-2013 and exports
the .tflite files emotiond runs. Run it through scripts/train/run, which makes the TensorFlow venv.

The network, as the paper describes it: two 3x3 convolutions of 8 filters, then four residual blocks
of two depthwise-separable 3x3 convolutions (16, 32, 64, 128 filters) with batch normalisation, ReLU
and a strided 3x3 max-pool, the shortcut a strided 1x1 convolution; then a 3x3 convolution to the 7
classes, global average pooling and softmax. L2 regularisation 0.01 on the convolution kernels.
About 58k parameters (the script prints the count and, given --compare-with, checks every weight
shape against a published model's).

Training, as the authors' train_emotion_classifier.py did it, with one change: the validation split
is carved from the Training rows only (the original split the whole CSV, so its validation faces
included the test rows). Inputs: each 48x48 face resized to 64x64 with cv2.resize INTER_LINEAR and
scaled to [-1, 1]. Augmentation: rotation up to 10 degrees, shifts and zoom of 0.1, horizontal flips,
nearest-pixel fill. Adam, batch 32, early stopping on the validation loss (patience 50, best weights
kept), learning rate x0.1 after patience/4 epochs without improvement. PrivateTest is used once, at
the end.

Exports (into --out): mini_xception.keras, emotion_mini_xception_f32.tflite (the same conversion as
scripts/convert-model: global pooling rebuilt as AVERAGE_POOL_2D for tract) and
emotion_mini_xception_int8.tflite (the full-int8 attempt, calibrated on training faces and their
mirror images), and result.json with the split sizes, epochs and accuracies.

--smoke writes a tiny synthetic CSV (a different stripe pattern per class) into --out and trains one
epoch on it, so that the whole pipeline can be checked in a minute or two.
"""
import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow 2.21's oneDNN kernels crash (segfault or "free(): invalid size") in the backward pass of
# the strided 1x1 shortcut convolution on the x86-64 machines this was written on; the plain kernels
# train correctly. Set TF_ENABLE_ONEDNN_OPTS=1 to try oneDNN anyway.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, regularizers  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import convert_model  # noqa: E402

CLASSES = 7
SIDE = 64


def mini_xception(l2=0.01):
    """mini-Xception for 64x64x1 faces and 7 classes."""
    reg = regularizers.l2(l2)
    inp = keras.Input((SIDE, SIDE, 1))
    x = inp
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    for filters in (16, 32, 64, 128):
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.add([x, shortcut])
    x = layers.Conv2D(CLASSES, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inp, out, name="mini_xception")


def weight_shapes(model):
    return [tuple(w.shape) for w in model.weights]


def read_csv(path):
    """The rows of a FER-2013 CSV as (labels, 48x48 uint8 faces, usages); malformed rows stop it."""
    labels, faces, usages = [], [], []
    with open(path) as f:
        header = [h.strip() for h in f.readline().split(",")]
        try:
            ie, ip, iu = header.index("emotion"), header.index("pixels"), header.index("Usage")
        except ValueError:
            sys.exit(f"{path}: the header must name emotion, pixels and Usage (it reads {header})")
        for n, line in enumerate(f, start=2):
            cols = line.rstrip("\n").split(",")
            try:
                label = int(cols[ie])
                px = np.array(cols[ip].split(), dtype=np.int32)
            except (ValueError, IndexError) as e:
                sys.exit(f"{path}: line {n}: {e}")
            if not 0 <= label < CLASSES or px.size != 48 * 48 or px.min() < 0 or px.max() > 255:
                sys.exit(f"{path}: line {n}: not a class 0-6 with 2304 gray values")
            labels.append(label)
            faces.append(px.astype(np.uint8).reshape(48, 48))
            usages.append(cols[iu].strip())
    return np.array(labels), np.stack(faces), np.array(usages)


def prepare(faces):
    """load_fer2013 + preprocess_input: 48 -> 64 INTER_LINEAR, then (x/255 - 0.5) * 2."""
    big = np.stack([cv2.resize(f, (SIDE, SIDE)) for f in faces]).astype(np.float32)
    return ((big / 255.0 - 0.5) * 2.0)[..., None].astype(np.float32)


def split_training(labels, fraction, seed):
    """Stratified: the same share of each class goes to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * fraction))
        val += idx[:k].tolist()
        train += idx[k:].tolist()
    return np.array(sorted(train)), np.array(sorted(val))


def synthetic_csv(path, per_class=24, seed=0):
    """A tiny FER-format CSV: class c is stripes at angle c*pi/7 with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    lines = ["emotion,pixels,Usage"]
    for i in range(per_class * CLASSES):
        c = i % CLASSES
        usage = "Training" if i < per_class * CLASSES * 0.7 else ("PublicTest" if i % 2 else "PrivateTest")
        a = c * np.pi / CLASSES
        img = 128 + 90 * np.sin((xx * np.cos(a) + yy * np.sin(a)) / 3.0) + rng.normal(0, 20, (48, 48))
        img = np.clip(img, 0, 255).astype(np.uint8)
        lines.append(f"{c},{' '.join(map(str, img.flatten()))},{usage}")
    path.write_text("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="?", help="fer2013.csv (emotion,pixels,Usage)")
    ap.add_argument("--out", required=True, help="directory for the model, the .tflite files and result.json")
    ap.add_argument("--epochs", type=int, default=10000, help="upper bound; early stopping ends training")
    ap.add_argument("--patience", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--val-fraction", type=float, default=0.2, help="share of Training rows held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-with", metavar="HDF5", help="check the architecture against a published model")
    ap.add_argument("--smoke", action="store_true", help="one epoch on a tiny synthetic CSV")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.csv = str(out / "synthetic.csv")
        synthetic_csv(pathlib.Path(args.csv))
        args.epochs = 1
    if not args.csv:
        sys.exit("give the FER-2013 CSV (or --smoke)")
    keras.utils.set_random_seed(args.seed)

    model = mini_xception()
    params = model.count_params()
    print(f"mini-Xception: {params} parameters")
    if args.compare_with:
        published = keras.models.load_model(args.compare_with, compile=False)
        if weight_shapes(published) != weight_shapes(model):
            sys.exit(f"the architecture differs from {args.compare_with}: "
                     f"{len(weight_shapes(model))} weights here, {len(weight_shapes(published))} there")
        print(f"architecture: every weight shape equals {args.compare_with}'s "
              f"({published.count_params()} parameters)")

    labels, faces, usages = read_csv(args.csv)
    training = np.flatnonzero(usages == "Training")
    test = np.flatnonzero(usages == "PrivateTest")
    if training.size == 0 or test.size == 0:
        sys.exit(f"{args.csv}: needs Training and PrivateTest rows ({training.size} and {test.size} found)")
    tr, va = split_training(labels[training], args.val_fraction, args.seed)
    tr, va = training[tr], training[va]
    x = prepare(faces)
    y = keras.utils.to_categorical(labels, CLASSES)
    print(f"rows: {tr.size} train, {va.size} validation (both from Training), {test.size} PrivateTest")

    augment = keras.Sequential([
        layers.RandomRotation(10 / 360, fill_mode="nearest"),
        layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
        layers.RandomZoom(0.1, fill_mode="nearest"),
        layers.RandomFlip("horizontal"),
    ])
    train_ds = (tf.data.Dataset.from_tensor_slices((x[tr], y[tr]))
                .shuffle(tr.size, seed=args.seed)
                .batch(args.batch)
                .map(lambda a, b: (augment(a, training=True), b))
                .prefetch(tf.data.AUTOTUNE))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    callbacks = [
        keras.callbacks.CSVLogger(str(out / "training.csv")),
        keras.callbacks.EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.1, patience=max(1, args.patience // 4)),
    ]
    started = time.time()
    history = model.fit(train_ds, validation_data=(x[va], y[va]), epochs=args.epochs,
                        callbacks=callbacks, verbose=2)
    seconds = time.time() - started
    model.save(out / "mini_xception.keras")

    # PrivateTest, once.
    test_probs = model.predict(x[test], verbose=0)
    test_acc = float((test_probs.argmax(1) == labels[test]).mean())
    val_acc = float((model.predict(x[va], verbose=0).argmax(1) == labels[va]).mean())
    print(f"validation accuracy {val_acc:.4f}; PrivateTest accuracy {test_acc:.4f} on {test.size} faces")

    # The same conversion as scripts/convert-model.
    f32 = convert_model.rebuild(model, "avgpool")
    diff = float(np.abs(model.predict(x[test[:8]], verbose=0) - f32.predict(x[test[:8]], verbose=0)).max())
    if diff > 1e-5:
        sys.exit(f"rebuilt graph differs from the trained model by {diff}")
    (out / "emotion_mini_xception_f32.tflite").write_bytes(convert_model.convert_f32(f32))
    calib = x[tr[:500]]
    calib = np.concatenate([calib, calib[:, :, ::-1]])
    int8 = convert_model.convert_int8(convert_model.rebuild(model, "logits"), calib)
    (out / "emotion_mini_xception_int8.tflite").write_bytes(int8)

    result = {
        "csv": args.csv, "smoke": args.smoke, "parameters": params, "seed": args.seed,
        "rows": {"train": int(tr.size), "validation": int(va.size), "private_test": int(test.size)},
        "epochs": len(history.history["loss"]), "seconds": round(seconds, 1),
        "validation_accuracy": val_acc, "private_test_accuracy": test_acc,
        "private_test_correct": int((test_probs.argmax(1) == labels[test]).sum()),
        "int8_calibration_faces": int(calib.shape[0]),
    }
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}/emotion_mini_xception_f32.tflite, emotion_mini_xception_int8.tflite, "
          f"mini_xception.keras, result.json")


if __name__ == "__main__":
    main()
