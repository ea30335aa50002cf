//! Argument definitions and the dispatch to each subcommand.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

mod bench;
mod cameras;
mod classify;
mod detect;
mod eval;
mod explain;
mod faces;
mod leds;
mod run;

/// Where the default models live once installed.
pub const SYSTEM_MODEL_DIR: &str = "/usr/share/emotiond/models";

/// emotiond: finds faces and their expressions in camera frames and images.
#[derive(Debug, Parser)]
#[command(name = "emotiond", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find faces in image files and print their boxes (OpenCV's detectMultiScale, box for box).
    Detect(detect::DetectArgs),
    /// Classify the expression in given face boxes (fer's crop, the mini-Xception network).
    Classify(classify::ClassifyArgs),
    /// Run the daemon: frames from a camera or a replay, emotions on LEDs and the serial line.
    Run(run::RunArgs),
    /// Check a configuration file and report every bad key or value with its line.
    CheckConfig(run::CheckConfigArgs),
    /// List V4L2 cameras with their pixel formats, sizes and frame rates.
    Cameras,
    /// LED wiring checks.
    Leds(leds::LedsArgs),
    /// Accuracy on a labelled face set (FER-2013 CSV or a folder per class): confusion matrix,
    /// precision, recall and F1.
    Eval(eval::EvalArgs),
    /// Occlusion maps: which parts of each face the expression's probability rests on.
    Explain(explain::ExplainArgs),
    /// Time each stage (conversion, detection, crop + network, tracking, whole pipeline) per cascade and thread count.
    Bench(bench::BenchArgs),
}

impl Args {
    /// The log level when RUST_LOG is not set: the daemon says what it does, one-shot commands
    /// only warn.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Run(_) | Command::Leds(_) => "info",
            _ => "warn",
        }
    }
}

/// Runs the parsed command line.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Detect(a) => detect::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Run(a) => run::run(a),
        Command::CheckConfig(a) => run::check_config(a),
        Command::Cameras => cameras::run(),
        Command::Leds(a) => leds::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// A `--threads N` count, checked by the detector's rule for `detect.threads`
/// ([`emotiond::detect::settings::threads`]).
pub fn parse_threads(s: &str) -> Result<u32, String> {
    let v: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    emotiond::detect::settings::threads(v)
}

/// Finds a model file: an explicit path always wins; otherwise `name` is looked up in `./models/`, then
/// in the data directory beside the installed binary (`<prefix>/share/emotiond/models/`), then in
/// `/usr/share/emotiond/models/`. A miss names every place tried.
pub fn find_model(explicit: Option<&Path>, name: &str, flag: &str) -> Result<PathBuf> {
    let mut name = name;
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        // A bare file name (`haarcascade_frontalface_alt2.xml`) is looked up like the default.
        match p.to_str() {
            Some(bare) if p.components().count() == 1 => name = bare,
            _ => bail!("{flag} {}: no such file", p.display()),
        }
    }
    let mut tried = vec![PathBuf::from("models").join(name)];
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
    {
        tried.push(prefix.join("share/emotiond/models").join(name));
    }
    tried.push(Path::new(SYSTEM_MODEL_DIR).join(name));
    tried.dedup();
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    if explicit.is_some() {
        bail!(
            "{flag} {name}: no such file here, nor in: {}",
            list.join(", ")
        );
    }
    bail!(
        "cannot find {name}; looked in: {}. Pass {flag} PATH, or run scripts/fetch-models from the source tree",
        list.join(", ")
    )
}
