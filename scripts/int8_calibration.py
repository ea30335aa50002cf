#!/usr/bin/env python3
"""Writes the int8 calibration set: fer's network inputs for every face in
tests/data/reference/classify.json that emotiond classifies, and their mirror images, as one
float32 .npy of shape (N, 64, 64, 1). Usage: int8_calibration.py OUT.npy"""
import importlib.util
import json
import pathlib
import sys

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("ref", ROOT / "scripts/make-classify-reference.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

data = json.loads((ROOT / "tests/data/reference/classify.json").read_text())
tensors = []
for f in data["faces"]:
    if f["expect_error"] is not None:
        continue
    gray = cv2.cvtColor(cv2.imread(str(ROOT / f["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    u8, _ = ref.fer_crop(ref.fer_pad(gray)[0], f["box"])
    x = ref.normalise(u8)
    tensors += [x, x[:, ::-1]]
arr = np.stack(tensors)[..., None].astype(np.float32)
np.save(sys.argv[1], arr)
print(f"calibration: {arr.shape[0]} face tensors")
