//! The one fan-out: every protocol event the daemon makes goes through [`Fanout::emit`], which
//! writes it once as a text line and once as a JSON line, and hands both to every [`EventSink`]
//! (the serial line, MQTT, the local socket).

use crate::classify::Emotion;
use crate::config::SerialFormat;

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

    /// Lets what was sent leave (briefly) before the daemon exits.
    fn finish(&mut self) {}
}

/// Hands each event, encoded once in both forms, to every sink.
pub struct Fanout {
    text: Encoder,
    json: Encoder,
    sinks: Vec<Box<dyn EventSink>>,
    last_state: Option<DrivingState>,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout {
            text: Encoder::new(SerialFormat::Text),
            json: Encoder::new(SerialFormat::Json),
            sinks: Vec::new(),
            last_state: None,
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

    /// Lets every sink's last lines leave.
    pub fn finish(&mut self) {
        for sink in &mut self.sinks {
            sink.finish();
        }
    }
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
