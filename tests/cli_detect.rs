//! `emotiond detect` from the outside: output shapes, the default cascade lookup, and every bad input
//! giving a clear error that names the file, a non-zero exit, and no panic.

mod common;

use common::{assert_fails, emotiond, root, stderr};

const ASTRONAUT: &str = "tests/data/images/skimage__astronaut.png";

#[test]
fn json_output_has_the_documented_shape() {
    let o = emotiond(
        &[
            "detect",
            "--json",
            ASTRONAUT,
            "tests/data/images/skimage__coffee.png",
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["image"], ASTRONAUT);
    assert_eq!(arr[0]["width"], 512);
    assert_eq!(arr[0]["height"], 512);
    // OpenCV 4.14 finds exactly this face at the fer defaults (tests/data/reference/detect.json).
    assert_eq!(
        arr[0]["faces"],
        serde_json::json!([{"box": [177, 66, 95, 95]}])
    );
    assert_eq!(arr[1]["faces"], serde_json::json!([]));
}

#[test]
fn table_output_and_annotation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("boxes.png");
    let o = emotiond(
        &["detect", ASTRONAUT, "--annotate", out.to_str().unwrap()],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("skimage__astronaut.png (512x512): 1 face"),
        "{text}"
    );
    assert!(text.contains("face 1: x=177 y=66 w=95 h=95"), "{text}");
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (512, 512));
    // The box's top-left corner is drawn in green.
    assert_eq!(img.get_pixel(177, 66).0, [0, 230, 0]);
}

#[test]
fn default_cascade_is_found_in_models_and_a_miss_lists_every_place() {
    let dir = tempfile::tempdir().unwrap();
    let img = root().join(ASTRONAUT);
    let o = emotiond(&["detect", img.to_str().unwrap()], dir.path());
    assert_fails(
        &o,
        &[
            "haarcascade_frontalface_default.xml",
            "models/",
            "/usr/share/emotiond/models",
            "--cascade",
        ],
    );
}

#[test]
fn missing_and_broken_images_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = emotiond(&["detect", "no/such.png"], &root());
    assert_fails(&o, &["no/such.png", "cannot read image"]);

    let text = dir.path().join("notes.png");
    std::fs::write(&text, "this is not a picture").unwrap();
    let o = emotiond(&["detect", text.to_str().unwrap()], &root());
    assert_fails(&o, &["notes.png", "cannot decode image"]);

    let truncated = dir.path().join("half.png");
    let bytes = std::fs::read(root().join(ASTRONAUT)).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let o = emotiond(&["detect", truncated.to_str().unwrap()], &root());
    assert_fails(&o, &["half.png", "cannot decode image"]);

    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let o = emotiond(&["detect", empty.to_str().unwrap()], &root());
    assert_fails(&o, &["empty.png"]);
}

#[test]
fn zero_size_image_is_refused() {
    // A valid PNG header declaring a 0x0 image.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.png");
    let mut png = Vec::new();
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let ihdr = [0u8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0];
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&[0, 0, 0, 0]);
    std::fs::write(&path, &png).unwrap();
    let o = emotiond(&["detect", path.to_str().unwrap()], &root());
    assert_fails(&o, &["zero.png"]);
}

#[test]
fn broken_cascades_are_named_with_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        std::fs::read_to_string(root().join("models/haarcascade_frontalface_default.xml")).unwrap();
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "truncated.xml",
            good[..good.len() / 3].to_string(),
            &["truncated.xml", "not valid XML"],
        ),
        (
            "other.xml",
            "<opencv_storage><data>1 2 3</data></opencv_storage>".into(),
            &["other.xml", "not an OpenCV cascade"],
        ),
        (
            "plain.xml",
            "<html><body/></html>".into(),
            &["plain.xml", "not an OpenCV cascade"],
        ),
        (
            "index.xml",
            good.replacen(
                "<internalNodes>\n            0 -1 0 ",
                "<internalNodes>\n            0 -1 99999 ",
                1,
            ),
            &["index.xml", "uses feature 99999"],
        ),
        (
            "hog.xml",
            good.replacen("<featureType>HAAR", "<featureType>HOG", 1),
            &["hog.xml", "HOG", "not supported"],
        ),
    ];
    let img = root().join(ASTRONAUT);
    for (name, text, needles) in cases {
        assert_ne!(text, good, "{name}: the corruption did not apply");
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let o = emotiond(
            &[
                "detect",
                "--cascade",
                path.to_str().unwrap(),
                img.to_str().unwrap(),
            ],
            &root(),
        );
        assert_fails(&o, needles);
    }
    let o = emotiond(
        &["detect", "--cascade", "absent.xml", img.to_str().unwrap()],
        &root(),
    );
    assert_fails(&o, &["absent.xml", "no such file"]);
}

#[test]
fn a_scale_factor_the_config_refuses_is_refused_with_the_same_words() {
    // `scale_factor = 9` in a config file gets exactly this message (detect::settings).
    let rule = emotiond::detect::settings::scale_factor(9.0).unwrap_err();
    assert!(rule.contains("at most 4"), "{rule}");
    let o = emotiond(&["detect", "--scale-factor", "9", ASTRONAUT], &root());
    assert_fails(&o, &["scale_factor = 9", &rule]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[detect]\nscale_factor = 9\n").unwrap();
    let o = emotiond(&["check-config", cfg.to_str().unwrap()], &root());
    assert!(!o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains(&format!("c.toml:2: {rule}")), "{report}");
}

#[test]
fn bad_parameters_are_refused() {
    let o = emotiond(&["detect", "--scale-factor", "1", ASTRONAUT], &root());
    assert_fails(&o, &["scale_factor = 1 is out of range", "above 1"]);
    let o = emotiond(
        &["detect", "--min-size", "80", "--max-size", "40", ASTRONAUT],
        &root(),
    );
    assert_fails(&o, &["max_size 40 is below min_size 80"]);
    let o = emotiond(&["detect", "--min-neighbors=-1", ASTRONAUT], &root());
    assert_fails(&o, &["min_neighbors = -1 is out of range", "0 to 100"]);
    let o = emotiond(
        &["detect", "--annotate", "x.png", ASTRONAUT, ASTRONAUT],
        &root(),
    );
    assert_fails(&o, &["--annotate", "directory"]);
}
