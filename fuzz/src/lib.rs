//! Checks the fuzz targets share.
//!
//! smolcanvas parses with serde_json's `float_roundtrip` feature, so a
//! number must come back exactly as it went in.

use serde_json::Number;
use smolcanvas::fuzzing::protocol::Draw;

/// Whether `a` and `b` are the same number.
pub fn same_number(a: &Number, b: &Number) -> bool {
    a == b
}

/// Whether two draws are the same stroke, numbers compared with [`same_number`].
pub fn same_draw(a: &Draw, b: &Draw) -> bool {
    a.color == b.color
        && same_number(&a.start_x, &b.start_x)
        && same_number(&a.start_y, &b.start_y)
        && same_number(&a.end_x, &b.end_x)
        && same_number(&a.end_y, &b.end_y)
        && same_number(&a.line_width, &b.line_width)
}
