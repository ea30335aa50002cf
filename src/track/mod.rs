//! Faces over time: stable ids, smoothed probabilities, and labels that change only with hysteresis.
//!
//! Each frame's faces are matched to the existing tracks greedily by intersection-over-union (the
//! best-overlapping pair first). A track is *confirmed* (reported) after `confirm_hits` consecutive
//! matches and dropped after `drop_misses` consecutive frames without one.
//!
//! Smoothing is an exponential moving average of the class probabilities: it needs no history buffer,
//! reacts to a real change within a few frames (`alpha` 0.3 gives a new value 30% weight), and damps
//! the single-frame outliers a face classifier produces on blurred or half-turned frames. The reported
//! label changes only when another class's smoothed probability beats the reported one's by
//! `hysteresis`, so two close classes do not make the LEDs flicker.

pub mod settings;

use thiserror::Error;

use crate::classify::{Emotion, Probs, CLASS_COUNT};
use crate::frame::Rect;
pub use settings::{Drive, TrackConfig};

/// Tracking settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackParams {
    /// Least IoU for a face to continue a track (0 to 1).
    pub min_iou: f32,
    /// Consecutive matches before a track is reported (1 to 10000).
    pub confirm_hits: u32,
    /// Consecutive frames without a match before a track is dropped (1 to 10000).
    pub drop_misses: u32,
    /// Weight of the newest probabilities in the moving average (0 < alpha <= 1; 1 = no smoothing).
    pub alpha: f32,
    /// Margin by which another class must beat the reported one before the label changes (0 to 1).
    pub hysteresis: f32,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self {
            min_iou: 0.3,
            confirm_hits: 3,
            drop_misses: 5,
            alpha: 0.3,
            hysteresis: 0.1,
        }
    }
}

/// A tracking setting out of range.
#[derive(Debug, Error, PartialEq)]
#[error("tracking setting {name} = {message}")]
pub struct TrackParamError {
    /// The setting.
    pub name: &'static str,
    /// What its rule ([`settings`]) says.
    pub message: String,
}

impl TrackParams {
    /// Checks every setting, by the rules the configuration applies ([`settings`]).
    pub fn validate(&self) -> Result<(), TrackParamError> {
        fn check<T>(name: &'static str, r: Result<T, String>) -> Result<(), TrackParamError> {
            r.map(drop)
                .map_err(|message| TrackParamError { name, message })
        }
        check("min_iou", settings::fraction(self.min_iou))?;
        check("confirm_hits", settings::frames(self.confirm_hits.into()))?;
        check("drop_misses", settings::frames(self.drop_misses.into()))?;
        check("alpha", settings::smoothing(self.alpha))?;
        check("hysteresis", settings::fraction(self.hysteresis))
    }
}

/// One face followed over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Stable id, unique for the tracker's life.
    pub id: u64,
    /// The latest box.
    pub rect: Rect,
    /// Smoothed class probabilities.
    pub smoothed: Probs,
    /// The label being reported.
    pub label: Emotion,
    /// Consecutive frames matched.
    pub hits: u32,
    /// Consecutive frames missed.
    pub misses: u32,
    /// Whether the track has been reported.
    pub confirmed: bool,
}

/// What changed in a frame, for the signal stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrackEvent {
    /// A track was confirmed, with its first label.
    Appeared {
        /// Track id.
        id: u64,
        /// Its label.
        label: Emotion,
    },
    /// A confirmed track's label changed.
    Changed {
        /// Track id.
        id: u64,
        /// The previous label.
        from: Emotion,
        /// The new label.
        to: Emotion,
    },
    /// A confirmed track was dropped.
    Lost {
        /// Track id.
        id: u64,
    },
}

impl TrackEvent {
    /// The track the event is about.
    pub fn id(&self) -> u64 {
        match *self {
            TrackEvent::Appeared { id, .. }
            | TrackEvent::Changed { id, .. }
            | TrackEvent::Lost { id } => id,
        }
    }
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: Rect, b: Rect) -> f32 {
    let ix = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
    let iy = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    if ix <= 0 || iy <= 0 {
        return 0.0;
    }
    let inter = i64::from(ix) * i64::from(iy);
    let union = i64::from(a.w) * i64::from(a.h) + i64::from(b.w) * i64::from(b.h) - inter;
    if union <= 0 {
        0.0
    } else {
        inter as f32 / union as f32
    }
}

/// Follows faces from frame to frame, reusing its buffers.
#[derive(Debug, Default)]
pub struct Tracker {
    params: TrackParams,
    tracks: Vec<Track>,
    next_id: u64,
    pairs: Vec<(f32, usize, usize)>,
    face_used: Vec<bool>,
    track_used: Vec<bool>,
}

impl Tracker {
    /// A tracker with `params`.
    pub fn new(params: TrackParams) -> Result<Self, TrackParamError> {
        params.validate()?;
        Ok(Self {
            params,
            next_id: 1,
            ..Self::default()
        })
    }

    /// Every live track, confirmed or not.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The confirmed tracks.
    pub fn confirmed(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.confirmed)
    }

    /// The track with `id`, if it is live.
    pub fn get(&self, id: u64) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// Forgets every track (the camera went away); each confirmed one gives a `Lost` event.
    pub fn clear(&mut self, events: &mut Vec<TrackEvent>) {
        events.clear();
        events.extend(
            self.tracks
                .iter()
                .filter(|t| t.confirmed)
                .map(|t| TrackEvent::Lost { id: t.id }),
        );
        self.tracks.clear();
    }

    /// Takes one frame's faces and their probabilities; writes what changed into `events`.
    pub fn update(&mut self, faces: &[(Rect, Probs)], events: &mut Vec<TrackEvent>) {
        events.clear();
        let p = self.params;
        self.pairs.clear();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (fi, (r, _)) in faces.iter().enumerate() {
                let o = iou(t.rect, *r);
                if o >= p.min_iou && o > 0.0 {
                    self.pairs.push((o, ti, fi));
                }
            }
        }
        // Best overlap first; ties broken by track then face order, so the result is deterministic.
        self.pairs
            .sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        self.face_used.clear();
        self.face_used.resize(faces.len(), false);
        self.track_used.clear();
        self.track_used.resize(self.tracks.len(), false);
        for &(_, ti, fi) in &self.pairs {
            if self.track_used[ti] || self.face_used[fi] {
                continue;
            }
            self.track_used[ti] = true;
            self.face_used[fi] = true;
            let t = &mut self.tracks[ti];
            let (rect, probs) = faces[fi];
            t.rect = rect;
            t.hits += 1;
            t.misses = 0;
            for k in 0..CLASS_COUNT {
                t.smoothed.0[k] += p.alpha * (probs.0[k] - t.smoothed.0[k]);
            }
            let top = t.smoothed.top();
            if top != t.label && t.smoothed.get(top) - t.smoothed.get(t.label) >= p.hysteresis {
                if t.confirmed {
                    events.push(TrackEvent::Changed {
                        id: t.id,
                        from: t.label,
                        to: top,
                    });
                }
                t.label = top;
            }
            if !t.confirmed && t.hits >= p.confirm_hits {
                t.confirmed = true;
                // The first label is the smoothed top, with no hysteresis to climb.
                t.label = top;
                events.push(TrackEvent::Appeared {
                    id: t.id,
                    label: top,
                });
            }
        }
        // Unmatched tracks age; the old ones go.
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if !self.track_used[ti] {
                t.misses += 1;
                t.hits = 0;
            }
        }
        let drop_misses = p.drop_misses;
        self.tracks.retain(|t| {
            let keep = t.misses < drop_misses && (t.confirmed || t.misses == 0);
            if !keep && t.confirmed {
                events.push(TrackEvent::Lost { id: t.id });
            }
            keep
        });
        // Unmatched faces start tentative tracks.
        for (fi, &(rect, probs)) in faces.iter().enumerate() {
            if self.face_used[fi] {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let confirmed = p.confirm_hits <= 1;
            let label = probs.top();
            self.tracks.push(Track {
                id,
                rect,
                smoothed: probs,
                label,
                hits: 1,
                misses: 0,
                confirmed,
            });
            if confirmed {
                events.push(TrackEvent::Appeared { id, label });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: i32, y: i32, side: i32) -> Rect {
        Rect::new(x, y, side, side)
    }

    fn probs(e: Emotion, p: f32) -> Probs {
        let mut v = [(1.0 - p) / 6.0; CLASS_COUNT];
        v[e.index()] = p;
        Probs(v)
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(square(0, 0, 10), square(0, 0, 10)), 1.0);
        assert_eq!(iou(square(0, 0, 10), square(20, 0, 10)), 0.0);
        assert!((iou(square(0, 0, 10), square(5, 0, 10)) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn tracks_are_confirmed_after_n_hits_and_lost_after_m_misses() {
        let mut t = Tracker::new(TrackParams::default()).unwrap();
        let mut ev = Vec::new();
        let face = [(square(100, 100, 80), probs(Emotion::Happy, 0.9))];
        t.update(&face, &mut ev);
        t.update(&face, &mut ev);
        assert!(ev.is_empty(), "not yet confirmed: {ev:?}");
        t.update(&face, &mut ev);
        assert_eq!(
            ev,
            [TrackEvent::Appeared {
                id: 1,
                label: Emotion::Happy
            }]
        );
        for _ in 0..4 {
            t.update(&[], &mut ev);
            assert!(ev.is_empty());
        }
        t.update(&[], &mut ev);
        assert_eq!(ev, [TrackEvent::Lost { id: 1 }]);
        assert!(t.tracks().is_empty());
    }

    #[test]
    fn ids_stay_with_moving_faces_and_new_faces_get_new_ids() {
        let mut t = Tracker::new(TrackParams {
            confirm_hits: 1,
            ..TrackParams::default()
        })
        .unwrap();
        let mut ev = Vec::new();
        let (a, b) = (probs(Emotion::Sad, 0.8), probs(Emotion::Angry, 0.8));
        for step in 0..10 {
            // Two faces drifting towards each other by 4 px per frame, listed in swapped order.
            let fa = (square(100 + 4 * step, 100, 80), a);
            let fb = (square(400 - 4 * step, 110, 80), b);
            let faces = if step % 2 == 0 { [fa, fb] } else { [fb, fa] };
            t.update(&faces, &mut ev);
            let by_id: Vec<(u64, Emotion)> = t.confirmed().map(|t| (t.id, t.label)).collect();
            assert!(by_id.contains(&(1, Emotion::Sad)), "{by_id:?}");
            assert!(by_id.contains(&(2, Emotion::Angry)), "{by_id:?}");
        }
        t.update(&[(square(700, 300, 60), a)], &mut ev);
        assert!(ev.contains(&TrackEvent::Appeared {
            id: 3,
            label: Emotion::Sad
        }));
    }

    #[test]
    fn hysteresis_suppresses_flicker_between_close_classes() {
        let mut t = Tracker::new(TrackParams {
            confirm_hits: 1,
            ..TrackParams::default()
        })
        .unwrap();
        let mut ev = Vec::new();
        let r = square(50, 50, 100);
        let close = |top: Emotion, other: Emotion| {
            let mut v = [0.0; CLASS_COUNT];
            v[top.index()] = 0.46;
            v[other.index()] = 0.40;
            v[Emotion::Fear.index()] = 0.14;
            Probs(v)
        };
        t.update(&[(r, close(Emotion::Happy, Emotion::Neutral))], &mut ev);
        let mut changes = 0;
        for i in 0..40 {
            // The raw top class alternates every frame.
            let p = if i % 2 == 0 {
                close(Emotion::Neutral, Emotion::Happy)
            } else {
                close(Emotion::Happy, Emotion::Neutral)
            };
            t.update(&[(r, p)], &mut ev);
            changes += ev
                .iter()
                .filter(|e| matches!(e, TrackEvent::Changed { .. }))
                .count();
        }
        assert_eq!(changes, 0, "the label flickered");
        // A real, lasting change does come through.
        let mut changed_after = None;
        for i in 0..20 {
            t.update(&[(r, probs(Emotion::Surprise, 0.9))], &mut ev);
            if ev.iter().any(|e| {
                matches!(
                    e,
                    TrackEvent::Changed {
                        to: Emotion::Surprise,
                        ..
                    }
                )
            }) {
                changed_after = Some(i + 1);
                break;
            }
        }
        let n = changed_after.expect("the label never changed to surprise");
        assert!(n <= 4, "took {n} frames");
    }

    #[test]
    fn bad_params_are_named() {
        let e = Tracker::new(TrackParams {
            alpha: 0.0,
            ..TrackParams::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("alpha"));
        assert!(TrackParams {
            min_iou: 1.5,
            ..TrackParams::default()
        }
        .validate()
        .is_err());
    }
}
