//! `emotiond detect --emotions` and `emotiond classify` from the outside: the JSON shape, results that
//! equal the TFLite interpreter's, box order, and clear errors for bad boxes and models.

mod common;

use common::{assert_fails, emotiond, floats, ints, reference, root};
use serde_json::Value;

const ASTRONAUT: &str = "tests/data/images/skimage__astronaut.png";
const LABELS: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

fn json(o: &std::process::Output) -> Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// The reference probabilities (LiteRT on the shipped model) for `box` on `image`.
fn reference_probs(image: &str, bbox: [i64; 4]) -> Vec<f64> {
    let r = reference("classify.json");
    let face = r["faces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["image"] == image && ints(&f["box"]) == bbox)
        .unwrap_or_else(|| panic!("{image} {bbox:?} not in the reference"));
    floats(&face["probs"])
}

/// Checks a face object: box, 7 probabilities equal to the reference, label = the top class.
fn check_face(face: &Value, image: &str, bbox: [i64; 4]) {
    assert_eq!(ints(&face["box"]), bbox);
    let probs = floats(&face["probs"]);
    assert_eq!(probs.len(), 7);
    let want = reference_probs(image, bbox);
    for (g, w) in probs.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5, "{bbox:?}: {probs:?} vs {want:?}");
    }
    let top = (0..7)
        .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap();
    assert_eq!(face["label"], LABELS[top]);
}

#[test]
fn detect_with_emotions_adds_probs_and_label() {
    let o = emotiond(&["detect", ASTRONAUT, "--emotions", "--json"], &root());
    let v = json(&o);
    let faces = v[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    check_face(&faces[0], ASTRONAUT, [177, 66, 95, 95]);
    assert_eq!(faces[0]["label"], "happy");
    // Without --emotions the face objects carry only the box.
    let plain = json(&emotiond(&["detect", ASTRONAUT, "--json"], &root()));
    assert!(plain[0]["faces"][0].get("probs").is_none());
}

#[test]
fn classify_keeps_the_order_of_the_boxes() {
    let boxes = [[-30, -25, 100, 100], [170, 60, 120, 90], [-200, 10, 50, 50]];
    let mut args = vec![
        "classify".to_string(),
        ASTRONAUT.to_string(),
        "--json".into(),
    ];
    for b in &boxes {
        args.push("--box".into());
        args.push(format!("{},{},{},{}", b[0], b[1], b[2], b[3]));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = json(&emotiond(&args, &root()));
    let faces = v[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 3);
    for (face, b) in faces.iter().zip(boxes) {
        check_face(face, ASTRONAUT, b);
    }
    assert_eq!(v[0]["width"], 512);
}

#[test]
fn classify_prints_a_table() {
    let o = emotiond(&["classify", ASTRONAUT, "--box", "170,60,120,90"], &root());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("face 1: x=170 y=60 w=120 h=90  happy"),
        "{out}"
    );
}

#[test]
fn relative_offsets_crop_differently() {
    let fer = json(&emotiond(
        &["classify", ASTRONAUT, "--box", "0,0,100,100", "--json"],
        &root(),
    ));
    let rel = json(&emotiond(
        &[
            "classify",
            ASTRONAUT,
            "--box",
            "0,0,100,100",
            "--json",
            "--relative-offsets",
            "0.3,0.3",
        ],
        &root(),
    ));
    assert_ne!(fer[0]["faces"][0]["probs"], rel[0]["faces"][0]["probs"]);
    assert_eq!(rel[0]["faces"][0]["probs"].as_array().unwrap().len(), 7);
}

#[test]
fn bad_boxes_are_named() {
    let o = emotiond(&["classify", ASTRONAUT, "--box", "700,700,50,50"], &root());
    assert_fails(&o, &["700,700,50,50", "outside the 512x512 image"]);
    let o = emotiond(&["classify", ASTRONAUT, "--box", "1,2,0,5"], &root());
    assert_fails(&o, &["1,2,0,5", "at least 1"]);
    let o = emotiond(&["classify", ASTRONAUT, "--box", "1,2,3"], &root());
    assert_fails(&o, &["x,y,w,h"]);
    let o = emotiond(&["classify", ASTRONAUT], &root());
    assert_fails(&o, &["--box"]);
    let o = emotiond(
        &[
            "classify",
            ASTRONAUT,
            "--box",
            "1,2,3,4",
            "--offsets",
            "ten",
        ],
        &root(),
    );
    assert_fails(&o, &["--offsets", "X,Y"]);
    let o = emotiond(
        &[
            "classify",
            ASTRONAUT,
            "--box",
            "1,2,3,4",
            "--relative-offsets=-1,0",
        ],
        &root(),
    );
    assert_fails(&o, &["--relative-offsets"]);
}

#[test]
fn bad_models_are_named() {
    let o = emotiond(
        &[
            "classify",
            ASTRONAUT,
            "--box",
            "1,2,3,4",
            "--model",
            "nope.tflite",
        ],
        &root(),
    );
    assert_fails(&o, &["--model nope.tflite", "no such file"]);
    let o = emotiond(
        &[
            "detect",
            ASTRONAUT,
            "--emotions",
            "--model",
            "tests/data/models/wrong_input_48x48.tflite",
        ],
        &root(),
    );
    assert_fails(&o, &["wrong_input_48x48.tflite", "[1,64,64,1]"]);
    // Outside the source tree the default model is not found, and the error says where it looked.
    let dir = tempfile::tempdir().unwrap();
    let o = emotiond(
        &[
            "classify",
            root().join(ASTRONAUT).to_str().unwrap(),
            "--box",
            "1,2,3,4",
        ],
        dir.path(),
    );
    assert_fails(&o, &["emotion_mini_xception_f32.tflite", "looked in"]);
}
