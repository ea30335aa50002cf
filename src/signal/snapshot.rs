//! The faces being followed, as a reader that joins mid-stream first needs them: the latest `face`
//! JSON line of each face not yet lost. The event socket and the web API's `/events` both start
//! each reader with it, so no reader has to wait for a face to change before it knows about it.

use std::collections::BTreeMap;

use super::fanout::Lines;
use super::protocol::Value;

/// The latest `face` JSON line of every face still followed, by id.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FaceSnapshot {
    faces: BTreeMap<i64, String>,
}

impl FaceSnapshot {
    /// Takes one event: a `face` event replaces its face's line (`lost` removes it); any other
    /// event is ignored.
    pub fn update(&mut self, lines: &Lines<'_>) {
        match face_of(lines) {
            Some((id, true)) => {
                self.faces.remove(&id);
            }
            Some((id, false)) => {
                let line = self.faces.entry(id).or_default();
                line.clear();
                line.push_str(lines.json);
            }
            None => {}
        }
    }

    /// The number of faces followed.
    pub fn len(&self) -> usize {
        self.faces.len()
    }

    /// Whether no face is followed.
    pub fn is_empty(&self) -> bool {
        self.faces.is_empty()
    }

    /// The line that announces the snapshot, `\n` included: `{"v":1,"type":"snapshot","faces":N}`.
    pub fn head(&self) -> String {
        format!(
            "{{\"v\":1,\"type\":\"snapshot\",\"faces\":{}}}\n",
            self.faces.len()
        )
    }

    /// Each face's latest JSON line (`\n` included), by id.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.faces.values().map(String::as_str)
    }
}

/// The `id` of a `face` event and whether it says the face is lost.
fn face_of(lines: &Lines<'_>) -> Option<(i64, bool)> {
    if lines.event.kind != "face" {
        return None;
    }
    let mut id = None;
    let mut lost = false;
    for (key, value) in &lines.event.fields {
        match (*key, value) {
            ("id", Value::Int(v)) => id = Some(*v),
            ("event", Value::Str(s)) => lost = *s == "lost",
            _ => {}
        }
    }
    id.map(|id| (id, lost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::fanout::with_lines;
    use crate::signal::protocol::Event;

    fn feed(snap: &mut FaceSnapshot, event: &Event<'_>) {
        with_lines(event, |lines| snap.update(lines));
    }

    fn face(id: i64, what: &'static str) -> Event<'static> {
        Event::new("face")
            .with("id", Value::Int(id))
            .with("event", Value::Str(what))
    }

    #[test]
    fn each_face_keeps_its_latest_line_until_it_is_lost() {
        let mut s = FaceSnapshot::default();
        assert_eq!(s.head(), "{\"v\":1,\"type\":\"snapshot\",\"faces\":0}\n");
        feed(&mut s, &face(2, "appeared"));
        feed(&mut s, &face(1, "appeared"));
        feed(&mut s, &face(2, "changed"));
        feed(&mut s, &Event::new("status").with("id", Value::Int(1)));
        assert_eq!(s.len(), 2);
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].contains("\"id\":1") && lines[0].contains("appeared"));
        assert!(lines[1].contains("\"id\":2") && lines[1].contains("changed"));
        assert!(lines.iter().all(|l| l.ends_with('\n')));
        feed(&mut s, &face(1, "lost"));
        feed(&mut s, &face(2, "lost"));
        assert!(s.is_empty());
    }
}
