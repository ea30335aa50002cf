#!/usr/bin/env python3
"""Regenerates tests/hil/reference.json: the camera frames of the hardware-in-the-loop test and what
OpenCV and the TFLite interpreter say of them.

Each frame is a committed photograph turned gray with OpenCV (cv2.COLOR_BGR2GRAY), its top 480 rows
placed in the middle of a black 640x480 picture: the size scripts/hil feeds through the vivid camera
in YUYV (this gray as Y, 128 as U and V), which emotiond reads back as exactly these bytes. For each
frame it records the SHA-256 of the 640x480 gray bytes and every face OpenCV finds with the daemon's
settings in tests/hil/guest/config.toml (scale 1.1, 5 neighbours, min 50x50), each with the network's
probabilities for fer's crop (make-classify-reference.py's crop, scaling and LiteRT runner). The test
expects the LED and the serial events of the largest face's emotion.

Run:  $(scripts/reference-venv) scripts/make-hil-reference.py            (rewrite the file)
      $(scripts/reference-venv) scripts/make-hil-reference.py --check    (compare with it)
      ... --check --yuyv DIR    also write DIR/<frame>.yuyv for the VM and DIR/list, each frame's
                                name and expected LED lines (what scripts/hil does)
--check requires frames and boxes to be identical and probabilities to agree to 1e-6.
"""
import argparse
import importlib.util
import json
import pathlib
import sys

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("classify_ref", ROOT / "scripts/make-classify-reference.py")
classify_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(classify_ref)

OUT = "tests/hil/reference.json"
WIDTH, HEIGHT = 640, 480
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# The frames, in the order the test shows them to the camera.
FRAMES = [
    ("astronaut", "tests/data/images/skimage__astronaut.png"),
    ("grace_hopper", "tests/data/images/facedetect__grace_hopper_512x512.png"),
]


def frame_of(image):
    gray = cv2.cvtColor(cv2.imread(str(ROOT / image), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    top = gray[:HEIGHT, :WIDTH]
    frame = np.zeros((HEIGHT, WIDTH), np.uint8)
    x = (WIDTH - top.shape[1]) // 2
    frame[: top.shape[0], x : x + top.shape[1]] = top
    return frame, x


def yuyv(gray):
    out = np.full((HEIGHT, WIDTH * 2), 128, np.uint8)
    out[:, 0::2] = gray
    return out.tobytes()


def build():
    cv2.setNumThreads(1)
    cascade = cv2.CascadeClassifier(str(ROOT / classify_ref.CASCADE))
    if cascade.empty():
        sys.exit(f"OpenCV could not load {classify_ref.CASCADE}")
    model = classify_ref.Lite(classify_ref.MODEL)
    out = {
        "generator": "scripts/make-hil-reference.py",
        "opencv": cv2.__version__,
        "model": {"path": classify_ref.MODEL,
                  "sha256": classify_ref.sha256((ROOT / classify_ref.MODEL).read_bytes())},
        "labels": LABELS,
        "size": [WIDTH, HEIGHT],
        "frames": [],
    }
    grays = {}
    for name, image in FRAMES:
        gray, x = frame_of(image)
        grays[name] = gray
        padded, _ = classify_ref.fer_pad(gray)
        boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        faces = []
        for b in (boxes.tolist() if len(boxes) else []):
            u8, _ = classify_ref.fer_crop(padded, b)
            probs = model(classify_ref.normalise(u8))
            faces.append({"box": [int(v) for v in b], "probs": probs,
                          "emotion": LABELS[int(np.argmax(probs))]})
        if not faces:
            sys.exit(f"OpenCV finds no face in the frame made from {image}")
        largest = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        out["frames"].append({
            "name": name,
            "image": image,
            "placed_at": [x, 0],
            "gray_sha256": classify_ref.sha256(gray.tobytes()),
            "faces": faces,
            "expect": {"emotion": largest["emotion"], "box": largest["box"],
                       "conf": max(largest["probs"])},
        })
    return out, grays


def check(committed, fresh):
    problems = []
    for key in ("model", "labels", "size"):
        if committed.get(key) != fresh[key]:
            problems.append(f"{key} differs")
    worst = 0.0
    if len(committed["frames"]) != len(fresh["frames"]):
        problems.append("the frame list differs")
    for old, new in zip(committed["frames"], fresh["frames"]):
        for k in ("name", "image", "placed_at", "gray_sha256"):
            if old[k] != new[k]:
                problems.append(f"{old['name']}: {k} differs")
        if [f["box"] for f in old["faces"]] != [f["box"] for f in new["faces"]]:
            problems.append(f"{old['name']}: boxes differ")
            continue
        for a, b in zip(old["faces"], new["faces"]):
            d = max(abs(p - q) for p, q in zip(a["probs"], b["probs"]))
            worst = max(worst, d)
            if d > 1e-6 or a["emotion"] != b["emotion"]:
                problems.append(f"{old['name']} {a['box']}: probabilities differ by {d:.2e}")
    if problems:
        sys.exit("HIL reference does not reproduce:\n  " + "\n  ".join(problems))
    print(f"HIL reference reproduces ({len(fresh['frames'])} frames; probabilities within {worst:.1e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file")
    ap.add_argument("--yuyv", metavar="DIR", help="write DIR/<frame>.yuyv (640x480 YUYV) and DIR/list")
    args = ap.parse_args()
    fresh, grays = build()
    dest = ROOT / OUT
    if args.check:
        check(json.loads(dest.read_text()), fresh)
    else:
        dest.write_text(json.dumps(fresh, indent=1) + "\n")
        for f in fresh["frames"]:
            e = f["expect"]
            print(f"{f['name']}: {len(f['faces'])} face(s), largest {e['box']} {e['emotion']} {e['conf']:.3f}")
        print(f"wrote {OUT}")
    if args.yuyv:
        d = pathlib.Path(args.yuyv)
        d.mkdir(parents=True, exist_ok=True)
        for name, gray in grays.items():
            (d / f"{name}.yuyv").write_bytes(yuyv(gray))
        # "NAME LEDS" per frame, in order: the gpio-sim lines 0..6 (angry .. neutral, as in
        # tests/hil/guest/config.toml) that should read 1 while the camera shows NAME.
        (d / "list").write_text("".join(
            f["name"] + " " + "".join("1" if l == f["expect"]["emotion"] else "0" for l in LABELS) + "\n"
            for f in fresh["frames"]))


if __name__ == "__main__":
    main()
