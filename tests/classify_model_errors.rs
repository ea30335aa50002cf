//! A missing, damaged or wrong model is a clear start-up error, never a panic or a wrong answer.

use std::path::{Path, PathBuf};

use emotiond::classify::{EmotionModel, ModelError, DEFAULT_MODEL};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn load_err(path: &Path) -> ModelError {
    EmotionModel::load(path).expect_err("the model must be refused")
}

#[test]
fn a_missing_file_names_the_path() {
    let err = load_err(&data("models/no-such-model.tflite"));
    assert!(matches!(err, ModelError::Read { .. }));
    assert!(err.to_string().contains("no-such-model.tflite"), "{err}");
}

#[test]
fn a_file_that_is_not_tflite_is_refused() {
    // A cascade XML passed where the model belongs.
    let err = load_err(&data("models/haarcascade_frontalface_default.xml"));
    assert!(matches!(err, ModelError::NotTflite { .. }), "{err}");
    assert!(err.to_string().contains("not a TFLite model"), "{err}");
}

#[test]
fn every_truncation_of_the_model_is_refused_without_a_panic() {
    let bytes = std::fs::read(data("models").join(DEFAULT_MODEL)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut points across the header, the tables and the weight buffers.
    let mut cuts: Vec<usize> = (0..64).collect();
    cuts.extend((1..40).map(|i| bytes.len() * i / 40));
    for cut in cuts {
        let path = dir.path().join(format!("cut{cut}.tflite"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match EmotionModel::load(&path) {
            Err(ModelError::NotTflite { .. } | ModelError::Unsupported { .. }) => {}
            other => panic!("truncated at {cut} of {}: {other:?}", bytes.len()),
        }
    }
}

#[test]
fn a_wrong_input_shape_is_refused() {
    let err = load_err(&data("tests/data/models/wrong_input_48x48.tflite"));
    assert!(matches!(err, ModelError::WrongShape { .. }), "{err}");
    assert!(err.to_string().contains("48"), "{err}");
    assert!(err.to_string().contains("[1,64,64,1]"), "{err}");
}

#[test]
fn a_wrong_class_count_is_refused() {
    let err = load_err(&data("tests/data/models/wrong_classes_8.tflite"));
    assert!(matches!(err, ModelError::WrongShape { .. }), "{err}");
    assert!(err.to_string().contains("output"), "{err}");
}

#[test]
fn an_int8_graph_with_operators_the_int8_runtime_lacks_is_refused_naming_one() {
    let err = load_err(&data("tests/data/models/int8_io.tflite"));
    assert!(matches!(err, ModelError::Int8 { .. }), "{err}");
    assert!(err.to_string().contains("AVERAGE_POOL_2D"), "{err}");
}

/// Each broken copy of the shipped int8 model (scripts/make-test-models.py) names the tensor at
/// fault and what is wrong with it.
#[test]
fn broken_int8_models_name_the_tensor() {
    let cases = [
        (
            "int8_zero_scale.tflite",
            "quantization scale 0 is not a positive number",
        ),
        (
            "int8_no_quantization.tflite",
            "has no quantization parameters",
        ),
        (
            "int8_float_output.tflite",
            "its type is FLOAT32, INT8 expected",
        ),
    ];
    for (file, needle) in cases {
        let err = load_err(&data(&format!("tests/data/models/{file}")));
        let text = err.to_string();
        assert!(matches!(err, ModelError::Int8 { .. }), "{file}: {text}");
        assert!(text.contains("tensor "), "{file}: {text}");
        assert!(text.contains(needle), "{file}: {text}");
    }
}

#[test]
fn fers_dynamic_range_model_is_refused_with_the_reason() {
    // tract-tflite cannot run hybrid (int8 weights, float activations) convolutions.
    let err = load_err(&data(
        "tests/data/models/fer_emotion_model_quantized.tflite",
    ));
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err}");
    // tract's error is kept as the source, and every cause in its chain is quoted in the message.
    let text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    assert!(cause.is_some(), "no source: {text}");
    while let Some(c) = cause {
        assert!(text.contains(&c.to_string()), "{text} / {c}");
        cause = c.source();
    }
}

/// Found by `scripts/fuzz tflite 600`: one i32 of the float model, a max pool's filter height, set
/// from 3 to 1,694,498,819. tract then asked for 1 GiB while optimising the graph and the process
/// aborted; now the window is refused, naming the layer.
#[test]
fn fuzz_tflite_a_max_pool_window_of_1694498819_rows_is_refused() {
    let mut bytes = std::fs::read(data("models").join(DEFAULT_MODEL)).unwrap();
    const AT: usize = 228_624;
    assert_eq!(
        bytes[AT..AT + 4],
        3i32.to_le_bytes(),
        "the committed model changed: find the pool's filter height again"
    );
    bytes[AT..AT + 4].copy_from_slice(&1_694_498_819i32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge_pool.tflite");
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&path);
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("1694498819"), "{err}");
    assert!(
        err.to_string().contains("wider than the 64x64 input"),
        "{err}"
    );
}
