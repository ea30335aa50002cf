#!/usr/bin/env python3
"""Regenerates tests/data/reference/detect.json with OpenCV's own CascadeClassifier.

For every image in tests/data/images/ and every cascade below, runs
cv2.CascadeClassifier(xml).detectMultiScale(gray, scaleFactor, minNeighbors, minSize=...) at the fer
defaults (1.1, 5, 50x50) and at OpenCV's defaults (1.1, 3, no minimum), single-threaded, and records the
boxes. The Rust parity test (tests/detect_parity.rs) compares emotiond's boxes with these as sets.

Run:  $(scripts/reference-venv) scripts/make-detect-reference.py
"""
import hashlib
import json
import pathlib
import sys

import cv2

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASCADES = {
    "haarcascade_frontalface_default": "models/haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_default.fer-bundled": "tests/data/cascades/haarcascade_frontalface_default.fer-bundled.xml",
    "haarcascade_frontalface_alt2": "models/haarcascade_frontalface_alt2.xml",
    "lbpcascade_frontalface_improved": "models/lbpcascade_frontalface_improved.xml",
    # Trees with 45-degree (tilted) features: exercises the tilted integral image.
    "haarcascade_eye_tree_eyeglasses": "tests/data/cascades/haarcascade_eye_tree_eyeglasses.xml",
}
PARAMS = {
    "fer": {"scaleFactor": 1.1, "minNeighbors": 5, "minSize": 50},
    "opencv": {"scaleFactor": 1.1, "minNeighbors": 3, "minSize": 0},
}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    cv2.setNumThreads(1)
    images = sorted((ROOT / "tests/data/images").glob("*.png"))
    if not images:
        sys.exit("no images in tests/data/images")
    out = {
        "generator": "scripts/make-detect-reference.py",
        "opencv": cv2.__version__,
        "params": PARAMS,
        "cascades": {name: {"path": rel, "sha256": sha256(ROOT / rel)} for name, rel in CASCADES.items()},
        "images": [],
    }
    classifiers = {name: cv2.CascadeClassifier(str(ROOT / rel)) for name, rel in CASCADES.items()}
    for name, c in classifiers.items():
        if c.empty():
            sys.exit(f"OpenCV could not load {CASCADES[name]}")
    for path in images:
        gray = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if gray.ndim != 2:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        entry = {
            "file": str(path.relative_to(ROOT)),
            "sha256": sha256(path),
            "width": int(gray.shape[1]),
            "height": int(gray.shape[0]),
            "boxes": {},
        }
        for cname, clf in classifiers.items():
            for pname, p in PARAMS.items():
                m = p["minSize"]
                boxes = clf.detectMultiScale(
                    gray, scaleFactor=p["scaleFactor"], minNeighbors=p["minNeighbors"], minSize=(m, m)
                )
                entry["boxes"][f"{cname}/{pname}"] = [[int(v) for v in b] for b in boxes]
        out["images"].append(entry)
        print(path.name, {k: len(v) for k, v in entry["boxes"].items()}, file=sys.stderr)
    target = ROOT / "tests/data/reference/detect.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {target.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
