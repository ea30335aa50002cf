//! `emotiond bench`: what each stage costs on this machine, per cascade and thread count.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use emotiond::classify::DEFAULT_MODEL;
use emotiond::pipeline::bench::{self, BenchReport, BenchSetup, Timing};

use super::detect::DEFAULT_CASCADE;

/// The cascades the package ships, timed in this order when `--cascade` is not given.
const SHIPPED_CASCADES: [&str; 3] = [
    DEFAULT_CASCADE,
    "haarcascade_frontalface_alt2.xml",
    "lbpcascade_frontalface_improved.xml",
];

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Time only this cascade XML. Default: the three shipped cascades, looked up as `detect` does.
    #[arg(long, value_name = "PATH")]
    cascade: Option<PathBuf>,
    /// Emotion model (.tflite). Default: emotion_mini_xception_f32.tflite, looked up as `run` does.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Timed frames per stage and row, after a 3-frame warm-up.
    #[arg(
        long,
        value_name = "N",
        default_value_t = bench::DEFAULT_ITERATIONS,
        value_parser = parse_iterations,
    )]
    iterations: u32,
    /// The thread count compared with 1 thread. Default (and 0): all cores.
    #[arg(long, value_name = "N", value_parser = super::parse_threads)]
    threads: Option<u32>,
    /// Time these images (files, or folders of PNG and JPEG files) instead of the two bundled
    /// 640x480 frames.
    #[arg(long, value_name = "DIR|FILE", num_args = 1..)]
    frames: Vec<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// `--iterations N`, checked by the bench's own rule.
fn parse_iterations(s: &str) -> Result<u32, String> {
    let v: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    bench::check_iterations(v)
}

pub fn run(args: BenchArgs) -> Result<()> {
    let cascades = match &args.cascade {
        Some(p) => vec![super::find_model(Some(p), DEFAULT_CASCADE, "--cascade")?],
        None => SHIPPED_CASCADES
            .iter()
            .map(|name| super::find_model(None, name, "--cascade"))
            .collect::<Result<_>>()?,
    };
    let model = super::find_model(args.model.as_deref(), DEFAULT_MODEL, "--model")?;
    let (frames, bundled) = if args.frames.is_empty() {
        (bench::bundled_frames()?, true)
    } else {
        let frames = bench::frames_from_paths(&args.frames).context("--frames")?;
        (frames, false)
    };
    let setup = BenchSetup {
        frames,
        bundled,
        cascades,
        model,
        iterations: args.iterations,
        threads: args.threads.map_or(0, |t| t as usize),
    };
    let verbose = std::io::stderr().is_terminal();
    let report = bench::run(&setup, |cascade, threads| {
        if verbose {
            let s = if threads == 1 { "" } else { "s" };
            eprintln!("timing {cascade} on {threads} thread{s}...");
        }
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        // Written as a string, so a closed pipe is an io::Error main can tell apart.
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        table(&mut out, &report)?;
    }
    Ok(())
}

/// The readable report: the machine, one row per cascade and thread count, the speed-ups.
fn table(out: &mut impl Write, r: &BenchReport) -> std::io::Result<()> {
    writeln!(out, "{}", r.machine.describe())?;
    let n = r.frames.len();
    let frames = format!(
        "{n} {}frame{}",
        if r.bundled_frames { "bundled " } else { "" },
        if n == 1 { "" } else { "s" }
    );
    let sizes: Vec<String> = {
        let mut s: Vec<String> = r
            .frames
            .iter()
            .map(|f| format!("{}x{}", f.width, f.height))
            .collect();
        s.dedup();
        s
    };
    writeln!(
        out,
        "{frames} ({}), fer's detector parameters (scale {}, {} neighbours, min {} px)",
        sizes.join(", "),
        r.params.scale_factor,
        r.params.min_neighbors,
        r.params.min_size,
    )?;
    writeln!(
        out,
        "each stage: {} timed frame{} after {} warm-up; median (p95) in ms per frame, \
         track+protocol in us, classify per face",
        r.iterations,
        if r.iterations == 1 { "" } else { "s" },
        r.warmup
    )?;
    writeln!(out)?;
    let width = r
        .rows
        .iter()
        .map(|row| row.cascade.len())
        .max()
        .unwrap_or(0)
        .max("cascade".len());
    writeln!(
        out,
        "{:<width$}  {:>7}  {:>13}  {:>15}  {:>5}  {:>15}  {:>15}  {:>8}",
        "cascade",
        "threads",
        "yuyv->gray",
        "detect",
        "faces",
        "classify/face",
        "track+protocol",
        "frames/s",
    )?;
    for row in &r.rows {
        let per_face = row
            .classify_per_face
            .map_or_else(|| "-".to_string(), |t| ms(t, 2));
        writeln!(
            out,
            "{:<width$}  {:>7}  {:>13}  {:>15}  {:>5.1}  {:>15}  {:>15}  {:>8.1}",
            row.cascade,
            row.threads,
            ms(row.conversion, 2),
            ms(row.detect, 1),
            row.faces_per_frame,
            per_face,
            us(row.track_protocol),
            row.pipeline_fps,
        )?;
    }
    if !r.speedups.is_empty() {
        writeln!(out)?;
        for s in &r.speedups {
            writeln!(
                out,
                "{:<width$}  {} threads over 1: detect {:.2}x, pipeline {:.2}x",
                s.cascade, s.threads, s.detect, s.pipeline
            )?;
        }
    }
    Ok(())
}

/// `median (p95)` in microseconds, for the stages that take less than one.
fn us(t: Timing) -> String {
    format!("{:.1} ({:.1})", t.median_ms * 1000.0, t.p95_ms * 1000.0)
}

/// `median (p95)` with `decimals`.
fn ms(t: Timing, decimals: usize) -> String {
    format!("{:.decimals$} ({:.decimals$})", t.median_ms, t.p95_ms)
}
