//! The serial event protocol, version 1.
//!
//! Text form (the default), one line per event, ASCII, `\n`-terminated:
//!
//! ```text
//! line     = "emotiond/1" 1*(SP field) SP "*" checksum LF
//! field    = word / key "=" value      ; the first field is the event type
//! key      = 1*(lower / digit / "_")
//! value    = 1*(VCHAR except SP, DQUOTE)  /  DQUOTE *(VCHAR / SP except DQUOTE) DQUOTE
//! checksum = 2HEXDIG                   ; XOR of every byte before " *", upper case (as NMEA)
//! ```
//!
//! JSON form: one object per line with `"v":1` and `"type"`, the same keys and values (numbers as
//! numbers, boxes as `[x,y,w,h]`). README.md lists every event type and its keys.

use std::fmt::Write;

use crate::classify::Emotion;
use crate::frame::Rect;
use crate::signal::serial::SerialFormat;
use crate::track::{TrackEvent, Tracker};

/// The protocol version both forms carry.
pub const VERSION: u32 = 1;

/// One value in an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A whole number.
    Int(i64),
    /// A number printed with the given decimals.
    Num(f64, usize),
    /// A word or a phrase (quoted in text when it has spaces).
    Str(&'a str),
    /// A box `x,y,w,h`.
    Box(Rect),
}

/// An event: its type and its fields in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// `start`, `face`, `status`, `source`, `serial` or `stop`.
    pub kind: &'static str,
    /// The fields, in print order.
    pub fields: Vec<(&'static str, Value<'a>)>,
}

impl<'a> Event<'a> {
    /// An event with no fields yet.
    pub fn new(kind: &'static str) -> Self {
        Event {
            kind,
            fields: Vec::with_capacity(12),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &'static str, value: Value<'a>) -> Self {
        self.fields.push((key, value));
        self
    }

    /// A face event: `appeared` / `changed` (with `from`) / `lost`.
    pub fn face(
        frame: u64,
        id: u64,
        what: &'static str,
        emotion: Option<(Emotion, f32)>,
        from: Option<Emotion>,
        rect: Option<Rect>,
    ) -> Self {
        let mut e = Event::new("face")
            .with("frame", Value::Int(frame as i64))
            .with("id", Value::Int(id as i64))
            .with("event", Value::Str(what));
        if let Some((label, p)) = emotion {
            e = e
                .with("emotion", Value::Str(label.name()))
                .with("conf", Value::Num(f64::from(p), 2));
        }
        if let Some(f) = from {
            e = e.with("from", Value::Str(f.name()));
        }
        if let Some(r) = rect {
            e = e.with("box", Value::Box(r));
        }
        e
    }

    /// The `face` event of a tracker's event `ev` in frame `frame`: the emotion shown, its
    /// smoothed confidence and the box come from the track, which a lost track no longer has.
    pub fn track(frame: u64, ev: TrackEvent, tracker: &Tracker) -> Self {
        let (id, what, shown, from) = match ev {
            TrackEvent::Appeared { id, label } => (id, "appeared", Some(label), None),
            TrackEvent::Changed { id, from, to } => (id, "changed", Some(to), Some(from)),
            TrackEvent::Lost { id } => (id, "lost", None, None),
        };
        let track = shown.and(tracker.get(id));
        let emotion = shown.map(|e| (e, track.map_or(0.0, |t| t.smoothed.get(e))));
        Event::face(frame, id, what, emotion, from, track.map(|t| t.rect))
    }
}

/// Writes events in one of the two forms into a reused buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    format: SerialFormat,
    line: String,
}

impl Encoder {
    /// An encoder for `format`.
    pub fn new(format: SerialFormat) -> Self {
        Encoder {
            format,
            line: String::with_capacity(256),
        }
    }

    /// The line for `event`, `\n` included.
    pub fn encode(&mut self, event: &Event<'_>) -> &str {
        self.line.clear();
        match self.format {
            SerialFormat::Text => self.text(event),
            SerialFormat::Json => self.json(event),
        }
        &self.line
    }

    fn text(&mut self, event: &Event<'_>) {
        let l = &mut self.line;
        let _ = write!(l, "emotiond/{VERSION} {}", event.kind);
        for (key, value) in &event.fields {
            let _ = write!(l, " {key}=");
            match *value {
                Value::Int(v) => {
                    let _ = write!(l, "{v}");
                }
                Value::Num(v, d) => {
                    let _ = write!(l, "{v:.d$}");
                }
                Value::Box(r) => {
                    let _ = write!(l, "{},{},{},{}", r.x, r.y, r.w, r.h);
                }
                Value::Str(s) => {
                    let clean = |c: char| {
                        if c == '"' || !(c == ' ' || c.is_ascii_graphic()) {
                            '\''
                        } else {
                            c
                        }
                    };
                    if s.is_empty()
                        || s.contains(' ')
                        || !s.chars().all(|c| c.is_ascii_graphic() && c != '"')
                    {
                        l.push('"');
                        l.extend(s.chars().map(clean));
                        l.push('"');
                    } else {
                        l.push_str(s);
                    }
                }
            }
        }
        let sum = checksum(l);
        let _ = writeln!(l, " *{sum:02X}");
    }

    fn json(&mut self, event: &Event<'_>) {
        let l = &mut self.line;
        let _ = write!(l, "{{\"v\":{VERSION},\"type\":\"{}\"", event.kind);
        for (key, value) in &event.fields {
            let _ = write!(l, ",\"{key}\":");
            match *value {
                Value::Int(v) => {
                    let _ = write!(l, "{v}");
                }
                Value::Num(v, d) if v.is_finite() => {
                    let _ = write!(l, "{v:.d$}");
                }
                Value::Num(..) => l.push_str("null"),
                Value::Box(r) => {
                    let _ = write!(l, "[{},{},{},{}]", r.x, r.y, r.w, r.h);
                }
                Value::Str(s) => {
                    // serde_json escapes exactly as JSON requires.
                    let _ = write!(l, "{}", serde_json::Value::from(s));
                }
            }
        }
        l.push_str("}\n");
    }
}

/// A text line read back by README's grammar: `emotiond/1 KIND key=value ... *CS`, where a value
/// holding a space is in double quotes (and never holds one itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLine<'a> {
    /// The protocol version after `emotiond/`.
    pub version: &'a str,
    /// The event type.
    pub kind: &'a str,
    /// The fields in order, values without their quotes.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// Reads a text line: `None` unless its checksum is right and it follows the grammar.
pub fn parse_text(line: &str) -> Option<TextLine<'_>> {
    let body = verify(line)?;
    let rest = body.strip_prefix("emotiond/")?;
    let (version, rest) = rest.split_once(' ')?;
    let (kind, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if kind.is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || key.contains(' ') {
            return None;
        }
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, next) = quoted.split_once('"')?;
                // After a closing quote: the end, or a space and the next field.
                match next.strip_prefix(' ') {
                    Some(n) => (value, n),
                    None if next.is_empty() => (value, ""),
                    None => return None,
                }
            }
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        if value.contains('"') {
            return None;
        }
        fields.push((key, value));
        rest = next;
    }
    Some(TextLine {
        version,
        kind,
        fields,
    })
}

/// XOR of every byte of `s`.
pub fn checksum(s: &str) -> u8 {
    s.bytes().fold(0, |a, b| a ^ b)
}

/// Checks a text line's checksum; returns the part before ` *` when it is right.
pub fn verify(line: &str) -> Option<&str> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (body, sum) = line.rsplit_once(" *")?;
    let sum = u8::from_str_radix(sum, 16).ok()?;
    (checksum(body) == sum).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event<'static> {
        Event::face(
            12,
            3,
            "changed",
            Some((Emotion::Happy, 0.876)),
            Some(Emotion::Neutral),
            Some(Rect::new(177, 66, 95, 95)),
        )
    }

    #[test]
    fn text_lines_carry_a_checksum_that_verifies() {
        let mut enc = Encoder::new(SerialFormat::Text);
        let line = enc.encode(&sample()).to_string();
        let body = "emotiond/1 face frame=12 id=3 event=changed emotion=happy conf=0.88 from=neutral box=177,66,95,95";
        assert_eq!(line, format!("{body} *{:02X}\n", checksum(body)));
        assert_eq!(verify(&line), Some(body));
        // XOR catches any single changed byte (not swapped ones, as with NMEA).
        let tampered = line.replace("happy", "sappy");
        assert_eq!(verify(&tampered), None);
    }

    #[test]
    fn phrases_are_quoted_and_cannot_break_the_line() {
        let mut enc = Encoder::new(SerialFormat::Text);
        let e = Event::new("source").with("reason", Value::Str("device \"gone\"\nEIO"));
        let line = enc.encode(&e).to_string();
        assert!(
            line.starts_with("emotiond/1 source reason=\"device 'gone''EIO\" *"),
            "{line}"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn text_lines_read_back_by_the_grammar() {
        let mut enc = Encoder::new(SerialFormat::Text);
        let e = Event::new("source")
            .with("state", Value::Str("lost"))
            .with("reason", Value::Str("device gone"))
            .with("empty", Value::Str(""));
        let t = parse_text(enc.encode(&e)).unwrap();
        assert_eq!((t.version, t.kind), ("1", "source"));
        assert_eq!(
            t.fields,
            [("state", "lost"), ("reason", "device gone"), ("empty", "")]
        );
        assert!(parse_text("emotiond/1 face x=\"open *00").is_none());
    }

    #[test]
    fn json_lines_parse_with_the_same_fields() {
        let mut enc = Encoder::new(SerialFormat::Json);
        let line = enc.encode(&sample()).to_string();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["type"], "face");
        assert_eq!(v["emotion"], "happy");
        assert_eq!(v["conf"], 0.88);
        assert_eq!(v["box"], serde_json::json!([177, 66, 95, 95]));
        let e = Event::new("source").with("reason", Value::Str("a \"b\"\n"));
        let v: serde_json::Value = serde_json::from_str(enc.encode(&e)).unwrap();
        assert_eq!(v["reason"], "a \"b\"\n");
    }
}
