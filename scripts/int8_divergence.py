#!/usr/bin/env python3
"""Compares every int8 tensor of a graph in the TFLite interpreter (reference kernels,
experimental_preserve_all_tensors) with the same tensor in tract, face by face, and prints, per
engine, the first operator whose output differs and by how many steps. Run by scripts/int8-divergence.

Usage: int8_divergence.py --example BIN --faces N MODEL.tflite[:emotiond] ...
  MODEL.tflite           loaded by stock tract-tflite (the example without --emotiond)
  MODEL.tflite:emotiond  loaded by emotiond's int8 runtime
"""
import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys
import tempfile

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("ref", ROOT / "scripts/make-classify-reference.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def faces(n):
    data = json.loads((ROOT / "tests/data/reference/classify.json").read_text())
    picked = [f for f in data["faces"] if f["expect_error"] is None][:n]
    for f in picked:
        gray = cv2.cvtColor(cv2.imread(str(ROOT / f["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
        u8, _ = ref.fer_crop(ref.fer_pad(gray)[0], f["box"])
        yield f"{pathlib.Path(f['image']).stem} {f['box']}", ref.normalise(u8)


def litert_tensors(model, q):
    it = Interpreter(model_path=model, num_threads=1, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], q.reshape(1, 64, 64, 1))
    it.invoke()
    return it, {d["name"]: it.get_tensor(d["index"]) for d in it.get_tensor_details()}


def op_outputs(it):
    """The graph's operators in execution order: (index, kind, output tensor name)."""
    return [(op["index"], op["op_name"], it._get_tensor_details(op["outputs"][0], 0)["name"])
            for op in it._get_ops_details()]


def engine_tensors(example, model, ours, q, work):
    (work / "input.i8").write_bytes(q.tobytes())
    out = work / "dump"
    subprocess.run([example, model, str(work / "input.i8"), str(out)] + (["--emotiond"] if ours else []),
                   check=True)
    nodes = []
    for line in (out / "index.tsv").read_text().splitlines():
        name, dt, shape, file = line.split("\t")
        raw = np.fromfile(out / file, np.uint8 if "U8" in dt else np.int8 if "I8" in dt else np.int32)
        if "U8" in dt:  # tract's u8 form of an int8 tensor: the same values offset by 128
            raw = (raw.astype(np.int32) - 128).astype(np.int8)
        nodes.append((name, json.loads(shape), raw))
    return nodes


def match(nodes, tensor, shape, ours):
    """The node that holds TFLite tensor `tensor`: emotiond names it `N:tensor`; stock tract names
    an operator's nodes after its output tensor, the last of them holding the result."""
    size = int(np.prod(shape))
    hits = [raw for name, s, raw in nodes
            if (name.split(":", 1)[-1] == tensor if ours else (name == tensor or name.startswith(tensor + ".")))
            and raw.dtype == np.int8 and raw.size == size]
    return hits[-1] if hits else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", required=True)
    ap.add_argument("--faces", type=int, default=8)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for spec_ in args.models:
            model, _, engine = spec_.partition(":")
            ours = engine == "emotiond"
            label = f"{pathlib.Path(model).name} in {'emotiond int8 runtime' if ours else 'stock tract-tflite'}"
            first = {}  # op index -> (kind, tensor, faces differing, max lsb, fraction)
            total = 0
            for face, x in faces(args.faces):
                probe = Interpreter(model_path=model)
                d = probe.get_input_details()[0]
                scale, zero = d["quantization"]
                v = (x / np.float32(scale)).astype(np.float32)
                q = np.clip(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + zero, -128, 127).astype(np.int8)
                it, lite = litert_tensors(model, q)
                nodes = engine_tensors(args.example, model, ours, q, work)
                total += 1
                for index, kind, tensor in op_outputs(it):
                    want = lite[tensor]
                    got = match(nodes, tensor, want.shape, ours)
                    if got is None:
                        print(f"  {face}: operator {index} ({kind}) {tensor}: no tract node holds it")
                        break
                    diff = np.abs(got.astype(np.int32) - want.reshape(-1).astype(np.int32))
                    if diff.max() > 0:
                        k, t, n, lsb, count = first.get(index, (kind, tensor, 0, 0, (0, 0)))
                        first[index] = (kind, tensor, n + 1, max(lsb, int(diff.max())),
                                        (count[0] + int((diff > 0).sum()), count[1] + diff.size))
                        break
            print(f"{label}: {total} faces")
            if not first:
                print("  every int8 tensor equals the TFLite reference kernels' on every face")
            for index in sorted(first):
                kind, tensor, n, lsb, (bad, size) = first[index]
                print(f"  first difference at operator {index} ({kind}, output {tensor[:60]}) on {n} of "
                      f"{total} faces: up to {lsb} LSB, {bad} of its {size} values ({100 * bad / size:.3f}%)")


if __name__ == "__main__":
    sys.exit(main())
