//! The page's files as the binary serves them, and their caching rule.
//!
//! The page is ONE self-contained file (`src/web/index.html`: markup, style and
//! script inline, no external resources, no build step), so an upgrade can never
//! pair a new page with a stale script: there is nothing else to fetch. The
//! caching rule is then:
//!
//! - the page (`/`, `/b/NAME`, `/v/TOKEN`): `Cache-Control: no-cache` with
//!   [`Asset::etag`] as its `ETag`; a request whose `If-None-Match` holds that
//!   tag may be answered `304 Not Modified` without a body. A new binary has a
//!   new tag, so a browser always revalidates and never shows an old page;
//! - `/assets/...` ([`asset`]): `Cache-Control: public, max-age=31536000,
//!   immutable`, for files referenced from the page as `/assets/NAME?v=HASH`.
//!   There are none today; the route and [`page`]'s `?v=` substitution are
//!   here so that a file split out of the page later is versioned from day one.
//!
//! Hashes are FNV-1a (64 bit) of the bytes, computed once.

#![cfg_attr(not(test), allow(dead_code))] // Until the HTTP layer routes the page and /assets/ through here.

use std::sync::OnceLock;

/// A file the binary serves, with its content type and its entity tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asset {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
    /// The `ETag` header, quoted: `"` + 16 hex digits of the content hash + `"`.
    pub etag: &'static str,
}

/// `Cache-Control` for the page: always revalidated.
pub(crate) const PAGE_CACHE_CONTROL: &str = "no-cache";
/// `Cache-Control` for a versioned `/assets/...` file.
pub(crate) const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

const INDEX_HTML: &str = include_str!("../web/index.html");

/// Files served under `/assets/`: (path, content type, body). The page references each as `PATH?v=HASH`.
const FILES: &[(&str, &str, &str)] = &[];

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

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// The `/assets/` files with their tags, computed once.
fn files() -> &'static [(&'static str, Asset)] {
    static FILES_WITH_TAGS: OnceLock<Vec<(&'static str, Asset)>> = OnceLock::new();
    FILES_WITH_TAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|&(path, content_type, body)| {
                let etag = leak(format!("\"{:016x}\"", fnv1a(body.as_bytes())));
                (path, Asset { content_type, body: body.as_bytes(), etag })
            })
            .collect()
    })
}

/// The page as served: `index.html` with every `/assets/NAME` reference versioned as `/assets/NAME?v=HASH`.
pub(crate) fn page() -> &'static str {
    static PAGE: OnceLock<&'static str> = OnceLock::new();
    PAGE.get_or_init(|| {
        let mut html = INDEX_HTML.to_string();
        for (path, asset) in files() {
            let tag = asset.etag.trim_matches('"');
            for quote in ['"', '\''] {
                html = html.replace(&format!("{quote}{path}{quote}"), &format!("{quote}{path}?v={tag}{quote}"));
            }
        }
        leak(html)
    })
}

/// The page with its content type and tag (serve it with [`PAGE_CACHE_CONTROL`]).
pub(crate) fn page_asset() -> Asset {
    static TAG: OnceLock<&'static str> = OnceLock::new();
    let body = page();
    let etag = TAG.get_or_init(|| leak(format!("\"{:016x}\"", fnv1a(body.as_bytes())))); // the served bytes, substitutions included
    Asset { content_type: "text/html; charset=utf-8", body: body.as_bytes(), etag }
}

/// A file under `/assets/` by its request path (the query, `?v=...`, already split off), or `None` (404).
/// Serve it with [`ASSET_CACHE_CONTROL`].
pub(crate) fn asset(path: &str) -> Option<Asset> {
    files().iter().find(|(p, _)| *p == path).map(|(_, asset)| *asset)
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
    fn the_page_is_html_with_a_stable_quoted_tag() {
        let page = page_asset();
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert!(page.body.starts_with(b"<!doctype html>"));
        assert_eq!(page.etag.len(), 18);
        assert!(page.etag.starts_with('"') && page.etag.ends_with('"'));
        assert!(page.etag[1..17].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(page_asset(), page, "computed once");
        assert_eq!(page.etag, format!("\"{:016x}\"", fnv1a(page.body)));
        assert!(std::ptr::eq(page.body, page_asset().body));
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = page();
        for external in ["src=\"http", "href=\"http", "src='http", "href='http", "@import", "url(http"] {
            assert!(!page.contains(external), "the page loads nothing from elsewhere ({external})");
        }
        assert!(page.contains("<canvas id=\"board\""));
        // Every /assets/ file it references exists and is versioned.
        for (i, _) in page.match_indices("/assets/") {
            let rest = &page[i..];
            let end = rest.find(['"', '\'', '?']).unwrap_or(rest.len());
            assert!(asset(&rest[..end]).is_some(), "{} is served", &rest[..end]);
            assert!(rest[end..].starts_with("?v="), "{} is versioned", &rest[..end]);
        }
    }

    #[test]
    fn unknown_assets_are_none() {
        assert_eq!(asset("/assets/nope.js"), None);
        assert_eq!(asset("/"), None);
    }

    #[test]
    fn if_none_match() {
        let tag = page_asset().etag;
        assert!(not_modified(Some(tag), tag));
        assert!(not_modified(Some(&format!("\"x\", W/{tag}")), tag));
        assert!(not_modified(Some("*"), tag));
        assert!(!not_modified(Some("\"0000000000000000\""), tag));
        assert!(!not_modified(None, tag));
    }

    #[test]
    fn cache_rules() {
        assert_eq!(PAGE_CACHE_CONTROL, "no-cache");
        assert!(ASSET_CACHE_CONTROL.contains("immutable"));
    }
}
