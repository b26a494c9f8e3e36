//! Pictures as the tests check them: PNG decoding and encoding (the `png` crate), base64 and PNG
//! data URLs, and pixel checks with a tolerance for anti-aliasing.

use std::io::Cursor;

use png::{BitDepth, ColorType, Transformations};

/// The board's logical size, which `board.png` and the server's floor have.
pub const BOARD_WIDTH: u32 = 1280;
pub const BOARD_HEIGHT: u32 = 720;

pub const WHITE: [u8; 3] = [255, 255, 255];

/// The prefix of a PNG data URL.
pub const PNG_URL_PREFIX: &str = "data:image/png;base64,";

/// A decoded picture: 8-bit RGBA, whatever the PNG's own colour type.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// The PNG's colour type as stored.
    pub color_type: ColorType,
    rgba: Vec<[u8; 4]>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image {}x{} ({:?})", self.width, self.height, self.color_type)
    }
}

impl Image {
    /// Decodes a PNG, failing the test if it is not one.
    pub fn decode(bytes: &[u8]) -> Image {
        let mut decoder = png::Decoder::new(Cursor::new(bytes));
        decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
        let mut reader = decoder.read_info().unwrap_or_else(|e| panic!("not a PNG ({} bytes): {e}", bytes.len()));
        let color_type = reader.info().color_type;
        let mut buf = vec![0; reader.output_buffer_size().expect("a PNG that fits in memory")];
        let info = reader.next_frame(&mut buf).unwrap_or_else(|e| panic!("a PNG that does not decode: {e}"));
        assert_eq!(info.bit_depth, BitDepth::Eight, "EXPAND and STRIP_16 give 8-bit samples");
        let mut rgba = Vec::with_capacity((info.width * info.height) as usize);
        for row in buf.chunks(info.line_size).take(info.height as usize) {
            let row = &row[..info.width as usize * info.color_type.samples()];
            match info.color_type {
                ColorType::Rgba => rgba.extend(row.chunks(4).map(|p| [p[0], p[1], p[2], p[3]])),
                ColorType::Rgb => rgba.extend(row.chunks(3).map(|p| [p[0], p[1], p[2], 255])),
                ColorType::GrayscaleAlpha => rgba.extend(row.chunks(2).map(|p| [p[0], p[0], p[0], p[1]])),
                ColorType::Grayscale => rgba.extend(row.iter().map(|&g| [g, g, g, 255])),
                ColorType::Indexed => unreachable!("EXPAND turns a palette into RGB(A)"),
            }
        }
        Image { width: info.width, height: info.height, color_type, rgba }
    }

    /// Decodes the PNG in a `data:image/png;base64,` URL.
    pub fn from_data_url(url: &str) -> Image {
        Image::decode(&data_url_png(url))
    }

    /// The colour at (x, y), failing the test if the pixel is not opaque.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(x < self.width && y < self.height, "({x}, {y}) is outside {self:?}");
        let [r, g, b, a] = self.rgba[(y * self.width + x) as usize];
        assert_eq!(a, 255, "the pixel at ({x}, {y}) is not opaque");
        [r, g, b]
    }

    /// Whether every pixel is fully opaque.
    pub fn is_opaque(&self) -> bool {
        self.rgba.iter().all(|p| p[3] == 255)
    }

    /// Asserts the size of the board: 1280 x 720.
    pub fn assert_board_sized(&self) {
        assert_eq!((self.width, self.height), (BOARD_WIDTH, BOARD_HEIGHT), "the board's size");
    }

    /// Asserts that the pixel at (x, y) is `color` (within a little, for anti-aliasing and scaling).
    pub fn assert_pixel(&self, (x, y): (u32, u32), color: [u8; 3], what: &str) {
        let got = self.pixel(x, y);
        assert!(near_color(got, color), "{what}: the pixel at ({x}, {y}) is {got:?}, expected {color:?}");
    }

    /// Whether the pixel at (x, y) is `color` (within a little).
    pub fn has_pixel(&self, (x, y): (u32, u32), color: [u8; 3]) -> bool {
        near_color(self.pixel(x, y), color)
    }
}

/// Whether two colours differ by at most 8 in each channel.
pub fn near_color(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= 8)
}

/// `#rrggbb` as a colour.
pub fn rgb(hex: &str) -> [u8; 3] {
    let digits = hex.strip_prefix('#').filter(|d| d.len() == 6).unwrap_or_else(|| panic!("not #rrggbb: {hex}"));
    let channel = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits");
    [channel(0), channel(2), channel(4)]
}

/// A `width` x `height` 8-bit RGB PNG whose pixel (x, y) is `color(x, y)`.
pub fn encode_png(width: u32, height: u32, color: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(ColorType::Rgb);
    encoder.set_depth(BitDepth::Eight);
    let mut writer = encoder.write_header().expect("a PNG header");
    let data: Vec<u8> =
        (0..height).flat_map(|y| (0..width).map(move |x| (x, y))).flat_map(|(x, y)| color(x, y)).collect();
    writer.write_image_data(&data).expect("the PNG's pixels");
    writer.finish().expect("the end of the PNG");
    out
}

/// The PNG data URL of `png`.
pub fn png_data_url(png: &[u8]) -> String {
    format!("{PNG_URL_PREFIX}{}", base64_encode(png))
}

/// The PNG in a `data:image/png;base64,` URL.
pub fn data_url_png(url: &str) -> Vec<u8> {
    let data = url.strip_prefix(PNG_URL_PREFIX).unwrap_or_else(|| panic!("not a PNG data URL: {:.60}", url));
    base64_decode(data)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padded or not; fails the test on any other character.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
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
