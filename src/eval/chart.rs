//! The confusion matrix as a PNG heat map: rows are true classes, columns predicted ones; each cell
//! is shaded by its share of the row and shows its count and that share.

use image::RgbImage;

use super::Confusion;
use crate::classify::{Emotion, CLASS_COUNT};
use crate::render::{blues, ink_on, Align, Canvas, FONT_10X20, FONT_7X13, FONT_9X15_BOLD};

const CELL: i64 = 84;
const LEFT: i64 = 110;
const TOP: i64 = 96;
const BOTTOM: i64 = 24;
const SCALE: i64 = 90;

/// Draws `confusion` with `title` above it.
pub fn render(confusion: &Confusion, title: &str) -> RgbImage {
    let side = CELL * CLASS_COUNT as i64;
    let (w, h) = (LEFT + side + SCALE, TOP + side + BOTTOM);
    let mut c = Canvas::new(w as u32, h as u32, [255, 255, 255]);
    let black = [0, 0, 0];
    c.text(title, (w / 2) as i32, 18, &FONT_10X20, black, Align::Center);
    c.text(
        "predicted class",
        (LEFT + side / 2) as i32,
        50,
        &FONT_9X15_BOLD,
        black,
        Align::Center,
    );
    c.text(
        "true class",
        8,
        (TOP - 18) as i32,
        &FONT_9X15_BOLD,
        black,
        Align::Left,
    );
    for (i, e) in Emotion::ALL.into_iter().enumerate() {
        let at = i as i64 * CELL;
        c.text(
            e.name(),
            (LEFT + at + CELL / 2) as i32,
            (TOP - 14) as i32,
            &FONT_7X13,
            black,
            Align::Center,
        );
        c.text(
            &format!("{} ({})", e.name(), confusion.support(e)),
            (LEFT - 8) as i32,
            (TOP + at + CELL / 2) as i32,
            &FONT_7X13,
            black,
            Align::Right,
        );
    }
    for (ti, truth) in Emotion::ALL.into_iter().enumerate() {
        for (pi, predicted) in Emotion::ALL.into_iter().enumerate() {
            let (x, y) = (LEFT + pi as i64 * CELL, TOP + ti as i64 * CELL);
            let share = confusion.row_percent(truth, predicted);
            let fill = match share {
                Some(p) => blues((p / 100.0) as f32),
                None => [235, 235, 235],
            };
            c.fill(x, y, CELL, CELL, fill);
            let ink = ink_on(fill);
            let (cx, cy) = ((x + CELL / 2) as i32, (y + CELL / 2) as i32);
            c.text(
                &confusion.count(truth, predicted).to_string(),
                cx,
                cy - 9,
                &FONT_9X15_BOLD,
                ink,
                Align::Center,
            );
            let pct = share.map_or("-".to_string(), |p| format!("{p:.1}%"));
            c.text(&pct, cx, cy + 10, &FONT_7X13, ink, Align::Center);
            if ti == pi {
                // The diagonal gets a frame, so the right answers stand out in print too.
                for (fx, fy, fw, fh) in [
                    (x, y, CELL, 2),
                    (x, y + CELL - 2, CELL, 2),
                    (x, y, 2, CELL),
                    (x + CELL - 2, y, 2, CELL),
                ] {
                    c.fill(fx, fy, fw, fh, [200, 60, 40]);
                }
            }
        }
    }
    c.color_scale(
        (LEFT + side + 16, TOP, 16, side),
        blues,
        &[
            (0.0, "0%".into()),
            (0.5, "50%".into()),
            (1.0, "100%".into()),
        ],
    );
    c.text(
        "row %",
        (LEFT + side + 16) as i32,
        (TOP - 14) as i32,
        &FONT_7X13,
        black,
        Align::Left,
    );
    c.into_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_shaded_by_their_row_share() {
        let mut m = Confusion::new();
        for _ in 0..3 {
            m.add(Emotion::Happy, Emotion::Happy);
        }
        m.add(Emotion::Happy, Emotion::Sad);
        let img = render(&m, "test");
        let px = |truth: usize, predicted: usize| {
            // A point inside the cell, clear of its text and frame.
            let (x, y) = (
                LEFT + predicted as i64 * CELL + 5,
                TOP + truth as i64 * CELL + 5,
            );
            img.get_pixel(x as u32, y as u32).0
        };
        let (happy, sad) = (Emotion::Happy.index(), Emotion::Sad.index());
        assert_eq!(px(happy, happy), blues(0.75));
        assert_eq!(px(happy, sad), blues(0.25));
        assert_eq!(px(happy, 0), blues(0.0));
        assert_eq!(px(0, 0), [235, 235, 235], "an empty row is gray");
    }
}
