//! Who is calling, by address: the peer, or, when the peer is a proxy the city trusts
//! (`server.trusted_proxies`), the address it forwarded. Forwarding headers are read from the
//! right and only as far as trusted proxies wrote them, so a client cannot choose the address
//! its attempts are counted against (see `identity::throttle`).

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

/// A network prefix such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= bits)?,
            None => bits,
        };
        Some(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer's, unless the peer is trusted; then, walking the forwarded
/// hops from the right (`Forwarded` if present, else `X-Forwarded-For`), the first hop that is
/// not a trusted proxy. A hop that cannot be read ends the walk at the last trusted one.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|cidr| cidr.contains(address));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    for hop in forwarded_hops(headers).into_iter().rev() {
        let Some(address) = hop else {
            break;
        };
        client = address.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// The forwarded hops, leftmost (farthest) first; `None` for one that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .map(|value| value.to_str().unwrap_or_default().to_owned())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, node)| parse_node(node))
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|value| value.split(','))
        .map(parse_node)
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse().ok().or_else(|| {
        let (host, port) = node.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().filter_map(|text| Cidr::parse(text)).collect()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn prefixes_match_what_they_cover() {
        let ten = Cidr::parse("10.0.0.0/8");
        assert!(ten.is_some_and(|c| c.contains(ip("10.200.3.4"))));
        assert!(ten.is_some_and(|c| !c.contains(ip("11.0.0.1"))));
        assert!(
            ten.is_some_and(|c| c.contains(ip("::ffff:10.0.0.1"))),
            "mapped IPv4"
        );
        assert!(ten.is_some_and(|c| !c.contains(ip("2001:db8::1"))));
        let host = Cidr::parse("192.0.2.7");
        assert!(host.is_some_and(|c| c.contains(ip("192.0.2.7"))));
        assert!(host.is_some_and(|c| !c.contains(ip("192.0.2.8"))));
        let all = Cidr::parse("0.0.0.0/0");
        assert!(all.is_some_and(|c| c.contains(ip("203.0.113.1"))));
        let v6 = Cidr::parse("2001:db8::/32");
        assert!(v6.is_some_and(|c| c.contains(ip("2001:db8:ffff::1"))));
        assert!(v6.is_some_and(|c| !c.contains(ip("2001:db9::1"))));
        for wrong in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "proxy",
            "10.0.0.0/x",
            "",
        ] {
            assert_eq!(Cidr::parse(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let forwarded = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &forwarded, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(ip("203.0.113.5"), &forwarded, &trusted),
            ip("203.0.113.5"),
            "an untrusted peer's header is ignored"
        );
        // A client's own X-Forwarded-For is on the left; the proxies append on the right.
        let forged = headers(&[("x-forwarded-for", "192.0.2.99, 198.51.100.1, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &forged, &trusted),
            ip("198.51.100.1")
        );
        let lines = headers(&[
            ("x-forwarded-for", "192.0.2.99"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &lines, &trusted),
            ip("198.51.100.1")
        );
        let standard = headers(&[(
            "forwarded",
            "for=192.0.2.99, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.3:80",
        )]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &standard, &trusted),
            ip("2001:db8::7")
        );
        let hidden = headers(&[("forwarded", "for=198.51.100.1, for=_hidden, for=10.0.0.3")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &hidden, &trusted),
            ip("10.0.0.3"),
            "an unreadable hop stops at the last trusted proxy"
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &forwarded, &[]),
            ip("10.0.0.1"),
            "no trusted proxies: the peer"
        );
    }
}
