//! The daemon's settings: a TOML file (default `/etc/emotiond/config.toml`), then command-line flags.
//!
//! Every key has a default, so an empty file is a valid configuration; `board/config.toml` lists and
//! explains every key. Unknown keys are errors, not warnings: a misspelt `min_neigbors` silently
//! ignored would leave the user wondering why nothing changed.
//!
//! Each stage owns its settings and their checks: `[source]` is [`crate::source::SourceConfig`],
//! `[detect]` [`crate::detect::DetectConfig`], `[classify]` [`crate::classify::ClassifyConfig`],
//! `[track]` [`crate::track::TrackConfig`], `[leds]` [`crate::signal::leds::LedConfig`],
//! `[serial]` [`crate::signal::serial::SerialConfig`], and so on, each in the stage's `settings`
//! module with the rules the stage itself applies (so a value is refused with the same words from a
//! file, a flag or the library). [`Config`] only composes them. Values are checked while they are
//! read, so each error carries the line it came from; checks between keys are the stages' `problem`
//! methods, which [`check`] gives the line of the key they are about. [`check`] reports every bad
//! line of a file at once (`emotiond check-config`). [`values`] holds the generic pieces the stages'
//! rules are built from.

pub mod values;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::classify::ClassifyConfig;
use crate::detect::DetectConfig;
use crate::signal::leds::LedConfig;
use crate::signal::serial::SerialConfig;
use crate::source::SourceConfig;
use crate::track::TrackConfig;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/emotiond/config.toml";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Frames in.
    pub source: SourceConfig,
    /// The face detector.
    pub detect: DetectConfig,
    /// The emotion classifier.
    pub classify: ClassifyConfig,
    /// Faces over time.
    pub track: TrackConfig,
    /// The LEDs.
    pub leds: LedConfig,
    /// The serial event line.
    pub serial: SerialConfig,
    /// The local event socket.
    pub socket: crate::signal::socket::SocketConfig,
    /// MQTT to a broker (off while `url` is unset).
    pub mqtt: crate::signal::mqtt::MqttConfig,
    /// The kiosk web API (off while `listen` is unset).
    pub http: crate::signal::http::HttpConfig,
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and what would be right.
    pub message: String,
}

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file has bad keys or values; every one found is listed.
    #[error("{}", format_issues(path, issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem, in file order.
        issues: Vec<ConfigIssue>,
    },
}

fn format_issues(path: &Path, issues: &[ConfigIssue]) -> String {
    let lines: Vec<String> = issues
        .iter()
        .map(|i| match i.line {
            Some(l) => format!("{}:{l}: {}", path.display(), i.message),
            None => format!("{}: {}", path.display(), i.message),
        })
        .collect();
    lines.join("\n")
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Checks `text`; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (config, issues) = check(text);
        match config {
            Some(c) if issues.is_empty() => Ok(c),
            _ => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                issues,
            }),
        }
    }
}

/// Checks a whole file and reports every problem found, each with its line.
///
/// TOML's reader stops at the first error, so this reads the file, notes the error and its line,
/// blanks that line and reads again, until the file reads cleanly or a syntax error makes the rest
/// unreadable. Returns the configuration only when there were no problems.
pub fn check(text: &str) -> (Option<Config>, Vec<ConfigIssue>) {
    let mut lines: Vec<&str> = text.lines().collect();
    let mut issues = Vec::new();
    // Each round blanks one line, so this ends.
    for _ in 0..=lines.len() {
        let current = lines.join("\n");
        match toml::from_str::<Config>(&current) {
            Ok(config) => {
                let cross = cross_checks(&config, &current);
                issues.extend(cross);
                issues.sort_by_key(|i: &ConfigIssue| i.line);
                return (issues.is_empty().then_some(config), issues);
            }
            Err(err) => {
                let line = err.span().map(|s| line_of(&current, s.start));
                issues.push(ConfigIssue {
                    line,
                    message: err.message().trim().to_string(),
                });
                let syntax = toml::from_str::<toml::Table>(&current).is_err();
                match line {
                    Some(l)
                        if !syntax && l >= 1 && l <= lines.len() && !lines[l - 1].is_empty() =>
                    {
                        blank(&mut lines, l - 1);
                    }
                    _ => break,
                }
            }
        }
    }
    issues.sort_by_key(|i| i.line);
    (None, issues)
}

/// Blanks line `i`; a table header takes its whole table with it, so its keys do not fall into the
/// table above.
fn blank(lines: &mut [&str], i: usize) {
    let is_header = |l: &str| l.trim_start().starts_with('[');
    let end = if is_header(lines[i]) {
        (i + 1..lines.len())
            .find(|&j| is_header(lines[j]))
            .unwrap_or(lines.len())
    } else {
        i + 1
    };
    for l in &mut lines[i..end] {
        *l = "";
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// The first line whose text starts with `key` followed by `=`, for checks that span several keys.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Checks between keys, which a single value's reader cannot see: the stages' own, each given the
/// line of the key it is about, and the one that needs the file's text.
fn cross_checks(c: &Config, text: &str) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut at = |key: &str, message: Option<String>| {
        if let Some(message) = message {
            issues.push(ConfigIssue {
                line: line_of_key(text, key),
                message,
            });
        }
    };
    let height_or_width = if line_of_key(text, "height").is_some() {
        "height"
    } else {
        "width"
    };
    at(height_or_width, c.source.problem());
    at("max_size", c.detect.problem());
    at("relative_offsets", c.classify.problem());
    at("listen", c.http.problem());
    for (key, message) in c.leds.problems() {
        at(key, Some(message));
    }
    // `pins` has a default, so only the text tells whether it was set next to `rgb`.
    let explicit_pins =
        text.lines().any(|l| l.trim() == "[leds.pins]") || line_of_key(text, "pins").is_some();
    if c.leds.rgb.is_some() && explicit_pins {
        at(
            "rgb",
            Some("leds: set pins (one LED per emotion) or rgb (one RGB LED), not both".into()),
        );
    }
    issues
}

/// For the stages' tests: the one problem the configuration reports for `text`.
#[cfg(test)]
pub(crate) fn config_says(text: &str) -> String {
    let (_, issues) = check(text);
    assert_eq!(issues.len(), 1, "{issues:?}");
    issues[0].message.clone()
}

#[cfg(test)]
mod tests;
