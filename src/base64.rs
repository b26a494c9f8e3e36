//! Base64 with the standard alphabet and `=` padding (RFC 4648, section 4), as data URLs use it.
//!
//! Decoding is strict: no whitespace, a length that is a multiple of four, padding only at the
//! end, and no stray bits in the last character, so each byte string has exactly one encoding.

use std::fmt;

/// The standard alphabet, indexed by six-bit value.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Marks a byte that is not in [`ALPHABET`] in [`VALUES`].
const INVALID: u8 = 0xff;
/// The six-bit value of each byte, or [`INVALID`].
const VALUES: [u8; 256] = {
    let mut values = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        values[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    values
};

/// Why base64 text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The length is not a multiple of four.
    Length(usize),
    /// The byte at this offset is not in the alphabet, or is padding where padding may not be.
    Byte(usize),
    /// The last character before the padding carries bits that no encoder would set.
    TrailingBits,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(length) => write!(f, "base64 length {length} is not a multiple of 4"),
            Self::Byte(offset) => write!(f, "invalid base64 byte at offset {offset}"),
            Self::TrailingBits => f.write_str("base64 has stray bits before its padding"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends the padded encoding of `bytes` to `text` (one allocation for both).
pub fn encode_after(text: String, bytes: &[u8]) -> String {
    let mut out = text.into_bytes();
    out.reserve(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
        }
        _ => {}
    }
    // `text` was UTF-8 and every byte pushed above is ASCII.
    String::from_utf8(out).expect("text followed by base64 is UTF-8")
}

/// The alphabet character for the six bits of `n` starting at bit `shift`.
fn sextet(n: u32, shift: u32) -> u8 {
    ALPHABET[(n >> shift & 0x3f) as usize]
}

/// Decodes padded base64 `text`, refusing anything [`encode_after`] would not have produced.
pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return Err(DecodeError::Length(text.len()));
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let last = text.len() / 4;
    for (index, quad) in text.chunks_exact(4).enumerate() {
        let offset = index * 4;
        // Padding may only end the text: one `=` or two.
        let padding = if index + 1 == last { quad.iter().rev().take_while(|&&b| b == b'=').count() } else { 0 };
        if padding > 2 {
            return Err(DecodeError::Byte(offset + 4 - padding));
        }
        let mut n = 0u32;
        for (i, &byte) in quad[..4 - padding].iter().enumerate() {
            let value = VALUES[usize::from(byte)];
            if value == INVALID {
                return Err(DecodeError::Byte(offset + i));
            }
            n = n << 6 | u32::from(value);
        }
        n <<= 6 * padding as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let kept = 3 - padding;
        if bytes[kept..].iter().any(|&b| b != 0) {
            return Err(DecodeError::TrailingBits);
        }
        out.extend_from_slice(&bytes[..kept]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(bytes: &[u8]) -> String {
        encode_after(String::new(), bytes)
    }

    #[test]
    fn encodes_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn round_trips_every_byte_value_at_every_length_remainder() {
        let bytes: Vec<u8> = (0..=255).chain((0..=255).rev()).collect();
        for len in 0..bytes.len() {
            let encoded = encode(&bytes[..len]);
            assert_eq!(decode(&encoded).unwrap(), &bytes[..len], "length {len}");
        }
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn refuses_malformed_text() {
        assert_eq!(decode("Zm9"), Err(DecodeError::Length(3)));
        assert_eq!(decode("Zm9v\n"), Err(DecodeError::Length(5)));
        assert_eq!(decode("Zm 9"), Err(DecodeError::Byte(2)));
        assert_eq!(decode("Zm-v"), Err(DecodeError::Byte(2)), "URL-safe alphabet");
        assert_eq!(decode("Zm9é"), Err(DecodeError::Length(5)));
        assert_eq!(decode("Z\u{e9}9"), Err(DecodeError::Byte(1)));
        assert_eq!(decode("Zg==Zm9v"), Err(DecodeError::Byte(2)), "padding in the middle");
        assert_eq!(decode("Z==="), Err(DecodeError::Byte(1)), "three padding bytes");
        assert_eq!(decode("===="), Err(DecodeError::Byte(0)));
        assert_eq!(decode("Zm=v"), Err(DecodeError::Byte(2)), "padding before data");
        assert_eq!(decode("Zh=="), Err(DecodeError::TrailingBits));
        assert_eq!(decode("Zm9="), Err(DecodeError::TrailingBits));
    }
}
