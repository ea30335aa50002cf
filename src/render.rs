//! Drawing for the report images (`eval --png`, `explain`) and the web API's preview: an RGB
//! canvas that embedded-graphics draws text on, filled and outlined boxes, colour maps and a
//! colour scale.

use std::convert::Infallible;

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use image::{Rgb, RgbImage};

use crate::frame::GrayFrame;

pub use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10, FONT_7X13, FONT_9X15_BOLD};
pub use embedded_graphics::text::Alignment as Align;

/// An RGB image to draw on.
#[derive(Debug, Clone)]
pub struct Canvas {
    image: RgbImage,
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.image.width(), self.image.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.image.width() {
                if let Some(px) = self.image.get_pixel_mut_checked(p.x as u32, p.y as u32) {
                    *px = Rgb([c.r(), c.g(), c.b()]);
                }
            }
        }
        Ok(())
    }
}

impl Canvas {
    /// A `width` x `height` canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: [u8; 3]) -> Self {
        Self {
            image: RgbImage::from_pixel(width, height, Rgb(background)),
        }
    }

    /// A canvas showing `frame`, in gray.
    pub fn from_gray(frame: &GrayFrame) -> Self {
        let (w, h) = (frame.width() as u32, frame.height() as u32);
        let mut image = RgbImage::new(w, h);
        for (px, &v) in image.pixels_mut().zip(frame.pixels()) {
            *px = Rgb([v, v, v]);
        }
        Self { image }
    }

    /// The image drawn so far.
    pub fn into_image(self) -> RgbImage {
        self.image
    }

    /// The image, to draw on directly.
    pub fn image_mut(&mut self) -> &mut RgbImage {
        &mut self.image
    }

    /// Fills the box at (`x`, `y`) of `w` x `h` pixels; parts outside the canvas are left out.
    pub fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
        let (cw, ch) = (
            i64::from(self.image.width()),
            i64::from(self.image.height()),
        );
        for py in y.max(0)..(y + h).min(ch) {
            for px in x.max(0)..(x + w).min(cw) {
                self.image.put_pixel(px as u32, py as u32, Rgb(color));
            }
        }
    }

    /// Draws the edge of the box at (`x`, `y`) of `w` x `h` pixels, `thickness` pixels wide and
    /// inside the box; parts outside the canvas are left out.
    pub fn outline(&mut self, (x, y, w, h): (i64, i64, i64, i64), thickness: i64, color: [u8; 3]) {
        let t = thickness.min(w).min(h).max(0);
        self.fill(x, y, w, t, color);
        self.fill(x, y + h - t, w, t, color);
        self.fill(x, y, t, h, color);
        self.fill(x + w - t, y, t, h, color);
    }

    /// Writes one line of `text` with its vertical middle at `y`; `x` is its left edge, centre or
    /// right edge as `align` says.
    pub fn text(
        &mut self,
        text: &str,
        x: i32,
        y: i32,
        font: &MonoFont,
        color: [u8; 3],
        align: Alignment,
    ) {
        let style = MonoTextStyle::new(font, Rgb888::new(color[0], color[1], color[2]));
        let layout = TextStyleBuilder::new()
            .alignment(align)
            .baseline(Baseline::Middle)
            .build();
        let _ = Text::with_text_style(text, Point::new(x, y), style, layout).draw(self);
    }

    /// A vertical colour scale at (`x`, `y`), `w` x `h`: `map(1)` at the top, `map(0)` at the bottom,
    /// with `labels` (value in 0..=1, text) written to its right.
    pub fn color_scale(
        &mut self,
        (x, y, w, h): (i64, i64, i64, i64),
        map: impl Fn(f32) -> [u8; 3],
        labels: &[(f32, String)],
    ) {
        for row in 0..h {
            let t = 1.0 - row as f32 / (h - 1).max(1) as f32;
            self.fill(x, y + row, w, 1, map(t));
        }
        for (t, label) in labels {
            let ty = y + ((1.0 - t.clamp(0.0, 1.0)) * (h - 1) as f32).round() as i64;
            self.fill(x + w, ty, 4, 1, [0, 0, 0]);
            self.text(
                label,
                (x + w + 7) as i32,
                ty as i32,
                &FONT_6X10,
                [0, 0, 0],
                Alignment::Left,
            );
        }
    }
}

/// The colour at `t` (clamped to 0..=1) along straight lines between `stops`, given as
/// (position, colour) in increasing position from 0 to 1.
fn along(stops: &[(f32, [u8; 3])], t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let upper = stops
        .iter()
        .position(|s| s.0 >= t)
        .unwrap_or(stops.len() - 1)
        .max(1);
    let ((t0, c0), (t1, c1)) = (stops[upper - 1], stops[upper]);
    let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let mix = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * f).round() as u8;
    [mix(c0[0], c1[0]), mix(c0[1], c1[1]), mix(c0[2], c1[2])]
}

/// White to dark blue, for shares from 0 to 1 (the confusion matrix).
pub fn blues(t: f32) -> [u8; 3] {
    along(
        &[
            (0.0, [247, 251, 255]),
            (0.25, [198, 219, 239]),
            (0.5, [107, 174, 214]),
            (0.75, [33, 113, 181]),
            (1.0, [8, 48, 107]),
        ],
        t,
    )
}

/// Black through purple and orange to pale yellow (an inferno-like map), for heat from 0 to 1.
pub fn heat(t: f32) -> [u8; 3] {
    along(
        &[
            (0.0, [0, 0, 4]),
            (0.25, [87, 16, 110]),
            (0.5, [188, 55, 84]),
            (0.75, [249, 142, 9]),
            (1.0, [252, 255, 164]),
        ],
        t,
    )
}

/// Black or white, whichever reads better on `background`.
pub fn ink_on(background: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = background.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 140.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_maps_reach_their_ends_and_interpolate() {
        assert_eq!(blues(0.0), [247, 251, 255]);
        assert_eq!(blues(1.0), [8, 48, 107]);
        assert_eq!(heat(-3.0), heat(0.0));
        assert_eq!(heat(f32::NAN), heat(0.0));
        assert_eq!(heat(0.125), [44, 8, 57]);
    }

    #[test]
    fn text_is_drawn_inside_the_canvas_only() {
        let mut c = Canvas::new(40, 20, [255, 255, 255]);
        c.text("happy", 20, 10, &FONT_6X10, [0, 0, 0], Alignment::Center);
        c.text(
            "off the edge",
            35,
            10,
            &FONT_6X10,
            [0, 0, 0],
            Alignment::Left,
        );
        let img = c.into_image();
        let dark = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(dark > 20, "{dark} dark pixels");
    }
}
