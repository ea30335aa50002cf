#!/usr/bin/env python3
"""Regenerates tests/data/reference/classify.json: fer's face crops and the TFLite interpreter's outputs.

For every image in tests/data/images/ it finds faces with OpenCV at fer's defaults (the cascade in
models/, scaleFactor 1.1, minNeighbors 5, minSize 50x50, one thread), and adds the hand-written boxes
of tests/data/classify/given_boxes.json. For each box it builds the network input exactly as fer
25.10.3 does (fer/fer.py: pad 40 px with cv2.mean of the bottom two rows, tosquare, offsets (10,10),
numpy slicing, cv2.resize to 64x64 INTER_LINEAR, /255, (x-0.5)*2 in float32) and records:

  tensor_sha256   SHA-256 of the 4096 little-endian float32 values (NHWC 1x64x64x1)
  crop_sha256     SHA-256 of the 64x64 uint8 crop before scaling
  probs           LiteRT (ai-edge-litert) on the model emotiond ships, num_threads=1, default resolver
  fer_probs       LiteRT on fer's own emotion_model_quantized.tflite, num_threads=1, default resolver
                  (XNNPACK): what `fer` itself reports

Where emotiond deliberately refuses a box that fer would still classify (a box with no area, or a crop
made only of fer's padding border), `expect_error` says which error; fer's numbers are kept for the record.

Run:  $(scripts/reference-venv) scripts/make-classify-reference.py           (rewrite the file)
      $(scripts/reference-venv) scripts/make-classify-reference.py --check   (CI: compare with it)
--check requires crops, tensors, regions and errors to be identical and the probabilities to agree to
1e-6 (the interpreter's float kernels may differ in the last bits between CPUs).
"""
import hashlib
import json
import pathlib
import sys

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASCADE = "models/haarcascade_frontalface_default.xml"
MODEL = "models/emotion_mini_xception_f32.tflite"
FER_MODEL = "tests/data/models/fer_emotion_model_quantized.tflite"
GIVEN = "tests/data/classify/given_boxes.json"
PADDING = 40
OFFSETS = (10, 10)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def fer_pad(gray):
    mean = cv2.mean(gray[-2:, :])[0]
    padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                value=[mean, mean, mean])
    return padded, mean


def tosquare(x, y, w, h):
    if h > w:
        d = h - w
        x -= d // 2
        w += d
    elif w > h:
        d = w - h
        y -= d // 2
        h += d
    return x, y, w, h


def fer_crop(padded, box):
    """The 64x64 uint8 crop fer builds for `box`, or None where cv2.resize refuses the empty slice."""
    x, y, w, h = tosquare(*box)
    x1, x2 = x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING
    y1, y2 = y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING
    x1, y1 = max(0, x1), max(0, y1)
    face = padded[y1:y2, x1:x2]
    H, W = padded.shape
    xs, xe, _ = slice(x1, x2).indices(W)
    ys, ye, _ = slice(y1, y2).indices(H)
    region = [xs - PADDING, ys - PADDING, xe - PADDING, ye - PADDING]
    if face.size == 0:
        return None, region
    return cv2.resize(face, (64, 64)), region


def normalise(u8):
    x = u8.astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0).astype(np.float32)


class Lite:
    def __init__(self, path):
        self.it = Interpreter(model_path=str(ROOT / path), num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]["index"]
        self.out = self.it.get_output_details()[0]["index"]

    def __call__(self, x):
        self.it.set_tensor(self.inp, x.reshape(1, 64, 64, 1))
        self.it.invoke()
        return [float(v) for v in self.it.get_tensor(self.out)[0]]


def face_entry(image, gray, padded, box, source, model, fer_model):
    e = {"image": image, "source": source, "box": [int(v) for v in box]}
    u8, region = fer_crop(padded, box)
    e["region"] = region
    w, h = gray.shape[1], gray.shape[0]
    if box[2] <= 0 or box[3] <= 0:
        e["expect_error"] = "empty_box"
    elif u8 is None or not (region[0] < w and region[2] > 0 and region[1] < h and region[3] > 0):
        e["expect_error"] = "outside_image"
    else:
        e["expect_error"] = None
    e["fer_skips"] = u8 is None
    if u8 is None:
        return e
    x = normalise(u8)
    e["crop_sha256"] = sha256(u8.tobytes())
    e["tensor_sha256"] = sha256(x.astype("<f4").tobytes())
    if e["expect_error"] is None:
        e["probs"] = model(x)
    e["fer_probs"] = fer_model(x)
    return e


def check(committed, fresh):
    """Compares a fresh reference with the committed one; exits non-zero on any difference."""
    problems = []
    for key in ("model", "fer_model", "labels", "images"):
        if committed[key] != fresh[key]:
            problems.append(f"{key} differs")
    if len(committed["faces"]) != len(fresh["faces"]):
        problems.append(f"{len(fresh['faces'])} boxes now, {len(committed['faces'])} committed")
    worst = 0.0
    for old, new in zip(committed["faces"], fresh["faces"]):
        for k in set(old) | set(new):
            if k in ("probs", "fer_probs"):
                if (k in old) != (k in new):
                    problems.append(f"{old['image']} {old['box']}: {k} present in one only")
                    continue
                d = max(abs(a - b) for a, b in zip(old[k], new[k]))
                worst = max(worst, d)
                if d > 1e-6:
                    problems.append(f"{old['image']} {old['box']}: {k} differ by {d:.2e}")
            elif old.get(k) != new.get(k):
                problems.append(f"{old['image']} {old['box']}: {k} differs")
    if problems:
        sys.exit("classify reference does not reproduce:\n  " + "\n  ".join(problems[:20]))
    print(f"classify reference reproduces ({len(fresh['faces'])} boxes; probabilities within {worst:.1e})")


def main():
    cv2.setNumThreads(1)
    cascade = cv2.CascadeClassifier(str(ROOT / CASCADE))
    if cascade.empty():
        sys.exit(f"OpenCV could not load {CASCADE}")
    model, fer_model = Lite(MODEL), Lite(FER_MODEL)
    given = json.loads((ROOT / GIVEN).read_text())
    images = sorted((ROOT / "tests/data/images").glob("*.png"))
    out = {
        "generator": "scripts/make-classify-reference.py",
        "opencv": cv2.__version__,
        "litert": "ai-edge-litert, Interpreter(num_threads=1), default op resolver",
        "model": {"path": MODEL, "sha256": sha256((ROOT / MODEL).read_bytes())},
        "fer_model": {"path": FER_MODEL, "sha256": sha256((ROOT / FER_MODEL).read_bytes())},
        "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
        "images": {},
        "faces": [],
    }
    for path in images:
        rel = str(path.relative_to(ROOT))
        gray = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
        padded, mean = fer_pad(gray)
        out["images"][rel] = {"pad_mean": mean, "pad_value": int(padded[0, 0])}
        boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        for b in (boxes.tolist() if len(boxes) else []):
            out["faces"].append(face_entry(rel, gray, padded, b, "detected", model, fer_model))
        for b in given.get(rel, []):
            out["faces"].append(face_entry(rel, gray, padded, b, "given", model, fer_model))
    dest = ROOT / "tests/data/reference/classify.json"
    if "--check" in sys.argv[1:]:
        check(json.loads(dest.read_text()), out)
        return
    dest.write_text(json.dumps(out, indent=1) + "\n")
    n = sum(1 for f in out["faces"] if f["expect_error"] is None)
    print(f"wrote {dest.relative_to(ROOT)}: {len(out['faces'])} boxes, {n} classified")


if __name__ == "__main__":
    main()
