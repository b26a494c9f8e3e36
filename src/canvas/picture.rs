//! The server's own picture of a board: a 1280x720 opaque floor painted the way the page paints.
//!
//! The page (`src/web/index.html`, `paint`) draws each segment as its own path on a 1280x720
//! canvas: anti-aliased, `lineCap` and `lineJoin` round, `stroke()` with `lineWidth`, and a
//! filled circle of diameter `lineWidth` when start and end are the same point. [`Picture`]
//! does the same with tiny-skia (a port of the Skia that draws Chrome's canvas) and reads and
//! writes its floor as PNG ([`Picture::encode_png`], [`Picture::decode_png`]) and as the data
//! URLs of the protocol's `canvasState` ([`png_data_url`], [`data_url_png`]).
//!
//! Only the part of a segment that can reach the board is painted (see [`Picture::paint`]), so
//! a segment far outside costs no more than one across it, whatever its coordinates.

#![allow(dead_code)] // used by the board hub and store

use std::collections::VecDeque;
use std::fmt;
use std::io::{Cursor, Write};

use png::{BitDepth, ColorType, Transformations};
use tiny_skia::{Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, Transform};

use super::protocol::PNG_DATA_URL_PREFIX;
use crate::base64;

/// Board width in pixels, the page's canvas width (its `W`).
pub const WIDTH: u32 = 1280;
/// Board height in pixels, the page's canvas height (its `H`).
pub const HEIGHT: u32 = 720;

/// Widest PNG [`Picture::decode_png`] accepts: with rows streamed, memory grows with the width
/// (a few row buffers of up to 8 bytes per pixel), not with the height.
pub const MAX_PNG_SIDE: u32 = 16_384;
/// Most pixels [`Picture::decode_png`] accepts. Bounds the work of a decode, since every pixel
/// is inflated, composited and filtered and a small PNG can declare a huge, highly compressible
/// image (4096x4096 of RGBA noise took 0.2 to 0.35 s on the development machine, see
/// `benches/picture.rs`), while taking in a 4K (3840x2160) snapshot from a high-density screen.
pub const MAX_PNG_PIXELS: u64 = 4096 * 4096;
/// Most pixels of an interlaced PNG [`Picture::decode_png`] accepts: Adam7 passes cannot be
/// streamed row by row, so the whole image is held (up to 4 bytes a pixel, 16 MiB here).
pub const MAX_INTERLACED_PNG_PIXELS: u64 = 2048 * 2048;
/// Memory the PNG decoder may take for itself (ancillary chunks, its row buffers): rows are
/// at most `MAX_PNG_SIDE` * 8 bytes and text and ICC chunks are skipped, so this is ample.
const PNG_DECODER_BYTES: usize = 4 * 1024 * 1024;
/// Widest segment painted: ten times the protocol's largest (100), which is all the page can
/// send. It keeps the clipped path's coordinates (see [`Picture::paint`]) within a few
/// thousand pixels, where f32 still has sub-pixel precision and tiny-skia's stroker and edge
/// builder cannot overflow to infinities (about which tiny-skia would log a warning).
pub const MAX_PAINT_WIDTH: f32 = 1000.0;
/// Narrowest segment painted, far below the protocol's narrowest (0.5): tiny-skia refuses to
/// fill (and logs a warning about) a dot under 1/2048 of a pixel across.
pub const MIN_PAINT_WIDTH: f32 = 1.0 / 64.0;
/// How far beyond the reach of its stroke a segment is clipped (pixels): the clipped end's
/// round cap then stays at least this far off the board.
const CLIP_SLACK: f64 = 1.0;
/// Bytes of image data per IDAT chunk when encoding (32 KiB, the zlib window).
const PNG_CHUNK_BYTES: usize = 32 * 1024;

/// One segment to paint, in board coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Start, x.
    pub x0: f32,
    /// Start, y.
    pub y0: f32,
    /// End, x.
    pub x1: f32,
    /// End, y.
    pub y1: f32,
    /// Line width in pixels (the page's `lineWidth`).
    pub width: f32,
    /// Colour, red green blue.
    pub rgb: [u8; 3],
}

/// `#rgb` or `#rrggbb` (hex digits of either case) to red, green and blue; `None` for anything
/// else, where the page paints black.
pub fn parse_color(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#')?.as_bytes();
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    match *hex {
        [r, g, b] => Some([digit(r)? * 17, digit(g)? * 17, digit(b)? * 17]),
        [r1, r2, g1, g2, b1, b2] => {
            Some([digit(r1)? << 4 | digit(r2)?, digit(g1)? << 4 | digit(g2)?, digit(b1)? << 4 | digit(b2)?])
        }
        _ => None,
    }
}

/// Why a PNG or a data URL was refused.
#[derive(Debug)]
pub enum PictureError {
    /// The data URL does not start with `data:image/png;base64,`.
    NotPngDataUrl,
    /// The data URL's payload is not valid base64.
    Base64(base64::DecodeError),
    /// The PNG declares a size beyond [`MAX_PNG_SIDE`], [`MAX_PNG_PIXELS`] or (interlaced)
    /// [`MAX_INTERLACED_PNG_PIXELS`]; nothing of that size was allocated.
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The PNG is malformed, truncated or otherwise undecodable.
    Png(png::DecodingError),
}

impl fmt::Display for PictureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPngDataUrl => write!(f, "not a data URL starting with {PNG_DATA_URL_PREFIX}"),
            Self::Base64(error) => write!(f, "data URL: {error}"),
            Self::TooLarge { width, height } => write!(
                f,
                "PNG of {width}x{height} is too large (at most {MAX_PNG_SIDE} a side and {MAX_PNG_PIXELS} pixels, \
                 {MAX_INTERLACED_PNG_PIXELS} if interlaced)"
            ),
            Self::Png(error) => write!(f, "PNG: {error}"),
        }
    }
}

impl std::error::Error for PictureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Base64(error) => Some(error),
            Self::Png(error) => Some(error),
            Self::NotPngDataUrl | Self::TooLarge { .. } => None,
        }
    }
}

impl From<png::DecodingError> for PictureError {
    fn from(error: png::DecodingError) -> Self {
        Self::Png(error)
    }
}

/// A board's floor: [`WIDTH`] x [`HEIGHT`] pixels, always opaque, white where nothing was drawn.
///
/// One picture is its pixel buffer (3.6 MB) and nothing else.
#[derive(Clone)]
pub struct Picture {
    /// RGBA, premultiplied; every alpha is 255, so the colours are as they are.
    pixmap: Pixmap,
}

impl fmt::Debug for Picture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Picture").field("width", &WIDTH).field("height", &HEIGHT).finish_non_exhaustive()
    }
}

impl Picture {
    /// A white picture.
    pub fn blank() -> Picture {
        let mut pixmap = Pixmap::new(WIDTH, HEIGHT).expect("1280x720 is a valid pixmap size");
        pixmap.fill(Color::WHITE);
        Picture { pixmap }
    }

    /// Paints `segments` in order, each as the page paints one (see the module documentation).
    ///
    /// Each segment is first clipped to the board grown by the reach of its stroke (half its
    /// width) and a pixel more; what lies beyond cannot touch the board and is dropped, so
    /// the cost of a segment is bounded by the board's size whatever its coordinates. Segments
    /// with a coordinate that is not finite, or a width outside [[`MIN_PAINT_WIDTH`],
    /// [`MAX_PAINT_WIDTH`]] (or NaN), paint nothing: the protocol never lets them through.
    ///
    /// Consecutive segments that join end to start, in one colour and width, are stroked as one
    /// path with round joins: for an opaque colour that covers exactly the union of the
    /// segments' round-capped strokes, which is what the page paints, and costs one stroke
    /// call per run instead of one per segment (a pointer stroke arrives as such a run).
    pub fn paint(&mut self, segments: &[Segment]) {
        let mut paint = Paint::default();
        let mut stroke = Stroke { line_cap: LineCap::Round, line_join: LineJoin::Round, ..Stroke::default() };
        let mut run = PathBuilder::new();
        // The run being built: its colour, width and where its last segment ended.
        let mut open: Option<([u8; 3], f32, (f32, f32))> = None;
        for segment in segments {
            let Some(shape) = visible_part(segment) else { continue };
            match shape {
                Shape::Dot { x, y } => {
                    self.stroke_run(&mut run, &mut open, &mut paint, &mut stroke);
                    let [r, g, b] = segment.rgb;
                    paint.set_color_rgba8(r, g, b, 255);
                    if let Some(circle) = PathBuilder::from_circle(x, y, segment.width / 2.0) {
                        self.pixmap.fill_path(&circle, &paint, FillRule::Winding, Transform::identity(), None);
                    }
                }
                Shape::Line { x0, y0, x1, y1 } => {
                    let joins = open.is_some_and(|(rgb, width, end)| {
                        rgb == segment.rgb && width == segment.width && end == (x0, y0)
                    });
                    if !joins {
                        self.stroke_run(&mut run, &mut open, &mut paint, &mut stroke);
                        run.move_to(x0, y0);
                    }
                    run.line_to(x1, y1);
                    open = Some((segment.rgb, segment.width, (x1, y1)));
                }
            }
        }
        self.stroke_run(&mut run, &mut open, &mut paint, &mut stroke);
    }

    /// Strokes the run built so far, if any, and starts the next one empty.
    fn stroke_run(
        &mut self,
        run: &mut PathBuilder,
        open: &mut Option<([u8; 3], f32, (f32, f32))>,
        paint: &mut Paint<'_>,
        stroke: &mut Stroke,
    ) {
        let Some(([r, g, b], width, _)) = open.take() else { return };
        let path = std::mem::take(run);
        if let Some(path) = path.finish() {
            paint.set_color_rgba8(r, g, b, 255);
            stroke.width = width;
            self.pixmap.stroke_path(&path, paint, stroke, Transform::identity(), None);
        }
    }

    /// Paints the whole picture white again.
    pub fn clear(&mut self) {
        self.pixmap.fill(Color::WHITE);
    }

    /// Whether every pixel is white. Compares the whole buffer (see `benches/picture.rs`).
    pub fn is_blank(&self) -> bool {
        /// A block of white pixels: comparing slices is a `memcmp`, much faster than a loop.
        const WHITE_BLOCK: [u8; 4096] = [0xff; 4096];
        self.pixmap.data().chunks(WHITE_BLOCK.len()).all(|block| block == &WHITE_BLOCK[..block.len()])
    }

    /// The pixel at (`x`, `y`) as red, green and blue. Panics outside the board.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let pixel = self.pixmap.pixel(x, y).expect("pixel inside the board");
        [pixel.red(), pixel.green(), pixel.blue()]
    }

    /// The picture as an 8-bit RGB PNG (alpha dropped: it is always opaque), compressed with
    /// png's fastest mode (the Up filter and fdeflate), which suits a small board computer: it
    /// measured 3x faster than png's `Fast` (adaptive filters) and its PNGs of drawings a few
    /// percent smaller (`benches/picture.rs`). Rows are converted as they are written, so no
    /// second image-sized buffer is made.
    pub fn encode_png(&self) -> Vec<u8> {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        encoder.set_color(ColorType::Rgb);
        encoder.set_depth(BitDepth::Eight);
        encoder.set_compression(png::Compression::Fastest);
        // Writing to a Vec has no I/O errors, and the header and row sizes are fixed and
        // consistent, so none of these can fail.
        let mut writer = encoder.write_header().expect("PNG header of a fixed size");
        let mut stream = writer.stream_writer_with_size(PNG_CHUNK_BYTES).expect("PNG stream writer");
        let mut row = vec![0u8; WIDTH as usize * 3];
        for rgba in self.pixmap.data().chunks_exact(WIDTH as usize * 4) {
            for (rgb, rgba) in row.chunks_exact_mut(3).zip(rgba.chunks_exact(4)) {
                rgb.copy_from_slice(&rgba[..3]);
            }
            stream.write_all(&row).expect("PNG row of the declared size");
        }
        stream.finish().expect("PNG of all its rows");
        writer.finish().expect("PNG end");
        png
    }

    /// Decodes a PNG of any size, colour type and bit depth the `png` crate reads (palette,
    /// grey, RGB, with or without alpha or `tRNS`, 1 to 16 bits, interlaced or not; an
    /// animated PNG gives its default image), composites it over white and, if it is not
    /// 1280x720, stretches it to fill the board as the page's `drawImage(img, 0, 0, W, H)`
    /// does (a tent filter: bilinear when enlarging, widened to average every source pixel
    /// when shrinking).
    ///
    /// Sizes beyond [`MAX_PNG_SIDE`] or [`MAX_PNG_PIXELS`] ([`MAX_INTERLACED_PNG_PIXELS`] when
    /// interlaced) are refused from the header, before any pixel is allocated or inflated.
    /// Text and ICC chunks are skipped, and colours are taken as sRGB (no gamma or colour
    /// management, like the page's canvas for its own PNGs).
    pub fn decode_png(bytes: &[u8]) -> Result<Picture, PictureError> {
        let limits = png::Limits { bytes: PNG_DECODER_BYTES };
        let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
        decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
        decoder.set_ignore_text_chunk(true);
        decoder.set_ignore_iccp_chunk(true);
        let info = decoder.read_header_info()?;
        let (width, height, interlaced) = (info.width, info.height, info.interlaced);
        let pixels = u64::from(width) * u64::from(height);
        let max_pixels = if interlaced { MAX_INTERLACED_PNG_PIXELS } else { MAX_PNG_PIXELS };
        if width > MAX_PNG_SIDE || height > MAX_PNG_SIDE || pixels > max_pixels {
            return Err(PictureError::TooLarge { width, height });
        }
        let mut reader = decoder.read_info()?;
        let (color, depth) = reader.output_color_type();
        debug_assert_eq!(depth, BitDepth::Eight, "EXPAND and STRIP_16 give 8-bit samples");
        let mut rows = if interlaced {
            let mut image = vec![0; reader.output_buffer_size().ok_or(png::DecodingError::LimitsExceeded)?];
            let line = reader.next_frame(&mut image)?.line_size;
            Rows::Whole { image, line, next: 0 }
        } else {
            Rows::Streamed(Box::new(reader))
        };

        let mut picture = Picture::blank();
        let board = picture.pixmap.data_mut();
        let board_row = WIDTH as usize * 4;
        if (width, height) == (WIDTH, HEIGHT) {
            for out in board.chunks_exact_mut(board_row) {
                composite(rows.next()?, color, out);
            }
            return Ok(picture);
        }

        // Stretch: each source row is composited and filtered across into a board-wide row
        // of floats; each board row is then a weighted sum of a window of those.
        let across = Tent::new(width, WIDTH);
        let down = Tent::new(height, HEIGHT);
        let mut source_rgba = vec![0u8; width as usize * 4];
        let mut window: VecDeque<Vec<f32>> = VecDeque::new();
        let mut spare: Vec<Vec<f32>> = Vec::new();
        // Invariant: window[i] holds source row window_start + i; next_source == window_start
        // + window.len() is the next row to read.
        let mut window_start = 0usize;
        let mut next_source = 0usize;
        for (y, out) in board.chunks_exact_mut(board_row).enumerate() {
            let (first, weights) = down.taps(y);
            while window_start < first && !window.is_empty() {
                spare.extend(window.pop_front());
                window_start += 1;
            }
            while next_source < first + weights.len() {
                let row = rows.next()?;
                if next_source < first {
                    window_start += 1; // not needed by this or any later board row
                } else {
                    composite(row, color, &mut source_rgba);
                    let mut filtered = spare.pop().unwrap_or_else(|| vec![0.0; WIDTH as usize * 3]);
                    across.filter_row(&source_rgba, &mut filtered);
                    window.push_back(filtered);
                }
                next_source += 1;
            }
            let rows_used = window.range(first - window_start..);
            let mut sum = [0f32; WIDTH as usize * 3];
            for (row, &weight) in rows_used.zip(weights) {
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += weight * v;
                }
            }
            for (pixel, rgb) in out.chunks_exact_mut(4).zip(sum.chunks_exact(3)) {
                for (channel, &value) in pixel.iter_mut().zip(rgb) {
                    // Weights and samples are not negative; `as` saturates at 255 (and is
                    // much faster than `round`, a libm call).
                    *channel = (value + 0.5) as u8;
                }
                pixel[3] = 255;
            }
        }
        Ok(picture)
    }
}

/// Where a segment can show on the board.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// A filled circle of the segment's width, centred here.
    Dot { x: f32, y: f32 },
    /// A stroke with round caps between these points.
    Line { x0: f32, y0: f32, x1: f32, y1: f32 },
}

/// The part of `segment` that can paint on the board, or `None` when none can (or the segment
/// is not paintable: see [`Picture::paint`]).
///
/// The segment is clipped (Liang-Barsky) to the board grown on every side by half the width
/// plus [`CLIP_SLACK`]: a point outside that rectangle is more than half a width from every
/// board pixel, so neither the dropped part nor the round cap on a clipped end reaches the
/// board, and the painted pixels are those of the whole segment.
fn visible_part(segment: &Segment) -> Option<Shape> {
    let Segment { x0, y0, x1, y1, width, .. } = *segment;
    if !([x0, y0, x1, y1].iter().all(|v| v.is_finite()) && (MIN_PAINT_WIDTH..=MAX_PAINT_WIDTH).contains(&width)) {
        return None;
    }
    let margin = f64::from(width) / 2.0 + CLIP_SLACK;
    let (min_x, max_x) = (-margin, f64::from(WIDTH) + margin);
    let (min_y, max_y) = (-margin, f64::from(HEIGHT) + margin);
    let (x0, y0, x1, y1) = (f64::from(x0), f64::from(y0), f64::from(x1), f64::from(y1));
    let (dx, dy) = (x1 - x0, y1 - y0);
    let (mut t0, mut t1) = (0f64, 1f64);
    // Each edge: p * t <= q keeps the point at parameter t inside that edge.
    for (p, q) in [(-dx, x0 - min_x), (dx, max_x - x0), (-dy, y0 - min_y), (dy, max_y - y0)] {
        if p == 0.0 {
            if q < 0.0 {
                return None; // parallel to this edge and outside it
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    if dx == 0.0 && dy == 0.0 {
        // The page fills a circle here rather than stroke a zero-length line.
        return Some(Shape::Dot { x: x0 as f32, y: y0 as f32 });
    }
    let (ax, ay) = (x0 + t0 * dx, y0 + t0 * dy);
    let (bx, by) = (x0 + t1 * dx, y0 + t1 * dy);
    Some(Shape::Line { x0: ax as f32, y0: ay as f32, x1: bx as f32, y1: by as f32 })
}

/// The rows of a PNG being decoded, in order from the top.
enum Rows<'a> {
    /// Read and inflated one at a time.
    Streamed(Box<png::Reader<Cursor<&'a [u8]>>>),
    /// An interlaced image, decoded whole first.
    Whole {
        /// The image, `line` bytes a row.
        image: Vec<u8>,
        /// Bytes per row.
        line: usize,
        /// The next row to hand out.
        next: usize,
    },
}

impl Rows<'_> {
    /// The next row (8-bit samples of the reader's output colour type).
    fn next(&mut self) -> Result<&[u8], PictureError> {
        let row = match self {
            Self::Streamed(reader) => reader.next_row()?.map(|row| row.data()),
            Self::Whole { image, line, next } => {
                let row = image.get(*next * *line..(*next + 1) * *line);
                *next += 1;
                row
            }
        };
        // The decoder hands out the header's height in rows (or fails), and callers ask for
        // no more than that: running out would be image data that ended early.
        row.ok_or_else(|| PictureError::Png(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()))
    }
}

/// Composites a decoded row of `color` (8-bit samples) over white into opaque RGBA `out`.
fn composite(row: &[u8], color: ColorType, out: &mut [u8]) {
    /// `value` at opacity `alpha` over white, rounded.
    fn over_white(value: u8, alpha: u8) -> u8 {
        let (value, alpha) = (u32::from(value), u32::from(alpha));
        ((value * alpha + 255 * (255 - alpha) + 127) / 255) as u8
    }
    match color {
        ColorType::Rgba => {
            for (out, rgba) in out.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                let alpha = rgba[3];
                out.copy_from_slice(&[
                    over_white(rgba[0], alpha),
                    over_white(rgba[1], alpha),
                    over_white(rgba[2], alpha),
                    255,
                ]);
            }
        }
        ColorType::Rgb => {
            for (out, rgb) in out.chunks_exact_mut(4).zip(row.chunks_exact(3)) {
                out.copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
        ColorType::GrayscaleAlpha => {
            for (out, ga) in out.chunks_exact_mut(4).zip(row.chunks_exact(2)) {
                let grey = over_white(ga[0], ga[1]);
                out.copy_from_slice(&[grey, grey, grey, 255]);
            }
        }
        // EXPAND turns palettes into RGB or RGBA, so only grey is left.
        ColorType::Grayscale | ColorType::Indexed => {
            for (out, &grey) in out.chunks_exact_mut(4).zip(row) {
                out.copy_from_slice(&[grey, grey, grey, 255]);
            }
        }
    }
}

/// Resampling weights from `source` pixels to `target` pixels along one axis: a tent (linear)
/// filter with pixel centres aligned, widened by the ratio when shrinking so that every
/// source pixel counts; taps past the edges are dropped and the rest renormalized.
struct Tent {
    /// Per target pixel: its first source pixel, and where its weights start in `weights`.
    spans: Vec<(usize, usize)>,
    /// All weights, target pixel after target pixel; each one's sum to 1.
    weights: Vec<f32>,
}

impl Tent {
    /// The weights from `source` to `target` pixels (both at least 1).
    fn new(source: u32, target: u32) -> Tent {
        let scale = f64::from(source) / f64::from(target);
        let radius = scale.max(1.0);
        let mut spans = Vec::with_capacity(target as usize + 1);
        let mut weights = Vec::new();
        for t in 0..target {
            let centre = (f64::from(t) + 0.5) * scale;
            let first = (centre - radius).floor().max(0.0) as usize;
            let end = ((centre + radius).ceil() as usize).min(source as usize);
            let tent = |s: usize| (1.0 - ((s as f64 + 0.5 - centre) / radius).abs()).max(0.0);
            // The source pixel under the centre is within half a pixel of it, so it always
            // has a positive weight; trim zero weights at either end.
            let first = (first..end).find(|&s| tent(s) > 0.0).expect("a source pixel under the centre");
            let end = (first..end).rfind(|&s| tent(s) > 0.0).expect("a source pixel under the centre") + 1;
            let total: f64 = (first..end).map(tent).sum();
            spans.push((first, weights.len()));
            weights.extend((first..end).map(|s| (tent(s) / total) as f32));
        }
        spans.push((0, weights.len()));
        Tent { spans, weights }
    }

    /// Target pixel `t`'s first source pixel and weights.
    fn taps(&self, t: usize) -> (usize, &[f32]) {
        let (first, start) = self.spans[t];
        (first, &self.weights[start..self.spans[t + 1].1])
    }

    /// Filters one RGBA row of source pixels into an RGB row of target pixels.
    fn filter_row(&self, source: &[u8], target: &mut [f32]) {
        for (t, out) in target.chunks_exact_mut(3).enumerate() {
            let (first, weights) = self.taps(t);
            let mut sum = [0f32; 3];
            for (pixel, &weight) in source[first * 4..].chunks_exact(4).zip(weights) {
                for (s, &v) in sum.iter_mut().zip(pixel) {
                    *s += weight * f32::from(v);
                }
            }
            out.copy_from_slice(&sum);
        }
    }
}

/// `png` as a `data:image/png;base64,` URL, the form of the protocol's `canvasState` data.
pub fn png_data_url(png: &[u8]) -> String {
    base64::encode_after(PNG_DATA_URL_PREFIX.to_owned(), png)
}

/// The bytes of a `data:image/png;base64,` URL (not checked to be a PNG: see
/// [`Picture::decode_png`]). Any other prefix, or base64 that is not strictly canonical, is
/// refused.
pub fn data_url_png(url: &str) -> Result<Vec<u8>, PictureError> {
    let payload = url.strip_prefix(PNG_DATA_URL_PREFIX).ok_or(PictureError::NotPngDataUrl)?;
    base64::decode(payload).map_err(PictureError::Base64)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const RED: [u8; 3] = [255, 0, 0];
    const BLUE: [u8; 3] = [0, 0, 255];
    const WHITE: [u8; 3] = [255, 255, 255];

    fn segment(x0: f32, y0: f32, x1: f32, y1: f32, width: f32, rgb: [u8; 3]) -> Segment {
        Segment { x0, y0, x1, y1, width, rgb }
    }

    fn painted(segments: &[Segment]) -> Picture {
        let mut picture = Picture::blank();
        picture.paint(segments);
        picture
    }

    /// A PNG of `data` (rows of `color` at `depth`), with an optional palette and tRNS.
    fn png_of(
        (width, height): (u32, u32),
        color: ColorType,
        depth: BitDepth,
        data: &[u8],
        palette: Option<&[u8]>,
        trns: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some(palette) = palette {
            encoder.set_palette(palette.to_vec());
        }
        if let Some(trns) = trns {
            encoder.set_trns(trns.to_vec());
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        png
    }

    /// A pseudo-random walk of `strokes` strokes of 20 segments each, as the benchmark draws.
    fn scribble(strokes: usize) -> Vec<Segment> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut segments = Vec::new();
        for _ in 0..strokes {
            let (mut x, mut y) = (next() * WIDTH as f32, next() * HEIGHT as f32);
            let width = 2.0 + next() * 18.0;
            let rgb = [(next() * 256.0) as u8, (next() * 256.0) as u8, (next() * 256.0) as u8];
            for _ in 0..20 {
                let (nx, ny) = (x + (next() - 0.5) * 40.0, y + (next() - 0.5) * 40.0);
                segments.push(segment(x, y, nx, ny, width, rgb));
                (x, y) = (nx, ny);
            }
        }
        segments
    }

    #[test]
    fn parses_the_colours_the_page_accepts() {
        assert_eq!(parse_color("#f00"), Some(RED));
        assert_eq!(parse_color("#0000FF"), Some(BLUE));
        assert_eq!(parse_color("#1f2430"), Some([0x1f, 0x24, 0x30]));
        assert_eq!(parse_color("#aBc"), Some([0xaa, 0xbb, 0xcc]));
        for bad in ["", "#", "f00", "#f0", "#f000", "#ff00000", "#ggg", "#+12", "red", " #f00", "#f00 ", "#ff\u{e9}"] {
            assert_eq!(parse_color(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_blank_picture_is_white_and_opaque() {
        let picture = Picture::blank();
        assert!(picture.is_blank());
        assert_eq!(picture.pixel(0, 0), WHITE);
        assert_eq!(picture.pixel(WIDTH - 1, HEIGHT - 1), WHITE);
        assert!(picture.pixmap.pixels().iter().all(|p| p.alpha() == 255));
    }

    #[test]
    fn a_segment_paints_its_colour_along_it_and_nothing_far_away() {
        let picture = painted(&[segment(100.0, 100.0, 300.0, 100.0, 10.0, RED)]);
        assert_eq!(picture.pixel(200, 100), RED);
        assert_eq!(picture.pixel(200, 97), RED, "within half the width");
        assert_eq!(picture.pixel(200, 102), RED);
        assert_eq!(picture.pixel(200, 110), WHITE, "beyond half the width");
        assert_eq!(picture.pixel(200, 90), WHITE);
        assert_eq!(picture.pixel(400, 100), WHITE);
        assert_eq!(picture.pixel(50, 100), WHITE);
        assert!(!picture.is_blank());
        // Anti-aliased: the row that the edge at y = 205.25 crosses is a quarter covered.
        let picture = painted(&[segment(100.0, 200.25, 300.0, 200.25, 10.0, RED)]);
        let [r, g, b] = picture.pixel(200, 205);
        assert!(r == 255 && g == b && (180..=200).contains(&g), "edge pixel {:?}", [r, g, b]);
    }

    #[test]
    fn segments_have_round_caps() {
        let picture = painted(&[segment(100.0, 100.0, 300.0, 100.0, 20.0, BLUE)]);
        // Beyond each end, along the line, within half the width: painted.
        assert_eq!(picture.pixel(305, 100), BLUE);
        assert_eq!(picture.pixel(94, 100), BLUE);
        // Round, not square: the corner of a square cap stays white.
        assert_eq!(picture.pixel(308, 108), WHITE);
        assert_eq!(picture.pixel(91, 91), WHITE);
        assert_eq!(picture.pixel(312, 100), WHITE);
    }

    #[test]
    fn a_zero_length_segment_paints_a_dot_of_its_width() {
        let picture = painted(&[segment(640.0, 360.0, 640.0, 360.0, 20.0, RED)]);
        assert_eq!(picture.pixel(640, 360), RED);
        assert_eq!(picture.pixel(648, 360), RED);
        assert_eq!(picture.pixel(640, 352), RED);
        assert_eq!(picture.pixel(646, 366), RED, "inside the circle's radius of 10");
        assert_eq!(picture.pixel(648, 368), WHITE, "outside it, though inside its square");
        assert_eq!(picture.pixel(652, 360), WHITE);
        // Even a dot thinner than a pixel leaves a mark.
        let thin = painted(&[segment(10.5, 10.5, 10.5, 10.5, 0.5, [0, 0, 0])]);
        assert!(thin.pixel(10, 10)[0] < 255);
    }

    #[test]
    fn later_segments_paint_over_earlier_ones() {
        let picture =
            painted(&[segment(100.0, 100.0, 200.0, 100.0, 10.0, RED), segment(150.0, 50.0, 150.0, 150.0, 10.0, BLUE)]);
        assert_eq!(picture.pixel(150, 100), BLUE);
        assert_eq!(picture.pixel(120, 100), RED);
        let picture =
            painted(&[segment(150.0, 50.0, 150.0, 150.0, 10.0, BLUE), segment(100.0, 100.0, 200.0, 100.0, 10.0, RED)]);
        assert_eq!(picture.pixel(150, 100), RED);
    }

    #[test]
    fn unpaintable_segments_paint_nothing() {
        let bad = [
            segment(f32::NAN, 0.0, 100.0, 100.0, 10.0, RED),
            segment(0.0, 0.0, f32::INFINITY, 100.0, 10.0, RED),
            segment(0.0, 0.0, 100.0, 100.0, 0.0, RED),
            segment(50.0, 50.0, 50.0, 50.0, MIN_PAINT_WIDTH / 2.0, RED),
            segment(0.0, 0.0, 100.0, 100.0, -3.0, RED),
            segment(0.0, 0.0, 100.0, 100.0, f32::NAN, RED),
            segment(0.0, 0.0, 100.0, 100.0, MAX_PAINT_WIDTH * 2.0, RED),
        ];
        assert!(painted(&bad).is_blank());
    }

    #[test]
    fn segments_off_the_board_paint_nothing_and_the_edge_still_shows_their_reach() {
        let off = [
            segment(-100.0, -100.0, -20.0, -100.0, 10.0, RED),
            segment(-10000.0, 800.0, 10000.0, 800.0, 100.0, RED),
            segment(2000.0, 2000.0, 2000.0, 2000.0, 100.0, RED),
            segment(-6.0, -100.0, -6.0, 1000.0, 10.0, RED),
        ];
        assert!(painted(&off).is_blank());
        // A dot just off the edge still reaches onto the board by its radius.
        let picture = painted(&[segment(-4.0, 360.0, -4.0, 360.0, 20.0, RED)]);
        assert_eq!(picture.pixel(0, 360), RED);
        assert_eq!(picture.pixel(4, 360), RED);
        assert_eq!(picture.pixel(8, 360), WHITE);
    }

    #[test]
    fn a_segment_across_the_whole_coordinate_range_is_quick_and_paints_the_diagonal() {
        let start = Instant::now();
        let picture = painted(&[segment(-10000.0, -10000.0, 10000.0, 10000.0, 100.0, RED)]);
        assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
        for i in [0, 100, 360, 719] {
            assert_eq!(picture.pixel(i, i), RED);
        }
        assert_eq!(picture.pixel(360 + 30, 360 - 30), RED, "within half the width of the diagonal");
        assert_eq!(picture.pixel(360 + 40, 360 - 40), WHITE);
        assert_eq!(picture.pixel(1279, 0), WHITE);
        // What is painted is the clipped line, within the grown board.
        let Some(Shape::Line { x0, y0, x1, y1 }) =
            visible_part(&segment(-10000.0, -10000.0, 10000.0, 10000.0, 100.0, RED))
        else {
            panic!("the diagonal crosses the board");
        };
        assert_eq!((x0, y0), (-51.0, -51.0));
        assert_eq!((x1, y1), (771.0, 771.0));
    }

    #[test]
    fn clear_makes_it_white_again() {
        let mut picture = painted(&scribble(50));
        assert!(!picture.is_blank());
        picture.clear();
        assert!(picture.is_blank());
        assert_eq!(picture.pixmap.data(), Picture::blank().pixmap.data());
        // White paint on white is still blank: blankness is about pixels.
        picture.paint(&[segment(10.0, 10.0, 500.0, 500.0, 30.0, WHITE)]);
        assert!(picture.is_blank());
    }

    #[test]
    fn png_round_trip_is_pixel_exact() {
        let picture = painted(&scribble(200));
        let png = picture.encode_png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(Cursor::new(&png[..]));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (WIDTH, HEIGHT));
        assert_eq!((reader.info().color_type, reader.info().bit_depth), (ColorType::Rgb, BitDepth::Eight));
        let decoded = Picture::decode_png(&png).unwrap();
        assert!(decoded.pixmap.data() == picture.pixmap.data(), "decoded pixels differ");

        let blank = Picture::blank().encode_png();
        assert!(blank.len() < 20_000, "blank PNG is {} bytes", blank.len());
        assert!(Picture::decode_png(&blank).unwrap().is_blank());
    }

    #[test]
    fn a_smaller_png_is_stretched_to_the_board_bilinearly() {
        // 640x360: the left half red, the right half blue.
        let row: Vec<u8> = (0..640).flat_map(|x| if x < 320 { RED } else { BLUE }).collect();
        let data = row.repeat(360);
        let png = png_of((640, 360), ColorType::Rgb, BitDepth::Eight, &data, None, None);
        let picture = Picture::decode_png(&png).unwrap();
        for y in [0, 1, 200, 718, 719] {
            for x in [0, 1, 300, 638] {
                assert_eq!(picture.pixel(x, y), RED, "({x}, {y})");
            }
            for x in [641, 700, 1279] {
                assert_eq!(picture.pixel(x, y), BLUE, "({x}, {y})");
            }
            // Board pixel 639's centre is a quarter of the way from source pixel 319's to 320's.
            assert_eq!(picture.pixel(639, y), [191, 0, 64]);
            assert_eq!(picture.pixel(640, y), [64, 0, 191]);
        }
    }

    #[test]
    fn a_larger_png_is_shrunk_by_averaging() {
        // 2560x1440 of one-pixel vertical stripes, black and white: every board pixel covers
        // two source columns, one of each, so all come out mid-grey.
        let row: Vec<u8> = (0..2560).map(|x| if x % 2 == 0 { 0 } else { 255 }).collect();
        let data = row.repeat(1440);
        let png = png_of((2560, 1440), ColorType::Grayscale, BitDepth::Eight, &data, None, None);
        let picture = Picture::decode_png(&png).unwrap();
        for (x, y) in [(1, 1), (640, 360), (1000, 700)] {
            let [r, g, b] = picture.pixel(x, y);
            assert!((r, g) == (b, b) && (126..=129).contains(&r), "({x}, {y}): {r} {g} {b}");
        }
    }

    #[test]
    fn every_colour_type_is_composited_over_white() {
        let over_white = |value: u32, alpha: u32| ((value * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        let check = |png: Vec<u8>, expected: [u8; 3], what: &str| {
            let picture = Picture::decode_png(&png).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(picture.pixel(640, 360), expected, "{what}");
            assert!(picture.pixmap.pixels().iter().all(|p| p.alpha() == 255), "{what}: opaque");
        };
        let one = (1, 1);
        check(png_of(one, ColorType::Rgba, BitDepth::Eight, &[255, 0, 0, 128], None, None), [255, 127, 127], "RGBA");
        check(png_of(one, ColorType::Rgba, BitDepth::Eight, &[10, 20, 30, 0], None, None), WHITE, "transparent");
        check(
            png_of(one, ColorType::Rgba, BitDepth::Sixteen, &[0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff], None, None),
            [0, 255, 0],
            "RGBA 16-bit",
        );
        check(
            png_of(one, ColorType::Rgb, BitDepth::Sixteen, &[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc], None, None),
            [0x12, 0x56, 0x9a],
            "RGB 16-bit",
        );
        check(png_of(one, ColorType::Grayscale, BitDepth::Sixteen, &[0x80, 0x01], None, None), [128; 3], "grey 16-bit");
        check(png_of(one, ColorType::Grayscale, BitDepth::One, &[0x00], None, None), [0; 3], "grey 1-bit");
        check(png_of(one, ColorType::Grayscale, BitDepth::Two, &[0x40], None, None), [85; 3], "grey 2-bit");
        let grey_alpha = over_white(0, 128);
        check(
            png_of(one, ColorType::GrayscaleAlpha, BitDepth::Eight, &[0, 128], None, None),
            [grey_alpha; 3],
            "grey with alpha",
        );
        let palette = [255, 0, 0, 0, 0, 255];
        check(png_of(one, ColorType::Indexed, BitDepth::Eight, &[1], Some(&palette), None), BLUE, "palette");
        // A 4-bit palette whose second entry is transparent: two pixels, red and see-through.
        let png = png_of((2, 1), ColorType::Indexed, BitDepth::Four, &[0x01], Some(&palette), Some(&[255, 0]));
        let picture = Picture::decode_png(&png).unwrap();
        assert_eq!((picture.pixel(100, 360), picture.pixel(1200, 360)), (RED, WHITE), "palette with tRNS");
        // Grey whose tRNS value is black: black is transparent.
        check(png_of(one, ColorType::Grayscale, BitDepth::Eight, &[0], None, Some(&[0, 0])), WHITE, "grey with tRNS");
    }

    #[test]
    fn an_interlaced_png_is_decoded_whole() {
        // 32x18, 8-bit RGB, Adam7, pixel (x, y) = (8x, 14y, 100); written by a few lines of
        // Python (zlib and struct) since the png crate writes no interlaced images.
        let png = include_bytes!("testdata/adam7-rgb-32x18.png");
        let picture = Picture::decode_png(png).unwrap();
        // Each source pixel spans 40 board pixels; board pixel 40x + 20 sits 1/80 of a pixel
        // past source pixel x's centre, which rounds back to that pixel's value.
        for (x, y) in [(0u8, 0u8), (5, 3), (17, 9), (30, 16)] {
            let expected = [x * 8, y * 14, 100];
            assert_eq!(picture.pixel(u32::from(x) * 40 + 20, u32::from(y) * 40 + 20), expected, "({x}, {y})");
        }
    }

    #[test]
    fn a_png_too_large_is_refused_from_its_header() {
        for (width, height) in [(100_000, 100_000), (MAX_PNG_SIDE + 1, 1), (1, MAX_PNG_SIDE + 1), (8192, 4096)] {
            // Only the header (and IEND): a decoder that allocated first would need gigabytes.
            let mut png = Vec::new();
            let mut encoder = png::Encoder::new(&mut png, width, height);
            encoder.set_color(ColorType::Rgba);
            drop(encoder.write_header().unwrap());
            match Picture::decode_png(&png) {
                Err(PictureError::TooLarge { width: w, height: h }) => assert_eq!((w, h), (width, height)),
                other => panic!("{width}x{height}: {other:?}"),
            }
        }
        // Within the limits but not interlaced-sized: the interlaced limit is smaller.
        let mut png = include_bytes!("testdata/adam7-rgb-32x18.png").to_vec();
        png[16..24].copy_from_slice(&[0, 0, 0x10, 0, 0, 0, 0x10, 0]); // 4096x4096 in IHDR
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(Picture::decode_png(&png), Err(PictureError::TooLarge { width: 4096, height: 4096 })));
    }

    /// CRC-32 as PNG chunks use it (bitwise; tests only).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { crc >> 1 ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn malformed_pngs_are_refused() {
        let good = Picture::blank().encode_png();
        assert!(matches!(Picture::decode_png(b""), Err(PictureError::Png(_))));
        assert!(matches!(Picture::decode_png(b"GIF89a......"), Err(PictureError::Png(_))));
        assert!(matches!(Picture::decode_png(&good[..good.len() / 2]), Err(PictureError::Png(_))));
        let mut corrupt = good.clone();
        corrupt[40] ^= 0xff; // inside IDAT: its CRC no longer matches
        assert!(matches!(Picture::decode_png(&corrupt), Err(PictureError::Png(_))));
        let error = Picture::decode_png(b"").unwrap_err();
        assert!(error.to_string().starts_with("PNG: "), "{error}");
    }

    #[test]
    fn data_urls_round_trip_and_refuse_other_forms() {
        let png = painted(&scribble(20)).encode_png();
        let url = png_data_url(&png);
        assert!(url.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", &url[..40]);
        assert_eq!(data_url_png(&url).unwrap(), png);
        assert_eq!(data_url_png("data:image/png;base64,").unwrap(), b"");

        for bad in ["data:image/jpeg;base64,iVBO", "data:image/png,iVBO", "DATA:image/png;base64,iVBO", "iVBORw0K", ""]
        {
            assert!(matches!(data_url_png(bad), Err(PictureError::NotPngDataUrl)), "{bad:?}");
        }
        for bad in [
            "data:image/png;base64,iVBORw0",
            "data:image/png;base64,iVBO Rw0K",
            "data:image/png;base64,iVB-Rw0K",
            "data:image/png;base64,iVBORw0K\n",
            "data:image/png;base64,iQ==iVBO",
        ] {
            assert!(matches!(data_url_png(bad), Err(PictureError::Base64(_))), "{bad:?}");
        }
    }

    #[test]
    fn tent_weights_are_exact_at_the_same_size_and_sum_to_one() {
        let same = Tent::new(720, 720);
        for t in 0..720 {
            assert_eq!(same.taps(t), (t, &[1.0f32][..]));
        }
        for (source, target) in [(1, 1280), (640, 1280), (2560, 1280), (16_384, 720), (1281, 1280)] {
            let tent = Tent::new(source, target);
            let mut previous_first = 0;
            for t in 0..target as usize {
                let (first, weights) = tent.taps(t);
                assert!(first >= previous_first && first + weights.len() <= source as usize);
                assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{source}->{target} at {t}");
                previous_first = first;
            }
        }
    }
}
