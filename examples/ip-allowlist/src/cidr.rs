//! CIDR ranges, parsed once at configure time.

use serde::{de, Deserialize, Deserializer};
use std::net::IpAddr;

/// An address range such as `10.0.0.0/8`; a bare address means just that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or `addr`; host bits must be zero, so `10.0.0.1/8` (probably
    /// a typo for a single address) is refused rather than silently widened.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'/{p}' is not a prefix length from 0 to {max}"))?,
        };
        let cidr = Cidr { network, prefix };
        if !cidr.contains(network) || mask(bits(network), prefix, max) != bits(network) {
            return Err(format!(
                "'{s}' has host bits set; did you mean {}/{prefix}?",
                from_bits(mask(bits(network), prefix, max), network.is_ipv4())
            ));
        }
        Ok(cidr)
    }

    /// True if `ip` is in the range (IPv4 and IPv6 never match each other).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        self.network.is_ipv4() == ip.is_ipv4()
            && mask(bits(ip), self.prefix, max) == bits(self.network)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Cidr::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// The IP of an `ip:port` or `[ipv6]:port` socket address, as Envoy reports `source.address`.
pub fn parse_socket_ip(addr: &str) -> Option<IpAddr> {
    addr.parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| addr.parse())
        .ok()
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::from((bits as u32).to_be_bytes())
    } else {
        IpAddr::from(bits.to_be_bytes())
    }
}

fn mask(bits: u128, prefix: u8, max: u8) -> u128 {
    let host_bits = u32::from(max - prefix);
    let cleared = bits
        .checked_shr(host_bits)
        .unwrap_or(0)
        .checked_shl(host_bits)
        .unwrap_or(0);
    if max == 32 {
        cleared & 0xffff_ffff
    } else {
        cleared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::ffff:10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        assert!(Cidr::parse("10.0.0.1/8")
            .unwrap_err()
            .contains("did you mean 10.0.0.0/8"));
        assert!(Cidr::parse("10.0.0.0/33")
            .unwrap_err()
            .contains("prefix length"));
        assert!(Cidr::parse("example.com")
            .unwrap_err()
            .contains("not an IP address"));
        assert!(Cidr::parse("10.0.0.0/").is_err());
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(parse_socket_ip("127.0.0.1:5000"), Some(ip("127.0.0.1")));
        assert_eq!(parse_socket_ip("[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_socket_ip("garbage"), None);
    }
}
