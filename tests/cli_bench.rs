//! `emotiond bench` from the outside: the JSON report's rows, cascades and thread counts on the bundled
//! frames, faces found, positive times; bad values refused with the flag named and no panic.

mod common;

use common::{assert_fails, emotiond, root, stderr};

const CASCADES: [&str; 3] = [
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt2.xml",
    "lbpcascade_frontalface_improved.xml",
];

fn positive(row: &serde_json::Value, stage: &str) {
    for key in ["median_ms", "p95_ms"] {
        let v = row[stage][key].as_f64().unwrap_or(-1.0);
        assert!(v > 0.0, "{stage}.{key} = {v} in {row}");
    }
}

#[test]
fn json_report_has_a_row_per_cascade_and_thread_count() {
    // `--threads 2` makes the rows the same on any machine: 1 thread, then 2.
    let o = emotiond(
        &["bench", "--iterations", "1", "--threads", "2", "--json"],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["iterations"], 1);
    assert_eq!(v["bundled_frames"], true);
    assert_eq!(v["frames"].as_array().unwrap().len(), 2);
    assert_eq!(v["frames"][0]["width"], 640);
    assert_eq!(v["frames"][0]["height"], 480);
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(v["machine"]["version"], env!("CARGO_PKG_VERSION"));
    let rows = v["rows"].as_array().unwrap();
    let got: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["cascade"].as_str().unwrap(),
                r["threads"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, u64)> = CASCADES.iter().flat_map(|&c| [(c, 1), (c, 2)]).collect();
    assert_eq!(got, want);
    for row in rows {
        for stage in ["conversion", "detect", "pipeline"] {
            positive(row, stage);
        }
        assert!(row["pipeline_fps"].as_f64().unwrap() > 0.0, "{row}");
    }
    // The default cascade finds faces on the bundled frames (4 and 5 of them), so the network ran.
    let default = &rows[0];
    assert!(
        default["faces_per_frame"].as_f64().unwrap() > 0.0,
        "{default}"
    );
    for stage in ["classify_per_face", "classify_per_frame", "track_protocol"] {
        positive(default, stage);
    }
    let speedups = v["speedups"].as_array().unwrap();
    assert_eq!(speedups.len(), 3);
    for s in speedups {
        assert_eq!(s["threads"], 2);
        assert!(s["detect"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["pipeline"].as_f64().unwrap() > 0.0, "{s}");
    }
}

#[test]
fn one_cascade_and_own_frames_as_a_table() {
    let o = emotiond(
        &[
            "bench",
            "--iterations",
            "1",
            "--threads",
            "1",
            "--cascade",
            "models/lbpcascade_frontalface_improved.xml",
            "--frames",
            "tests/data/images/skimage__astronaut.png",
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("emotiond "), "{text}");
    assert!(text.contains("cores"), "{text}");
    assert!(text.contains("1 frame (512x512)"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("lbpcascade_frontalface_improved.xml"))
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(!text.contains("threads over 1"), "{text}");
}

#[test]
fn bad_values_name_their_flag() {
    for (args, needles) in [
        (vec!["--iterations", "0"], vec!["--iterations", "0"]),
        (vec!["--iterations", "99999999"], vec!["--iterations"]),
        (vec!["--threads", "100000"], vec!["--threads", "100000"]),
        (
            vec!["--cascade", "no/such.xml"],
            vec!["--cascade", "no/such.xml"],
        ),
        (vec!["--model", "no/such.tflite"], vec!["--model"]),
        (
            vec!["--frames", "no/such.png"],
            vec!["--frames", "no/such.png"],
        ),
    ] {
        let mut all = vec!["bench"];
        if args[0] != "--iterations" {
            all.extend(["--iterations", "1"]);
        }
        all.extend(&args);
        let o = emotiond(&all, &root());
        assert_fails(&o, &needles);
    }
}
