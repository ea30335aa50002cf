#!/usr/bin/env python3
"""Writes the int8 calibration set: fer's network inputs for the faces in the photographs that
scripts/fetch-calibration-photos downloads (none of them is a test fixture), with augmentations, as one
float32 .npy of shape (N, 64, 64, 1).

Faces are found as fer finds them (the Haar cascade in models/, scaleFactor 1.1, minNeighbors 5,
minSize 50x50) and cropped with fer's padding and offsets. Each face gives 8 tensors: the crop and its
mirror image, each as is, shifted by 4% of the box, darker (x0.7) and with more contrast (x1.3 about
the mean), so the quantization ranges cover lighting a camera sees.

Usage: int8_calibration.py PHOTO_DIR OUT.npy
"""
import importlib.util
import pathlib
import sys

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("ref", ROOT / "scripts/make-classify-reference.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

PHOTOS = [
    "package/demo/sample3.jpg",
    "package/demo/sample4.jpg",
    "package/demo/sample6.jpg",
    "face_recognition-1.3.0/tests/test_images/obama2.jpg",
]


def main():
    photo_dir, out = pathlib.Path(sys.argv[1]), sys.argv[2]
    cascade = cv2.CascadeClassifier(str(ROOT / ref.CASCADE))
    tensors = []
    faces = 0
    for name in PHOTOS:
        gray = cv2.cvtColor(cv2.imread(str(photo_dir / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
        padded, _ = ref.fer_pad(gray)
        for x, y, w, h in cascade.detectMultiScale(gray, 1.1, 5, minSize=(50, 50)):
            faces += 1
            d = max(1, int(0.04 * w))
            for box in ((x, y, w, h), (x + d, y - d, w, h)):
                u8, _ = ref.fer_crop(padded, [int(v) for v in box])
                if u8 is None:
                    continue
                f = u8.astype(np.float32)
                variants = [u8, np.clip(f * 0.7, 0, 255), np.clip((f - f.mean()) * 1.3 + f.mean(), 0, 255)]
                for v in variants[: 1 if box[0] != x else 3]:
                    t = ref.normalise(np.asarray(v, np.float32).round().astype(np.uint8))
                    tensors += [t, t[:, ::-1]]
    arr = np.stack(tensors)[..., None].astype(np.float32)
    np.save(out, arr)
    print(f"calibration: {arr.shape[0]} face tensors from {faces} faces in {len(PHOTOS)} photographs")


if __name__ == "__main__":
    main()
