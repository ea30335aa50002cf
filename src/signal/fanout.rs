//! The one fan-out: every protocol event the daemon makes goes through [`Fanout::emit`], which
//! writes it once as a text line and once as a JSON line, and hands both to every [`EventSink`]
//! (the serial line, MQTT, the local socket, the web API). After each processed frame,
//! [`Fanout::frame`] hands the confirmed faces, and the frame itself, to the sinks that ask for
//! them, and costs nothing (no copy, no allocation) while none does.

use crate::classify::{Emotion, Probs};
use crate::frame::{GrayFrame, Rect};
use crate::signal::serial::SerialFormat;
use crate::track::{Track, Tracker};

use super::protocol::{Encoder, Event};

/// One event in both wire forms, as every sink receives it.
#[derive(Debug, Clone, Copy)]
pub struct Lines<'a> {
    /// The event itself.
    pub event: &'a Event<'a>,
    /// The text form, `\n` included.
    pub text: &'a str,
    /// The JSON form, `\n` included.
    pub json: &'a str,
}

impl Lines<'_> {
    /// The form a sink configured with `format` sends.
    pub fn form(&self, format: SerialFormat) -> &str {
        match format {
            SerialFormat::Text => self.text,
            SerialFormat::Json => self.json,
        }
    }
}

/// What the LEDs show after a frame: the driving face's emotion and its smoothed confidence, or
/// no face.
pub type DrivingState = Option<(Emotion, f32)>;

/// A confirmed face in a frame, as the preview draws it and the web page shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// The track's id, as in the `face` events.
    pub id: u64,
    /// Its box in this frame.
    pub rect: Rect,
    /// The emotion reported for it.
    pub label: Emotion,
    /// The smoothed probability of `label`.
    pub confidence: f32,
    /// All seven smoothed probabilities (the page's bars).
    pub probs: Probs,
}

impl From<&Track> for FaceBox {
    fn from(t: &Track) -> Self {
        FaceBox {
            id: t.id,
            rect: t.rect,
            label: t.label,
            confidence: t.smoothed.get(t.label),
            probs: t.smoothed,
        }
    }
}

/// A destination for protocol events. A sink never holds the pipeline up for long: one that cannot
/// keep up (a slow reader, a broker that is down) drops what it cannot take, counts it, and says so
/// when it is back.
pub trait EventSink: Send {
    /// A short name for the log (`serial /dev/serial0`, `mqtt`, `socket /run/...`).
    fn name(&self) -> String;

    /// Takes one event.
    fn event(&mut self, lines: &Lines<'_>);

    /// The driving state after each processed frame (and after a lost source). Most sinks ignore
    /// it; MQTT keeps a retained state topic from it.
    fn state(&mut self, _state: DrivingState) {}

    /// Whether the sink wants [`faces`](EventSink::faces) after each processed frame.
    fn wants_faces(&self) -> bool {
        false
    }

    /// The confirmed faces after each processed frame, when [`wants_faces`](EventSink::wants_faces).
    fn faces(&mut self, _faces: &[FaceBox]) {}

    /// Whether the sink wants the next processed frame (someone is waiting for a picture). Asked
    /// after every frame, so it must be cheap.
    fn wants_frame(&self) -> bool {
        false
    }

    /// A processed frame and its confirmed faces, when [`wants_frame`](EventSink::wants_frame). The
    /// frame is the pipeline's buffer: copy what is kept, and return quickly.
    fn frame(&mut self, _frame: &GrayFrame, _faces: &[FaceBox]) {}

    /// Lets what was sent leave (briefly) before the daemon exits.
    fn finish(&mut self) {}
}

/// Hands each event, encoded once in both forms, to every sink.
pub struct Fanout {
    text: Encoder,
    json: Encoder,
    sinks: Vec<Box<dyn EventSink>>,
    last_state: Option<DrivingState>,
    /// The confirmed faces of the latest frame, refilled only when a sink wants them.
    faces: Vec<FaceBox>,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout {
            text: Encoder::new(SerialFormat::Text),
            json: Encoder::new(SerialFormat::Json),
            sinks: Vec::new(),
            last_state: None,
            faces: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("Fanout").field("sinks", &names).finish()
    }
}

impl Fanout {
    /// A fan-out with no sinks yet.
    pub fn new() -> Self {
        Fanout::default()
    }

    /// Adds a sink; events go to sinks in the order they were added.
    pub fn add(&mut self, sink: Box<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// Whether there is no sink at all.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// The sinks' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.name()).collect()
    }

    /// Encodes `event` in both forms and hands it to every sink.
    pub fn emit(&mut self, event: &Event<'_>) {
        if self.sinks.is_empty() {
            return;
        }
        let lines = Lines {
            event,
            text: self.text.encode(event),
            json: self.json.encode(event),
        };
        for sink in &mut self.sinks {
            sink.event(&lines);
        }
    }

    /// Tells the sinks the driving state, when it differs from the last one told (a confidence is
    /// compared at the two decimals the protocol prints).
    pub fn state(&mut self, state: DrivingState) {
        let key = |s: DrivingState| s.map(|(e, c)| (e, (c * 100.0).round() as i32));
        if self.last_state.is_some_and(|last| key(last) == key(state)) {
            return;
        }
        self.last_state = Some(state);
        for sink in &mut self.sinks {
            sink.state(state);
        }
    }

    /// After a processed frame: hands the confirmed faces of `tracker` to the sinks that want them,
    /// and `frame` with them to the sinks that want a picture. Does nothing while no sink asks.
    pub fn frame(&mut self, frame: &GrayFrame, tracker: &Tracker) {
        let faces = self.sinks.iter().any(|s| s.wants_faces());
        let picture = self.sinks.iter().any(|s| s.wants_frame());
        if !faces && !picture {
            return;
        }
        self.faces.clear();
        self.faces.extend(tracker.confirmed().map(FaceBox::from));
        for sink in &mut self.sinks {
            if sink.wants_faces() {
                sink.faces(&self.faces);
            }
            if sink.wants_frame() {
                sink.frame(frame, &self.faces);
            }
        }
    }

    /// Lets every sink's last lines leave.
    pub fn finish(&mut self) {
        for sink in &mut self.sinks {
            sink.finish();
        }
    }
}

/// Hands `event` to `take` in both forms, as the fan-out hands it to a sink (for the sinks' tests).
#[cfg(test)]
pub(crate) fn with_lines<R>(event: &Event<'_>, take: impl FnOnce(&Lines<'_>) -> R) -> R {
    let (mut text, mut json) = (
        Encoder::new(SerialFormat::Text),
        Encoder::new(SerialFormat::Json),
    );
    take(&Lines {
        event,
        text: text.encode(event),
        json: json.encode(event),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::signal::protocol::{verify, Value};

    #[derive(Default)]
    struct Seen {
        lines: Vec<(String, String)>,
        states: Vec<DrivingState>,
    }

    struct Recorder(Arc<Mutex<Seen>>);

    impl EventSink for Recorder {
        fn name(&self) -> String {
            "recorder".into()
        }
        fn event(&mut self, lines: &Lines<'_>) {
            let mut s = self.0.lock().unwrap();
            s.lines.push((lines.text.into(), lines.json.into()));
        }
        fn state(&mut self, state: DrivingState) {
            self.0.lock().unwrap().states.push(state);
        }
    }

    #[test]
    fn every_sink_gets_both_forms_of_every_event() {
        let seen = [Arc::default(), Arc::default()];
        let mut fan = Fanout::new();
        for s in &seen {
            fan.add(Box::new(Recorder(Arc::clone(s))));
        }
        fan.emit(&Event::new("source").with("state", Value::Str("ok")));
        fan.emit(&Event::new("stop").with("frames", Value::Int(3)));
        for s in &seen {
            let s: &Mutex<Seen> = s;
            let lines = &s.lock().unwrap().lines;
            assert_eq!(lines.len(), 2);
            assert!(verify(&lines[0].0).is_some(), "{}", lines[0].0);
            let json: serde_json::Value = serde_json::from_str(&lines[1].1).unwrap();
            assert_eq!(json["type"], "stop");
            assert_eq!(json["frames"], 3);
        }
    }

    /// Counts the frame hooks it is given; wants a frame only when told to.
    struct Looker {
        wants: Arc<std::sync::atomic::AtomicBool>,
        seen: Arc<Mutex<(usize, usize)>>,
        faces: bool,
    }

    impl EventSink for Looker {
        fn name(&self) -> String {
            "looker".into()
        }
        fn event(&mut self, _lines: &Lines<'_>) {}
        fn wants_faces(&self) -> bool {
            self.faces
        }
        fn faces(&mut self, faces: &[FaceBox]) {
            assert!(faces.is_empty());
            self.seen.lock().unwrap().0 += 1;
        }
        fn wants_frame(&self) -> bool {
            self.wants.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn frame(&mut self, frame: &GrayFrame, _faces: &[FaceBox]) {
            assert_eq!(frame.width(), 4);
            self.seen.lock().unwrap().1 += 1;
        }
    }

    #[test]
    fn frames_and_faces_go_only_to_the_sinks_that_ask() {
        let wants = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (quiet, curious) = (Arc::default(), Arc::default());
        let mut fan = Fanout::new();
        fan.add(Box::new(Recorder(Arc::default())));
        for (seen, faces) in [(&quiet, false), (&curious, true)] {
            fan.add(Box::new(Looker {
                wants: wants.clone(),
                seen: Arc::clone(seen),
                faces,
            }));
        }
        let frame = GrayFrame::filled(4, 3, 0);
        let tracker = Tracker::new(Default::default()).unwrap();
        fan.frame(&frame, &tracker);
        wants.store(true, std::sync::atomic::Ordering::Relaxed);
        fan.frame(&frame, &tracker);
        fan.frame(&frame, &tracker);
        let counts = |s: &Arc<Mutex<(usize, usize)>>| *s.lock().unwrap();
        assert_eq!(counts(&quiet), (0, 2), "frames only once wanted, no faces");
        assert_eq!(counts(&curious), (3, 2), "faces after every frame");
    }

    #[test]
    fn the_state_is_told_only_when_it_changes() {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let mut fan = Fanout::new();
        fan.add(Box::new(Recorder(seen.clone())));
        fan.state(None);
        fan.state(None);
        fan.state(Some((Emotion::Happy, 0.801)));
        fan.state(Some((Emotion::Happy, 0.799))); // 0.80 both
        fan.state(Some((Emotion::Happy, 0.9)));
        fan.state(None);
        assert_eq!(
            seen.lock().unwrap().states,
            [
                None,
                Some((Emotion::Happy, 0.801)),
                Some((Emotion::Happy, 0.9)),
                None
            ]
        );
    }
}
