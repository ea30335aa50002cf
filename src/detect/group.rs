//! OpenCV's `groupRectangles`: merge overlapping raw detections into faces.
//!
//! Candidates are clustered by `cv::partition` with OpenCV's `SimilarRects` test (every edge within
//! `eps * (min(w1, w2) + min(h1, h2)) / 2`), each cluster is averaged, clusters with `minNeighbors` or
//! fewer members are dropped, and a cluster lying inside a larger, better-supported one is dropped too.
//! Clusters are numbered in the order their first member appears, as OpenCV numbers them, so the output
//! order matches single-threaded OpenCV for the same candidate order.

use super::Rect;

/// `eps` OpenCV's cascade detector passes to `groupRectangles`.
pub const GROUP_EPS: f64 = 0.2;

/// Reusable buffers for [`Grouper::group`].
#[derive(Debug, Default)]
pub struct Grouper {
    parent: Vec<usize>,
    label: Vec<usize>,
    root_class: Vec<usize>,
    sums: Vec<[i32; 4]>,
    counts: Vec<i32>,
    means: Vec<Rect>,
}

fn similar(a: &Rect, b: &Rect, eps: f64) -> bool {
    let delta = eps * (a.w.min(b.w) + a.h.min(b.h)) as f64 * 0.5;
    ((a.x - b.x).abs() as f64) <= delta
        && ((a.y - b.y).abs() as f64) <= delta
        && ((a.x + a.w - b.x - b.w).abs() as f64) <= delta
        && ((a.y + a.h - b.y - b.h).abs() as f64) <= delta
}

/// `saturate_cast<int>(float)`: round half to even, clamp to the `i32` range.
fn round_f32(v: f32) -> i32 {
    v.round_ties_even() as i32
}

impl Grouper {
    /// A grouper with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Groups `rects` in place as `cv::groupRectangles(rects, group_threshold, eps)` does.
    /// A threshold of 0 or less leaves the list untouched.
    pub fn group(&mut self, rects: &mut Vec<Rect>, group_threshold: i32, eps: f64) {
        if group_threshold <= 0 || rects.is_empty() {
            return;
        }
        let n = rects.len();
        self.parent.clear();
        self.parent.extend(0..n);
        for i in 0..n {
            for j in 0..i {
                if similar(&rects[i], &rects[j], eps) {
                    let (ri, rj) = (self.find(i), self.find(j));
                    if ri != rj {
                        self.parent[ri.max(rj)] = ri.min(rj);
                    }
                }
            }
        }
        // Number the classes by first appearance.
        self.label.clear();
        self.label.resize(n, usize::MAX);
        let mut nclasses = 0;
        self.root_class.clear();
        self.root_class.resize(n, usize::MAX);
        for i in 0..n {
            let r = self.find(i);
            if self.root_class[r] == usize::MAX {
                self.root_class[r] = nclasses;
                nclasses += 1;
            }
            self.label[i] = self.root_class[r];
        }
        self.sums.clear();
        self.sums.resize(nclasses, [0; 4]);
        self.counts.clear();
        self.counts.resize(nclasses, 0);
        for (r, &c) in rects.iter().zip(&self.label) {
            let s = &mut self.sums[c];
            // OpenCV sums into the int fields of a Rect.
            s[0] = s[0].wrapping_add(r.x);
            s[1] = s[1].wrapping_add(r.y);
            s[2] = s[2].wrapping_add(r.w);
            s[3] = s[3].wrapping_add(r.h);
            self.counts[c] += 1;
        }
        self.means.clear();
        for (s, &n) in self.sums.iter().zip(&self.counts) {
            let k = 1.0f32 / n as f32;
            self.means.push(Rect {
                x: round_f32(s[0] as f32 * k),
                y: round_f32(s[1] as f32 * k),
                w: round_f32(s[2] as f32 * k),
                h: round_f32(s[3] as f32 * k),
            });
        }
        rects.clear();
        for i in 0..nclasses {
            let r1 = self.means[i];
            let n1 = self.counts[i];
            if n1 <= group_threshold {
                continue;
            }
            let swallowed = (0..nclasses).any(|j| {
                let n2 = self.counts[j];
                if j == i || n2 <= group_threshold {
                    return false;
                }
                let r2 = self.means[j];
                let dx = (r2.w as f64 * eps).round_ties_even() as i32;
                let dy = (r2.h as f64 * eps).round_ties_even() as i32;
                r1.x >= r2.x - dx
                    && r1.y >= r2.y - dy
                    && r1.x + r1.w <= r2.x + r2.w + dx
                    && r1.y + r1.h <= r2.y + r2.h + dy
                    && (n2 > n1.max(3) || n1 < 3)
            });
            if !swallowed {
                rects.push(r1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_are_averaged_and_thresholded() {
        let mut rects = vec![
            Rect::new(10, 10, 40, 40),
            Rect::new(12, 11, 40, 40),
            Rect::new(11, 9, 42, 42),
            Rect::new(200, 200, 30, 30), // alone: dropped at threshold 1
        ];
        Grouper::new().group(&mut rects, 1, GROUP_EPS);
        // x: 33/3 = 11, y: 30/3 = 10, w: 122/3 = 40.67 -> 41.
        assert_eq!(rects, vec![Rect::new(11, 10, 41, 41)]);
    }

    #[test]
    fn threshold_zero_keeps_raw_candidates() {
        let mut rects = vec![Rect::new(0, 0, 10, 10), Rect::new(1, 1, 10, 10)];
        Grouper::new().group(&mut rects, 0, GROUP_EPS);
        assert_eq!(rects.len(), 2);
    }

    #[test]
    fn chains_join_transitively() {
        // a~b and b~c but not a~c: partition still makes one class.
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(15, 0, 100, 100);
        let c = Rect::new(30, 0, 100, 100);
        assert!(
            similar(&a, &b, GROUP_EPS) && similar(&b, &c, GROUP_EPS) && !similar(&a, &c, GROUP_EPS)
        );
        let mut rects = vec![a, c, b];
        Grouper::new().group(&mut rects, 2, GROUP_EPS);
        assert_eq!(rects, vec![Rect::new(15, 0, 100, 100)]);
    }

    #[test]
    fn small_box_inside_a_stronger_one_is_dropped() {
        let mut rects = vec![Rect::new(50, 50, 20, 20); 3];
        rects.extend(vec![Rect::new(40, 40, 60, 60); 5]);
        Grouper::new().group(&mut rects, 1, GROUP_EPS);
        assert_eq!(rects, vec![Rect::new(40, 40, 60, 60)]);
    }

    #[test]
    fn halves_round_to_even_like_opencv() {
        // x sum 1 over 2 members = 0.5 -> 0; 3/2 = 1.5 -> 2.
        let mut rects = vec![Rect::new(0, 1, 10, 10), Rect::new(1, 2, 10, 10)];
        Grouper::new().group(&mut rects, 1, GROUP_EPS);
        assert_eq!(rects, vec![Rect::new(0, 2, 10, 10)]);
    }
}
