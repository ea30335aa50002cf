//! The cost saver (`detect.every = K`) against full detection on every frame, on the bundled replay:
//! the same faces appear, change and leave with the same emotions, at most K - 1 frames apart, and the
//! local searches between full detections reuse the full frame's compiled cascade.

mod common;

use emotiond::classify::Emotion;
use emotiond::frame::GrayFrame;
use emotiond::source::still::load_gray;
use emotiond::track::TrackEvent;

use common::{fer_pipeline, root};

/// One reported event: the frame, its kind and the emotion shown.
type Reported = (u64, &'static str, Option<Emotion>);

/// What a replay reported, and how many times the detector laid its cascade out.
fn events(frames: &[GrayFrame], every: u32) -> (Vec<Reported>, usize) {
    let mut pipeline = fer_pipeline(1, every);
    let mut out = Vec::new();
    for frame in frames {
        let n = pipeline.frames();
        for ev in pipeline.process(frame).expect("frame") {
            out.push(match *ev {
                TrackEvent::Appeared { label, .. } => (n, "appeared", Some(label)),
                TrackEvent::Changed { to, .. } => (n, "changed", Some(to)),
                TrackEvent::Lost { .. } => (n, "lost", None),
            });
        }
    }
    (out, pipeline.detector().layouts_built())
}

#[test]
fn every_third_frame_reports_what_every_frame_reports() {
    let mut names: Vec<_> = std::fs::read_dir(root().join("tests/data/replay"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let frames: Vec<GrayFrame> = names.iter().map(|p| load_gray(p).unwrap()).collect();
    assert_eq!(frames.len(), 28);
    let (full, _) = events(&frames, 1);
    let (saver, layouts) = events(&frames, 3);
    assert!(full.len() >= 4, "the replay reports faces: {full:?}");
    let kinds = |v: &[Reported]| v.iter().map(|e| (e.1, e.2)).collect::<Vec<_>>();
    assert_eq!(
        kinds(&saver),
        kinds(&full),
        "every=3 {saver:?}\nevery=1 {full:?}"
    );
    for (a, b) in saver.iter().zip(&full) {
        assert!(a.0.abs_diff(b.0) <= 2, "frame {} against {}", a.0, b.0);
    }
    assert_eq!(layouts, 1, "the local searches laid the cascade out again");
}
