use super::*;
use crate::classify::{CropRule, Emotion, Offsets};
use crate::detect::DetectParams;
use crate::signal::leds::{EmotionPins, LedBackendSpec};
use crate::signal::serial::SerialFormat;
use crate::source::SourceSpec;
use crate::track::{Drive, TrackParams};

fn issues(text: &str) -> Vec<(Option<usize>, String)> {
    let (config, issues) = check(text);
    assert_eq!(config.is_some(), issues.is_empty());
    issues.into_iter().map(|i| (i.line, i.message)).collect()
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let c = Config::parse("", Path::new("x.toml")).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.detect.params(), DetectParams::fer());
    assert_eq!(c.track.params(), TrackParams::default());
    assert_eq!(c.classify.rule(), CropRule::fer());
    assert_eq!(c.leds.pins, EmotionPins::default());
}

#[test]
fn values_are_read() {
    let c = Config::parse(
        r##"
[source]
input = "images:tests/data/replay"
fps = 5
[detect]
min_neighbors = 3
every = 4
[classify]
relative_offsets = [0.1, 0.2]
[track]
drive = "most-confident"
smoothing = 1.0
[leds]
backend = "gpiocdev:/dev/gpiochip1"
active_low = true
pins = { happy = 5, sad = 6 }
[serial]
path = "/dev/ttyUSB0"
baud = 9600
format = "json"
"##,
        Path::new("x.toml"),
    )
    .unwrap();
    assert_eq!(
        c.source.input,
        SourceSpec::Images("tests/data/replay".into())
    );
    assert_eq!(c.source.fps, 5.0);
    assert_eq!(c.detect.params().min_neighbors, 3);
    assert_eq!(c.detect.every, 4);
    assert_eq!(
        c.classify.rule().offsets,
        Offsets::Proportional { x: 0.1, y: 0.2 }
    );
    assert_eq!(c.track.drive, Drive::MostConfident);
    assert_eq!(
        c.leds.backend,
        LedBackendSpec::Gpiocdev("/dev/gpiochip1".into())
    );
    assert_eq!(c.leds.pins.get(Emotion::Happy), Some(5));
    assert_eq!(
        c.leds.pins.get(Emotion::Angry),
        None,
        "a pins table lists only its own LEDs"
    );
    assert_eq!(c.serial.path.as_deref(), Some("/dev/ttyUSB0"));
    assert_eq!(c.serial.format, SerialFormat::Json);
}

#[test]
fn every_bad_line_is_reported_with_its_number() {
    let text = "\
[detect]
scale_factor = 0.9
min_neigbors = 3
[track]
min_iou = 1.5
drive = \"biggest\"
[serial]
baud = 12345
[colour]
";
    let got = issues(text);
    let lines: Vec<Option<usize>> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        lines,
        [Some(2), Some(3), Some(5), Some(6), Some(8), Some(9)],
        "{got:#?}"
    );
    assert!(got[0].1.contains("above 1"), "{}", got[0].1);
    assert!(
        got[1].1.contains("min_neigbors") && got[1].1.contains("min_neighbors"),
        "{}",
        got[1].1
    );
    assert!(got[2].1.contains("0 to 1"), "{}", got[2].1);
    assert!(
        got[3].1.contains("biggest") && got[3].1.contains("largest"),
        "{}",
        got[3].1
    );
    assert!(got[4].1.contains("115200"), "{}", got[4].1);
    assert!(got[5].1.contains("colour"), "{}", got[5].1);
}

#[test]
fn a_syntax_error_stops_the_check_at_its_line() {
    let got = issues("[detect]\nscale_factor = 1.2\nmin_size = = 4\nmax_size = \"x\"\n");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, Some(3));
}

#[test]
fn source_and_backend_specs_are_checked() {
    let got = issues("[source]\ninput = \"usb:/dev/video0\"\n[leds]\nbackend = \"gpio\"\n");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].0, Some(2));
    assert!(got[0].1.contains("v4l2:/dev/videoN"), "{}", got[0].1);
    assert_eq!(got[1].0, Some(4));
    assert!(got[1].1.contains("gpiocdev:/dev/gpiochipN"), "{}", got[1].1);
}

#[test]
fn pin_conflicts_and_missing_pins_are_refused() {
    let got = issues("[leds.pins]\nhappy = 5\nsad = 5\n");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].1.contains("line 5 is given to both happy and sad"),
        "{}",
        got[0].1
    );
    let got = issues("[leds]\npins = {}\n");
    assert!(got[0].1.contains("no emotion has a line"), "{got:#?}");
    let got = issues("[leds]\nrgb = { red = 1, green = 2, blue = 2 }\n");
    assert!(got[0].1.contains("both green and blue"), "{got:#?}");
    let got = issues("[leds.pins]\nhapy = 5\n");
    assert!(got.contains(&(Some(2), "unknown field `hapy`, expected one of `angry`, `disgust`, `fear`, `happy`, `sad`, `surprise`, `neutral`".to_string())), "{got:#?}");
    let got = issues("[leds]\nrgb = { red = 1, green = 2, blue = 3 }\npins = { happy = 4 }\n");
    assert_eq!(
        got,
        [(
            Some(2),
            "leds: set pins (one LED per emotion) or rgb (one RGB LED), not both".to_string()
        )]
    );
}

#[test]
fn settings_that_conflict_are_refused() {
    let got = issues("[detect]\nmin_size = 80\nmax_size = 40\n");
    assert_eq!(got[0].0, Some(3), "{got:#?}");
    let got = issues("[classify]\noffsets = [10, 10]\nrelative_offsets = [0.1, 0.1]\n");
    assert_eq!(got[0].0, Some(3), "{got:#?}");
    let got = issues("[leds]\nbrightness = \"confidence\"\n");
    assert!(got[0].1.contains("rppal"), "{got:#?}");
    let got = issues(
        "[leds]\nrgb = { red = 1, green = 2, blue = 3 }\n[leds.colors]\nhappy = \"#ff8000\"\n",
    );
    assert_eq!(got[0].0, Some(4), "{got:#?}");
    let ok = issues("[leds]\nbackend = \"rppal\"\nrgb = { red = 1, green = 2, blue = 3 }\n[leds.colors]\nhappy = \"#ff8000\"\n");
    assert!(ok.is_empty(), "{ok:#?}");
}

#[test]
fn an_unreadable_file_names_itself() {
    let err = Config::load("/nonexistent/emotiond.toml").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/emotiond.toml"),
        "{err}"
    );
}

#[test]
fn the_board_file_parses_and_documents_the_defaults() {
    let c = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/board/config.toml")).unwrap();
    let mut expect = Config::default();
    expect.detect.cascade = Some("haarcascade_frontalface_default.xml".into());
    expect.classify.model = Some(crate::classify::DEFAULT_MODEL.into());
    expect.classify.offsets = Some([10, 10]);
    expect.leds.backend = LedBackendSpec::Rppal;
    expect.serial.path = Some("/dev/serial0".into());
    assert_eq!(c, expect);
    assert_eq!(c.classify.rule(), CropRule::fer());
}

#[test]
fn detector_threads_are_checked() {
    let c = Config::parse("[detect]\nthreads = 4\n", Path::new("t.toml")).unwrap();
    assert_eq!(c.detect.threads, 4);
    assert_eq!(
        Config::default().detect.threads,
        0,
        "one per core by default"
    );
    let got = issues("[detect]\nthreads = 100000\n");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, Some(2));
    assert!(got[0].1.contains("0 (one per core) to 256"), "{}", got[0].1);
    assert_eq!(issues("[detect]\nthreads = -1\n").len(), 1);
}

#[test]
fn absurd_source_and_face_sizes_are_refused_where_they_are_set() {
    // Issue 15: fps = 1e-20 passed and panicked the source thread.
    for (text, needle) in [
        ("[source]\nfps = 1e-20\n", "0.1 to 1000"),
        ("[source]\nfps = -3\n", "0.1 to 1000"),
        ("[source]\nfps = nan\n", "0.1 to 1000"),
        ("[source]\nwidth = 0\n", "16 to 8192"),
        ("[source]\nheight = 100000\n", "16 to 8192"),
        ("[detect]\nmin_size = 99999\n", "0 (no limit) to 8192"),
        // smoothing 0 used to pass here and become f32::MIN_POSITIVE; the tracker's rule refuses it.
        ("[track]\nsmoothing = 0\n", "above 0 and at most 1"),
    ] {
        let got = issues(text);
        assert_eq!(got.len(), 1, "{text}: {got:#?}");
        assert_eq!(got[0].0, Some(2), "{text}");
        assert!(got[0].1.contains(needle), "{text}: {}", got[0].1);
    }
    let got = issues("[source]\nwidth = 8192\nheight = 8192\n");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, Some(3));
    assert!(got[0].1.contains("8192x8192"), "{}", got[0].1);
    assert!(Config::parse("[source]\nfps = 0\n", Path::new("t.toml")).is_ok());
}

#[test]
fn http_off_loopback_needs_a_token_file() {
    let err = Config::parse(
        "[http]\npreview = true\nlisten = \"0.0.0.0:8088\"\n",
        Path::new("k.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("k.toml:3: http.listen 0.0.0.0:8088"),
        "{err}"
    );
    assert!(err.contains("set http.token_file"), "{err}");
    let c = Config::parse(
        "[http]\nlisten = \"0.0.0.0:8088\"\ntoken_file = \"/etc/emotiond/http-token\"\n",
        Path::new("k.toml"),
    )
    .unwrap();
    assert_eq!(c.http.listen, Some("0.0.0.0:8088".parse().unwrap()));
    let c = Config::parse("[http]\nlisten = \"127.0.0.1:8088\"\n", Path::new("k.toml")).unwrap();
    assert!(!c.http.preview);
}
