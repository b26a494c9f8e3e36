//! Speed of the board picture: painting, PNG encoding and decoding (`cargo bench --bench
//! picture`). Plain `Instant` timing, each figure the median of several runs, in release.

use std::hint::black_box;
use std::time::{Duration, Instant};

use smolcanvas::fuzzing::picture::{HEIGHT, Picture, Segment, WIDTH, data_url_png, png_data_url};

/// Runs of each measurement; the median is reported.
const RUNS: usize = 9;
/// Strokes painted, as from a busy board.
const STROKES: usize = 500;
/// Segments per stroke (a pointer move each).
const SEGMENTS_PER_STROKE: usize = 20;

/// The median time of `RUNS` calls of `f` (after one warm-up call).
fn median<T>(mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// A reproducible pseudo-random number generator (xorshift64), giving floats in [0, 1).
struct Random(u64);

impl Random {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `STROKES` strokes of `SEGMENTS_PER_STROKE` segments: random walks with steps of up to
/// 20 pixels each way, widths 2 to 20, random colours.
fn strokes(random: &mut Random) -> Vec<Vec<Segment>> {
    (0..STROKES)
        .map(|_| {
            let (mut x, mut y) = (random.next() * WIDTH as f32, random.next() * HEIGHT as f32);
            let width = 2.0 + random.next() * 18.0;
            let rgb = [random.next(), random.next(), random.next()].map(|c| (c * 256.0) as u8);
            (0..SEGMENTS_PER_STROKE)
                .map(|_| {
                    let (x0, y0) = (x, y);
                    x += (random.next() - 0.5) * 40.0;
                    y += (random.next() - 0.5) * 40.0;
                    Segment { x0, y0, x1: x, y1: y, width, rgb }
                })
                .collect()
        })
        .collect()
}

fn ms(duration: Duration) -> String {
    format!("{:8.3} ms", duration.as_secs_f64() * 1e3)
}

fn main() {
    let strokes = strokes(&mut Random(0x2545_f491_4f6c_dd1d));
    let paint_all = median(|| {
        let mut picture = Picture::blank();
        for stroke in &strokes {
            picture.paint(stroke);
        }
        picture
    });
    // Each stroke timed on its own too: short intervals are less often cut by other processes.
    let mut drawn = Picture::blank();
    let mut each: Vec<Duration> = strokes
        .iter()
        .map(|stroke| {
            let start = Instant::now();
            drawn.paint(stroke);
            start.elapsed()
        })
        .collect();
    each.sort();
    println!(
        "paint {STROKES} strokes x {SEGMENTS_PER_STROKE} segments: {} ({:.1} us a stroke)",
        ms(paint_all),
        paint_all.as_secs_f64() * 1e6 / STROKES as f64
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "paint one stroke:    median {:.1} us, 90th percentile {:.1} us, slowest {:.1} us",
        us(each[STROKES / 2]),
        us(each[STROKES * 9 / 10]),
        us(each[STROKES - 1])
    );

    let png = drawn.encode_png();
    println!("encode_png, drawn:   {} ({} bytes)", ms(median(|| drawn.encode_png())), png.len());
    println!("decode_png, drawn:   {}", ms(median(|| Picture::decode_png(&png).unwrap())));
    let blank = Picture::blank();
    println!("encode_png, blank:   {} ({} bytes)", ms(median(|| blank.encode_png())), blank.encode_png().len());
    let url = png_data_url(&png);
    println!("png_data_url, drawn: {}", ms(median(|| png_data_url(&png))));
    println!("data_url_png, drawn: {}", ms(median(|| data_url_png(&url).unwrap())));
    println!("is_blank, drawn:     {}", ms(median(|| drawn.is_blank())));
    println!("is_blank, blank:     {}", ms(median(|| blank.is_blank())));
    println!("clone:               {}", ms(median(|| drawn.clone())));

    // Stretching: a 640x360 PNG (enlarged) and the largest accepted, 4096x4096 of noise.
    let half = rgba_png(640, 360, &mut Random(7));
    println!("decode_png, 640x360 to 1280x720:   {}", ms(median(|| Picture::decode_png(&half).unwrap())));
    let largest = rgba_png(4096, 4096, &mut Random(11));
    println!(
        "decode_png, 4096x4096 noise ({} bytes): {}",
        largest.len(),
        ms(median(|| Picture::decode_png(&largest).unwrap()))
    );
}

/// An 8-bit RGBA PNG of random pixels.
fn rgba_png(width: u32, height: u32, random: &mut Random) -> Vec<u8> {
    let data: Vec<u8> = (0..width * height * 4).map(|_| (random.next() * 256.0) as u8).collect();
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    png
}
