//! Dumps the output of every node of an int8 `.tflite` graph run on one input, for
//! `scripts/int8-divergence` to compare with the TFLite interpreter's intermediate tensors.
//!
//! ```text
//! cargo run --example int8_tensors -- MODEL.tflite INPUT.i8 OUTDIR [--emotiond]
//! ```
//!
//! INPUT.i8 holds the 4096 int8 values of the quantized 64x64 face. Without `--emotiond` the model
//! is loaded by stock tract-tflite (unoptimised, so each TFLite operator keeps its nodes); with it,
//! by emotiond's int8 runtime. OUTDIR gets `index.tsv` (node, datum type, shape, file) and one raw
//! little-endian file per node output.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use emotiond::classify::int8::Int8Graph;
use tract_tflite::internal::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model_path, input_path, out_dir) = match &args[..] {
        [m, i, o, ..] => (PathBuf::from(m), PathBuf::from(i), PathBuf::from(o)),
        _ => bail!("usage: int8_tensors MODEL.tflite INPUT.i8 OUTDIR [--emotiond]"),
    };
    let ours = args.iter().any(|a| a == "--emotiond");
    let bytes = std::fs::read(&model_path).with_context(|| model_path.display().to_string())?;
    let input = std::fs::read(&input_path).with_context(|| input_path.display().to_string())?;
    if input.len() != 64 * 64 {
        bail!(
            "{}: {} bytes, 4096 expected",
            input_path.display(),
            input.len()
        );
    }
    let mut model = if ours {
        Int8Graph::from_flatbuffer(&bytes, 1)?.model
    } else {
        tract_tflite::tflite().model_for_read(&mut &*bytes)?
    };
    let in_fact = model.input_fact(0)?.clone();
    let values: Vec<i8> = input.iter().map(|&b| b as i8).collect();
    let mut tensor = Tensor::from_shape(&[1, 64, 64, 1], &values)?;
    if in_fact.datum_type != i8::datum_type() {
        if in_fact.datum_type.size_of() != 1 || !in_fact.datum_type.is_quantized() {
            bail!("the graph's input is {:?}, not int8", in_fact.datum_type);
        }
        // SAFETY: the input's datum type is a quantized 8-bit type (checked just above), whose
        // storage is one byte per value like i8's; only the quantization label changes.
        unsafe { tensor.set_datum_type(in_fact.datum_type) };
    }
    let outlets: Vec<OutletId> = (0..model.nodes.len())
        .filter(|&n| !model.inputs.contains(&OutletId::new(n, 0)))
        .flat_map(|n| (0..model.nodes[n].outputs.len()).map(move |o| OutletId::new(n, o)))
        .collect();
    let names: Vec<String> = outlets
        .iter()
        .map(|o| match o.slot {
            0 => model.nodes[o.node].name.clone(),
            s => format!("{}:{s}", model.nodes[o.node].name),
        })
        .collect();
    model.select_output_outlets(&outlets)?;
    let results = model.into_runnable()?.run(tvec!(tensor.into_tvalue()))?;
    std::fs::create_dir_all(&out_dir)?;
    let mut index = std::fs::File::create(out_dir.join("index.tsv"))?;
    for (n, (name, value)) in names.iter().zip(results).enumerate() {
        let dt = value.datum_type();
        // Raw storage: an 8-bit quantized tensor's bytes are its int8 (or uint8) values, unscaled.
        if !matches!(
            dt.unquantized(),
            DatumType::I8 | DatumType::U8 | DatumType::I32
        ) {
            continue;
        }
        let raw = value.try_as_plain_ram()?.as_bytes().to_vec();
        let file = format!("{n}.bin");
        std::fs::write(out_dir.join(&file), raw)?;
        writeln!(index, "{name}\t{dt:?}\t{:?}\t{file}", value.shape())?;
    }
    Ok(())
}
