//! `emotiond eval`: the network's accuracy on a labelled face set, with its confusion matrix.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use emotiond::classify::model::EmotionModel;
use emotiond::classify::{Emotion, DEFAULT_MODEL};
use emotiond::eval::fer_csv::{FerCsv, Usage};
use emotiond::eval::folders::ClassFolders;
use emotiond::eval::metrics::Scores;
use emotiond::eval::{chart, evaluate, EvalError, Evaluation, FaceScorer, LabeledFaces, Origin};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// FER-2013 CSV file (emotion,pixels,Usage), or a folder holding one folder of face images per
    /// class (angry/, disgust/, fear/, happy/, sad/, surprise/, neutral/).
    #[arg(value_name = "DATA")]
    data: PathBuf,
    /// CSV rows to use, by their Usage column: Training, PublicTest, PrivateTest or all.
    #[arg(long, default_value = "PrivateTest", value_name = "USAGE")]
    usage: Usage,
    /// Write the full report as JSON to this file (`-` for standard output, instead of the table).
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Write the confusion matrix as a PNG heat map.
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Write every face's label, prediction and seven probabilities as CSV.
    #[arg(long, value_name = "OUT.csv")]
    predictions: Option<PathBuf>,
    /// Stop at the first malformed row or unreadable image instead of counting and skipping it.
    #[arg(long)]
    strict: bool,
    /// Emotion model (.tflite, mini-Xception: input 64x64x1 float32, 7 outputs). Default:
    /// emotion_mini_xception_f32.tflite from ./models, then the installed data directory.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
}

/// One class's line of the report.
#[derive(Debug, Serialize)]
struct ClassReport {
    name: &'static str,
    support: u64,
    predicted: u64,
    #[serde(flatten)]
    scores: Scores,
}

/// One malformed row or file.
#[derive(Debug, Serialize)]
struct BadReport {
    at: String,
    reason: String,
}

/// The JSON shape of `--json`.
#[derive(Debug, Serialize)]
struct Report {
    data: String,
    format: &'static str,
    usage: Option<&'static str>,
    model: String,
    faces: u64,
    correct: u64,
    accuracy: Option<f64>,
    malformed: u64,
    malformed_first: Vec<BadReport>,
    labels: Vec<&'static str>,
    /// `[true class][predicted class]`.
    confusion: Vec<Vec<u64>>,
    row_percent: Vec<Vec<Option<f64>>>,
    classes: Vec<ClassReport>,
    macro_avg: Scores,
    seconds: f64,
    faces_per_second: f64,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let model_path = super::find_model(args.model.as_deref(), DEFAULT_MODEL, "--model")?;
    let mut scorer = FaceScorer::new(EmotionModel::load(&model_path)?);
    let (mut faces, format, usage): (Box<dyn LabeledFaces>, _, _) = if args.data.is_dir() {
        (
            Box::new(ClassFolders::open(&args.data)?),
            "class-folders",
            None,
        )
    } else {
        (
            Box::new(FerCsv::open(&args.data, args.usage)?),
            "fer2013-csv",
            Some(args.usage.name()),
        )
    };
    let mut predictions = match &args.predictions {
        Some(p) => Some(PredictionsFile::create(p)?),
        None => None,
    };
    let bar = progress_bar(faces.progress().1, faces.unit());
    let started = Instant::now();
    let mut scored = 0u64;
    let result = evaluate(
        &args.data,
        faces.as_mut(),
        &mut scorer,
        args.strict,
        |face, probs, faces| {
            scored += 1;
            if scored % 64 == 0 {
                bar.set_position(faces.progress().0);
            }
            if let Some(out) = predictions.as_mut() {
                out.write(&face.origin, face.label, probs.top(), &probs.0)
                    .map_err(|e| EvalError::Data {
                        path: out.path.clone(),
                        message: e.to_string(),
                        cause: Some(e.into()),
                    })?;
            }
            Ok(())
        },
    );
    bar.finish_and_clear();
    let eval = result?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(out) = predictions {
        out.finish()?;
    }
    let report = build_report(&args.data, format, usage, &model_path, &eval, seconds);
    if eval.bad_count > eval.bad.len() as u64 {
        log::warn!(
            "{} malformed rows or files in all; the first {} were named above",
            eval.bad_count,
            eval.bad.len()
        );
    }
    if let Some(png) = &args.png {
        let title = match report.accuracy {
            Some(a) => format!("accuracy {:.2}% of {} faces", a * 100.0, report.faces),
            None => "no faces".to_string(),
        };
        chart::render(&eval.confusion, &title)
            .save_with_format(png, image::ImageFormat::Png)
            .with_context(|| format!("writing --png {}", png.display()))?;
    }
    match args.json.as_deref() {
        Some(p) if p == Path::new("-") => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Some(p) => {
            let text = serde_json::to_string_pretty(&report)?;
            std::fs::write(p, text + "\n")
                .with_context(|| format!("writing --json {}", p.display()))?;
            print_table(&report)?;
        }
        None => print_table(&report)?,
    }
    if report.faces == 0 {
        anyhow::bail!(
            "{}: no usable faces{}",
            args.data.display(),
            usage.map_or(String::new(), |u| format!(" with usage {u} (see --usage)"))
        );
    }
    Ok(())
}

fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    // Drawn on a terminal only: indicatif hides it when standard error is a pipe or a file.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = if unit == "bytes" {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{bar:40} {pos}/{len} files {per_sec} eta {eta}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn build_report(
    data: &Path,
    format: &'static str,
    usage: Option<&'static str>,
    model: &Path,
    eval: &Evaluation,
    seconds: f64,
) -> Report {
    let m = &eval.confusion;
    let faces = m.total();
    Report {
        data: data.display().to_string(),
        format,
        usage,
        model: model.display().to_string(),
        faces,
        correct: m.correct(),
        accuracy: m.accuracy(),
        malformed: eval.bad_count,
        malformed_first: eval
            .bad
            .iter()
            .map(|b| BadReport {
                at: b.origin.to_string(),
                reason: b.reason.clone(),
            })
            .collect(),
        labels: Emotion::ALL.iter().map(|e| e.name()).collect(),
        confusion: m.counts().iter().map(|r| r.to_vec()).collect(),
        row_percent: Emotion::ALL
            .iter()
            .map(|&t| Emotion::ALL.iter().map(|&p| m.row_percent(t, p)).collect())
            .collect(),
        classes: Emotion::ALL
            .iter()
            .map(|&c| ClassReport {
                name: c.name(),
                support: m.support(c),
                predicted: m.predicted(c),
                scores: m.scores(c),
            })
            .collect(),
        macro_avg: m.macro_scores(),
        seconds,
        faces_per_second: if seconds > 0.0 {
            faces as f64 / seconds
        } else {
            0.0
        },
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.3}"))
}

fn print_table(r: &Report) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let usage = r.usage.map_or(String::new(), |u| format!(", usage {u}"));
    writeln!(
        out,
        "{} ({}{usage}): {} faces, {} malformed skipped",
        r.data, r.format, r.faces, r.malformed
    )?;
    writeln!(out, "model {}", r.model)?;
    match r.accuracy {
        Some(a) => writeln!(
            out,
            "accuracy {:.2}% ({} of {})",
            a * 100.0,
            r.correct,
            r.faces
        )?,
        None => writeln!(out, "accuracy - (no faces)")?,
    }
    writeln!(
        out,
        "\nconfusion (rows: true class, columns: predicted; count and row %)"
    )?;
    write!(out, "{:>10}", "")?;
    for l in &r.labels {
        write!(out, " {l:>14}")?;
    }
    writeln!(out)?;
    for (i, l) in r.labels.iter().enumerate() {
        write!(out, "{l:>10}")?;
        for (n, p) in r.confusion[i].iter().zip(&r.row_percent[i]) {
            let pct = p.map_or("-".to_string(), |p| format!("{p:.1}%"));
            write!(out, " {n:>6} {pct:>7}")?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    // One layout for the header, each class and the macro line.
    let mut line = |cells: [&str; 6]| {
        let [a, b, c, d, e, f] = cells;
        writeln!(out, "{a:>10} {b:>8} {c:>9} {d:>9} {e:>7} {f:>7}")
    };
    line(["class", "support", "predicted", "precision", "recall", "f1"])?;
    for c in &r.classes {
        let (support, predicted) = (c.support.to_string(), c.predicted.to_string());
        let s = &c.scores;
        line([
            c.name,
            &support,
            &predicted,
            &opt(s.precision),
            &opt(s.recall),
            &opt(s.f1),
        ])?;
    }
    let m = &r.macro_avg;
    line([
        "macro",
        "",
        "",
        &opt(m.precision),
        &opt(m.recall),
        &opt(m.f1),
    ])?;
    writeln!(
        out,
        "\n{:.0} faces/s ({:.2} s)",
        r.faces_per_second, r.seconds
    )?;
    out.flush()?;
    Ok(())
}

/// `--predictions`: one CSV row per scored face.
struct PredictionsFile {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl PredictionsFile {
    fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating --predictions {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        write!(out, "source,label,predicted")?;
        for e in Emotion::ALL {
            write!(out, ",{}", e.name())?;
        }
        writeln!(out)?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
        })
    }

    fn write(
        &mut self,
        origin: &Origin,
        label: Emotion,
        predicted: Emotion,
        probs: &[f32],
    ) -> std::io::Result<()> {
        match origin {
            Origin::Line(n) => write!(self.out, "{n}")?,
            Origin::File(p) => write!(
                self.out,
                "\"{}\"",
                p.display().to_string().replace('"', "\"\"")
            )?,
        }
        write!(self.out, ",{},{}", label.name(), predicted.name())?;
        for p in probs {
            write!(self.out, ",{p:e}")?;
        }
        writeln!(self.out)
    }

    fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing --predictions {}", self.path.display()))
    }
}
