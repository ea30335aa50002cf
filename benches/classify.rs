//! Per-face emotion latency, one thread: fer's crop plus the network, and the network alone.
//!
//! The faces are the detected ones in `tests/data/reference/classify.json`, taken in turn.
//! `scripts/bench-classify` runs this next to the TFLite interpreter (ai-edge-litert, XNNPACK,
//! `num_threads=1`) on the same model and the same tensors, and prints the ratio.
//!
//! `explain/occlusion/batch-N` times one occlusion map (`emotiond explain`'s defaults: 196 occluded
//! copies of a face) with N copies per tract run, to show whether batching pays.

use criterion::{criterion_group, criterion_main, Criterion};
use emotiond::classify::crop::{pad_value, CropBuilder, INPUT_LEN};
use emotiond::classify::model::EmotionModel;
use emotiond::classify::{Classifier, CropRule, DEFAULT_MODEL};
use emotiond::explain::{occlusion_map_of_crop, Occlusion};
use emotiond::frame::GrayFrame;
use emotiond::frame::Rect;
use emotiond::source::still::load_gray;

fn faces(root: &str) -> Vec<(GrayFrame, Rect)> {
    let text = std::fs::read_to_string(format!("{root}/tests/data/reference/classify.json"))
        .expect("reference JSON");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut out = Vec::new();
    for f in v["faces"].as_array().unwrap() {
        if f["source"] != "detected" {
            continue;
        }
        let b: Vec<i32> = f["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() as i32)
            .collect();
        let frame = load_gray(format!("{root}/{}", f["image"].as_str().unwrap())).unwrap();
        let r = Rect::new(b[0], b[1], b[2], b[3]);
        out.push((frame, r));
    }
    out
}

fn bench(c: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut classifier =
        Classifier::load(format!("{root}/models/{DEFAULT_MODEL}"), CropRule::fer()).expect("model");
    let faces = faces(root);
    let pads: Vec<u8> = faces.iter().map(|(f, _)| pad_value(f).unwrap()).collect();
    let mut i = 0;
    c.bench_function("classify/face", |b| {
        b.iter(|| {
            let k = i % faces.len();
            i += 1;
            let (frame, r) = &faces[k];
            classifier
                .classify_with_pad(frame, pads[k], *r)
                .expect("classify")
        })
    });
    let mut crop = [0u8; INPUT_LEN];
    let mut crops = CropBuilder::new(CropRule::fer()).expect("crop rule");
    let (frame, r) = &faces[0];
    crops.crop_u8(frame, pads[0], *r, &mut crop).expect("crop");
    let mut group = c.benchmark_group("explain/occlusion");
    group.sample_size(10);
    for batch in [1, 4, 8, 16] {
        let mut model = EmotionModel::load_batched(format!("{root}/models/{DEFAULT_MODEL}"), batch)
            .expect("model");
        group.bench_function(format!("batch-{batch}"), |b| {
            b.iter(|| occlusion_map_of_crop(&mut model, &crop, Occlusion::default()).expect("map"))
        });
    }
    group.finish();
    let tensor = vec![0.25f32; INPUT_LEN];
    c.bench_function("classify/network", |b| {
        b.iter(|| classifier.classify_tensor(&tensor).expect("network"))
    });
    // The int8 graph on emotiond's integer ops, beside the float32 one above: the same face and
    // tensor, one thread.
    let mut int8 = Classifier::load(
        format!("{root}/models/emotion_mini_xception_int8.tflite"),
        CropRule::fer(),
    )
    .expect("int8 model");
    let (frame, r) = &faces[0];
    c.bench_function("classify/face-int8", |b| {
        b.iter(|| {
            int8.classify_with_pad(frame, pads[0], *r)
                .expect("classify")
        })
    });
    c.bench_function("classify/network-int8", |b| {
        b.iter(|| int8.classify_tensor(&tensor).expect("network"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
