//! Box-for-box parity with OpenCV 4.14's `CascadeClassifier::detectMultiScale`.
//!
//! `tests/data/reference/detect.json` was produced by `scripts/make-detect-reference.py` running
//! opencv-python on the committed images. Every image x cascade x parameter set must give exactly
//! OpenCV's set of boxes (OpenCV's order varies with its thread count, so sets are compared), at 1, 2,
//! 3 and 4 detector threads: one macro makes the same five cascade checks at each count.
//!
//! Each count checks every Nth image, each count starting one image further on. N is 2 by default:
//! 1 and 3 threads check the even images, 2 and 4 the odd ones, so every image is checked at two
//! counts, one of them with several threads (checking all at all four took 431 s of a CI run's
//! hour). `EMOTIOND_PARITY_STRIDE=N` sets N: 1 checks every image at every count, and
//! `scripts/cross-build` sets 16 for its runs under qemu, where emulation is slow.

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

/// Which images a run at `threads` threads checks, as (first, step): every Nth (N from
/// `EMOTIOND_PARITY_STRIDE`, 2 if it is not set), each thread count starting one further on.
fn image_selection(threads: usize) -> (usize, usize) {
    let step = std::env::var("EMOTIOND_PARITY_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize)
        .max(1);
    ((threads - 1) % step, step)
}

/// Runs one cascade over the images at both parameter sets; returns the differences.
fn check_cascade(name: &str, threads: usize) -> (usize, usize, Vec<String>) {
    let reference = reference("detect.json");
    let rel = reference["cascades"][name]["path"]
        .as_str()
        .expect("cascade in reference");
    let cascade = Cascade::from_file(root().join(rel)).expect("cascade loads");
    let mut detector = Detector::with_threads(cascade, threads).expect("thread pool");
    assert_eq!(detector.threads(), threads);
    let (mut compared, mut total_boxes, mut diffs) = (0, 0, Vec::new());
    let images = reference["images"].as_array().unwrap();
    let (first, step) = image_selection(threads);
    for image in images.iter().skip(first).step_by(step) {
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

fn assert_parity(name: &str, threads: usize) {
    let (compared, total, diffs) = check_cascade(name, threads);
    assert!(compared > 0 && total > 0, "{name}: nothing compared");
    assert!(
        diffs.is_empty(),
        "{name}: {} of {compared} image/parameter pairs differ from OpenCV:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    eprintln!(
        "{name}, {threads} threads: {compared} image/parameter pairs, {total} boxes, all equal to OpenCV's"
    );
}

/// The five cascade checks at one thread count.
macro_rules! parity_at {
    ($module:ident, $threads:expr) => {
        mod $module {
            #[test]
            fn haar_default_matches_opencv() {
                super::assert_parity("haarcascade_frontalface_default", $threads);
            }

            #[test]
            fn haar_default_old_format_matches_opencv() {
                super::assert_parity("haarcascade_frontalface_default.fer-bundled", $threads);
            }

            #[test]
            fn haar_alt2_trees_match_opencv() {
                super::assert_parity("haarcascade_frontalface_alt2", $threads);
            }

            #[test]
            fn lbp_improved_matches_opencv() {
                super::assert_parity("lbpcascade_frontalface_improved", $threads);
            }

            #[test]
            fn haar_tilted_trees_match_opencv() {
                super::assert_parity("haarcascade_eye_tree_eyeglasses", $threads);
            }
        }
    };
}

parity_at!(one_thread, 1);
parity_at!(two_threads, 2);
parity_at!(three_threads, 3);
parity_at!(four_threads, 4);

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
