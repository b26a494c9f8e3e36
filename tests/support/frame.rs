//! WebSocket frames by hand: masked client frames to send, server frames as read.

/// WebSocket opcodes, for raw frames.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One client frame: final, masked as RFC 6455 requires.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked_fragment(true, opcode, payload)
}

/// One masked client frame; `fin` false leaves the message open for continuation frames (opcode 0).
pub fn masked_fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![if fin { 0x80 | opcode } else { opcode }];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            let len = u16::try_from(len).expect("raw test frames stay under 64 KiB");
            frame.push(0x80 | 126);
            frame.extend_from_slice(&len.to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// A client close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    masked_frame(CLOSE, &payload)
}

/// A frame as the server sent it.
#[derive(Debug)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame.
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
}
