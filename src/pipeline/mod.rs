//! The stages wired together: [`Pipeline`] takes one gray frame through detection, classification and
//! tracking; [`daemon`] runs it over a source with LEDs, the serial line, signals and systemd.

pub mod bench;
pub mod daemon;
mod mailbox;
pub mod stats;

use std::time::Instant;

use thiserror::Error;

use crate::classify::{classify_parallel, Classifier, ClassifyError, Probs};
use crate::detect::{DetectError, DetectParams, Detector};
use crate::frame::{GrayFrame, Rect};
use crate::track::Drive;
use crate::track::{Track, TrackEvent, TrackParamError, TrackParams, Tracker};

use stats::Latencies;

/// Why a frame could not be processed.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The detector refused the frame or its parameters.
    #[error("detection: {0}")]
    Detect(#[from] DetectError),
    /// A tracking setting is out of range.
    #[error("tracking: {0}")]
    Track(#[from] TrackParamError),
    /// The classifier could not be set up for the detector's threads (a face that fails while
    /// running is skipped and counted instead: [`Pipeline::skipped_faces`]).
    #[error("classification: {0}")]
    Classify(#[from] ClassifyError),
}

/// Detection, classification and tracking of one frame at a time, with every buffer reused.
pub struct Pipeline {
    detector: Detector,
    params: DetectParams,
    every: u32,
    /// One classifier per detector thread (the first is the one given), so the faces of a frame
    /// classify in parallel on the detector's pool.
    classifiers: Vec<Classifier>,
    /// Per face of the frame, its result, filled in parallel.
    results: Vec<Result<Probs, ClassifyError>>,
    tracker: Tracker,
    boxes: Vec<Rect>,
    local: Vec<Rect>,
    roi: GrayFrame,
    scored: Vec<(Rect, Probs)>,
    events: Vec<TrackEvent>,
    frames: u64,
    /// Faces that could not be classified (a box the crop refuses, a failed model run), skipped.
    skipped_faces: u64,
    /// Detection time per frame.
    pub detect_times: Latencies,
    /// Classification time per frame (all faces).
    pub classify_times: Latencies,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("params", &self.params)
            .field("every", &self.every)
            .field("frames", &self.frames)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline from its stages. `every` > 1 runs the full-frame detector on every `every`th frame
    /// only, with a local search around the known faces in between.
    pub fn new(
        detector: Detector,
        params: DetectParams,
        every: u32,
        classifier: Classifier,
        track: TrackParams,
    ) -> Result<Self, PipelineError> {
        params.validate()?;
        let classifiers = classifier.with_twins(detector.threads())?;
        Ok(Pipeline {
            detector,
            params,
            every: every.max(1),
            classifiers,
            results: Vec::new(),
            tracker: Tracker::new(track)?,
            boxes: Vec::new(),
            local: Vec::new(),
            roi: GrayFrame::default(),
            scored: Vec::new(),
            events: Vec::new(),
            frames: 0,
            skipped_faces: 0,
            detect_times: Latencies::default(),
            classify_times: Latencies::default(),
        })
    }

    /// Frames processed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The detector, for its figures.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The tracker, for the live tracks.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// What changed for the confirmed tracks in the last [`Pipeline::process`] or
    /// [`Pipeline::reset`].
    pub fn events(&self) -> &[TrackEvent] {
        &self.events
    }

    /// The faces found in the last frame and their probabilities.
    pub fn faces(&self) -> &[(Rect, Probs)] {
        &self.scored
    }

    /// Takes one frame through every stage; returns what changed for the confirmed tracks.
    pub fn process(&mut self, frame: &GrayFrame) -> Result<&[TrackEvent], PipelineError> {
        let t0 = Instant::now();
        let full = self.every == 1 || self.frames % u64::from(self.every) == 0;
        if full {
            self.detector
                .detect_into(frame, &self.params, &mut self.boxes)?;
        } else {
            self.local_search(frame)?;
        }
        let t1 = Instant::now();
        self.classify_faces(frame);
        let t2 = Instant::now();
        self.detect_times.push(t1 - t0);
        self.classify_times.push(t2 - t1);
        self.tracker.update(&self.scored, &mut self.events);
        self.frames += 1;
        Ok(&self.events)
    }

    /// Faces skipped so far because they could not be classified (a box the crop refuses, a
    /// failed model run).
    pub fn skipped_faces(&self) -> u64 {
        self.skipped_faces
    }

    /// Classifies `self.boxes` into `self.scored`, in box order; with several faces and threads,
    /// groups of faces run in parallel on the detector's pool, each on a classifier of its own.
    /// A face that fails is skipped and counted, never a reason to stop.
    fn classify_faces(&mut self, frame: &GrayFrame) {
        self.scored.clear();
        if let Err(e) = classify_parallel(
            self.detector.pool(),
            &mut self.classifiers,
            frame,
            &self.boxes,
            &mut self.results,
        ) {
            // No pad value for this frame: no box can be cropped.
            self.skipped_faces += self.boxes.len() as u64;
            log::debug!("{} face(s) skipped: {e}", self.boxes.len());
            return;
        }
        keep_classified(
            &mut self.results,
            &self.boxes,
            &mut self.scored,
            &mut self.skipped_faces,
        );
    }

    /// Forgets every face (the source went away); returns the `Lost` events.
    pub fn reset(&mut self) -> &[TrackEvent] {
        self.tracker.clear(&mut self.events);
        &self.events
    }

    /// Between full detections: the detector on a window around each live track, with face sizes
    /// near the track's.
    fn local_search(&mut self, frame: &GrayFrame) -> Result<(), DetectError> {
        self.boxes.clear();
        let (fw, fh) = (frame.width() as i32, frame.height() as i32);
        for t in self.tracker.tracks() {
            let r = t.rect;
            let margin = r.w.max(r.h) / 2;
            let x0 = (r.x - margin).max(0);
            let y0 = (r.y - margin).max(0);
            let x1 = (r.x + r.w + margin).min(fw);
            let y1 = (r.y + r.h + margin).min(fh);
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
            self.roi.reset(w, h);
            for (y, row) in self.roi.pixels_mut().chunks_exact_mut(w).enumerate() {
                let src = frame.row(y0 as usize + y);
                row.copy_from_slice(&src[x0 as usize..x1 as usize]);
            }
            let side = r.w.max(r.h) as usize;
            let params = DetectParams {
                min_size: (side * 3 / 4).max(self.params.min_size),
                max_size: side * 4 / 3,
                ..self.params
            };
            if params.max_size < params.min_size {
                continue;
            }
            self.detector
                .detect_into(&self.roi, &params, &mut self.local)?;
            for l in &self.local {
                let shifted = Rect::new(l.x + x0, l.y + y0, l.w, l.h);
                if !self.boxes.contains(&shifted) {
                    self.boxes.push(shifted);
                }
            }
        }
        Ok(())
    }

    /// The confirmed track that drives the LEDs under `drive`, if any face is confirmed.
    pub fn driving(&self, drive: Drive) -> Option<&Track> {
        let confirmed = self.tracker.confirmed();
        match drive {
            Drive::First => confirmed.min_by_key(|t| t.id),
            Drive::Largest => confirmed.max_by(|a, b| {
                let area = |t: &Track| i64::from(t.rect.w) * i64::from(t.rect.h);
                area(a).cmp(&area(b)).then(b.id.cmp(&a.id))
            }),
            Drive::MostConfident => confirmed.max_by(|a, b| {
                let p = |t: &Track| t.smoothed.get(t.label);
                p(a).total_cmp(&p(b)).then(b.id.cmp(&a.id))
            }),
        }
    }
}

/// Moves the faces whose classification worked from `results` (one per box of `boxes`) into
/// `scored`, and counts the others in `skipped`. A box the crop rule refuses is routine (a debug
/// line); a failed model run is a warning, logged the first time and then at every power of two,
/// so a model that fails on every face cannot flood the log.
fn keep_classified(
    results: &mut Vec<Result<Probs, ClassifyError>>,
    boxes: &[Rect],
    scored: &mut Vec<(Rect, Probs)>,
    skipped: &mut u64,
) {
    for (result, &r) in results.drain(..).zip(boxes) {
        match result {
            Ok(p) => scored.push((r, p)),
            Err(e) => {
                *skipped += 1;
                match e {
                    ClassifyError::Crop(e) => log::debug!("face {r:?} skipped: {e}"),
                    e if skipped.is_power_of_two() => {
                        log::warn!("face {r:?} skipped: {e} ({skipped} faces skipped so far)")
                    }
                    e => log::debug!("face {r:?} skipped: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::crop::CropError;
    use crate::classify::ModelError;

    #[test]
    fn a_face_that_fails_is_skipped_and_counted_and_the_others_are_kept() {
        let boxes = [
            Rect::new(0, 0, 10, 10),
            Rect::new(20, 0, 10, 10),
            Rect::new(40, 0, 10, 10),
        ];
        let p = Probs([0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]);
        let mut results = vec![
            Ok(p),
            Err(ClassifyError::Model(ModelError::BadOutput(vec![
                f32::NAN;
                7
            ]))),
            Err(ClassifyError::Crop(CropError::EmptyImage)),
        ];
        let (mut scored, mut skipped) = (Vec::new(), 5);
        keep_classified(&mut results, &boxes, &mut scored, &mut skipped);
        assert_eq!(scored, [(boxes[0], p)]);
        assert_eq!(skipped, 7);
        assert!(results.is_empty());
    }
}
