//! `emotiond eval` against the references: on a FER-2013-format CSV built from the committed test
//! faces (scripts/make-eval-reference.py), every prediction equals the TFLite interpreter's and every
//! metric equals scikit-learn's; malformed rows are named by line; the folder layout gives the same
//! matrix as the CSV.

mod common;

use std::path::Path;

use common::{assert_fails, emotiond, floats, ints, reference, root, stderr};
use serde_json::Value;

const CSV: &str = "tests/data/eval/faces.csv";

fn report(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

fn opt(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Checks a report against the reference metrics (scikit-learn, zero_division=0): counts exactly,
/// ratios to 1e-12, and undefined precision or recall exactly where nothing was predicted or true.
fn assert_metrics(got: &Value, want: &Value) {
    assert_eq!(got["faces"], want["faces"]);
    let confusion: Vec<Vec<i64>> = got["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(ints)
        .collect();
    let want_confusion: Vec<Vec<i64>> = want["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(ints)
        .collect();
    assert_eq!(confusion, want_confusion);
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-12, "{what}: {a} vs {b}");
    close(
        got["accuracy"].as_f64().unwrap(),
        want["accuracy"].as_f64().unwrap(),
        "accuracy",
    );
    let correct: i64 = (0..7).map(|i| confusion[i][i]).sum();
    assert_eq!(got["correct"].as_i64(), Some(correct));
    let (precision, recall, f1) = (
        floats(&want["precision"]),
        floats(&want["recall"]),
        floats(&want["f1"]),
    );
    let support = ints(&want["support"]);
    for (i, class) in got["classes"].as_array().unwrap().iter().enumerate() {
        let predicted: i64 = confusion.iter().map(|row| row[i]).sum();
        assert_eq!(
            class["support"].as_i64(),
            Some(support[i]),
            "support of {}",
            class["name"]
        );
        assert_eq!(class["predicted"].as_i64(), Some(predicted));
        match opt(&class["precision"]) {
            Some(p) => close(p, precision[i], "precision"),
            None => assert_eq!(
                predicted, 0,
                "precision undefined only when never predicted"
            ),
        }
        match opt(&class["recall"]) {
            Some(r) => close(r, recall[i], "recall"),
            None => assert_eq!(support[i], 0, "recall undefined only without support"),
        }
        match opt(&class["f1"]) {
            Some(f) => close(f, f1[i], "f1"),
            None => assert_eq!((predicted, support[i]), (0, 0)),
        }
        for (j, pct) in got["row_percent"][i].as_array().unwrap().iter().enumerate() {
            match opt(pct) {
                Some(p) => close(
                    p,
                    100.0 * confusion[i][j] as f64 / support[i] as f64,
                    "row %",
                ),
                None => assert_eq!(support[i], 0),
            }
        }
    }
    for key in ["precision", "recall", "f1"] {
        close(
            got["macro_avg"][key].as_f64().unwrap(),
            want["macro"][key].as_f64().unwrap(),
            key,
        );
    }
}

#[test]
fn csv_private_test_matches_litert_and_scikit_learn() {
    let dir = tempfile::tempdir().unwrap();
    let preds = dir.path().join("preds.csv");
    let png = dir.path().join("confusion.png");
    let o = emotiond(
        &[
            "eval",
            CSV,
            "--json",
            "-",
            "--predictions",
            preds.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ],
        &root(),
    );
    let got = report(&o);
    let r = reference("eval.json");
    assert_eq!(got["usage"], "PrivateTest");
    assert_eq!(got["format"], "fer2013-csv");
    assert_metrics(&got, &r["metrics"]["PrivateTest"]);

    // Every malformed row is counted and named by its line, with what is wrong.
    let lines: Vec<i64> = r["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_i64().unwrap())
        .collect();
    assert_eq!(got["malformed"].as_i64(), Some(lines.len() as i64));
    let at: Vec<String> = got["malformed_first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["at"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        at,
        lines
            .iter()
            .map(|l| format!("line {l}"))
            .collect::<Vec<_>>()
    );
    let reasons: Vec<&str> = got["malformed_first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    for (reason, want) in reasons.iter().zip([
        "outside the classes 0-6",
        "2000 pixel values",
        "not a class number",
        "\"x",
        "\"300\"",
    ]) {
        assert!(reason.contains(want), "{reason:?} lacks {want:?}");
    }
    let err = stderr(&o);
    for l in &lines {
        assert!(
            err.contains(&format!("line {l}: ")),
            "stderr names line {l}: {err}"
        );
    }

    // Per-face probabilities equal the TFLite interpreter's on the training pipeline's input.
    let text = std::fs::read_to_string(&preds).unwrap();
    let mut rows = text.lines();
    assert_eq!(
        rows.next(),
        Some("source,label,predicted,angry,disgust,fear,happy,sad,surprise,neutral")
    );
    let want_rows: Vec<&Value> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["usage"] == "PrivateTest")
        .collect();
    let got_rows: Vec<&str> = rows.collect();
    assert_eq!(got_rows.len(), want_rows.len());
    let labels = r["labels"].as_array().unwrap();
    for (line, want) in got_rows.iter().zip(&want_rows) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(
            fields[0].parse::<i64>().unwrap(),
            want["line"].as_i64().unwrap()
        );
        assert_eq!(fields[1], labels[want["label"].as_u64().unwrap() as usize]);
        let probs: Vec<f64> = fields[3..].iter().map(|p| p.parse().unwrap()).collect();
        let want_probs = floats(&want["probs"]);
        for (a, b) in probs.iter().zip(&want_probs) {
            assert!(
                (a - b).abs() < 1e-5,
                "line {}: {probs:?} vs {want_probs:?}",
                fields[0]
            );
        }
    }

    let img = image::open(&png).expect("--png writes a PNG").to_rgb8();
    assert_eq!(
        (img.width(), img.height()),
        (110 + 7 * 84 + 90, 96 + 7 * 84 + 24)
    );
}

#[test]
fn usage_all_and_the_folder_layout_give_the_reference_matrix() {
    let r = reference("eval.json");
    let want = &r["metrics"]["all"];
    let got = report(&emotiond(
        &["eval", CSV, "--usage", "all", "--json", "-"],
        &root(),
    ));
    assert_eq!(got["usage"], "all");
    assert_metrics(&got, want);

    // The same faces as PNG files in a folder per class give the same matrix.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(CSV)).unwrap();
    let labels = r["labels"].as_array().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for row in r["rows"].as_array().unwrap() {
        let line = row["line"].as_u64().unwrap() as usize;
        let label = labels[row["label"].as_u64().unwrap() as usize]
            .as_str()
            .unwrap();
        let pixels: Vec<u8> = lines[line - 1]
            .split(',')
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        let class_dir = dir.path().join(label);
        std::fs::create_dir_all(&class_dir).unwrap();
        image::GrayImage::from_raw(48, 48, pixels)
            .unwrap()
            .save(class_dir.join(format!("line{line:03}.png")))
            .unwrap();
    }
    std::fs::write(dir.path().join("happy/notes.txt"), "not an image").unwrap();
    let o = emotiond(
        &["eval", dir.path().to_str().unwrap(), "--json", "-"],
        &root(),
    );
    let got = report(&o);
    assert_eq!(got["format"], "class-folders");
    assert_eq!(got["malformed"].as_i64(), Some(1));
    assert!(got["malformed_first"][0]["at"]
        .as_str()
        .unwrap()
        .ends_with("happy/notes.txt"));
    assert_metrics(&got, want);

    // The table names the same accuracy.
    let o = emotiond(&["eval", dir.path().to_str().unwrap()], &root());
    let table = String::from_utf8_lossy(&o.stdout);
    let acc = want["accuracy"].as_f64().unwrap() * 100.0;
    assert!(table.contains(&format!("accuracy {acc:.2}%")), "{table}");

    // A folder that is not a class is refused with the names expected.
    std::fs::create_dir(dir.path().join("train")).unwrap();
    let o = emotiond(&["eval", dir.path().to_str().unwrap()], &root());
    assert_fails(&o, &["train", "not a class folder", "angry, disgust, fear"]);
}

#[test]
fn strict_stops_at_the_first_malformed_row() {
    let o = emotiond(&["eval", CSV, "--strict"], &root());
    let first = reference("eval.json")["malformed"][0]["line"]
        .as_i64()
        .unwrap();
    assert_fails(
        &o,
        &[
            CSV,
            &format!("line {first}: emotion 7 is outside the classes 0-6"),
            "--strict",
        ],
    );
}

#[test]
fn bad_data_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("fer2013.csv");
    assert_fails(
        &emotiond(&["eval", missing.to_str().unwrap()], &root()),
        &["fer2013.csv"],
    );
    let no_usage = dir.path().join("train.csv");
    std::fs::write(&no_usage, "emotion,pixels\n3,1 2 3\n").unwrap();
    assert_fails(
        &emotiond(&["eval", no_usage.to_str().unwrap()], &root()),
        &["no \"Usage\" column", "--usage all"],
    );
    let wrong = dir.path().join("wrong.csv");
    std::fs::write(&wrong, "a,b,c\n").unwrap();
    assert_fails(
        &emotiond(&["eval", wrong.to_str().unwrap()], &root()),
        &["no \"emotion\" column", "emotion,pixels,Usage"],
    );
    // Only malformed rows: a report, then a failure saying there was nothing to score.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "emotion,pixels,Usage\n9,1 2,PrivateTest\n").unwrap();
    assert_fails(
        &emotiond(&["eval", bad.to_str().unwrap()], &root()),
        &["no usable faces", "line 2"],
    );
    assert_fails(
        &emotiond(&["eval", CSV, "--usage", "Validation"], &root()),
        &["Validation", "PrivateTest"],
    );
    assert!(!Path::new(&missing).exists());
}
