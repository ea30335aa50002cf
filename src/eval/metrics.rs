//! The confusion matrix and the scores read from it.
//!
//! Conventions are scikit-learn's (`classification_report`, `zero_division=0`): a class's precision
//! is undefined when nothing was predicted as it, its recall when no face has it; undefined values
//! are reported as such (`None`) and count as 0 in the macro averages, which run over every class
//! that appears in the truth or the predictions.

use serde::Serialize;

use crate::classify::{Emotion, CLASS_COUNT};

/// Counts of faces by true class (rows) and predicted class (columns), in the network's order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Confusion {
    counts: [[u64; CLASS_COUNT]; CLASS_COUNT],
}

/// Precision, recall and F1 of one class, or their macro averages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Of the faces predicted as the class, the share that has it.
    pub precision: Option<f64>,
    /// Of the faces that have the class, the share predicted as it.
    pub recall: Option<f64>,
    /// The harmonic mean of the two (0 where both are 0 or one is undefined).
    pub f1: Option<f64>,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    /// An empty matrix.
    pub fn new() -> Self {
        Self::default()
    }

    /// A matrix from its counts, `[truth][predicted]`.
    pub fn from_counts(counts: [[u64; CLASS_COUNT]; CLASS_COUNT]) -> Self {
        Self { counts }
    }

    /// Counts one face.
    pub fn add(&mut self, truth: Emotion, predicted: Emotion) {
        self.counts[truth.index()][predicted.index()] += 1;
    }

    /// The counts, `[truth][predicted]`.
    pub fn counts(&self) -> &[[u64; CLASS_COUNT]; CLASS_COUNT] {
        &self.counts
    }

    /// Faces of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: Emotion, predicted: Emotion) -> u64 {
        self.counts[truth.index()][predicted.index()]
    }

    /// Every face counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Faces predicted as their true class.
    pub fn correct(&self) -> u64 {
        (0..CLASS_COUNT).map(|i| self.counts[i][i]).sum()
    }

    /// The share of faces predicted right (`None` with no faces).
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct(), self.total())
    }

    /// Faces whose true class is `class` (the row sum).
    pub fn support(&self, class: Emotion) -> u64 {
        self.counts[class.index()].iter().sum()
    }

    /// Faces predicted as `class` (the column sum).
    pub fn predicted(&self, class: Emotion) -> u64 {
        self.counts.iter().map(|row| row[class.index()]).sum()
    }

    /// The share of row `truth` predicted as `predicted`, in percent (`None` for an empty row).
    pub fn row_percent(&self, truth: Emotion, predicted: Emotion) -> Option<f64> {
        ratio(self.count(truth, predicted), self.support(truth)).map(|r| r * 100.0)
    }

    /// Precision, recall and F1 of `class`.
    pub fn scores(&self, class: Emotion) -> Scores {
        let hits = self.count(class, class);
        let precision = ratio(hits, self.predicted(class));
        let recall = ratio(hits, self.support(class));
        let f1 = match (precision, recall) {
            (None, None) => None,
            (p, r) => {
                let (p, r) = (p.unwrap_or(0.0), r.unwrap_or(0.0));
                Some(if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                })
            }
        };
        Scores {
            precision,
            recall,
            f1,
        }
    }

    /// The classes present in the truth or the predictions.
    pub fn present(&self) -> impl Iterator<Item = Emotion> + '_ {
        Emotion::ALL
            .into_iter()
            .filter(|&c| self.support(c) > 0 || self.predicted(c) > 0)
    }

    /// The unweighted means of precision, recall and F1 over [`Confusion::present`] classes, with
    /// undefined values as 0 (`None` with no faces).
    pub fn macro_scores(&self) -> Scores {
        let present: Vec<Emotion> = self.present().collect();
        let mean = |get: fn(&Scores) -> Option<f64>| {
            (!present.is_empty()).then(|| {
                present
                    .iter()
                    .map(|&c| get(&self.scores(c)).unwrap_or(0.0))
                    .sum::<f64>()
                    / present.len() as f64
            })
        };
        Scores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Emotion::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn scores_match_a_hand_computation() {
        // 10 faces: 4 happy (3 right, 1 called neutral), 3 neutral (2 right, 1 called happy),
        // 2 sad (both called neutral), 1 angry (called happy). Nothing predicted as sad or angry.
        let mut m = Confusion::new();
        for (t, p) in [
            (Happy, Happy),
            (Happy, Happy),
            (Happy, Happy),
            (Happy, Neutral),
            (Neutral, Neutral),
            (Neutral, Neutral),
            (Neutral, Happy),
            (Sad, Neutral),
            (Sad, Neutral),
            (Angry, Happy),
        ] {
            m.add(t, p);
        }
        assert_eq!((m.total(), m.correct()), (10, 5));
        assert!(close(m.accuracy(), 0.5));
        // happy: predicted 5 times (3 right): P 3/5; 4 true: R 3/4; F1 2*0.6*0.75/1.35 = 2/3.
        let happy = m.scores(Happy);
        assert!(close(happy.precision, 0.6));
        assert!(close(happy.recall, 0.75));
        assert!(close(happy.f1, 2.0 / 3.0));
        // neutral: predicted 5 times (2 right): P 2/5; 3 true: R 2/3; F1 2*(0.4*2/3)/(0.4+2/3) = 0.5.
        let neutral = m.scores(Neutral);
        assert!(close(neutral.precision, 0.4));
        assert!(close(neutral.recall, 2.0 / 3.0));
        assert!(close(neutral.f1, 0.5));
        // sad and angry: never predicted, so precision undefined, recall 0, F1 0.
        for c in [Sad, Angry] {
            let s = m.scores(c);
            assert_eq!(s.precision, None);
            assert!(close(s.recall, 0.0) && close(s.f1, 0.0));
        }
        // disgust: absent everywhere.
        assert_eq!(
            m.scores(Disgust),
            Scores {
                precision: None,
                recall: None,
                f1: None
            }
        );
        // Macro over the 4 present classes, undefined as 0.
        let macro_ = m.macro_scores();
        assert!(close(macro_.precision, (0.6 + 0.4) / 4.0));
        assert!(close(macro_.recall, (0.75 + 2.0 / 3.0) / 4.0));
        assert!(close(macro_.f1, (2.0 / 3.0 + 0.5) / 4.0));
        // Row percentages.
        assert!(close(m.row_percent(Happy, Neutral), 25.0));
        assert!(close(m.row_percent(Sad, Neutral), 100.0));
        assert_eq!(m.row_percent(Fear, Fear), None);
        assert_eq!((m.support(Neutral), m.predicted(Neutral)), (3, 5));
    }

    #[test]
    fn an_empty_matrix_has_no_scores() {
        let m = Confusion::new();
        assert_eq!(m.accuracy(), None);
        assert_eq!(m.macro_scores().f1, None);
    }
}
