//! Box-for-box parity with OpenCV 4.14's `CascadeClassifier::detectMultiScale`.
//!
//! `tests/data/reference/detect.json` was produced by `scripts/make-detect-reference.py` running
//! opencv-python on the committed images. Every image x cascade x parameter set must give exactly
//! OpenCV's set of boxes (OpenCV's order varies with its thread count, so sets are compared).

mod common;

use std::collections::BTreeSet;

use emotiond::detect::{Cascade, DetectParams, Detector};
use emotiond::source::still::load_gray;
use serde_json::Value;

use common::{rect, reference, root};

fn params(reference: &Value, name: &str) -> DetectParams {
    let p = &reference["params"][name];
    DetectParams {
        scale_factor: p["scaleFactor"].as_f64().unwrap(),
        min_neighbors: p["minNeighbors"].as_i64().unwrap() as i32,
        min_size: p["minSize"].as_u64().unwrap() as usize,
        max_size: 0,
    }
}

fn boxes(v: &Value) -> BTreeSet<[i32; 4]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| rect(b).to_array())
        .collect()
}

/// Runs one cascade over every image at both parameter sets; returns the differences.
fn check_cascade(name: &str) -> (usize, usize, Vec<String>) {
    let reference = reference("detect.json");
    let rel = reference["cascades"][name]["path"]
        .as_str()
        .expect("cascade in reference");
    let mut detector = Detector::new(Cascade::from_file(root().join(rel)).expect("cascade loads"));
    let (mut compared, mut total_boxes, mut diffs) = (0, 0, Vec::new());
    for image in reference["images"].as_array().unwrap() {
        let file = image["file"].as_str().unwrap();
        let frame = load_gray(root().join(file)).expect("image loads");
        assert_eq!(
            frame.width() as u64,
            image["width"].as_u64().unwrap(),
            "{file} width"
        );
        for pname in ["fer", "opencv"] {
            let want = boxes(&image["boxes"][format!("{name}/{pname}")]);
            let got: BTreeSet<[i32; 4]> = detector
                .detect(&frame, &params(&reference, pname))
                .unwrap()
                .into_iter()
                .map(|r| r.to_array())
                .collect();
            compared += 1;
            total_boxes += want.len();
            if got != want {
                diffs.push(format!(
                    "{file} [{name}/{pname}]: missing {:?}, extra {:?}",
                    want.difference(&got).collect::<Vec<_>>(),
                    got.difference(&want).collect::<Vec<_>>()
                ));
            }
        }
    }
    (compared, total_boxes, diffs)
}

fn assert_parity(name: &str) {
    let (compared, total, diffs) = check_cascade(name);
    assert!(compared > 0 && total > 0, "{name}: nothing compared");
    assert!(
        diffs.is_empty(),
        "{name}: {} of {compared} image/parameter pairs differ from OpenCV:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    eprintln!("{name}: {compared} image/parameter pairs, {total} boxes, all equal to OpenCV's");
}

#[test]
fn haar_default_matches_opencv() {
    assert_parity("haarcascade_frontalface_default");
}

#[test]
fn haar_default_old_format_matches_opencv() {
    assert_parity("haarcascade_frontalface_default.fer-bundled");
}

#[test]
fn haar_alt2_trees_match_opencv() {
    assert_parity("haarcascade_frontalface_alt2");
}

#[test]
fn lbp_improved_matches_opencv() {
    assert_parity("lbpcascade_frontalface_improved");
}

#[test]
fn haar_tilted_trees_match_opencv() {
    assert_parity("haarcascade_eye_tree_eyeglasses");
}

#[test]
fn reference_covers_the_committed_images() {
    let reference = reference("detect.json");
    let listed: BTreeSet<String> = reference["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap().to_string())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("tests/data/images"))
        .unwrap()
        .map(|e| {
            format!(
                "tests/data/images/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(
        listed, on_disk,
        "regenerate with scripts/make-detect-reference.py"
    );
}
