//! The URLs a person can open to reach the server: `localhost` and each LAN address of the box.
//!
//! The box's addresses come from the kernel's own tables in `/proc/net`
//! (IPv4: the `/32 host LOCAL` entries of `fib_trie`; IPv6: the global
//! addresses in `if_inet6`): no socket, no netlink, nothing sent, and it
//! works under the systemd unit's `RestrictAddressFamilies`. Where `/proc`
//! cannot be read, only `localhost` is listed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The kernel's IPv4 routing tables, where the box's own addresses are `LOCAL` hosts.
const FIB_TRIE: &str = "/proc/net/fib_trie";
/// The kernel's list of IPv6 addresses, one per line.
const IF_INET6: &str = "/proc/net/if_inet6";
/// `1` when an IPv6 wildcard socket takes no IPv4 connections.
const BINDV6ONLY: &str = "/proc/sys/net/ipv6/bindv6only";
/// Most LAN URLs listed: a box with containers or VPNs can have dozens of addresses.
const MAX_LAN_URLS: usize = 8;
/// `scope` column of `if_inet6` for global addresses (link-local ones need a zone in a URL).
const SCOPE_GLOBAL: &str = "00";

/// The page's URLs for a server bound to `addr`: `localhost` when it takes
/// loopback connections, then each address of the box it can be reached on.
pub fn page_urls(addr: SocketAddr, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let port = addr.port();
    let ip = addr.ip();
    let mut urls = Vec::new();
    if ip.is_unspecified() || ip == Ipv4Addr::LOCALHOST || ip == Ipv6Addr::LOCALHOST {
        urls.push(format!("{scheme}://localhost:{port}/"));
    }
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let lan: Vec<IpAddr> = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => local_ipv4(&read(FIB_TRIE)).into_iter().map(IpAddr::V4).collect(),
        IpAddr::V6(v6) if v6.is_unspecified() => {
            let mut addrs: Vec<IpAddr> = Vec::new();
            if read(BINDV6ONLY).trim() != "1" {
                addrs.extend(local_ipv4(&read(FIB_TRIE)).into_iter().map(IpAddr::V4));
            }
            addrs.extend(global_ipv6(&read(IF_INET6)).into_iter().map(IpAddr::V6));
            addrs
        }
        ip if ip == Ipv4Addr::LOCALHOST || ip == Ipv6Addr::LOCALHOST => Vec::new(),
        ip => vec![ip],
    };
    for ip in lan.into_iter().take(MAX_LAN_URLS) {
        urls.push(match ip {
            IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}/"),
            IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}/"),
        });
    }
    urls
}

/// The box's own IPv4 addresses but loopback, from `/proc/net/fib_trie`: each
/// `|-- ADDR` leaf followed by a `/32 host LOCAL` line.
fn local_ipv4(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut addrs = Vec::new();
    let mut leaf = None;
    for line in fib_trie.lines().map(str::trim) {
        if let Some(addr) = line.strip_prefix("|-- ") {
            leaf = addr.parse::<Ipv4Addr>().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(addr) = leaf.filter(|a| !a.is_loopback() && !addrs.contains(a)) {
                addrs.push(addr);
            }
        } else if !line.starts_with('/') {
            leaf = None;
        }
    }
    addrs
}

/// The box's global IPv6 addresses, from `/proc/net/if_inet6`
/// (`ADDRESS IFINDEX PREFIXLEN SCOPE FLAGS NAME`, the address in 32 hex digits).
fn global_ipv6(if_inet6: &str) -> Vec<Ipv6Addr> {
    let mut addrs = Vec::new();
    for line in if_inet6.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(hex), Some(&SCOPE_GLOBAL)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        if let Some(addr) = u128::from_str_radix(hex, 16).ok().filter(|_| hex.len() == 32).map(Ipv6Addr::from)
            && !addr.is_loopback()
            && !addrs.contains(&addr)
        {
            addrs.push(addr);
        }
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE_SAMPLE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.168.1.0/24 2 0 2
        +-- 192.168.1.0/28 2 0 2
           |-- 192.168.1.0
              /24 link UNICAST
           |-- 192.168.1.7
              /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
     |-- 10.8.0.2
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 192.168.1.7
        /32 host LOCAL
";

    const IF_INET6_SAMPLE: &str = "\
fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
";

    #[test]
    fn local_ipv4_addresses_but_loopback_once_each() {
        let addrs = local_ipv4(FIB_TRIE_SAMPLE);
        assert_eq!(addrs, vec![Ipv4Addr::new(192, 168, 1, 7), Ipv4Addr::new(10, 8, 0, 2)]);
        assert!(local_ipv4("").is_empty());
    }

    #[test]
    fn global_ipv6_addresses_only() {
        assert_eq!(global_ipv6(IF_INET6_SAMPLE), vec!["fd00::2".parse::<Ipv6Addr>().unwrap()]);
        assert!(global_ipv6("zz 01 80 00 80 lo\nshort\n").is_empty());
    }

    #[test]
    fn loopback_and_specific_addresses() {
        let urls = |addr: &str, tls| page_urls(addr.parse().unwrap(), tls);
        assert_eq!(urls("127.0.0.1:8080", false), vec!["http://localhost:8080/"]);
        assert_eq!(urls("[::1]:8443", true), vec!["https://localhost:8443/"]);
        assert_eq!(urls("192.168.1.7:80", false), vec!["http://192.168.1.7:80/"]);
        assert_eq!(urls("[fd00::2]:80", false), vec!["http://[fd00::2]:80/"]);
        let wildcard = urls("0.0.0.0:8080", true);
        assert_eq!(wildcard.first().map(String::as_str), Some("https://localhost:8080/"));
        assert!(wildcard.len() <= 1 + MAX_LAN_URLS);
        assert!(wildcard.iter().all(|url| url.starts_with("https://") && url.ends_with(":8080/")), "{wildcard:?}");
    }
}
