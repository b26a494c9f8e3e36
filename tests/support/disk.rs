//! The data dir as the tests prepare and read it: a board's folder and log (the layout is in
//! `src/canvas/store/mod.rs`), and the PNG pictures the server keeps there as floors and sends as
//! `canvasState` data URLs.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use png::{BitDepth, ColorType, Transformations};

use super::wait::WAIT;

/// The prefix of a PNG data URL.
const PNG_URL: &str = "data:image/png;base64,";

/// Board `name`'s folder in the data dir `data_dir`.
pub fn board_folder(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("boards").join(name)
}

/// Board `name`'s `log.jsonl` as `(committed, ops)`: the items its header says the floor holds
/// and the op lines after the header; `(0, 0)` while it has no log.
pub fn board_log(data_dir: &Path, name: &str) -> (u64, usize) {
    let log = std::fs::read_to_string(board_folder(data_dir, name).join("log.jsonl")).unwrap_or_default();
    let Some(header) = log.lines().next() else { return (0, 0) };
    let header: serde_json::Value =
        serde_json::from_str(header).unwrap_or_else(|e| panic!("board {name}'s log header {header:?}: {e}"));
    let committed = header["committed"].as_u64().unwrap_or_else(|| panic!("no committed in {header}"));
    (committed, log.lines().count() - 1)
}

/// The draws board `name`'s files hold, counted from its log: those in the floor, then one op
/// line each (a draw without a stroke number, as v1 clients send, is a stroke of its own, and
/// the log's compacted form has one line per live stroke). Only for boards drawn on that way,
/// without clears, undos or redos.
pub fn saved_draws(data_dir: &Path, name: &str) -> usize {
    let (committed, ops) = board_log(data_dir, name);
    committed as usize + ops
}

/// Waits (bounded by [`WAIT`]) until board `name`'s files hold `draws` draws ([`saved_draws`]):
/// the store has written (and fsynced) them.
pub fn wait_saved_draws(data_dir: &Path, name: &str, draws: usize) {
    let start = Instant::now();
    while saved_draws(data_dir, name) != draws {
        let now = saved_draws(data_dir, name);
        assert!(start.elapsed() < WAIT, "board {name}'s files hold {now} draws, not {draws}, after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A picture as 8-bit RGB pixels, row by row.
#[derive(Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels {}x{}", self.width, self.height)
    }
}

impl Pixels {
    /// A `width` x `height` picture whose pixel (x, y) is `color(x, y)`.
    pub fn new(width: u32, height: u32, color: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        let rgb = (0..height).flat_map(|y| (0..width).map(move |x| (x, y))).flat_map(|(x, y)| color(x, y)).collect();
        Pixels { width, height, rgb }
    }

    /// Decodes a PNG, failing the test if it is not one or has transparent pixels.
    pub fn decode(bytes: &[u8]) -> Pixels {
        let mut decoder = png::Decoder::new(Cursor::new(bytes));
        decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
        let mut reader = decoder.read_info().unwrap_or_else(|e| panic!("not a PNG ({} bytes): {e}", bytes.len()));
        let mut buf = vec![0; reader.output_buffer_size().expect("a PNG that fits in memory")];
        let info = reader.next_frame(&mut buf).unwrap_or_else(|e| panic!("a PNG that does not decode: {e}"));
        let samples = info.color_type.samples();
        let mut rgb = Vec::with_capacity(info.width as usize * info.height as usize * 3);
        for row in buf.chunks(info.line_size).take(info.height as usize) {
            for pixel in row[..info.width as usize * samples].chunks(samples) {
                let (color, alpha) = match info.color_type {
                    ColorType::Rgba => ([pixel[0], pixel[1], pixel[2]], pixel[3]),
                    ColorType::Rgb => ([pixel[0], pixel[1], pixel[2]], 255),
                    ColorType::GrayscaleAlpha => ([pixel[0]; 3], pixel[1]),
                    ColorType::Grayscale => ([pixel[0]; 3], 255),
                    ColorType::Indexed => unreachable!("EXPAND turns a palette into RGB(A)"),
                };
                assert_eq!(alpha, 255, "a transparent pixel in a board picture");
                rgb.extend(color);
            }
        }
        Pixels { width: info.width, height: info.height, rgb }
    }

    /// Decodes the PNG in a `data:image/png;base64,` URL.
    pub fn from_data_url(url: &str) -> Pixels {
        let data = url.strip_prefix(PNG_URL).unwrap_or_else(|| panic!("not a PNG data URL: {url:.60}"));
        Pixels::decode(&base64_decode(data))
    }

    /// The picture as an 8-bit RGB PNG.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(ColorType::Rgb);
        encoder.set_depth(BitDepth::Eight);
        let mut writer = encoder.write_header().expect("a PNG header");
        writer.write_image_data(&self.rgb).expect("the PNG's pixels");
        writer.finish().expect("the end of the PNG");
        out
    }

    /// The picture as a PNG data URL (what a v1 client sent as its snapshot).
    pub fn data_url(&self) -> String {
        format!("{PNG_URL}{}", base64_encode(&self.encode()))
    }

    /// Whether every pixel is white.
    pub fn is_white(&self) -> bool {
        self.rgb.iter().all(|&c| c == 255)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { BASE64[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let value = BASE64.iter().position(|&b| b == c).unwrap_or_else(|| panic!("not base64: {:?}", c as char));
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
