//! Where a delivery may go: the public internet only. The same rules refuse a webhook URL
//! when it is saved (admin-api, for hosts written as IP literals or reserved names) and vet
//! every address a host resolves to when it is sent (deliver), so a URL that could only
//! ever fail is refused with a 422 instead of ending in alert emails.
//!
//! The classes are IANA's special-purpose address registries (RFC 6890 and successors), plus
//! everything outside IPv6 global unicast (`2000::/3`), since nothing else is routable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Host;

/// An IPv4 prefix that is never a webhook's target, and what it is.
struct V4Class(Ipv4Addr, u8, &'static str);
/// An IPv6 prefix that is never a webhook's target, and what it is.
struct V6Class(Ipv6Addr, u8, &'static str);

const V4_CLASSES: &[V4Class] = &[
    V4Class(
        Ipv4Addr::new(0, 0, 0, 0),
        8,
        "unspecified (\"this network\", 0.0.0.0/8)",
    ),
    V4Class(Ipv4Addr::new(10, 0, 0, 0), 8, "private (10.0.0.0/8)"),
    V4Class(
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared address space (CGNAT, 100.64.0.0/10)",
    ),
    V4Class(Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
    V4Class(
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local (169.254.0.0/16, where cloud instance metadata lives)",
    ),
    V4Class(Ipv4Addr::new(172, 16, 0, 0), 12, "private (172.16.0.0/12)"),
    V4Class(
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    V4Class(
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (192.0.2.0/24)",
    ),
    V4Class(
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay anycast (192.88.99.0/24)",
    ),
    V4Class(
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "private (192.168.0.0/16)",
    ),
    V4Class(
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "benchmarking (198.18.0.0/15)",
    ),
    V4Class(
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (198.51.100.0/24)",
    ),
    V4Class(
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (203.0.113.0/24)",
    ),
    V4Class(Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
    V4Class(
        Ipv4Addr::new(255, 255, 255, 255),
        32,
        "broadcast (255.255.255.255)",
    ),
    V4Class(Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"),
];

/// Checked in order: the first match names the class, so the narrow ones come first.
const V6_CLASSES: &[V6Class] = &[
    V6Class(Ipv6Addr::UNSPECIFIED, 128, "unspecified (::)"),
    V6Class(Ipv6Addr::LOCALHOST, 128, "loopback (::1)"),
    V6Class(
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "IPv4-mapped (::ffff:0:0/96; write the IPv4 address itself)",
    ),
    V6Class(
        Ipv6Addr::UNSPECIFIED,
        96,
        "IPv4-compatible (::/96, deprecated)",
    ),
    V6Class(
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
        96,
        "NAT64 (64:ff9b::/96)",
    ),
    V6Class(
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "NAT64 local use (64:ff9b:1::/48)",
    ),
    V6Class(
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only (100::/64)",
    ),
    V6Class(
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        "Teredo (2001::/32)",
    ),
    V6Class(
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        "benchmarking (2001:2::/48)",
    ),
    V6Class(
        Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
        28,
        "ORCHID (2001:10::/28)",
    ),
    V6Class(
        Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0),
        28,
        "ORCHIDv2 (2001:20::/28)",
    ),
    V6Class(
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation (2001:db8::/32)",
    ),
    V6Class(
        Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        16,
        "6to4 (2002::/16)",
    ),
    V6Class(
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (3fff::/20)",
    ),
    V6Class(
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing (5f00::/16)",
    ),
    V6Class(
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local (fc00::/7)",
    ),
    V6Class(
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local (fe80::/10)",
    ),
    V6Class(
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (fec0::/10, deprecated)",
    ),
    V6Class(
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast (ff00::/8)",
    ),
];

/// Host names that never name a public server: RFC 6761's `localhost`, ICANN's private-use
/// `internal` (cloud providers' private DNS), mDNS's `local` and `home.arpa`.
const PRIVATE_NAME_SUFFIXES: &[&str] = &["localhost", "internal", "local", "home.arpa"];

fn in_v4(ip: Ipv4Addr, prefix: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(prefix) & mask
}

fn in_v6(ip: Ipv6Addr, prefix: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(prefix) & mask
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => V4_CLASSES
            .iter()
            .find(|V4Class(prefix, len, _)| in_v4(v4, *prefix, *len))
            .map(|V4Class(_, _, what)| *what),
        IpAddr::V6(v6) => V6_CLASSES
            .iter()
            .find(|V6Class(prefix, len, _)| in_v6(v6, *prefix, *len))
            .map(|V6Class(_, _, what)| *what)
            .or_else(|| {
                (!in_v6(v6, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3))
                    .then_some("not global unicast (outside 2000::/3)")
            }),
    }
}

/// Whether deliveries may reach `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    special_purpose(ip).is_none()
}

/// Why a URL's host can never be a webhook's target, or `None` when it may be: an IP
/// literal of a special-purpose class, or a reserved private name. Other names are vetted
/// when they are resolved, at each send.
pub fn refusal(host: &Host<&str>) -> Option<String> {
    match host {
        Host::Ipv4(v4) => special_purpose(IpAddr::V4(*v4)).map(|what| format!("{v4} is {what}")),
        Host::Ipv6(v6) => special_purpose(IpAddr::V6(*v6)).map(|what| format!("{v6} is {what}")),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            PRIVATE_NAME_SUFFIXES
                .iter()
                .find(|suffix| {
                    name.strip_suffix(**suffix)
                        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
                })
                .map(|suffix| {
                    format!("{name} is a private name (.{suffix} never names a public server)")
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn refusal_of(url: &str) -> Option<String> {
        let url = Url::parse(url).unwrap();
        refusal(&url.host().unwrap())
    }

    #[test]
    fn the_issues_examples_are_refused() {
        for url in [
            "https://169.254.169.254/latest",
            "https://localhost/x",
            "https://0x7f.1/",
            "https://[::1]/",
            "https://10.0.0.1/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://2130706433/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::127.0.0.1]/",
            "https://[2002:a9fe:a9fe::]/",
            "https://[2001::1]/",
            "https://[fec0::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[fd00:ec2::254]/",
            "https://metadata.google.internal/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://255.255.255.255/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
            "https://[fe80::1]/",
            "https://192.0.2.10/",
            "https://[2001:db8::1]/",
        ] {
            assert!(refusal_of(url).is_some(), "{url} should be refused");
        }
    }

    #[test]
    fn public_hosts_pass() {
        for url in [
            "https://example.com/hook",
            "https://8.8.8.8/",
            "https://1.1.1.1/",
            "https://[2606:4700:4700::1111]/",
            "https://[2a00:1450:4001:82b::200e]/",
            "https://notlocalhost.com/",
            "https://localhost.example.com/",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://192.169.0.1/",
        ] {
            assert_eq!(refusal_of(url), None, "{url} should pass");
        }
    }

    #[test]
    fn a_refusal_names_the_class() {
        let why = refusal_of("https://169.254.169.254/").unwrap();
        assert!(
            why.contains("169.254.169.254") && why.contains("metadata"),
            "{why}"
        );
        let why = refusal_of("https://[2001::1]/").unwrap();
        assert!(why.contains("Teredo"), "{why}");
        let why = refusal_of("https://[::1]/").unwrap();
        assert!(why.contains("loopback"), "{why}");
    }

    #[test]
    fn the_class_boundaries_are_exact() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        assert!(!is_public(v4("172.31.255.255")));
        assert!(is_public(v4("172.32.0.0")));
        assert!(!is_public(v4("100.127.255.255")));
        assert!(is_public(v4("100.63.255.255")));
        assert!(!is_public(v4("198.19.255.255")));
        assert!(is_public(v4("198.20.0.0")));
        assert!(is_public(v4("223.255.255.255")));
        let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
        assert!(!is_public(v6("2001:0:ffff::")));
        assert!(is_public(v6("2001:200::1")));
        assert!(!is_public(v6("3fff:fff::1")));
        assert!(is_public(v6("3fff:1000::1")));
        assert!(!is_public(v6("4000::1")));
    }
}
