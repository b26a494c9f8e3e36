//! The page as the binary serves it, and its caching rule.
//!
//! The page is ONE self-contained file (`src/web/index.html`: markup, style
//! and script inline, no external resources, no build step), so an upgrade can
//! never pair a new page with a stale script: there is nothing else to fetch.
//! It is served (at `/`, `/b/NAME` and `/v/TOKEN`) with `Cache-Control:
//! no-cache` and its content hash as `ETag`: a browser always revalidates, a
//! request whose `If-None-Match` holds the tag gets `304 Not Modified` without
//! the 50 KB body, and a new binary has a new tag, so nobody sees an old page.
//!
//! The hash is FNV-1a (64 bit) of the bytes, computed once.

use std::sync::OnceLock;

/// `Cache-Control` for the page: always revalidated.
pub(crate) const PAGE_CACHE_CONTROL: &str = "no-cache";

/// The page.
pub(crate) const PAGE: &str = include_str!("../web/index.html");

/// FNV-1a, 64 bit.
pub(crate) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The page's `ETag`, quoted: `"` + 16 hex digits of its hash + `"`.
pub(crate) fn page_etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| format!("\"{:016x}\"", fnv1a(PAGE.as_bytes())))
}

/// Whether an `If-None-Match` header value matches `etag` (`*`, or one of a comma-separated list, weak or strong).
pub(crate) fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|value| {
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_tag_is_the_pages_quoted_hash() {
        let tag = page_etag();
        assert_eq!(tag, format!("\"{:016x}\"", fnv1a(PAGE.as_bytes())));
        assert!(std::ptr::eq(tag, page_etag()), "computed once");
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(PAGE.starts_with("<!doctype html>"));
        for external in ["src=\"http", "href=\"http", "src='http", "href='http", "@import", "url(http"] {
            assert!(!PAGE.contains(external), "the page loads nothing from elsewhere ({external})");
        }
        assert!(PAGE.contains("<canvas id=\"board\""));
    }

    #[test]
    fn if_none_match() {
        let tag = page_etag();
        assert!(not_modified(Some(tag), tag));
        assert!(not_modified(Some(&format!("\"x\", W/{tag}")), tag));
        assert!(not_modified(Some("*"), tag));
        assert!(!not_modified(Some("\"0000000000000000\""), tag));
        assert!(!not_modified(None, tag));
    }
}
