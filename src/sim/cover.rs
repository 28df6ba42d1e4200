//! The simulator's cover pictures: 640x360 JPEGs, one per task, so a grid of simulated jobs
//! shows which is which. Each is a diagonal gradient in a hue drawn from the task, with the
//! first words of the prompt written in an 8x8 bitmap font (ASCII; other characters are
//! skipped) and a "simulated" label.

use font8x8::legacy::BASIC_LEGACY;

/// Width and height in pixels (the grid shows 16:9 thumbnails).
pub(super) const WIDTH: u16 = 640;
/// See [`WIDTH`].
pub(super) const HEIGHT: u16 = 360;

/// Characters per line of the prompt (at 3x: 24 px a character, with a margin).
const LINE: usize = 24;
/// Lines of the prompt drawn.
const LINES: usize = 3;

/// The cover for a task whose seed is `seed` and whose prompt is `prompt`, as JPEG bytes.
pub(super) fn draw(seed: u64, prompt: &str) -> Vec<u8> {
    let (w, h) = (usize::from(WIDTH), usize::from(HEIGHT));
    let hue = (seed % 360) as f32;
    let (r, g, b) = hsv(hue, 0.55, 0.80);
    let mut pixels = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            // From the full colour at the top left to a third of it at the bottom right, with
            // faint diagonal stripes.
            let t = (x + y) as f32 / (w + h) as f32;
            let stripe = if ((x + 2 * h - y) / 24) % 2 == 0 { 1.0 } else { 0.93 };
            let k = (1.0 - 0.66 * t) * stripe;
            let at = (y * w + x) * 3;
            pixels[at] = (f32::from(r) * k) as u8;
            pixels[at + 1] = (f32::from(g) * k) as u8;
            pixels[at + 2] = (f32::from(b) * k) as u8;
        }
    }
    for (n, line) in lines(prompt).iter().enumerate() {
        text(&mut pixels, line, 24, 100 + n * 40, 3);
    }
    text(&mut pixels, "vidkeep simulator", 24, h - 40, 2);
    let mut out = Vec::with_capacity(32 * 1024);
    let encoder = jpeg_encoder::Encoder::new(&mut out, 80);
    // Encoding an RGB buffer of the declared size into a Vec cannot fail; an empty cover would
    // still be served (and fail the probe-free checks of a test loudly).
    if let Err(e) = encoder.encode(&pixels, WIDTH, HEIGHT, jpeg_encoder::ColorType::Rgb) {
        tracing::error!(error = %e, "simulator: cannot encode a cover");
    }
    out
}

/// The first words of `prompt` in at most [`LINES`] lines of [`LINE`] characters (ASCII only,
/// `…` as `...` when cut).
fn lines(prompt: &str) -> Vec<String> {
    let ascii: String = prompt.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect();
    let mut out: Vec<String> = Vec::new();
    let mut words = ascii.split_whitespace().peekable();
    let mut line = String::new();
    while let Some(word) = words.peek() {
        let word: String = word.chars().take(LINE).collect();
        if line.is_empty() || line.len() + 1 + word.len() <= LINE {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
            words.next();
        } else {
            out.push(std::mem::take(&mut line));
            if out.len() == LINES {
                break;
            }
        }
    }
    if !line.is_empty() && out.len() < LINES {
        out.push(line);
    }
    if words.peek().is_some() {
        if let Some(last) = out.last_mut() {
            last.truncate(LINE - 3);
            last.push_str("...");
        }
    }
    out
}

/// Writes `s` at (`x`, `y`) in white with a dark shadow, each font pixel `scale` pixels wide.
fn text(pixels: &mut [u8], s: &str, x: usize, y: usize, scale: usize) {
    for (shadow, colour) in [(scale.max(2) / 2, 20u8), (0, 250u8)] {
        for (i, c) in s.chars().enumerate() {
            let glyph = BASIC_LEGACY.get(c as usize).copied().unwrap_or_default();
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) == 0 {
                        continue;
                    }
                    let (px, py) = (x + shadow + (i * 8 + col) * scale, y + shadow + row * scale);
                    fill(pixels, px, py, scale, colour);
                }
            }
        }
    }
}

fn fill(pixels: &mut [u8], x: usize, y: usize, size: usize, v: u8) {
    let (w, h) = (usize::from(WIDTH), usize::from(HEIGHT));
    for yy in y..(y + size).min(h) {
        for xx in x..(x + size).min(w) {
            let at = (yy * w + xx) * 3;
            pixels[at..at + 3].fill(v);
        }
    }
}

/// HSV (hue in degrees, saturation and value in 0..=1) to 8-bit RGB.
fn hsv(h: f32, s: f32, v: f32) -> (u8, u8, u8) {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |f: f32| ((f + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (byte(r), byte(g), byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(jpeg: &[u8]) -> Vec<u8> {
        let mut d = zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(jpeg));
        let pixels = d.decode().expect("a valid JPEG");
        let info = d.info().expect("info");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        pixels
    }

    #[test]
    fn two_tasks_get_covers_whose_pixels_differ() {
        let a = decode(&draw(10, "a fox in the snow at dawn"));
        let b = decode(&draw(200, "a harbour with boats"));
        let same_words = decode(&draw(200, "a fox in the snow at dawn"));
        let differing = |x: &[u8], y: &[u8]| x.iter().zip(y).filter(|(p, q)| p.abs_diff(**q) > 40).count();
        assert!(differing(&a, &b) > a.len() / 4, "another hue: most pixels differ");
        assert!(differing(&b, &same_words) > 1000, "other words: the text pixels differ");
        assert_eq!(decode(&draw(10, "a fox in the snow at dawn")), a, "the same task, the same picture");
    }

    #[test]
    fn the_first_words_of_the_prompt_are_wrapped_into_three_lines() {
        assert_eq!(lines("a fox"), ["a fox"]);
        assert_eq!(
            lines("a lighthouse keeper walks along the cliff at dusk while gulls circle over the grey sea below"),
            ["a lighthouse keeper", "walks along the cliff at", "dusk while gulls circ..."]
        );
        assert_eq!(lines("灯塔 at night"), ["at night"], "what the font cannot draw is skipped");
        assert!(lines("").is_empty());
    }
}
