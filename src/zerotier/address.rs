//! ZeroTier node addresses, network ids, and the IPv6 addresses a network gives its members
//! (ZeroTierOne `node/Address.hpp`, `node/InetAddress.cpp`).

use std::fmt;
use std::net::Ipv6Addr;

use super::Error;

/// A 40-bit node address, shown as 10 lower-case hex digits.
///
/// Invariant: the value fits in 40 bits. Reserved addresses (0, and those whose first byte is
/// `0xff`) can be represented (to be refused by [`Address::is_reserved`] checks) but never come
/// out of identity generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Address(u64);

impl Address {
    /// The address of a 40-bit value; `None` when it does not fit.
    pub(crate) fn new(v: u64) -> Option<Address> {
        (v >> 40 == 0).then_some(Address(v))
    }

    /// Parses exactly 10 hex digits (either case).
    pub(crate) fn parse(s: &str) -> Result<Address, Error> {
        parse_hex(s, 10, "a node address")
            .map(Address)
            .map_err(Error::Parse)
    }

    /// The 40-bit value.
    pub(crate) fn value(self) -> u64 {
        self.0
    }

    /// Reserved addresses (`Address::isReserved`): zero, or first byte `0xff`.
    pub(crate) fn is_reserved(self) -> bool {
        self.0 == 0 || self.0 >> 32 == 0xff
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010x}", self.0)
    }
}

/// A 64-bit network id: the controller's address in the high 40 bits, a 24-bit network number
/// below; shown as 16 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NetworkId(u64);

impl NetworkId {
    /// The largest network number (24 bits).
    pub(crate) const MAX_NUMBER: u32 = 0xff_ffff;

    /// `controller << 24 | number`; `None` when `number` does not fit in 24 bits.
    pub(crate) fn new(controller: Address, number: u32) -> Option<NetworkId> {
        (number <= Self::MAX_NUMBER).then(|| NetworkId(controller.0 << 24 | u64::from(number)))
    }

    /// Parses exactly 16 hex digits (either case).
    pub(crate) fn parse(s: &str) -> Result<NetworkId, Error> {
        parse_hex(s, 16, "a network id")
            .map(NetworkId)
            .map_err(Error::Parse)
    }

    /// The controller's address (the high 40 bits).
    #[cfg(test)]
    pub(crate) fn controller(self) -> Address {
        Address(self.0 >> 24)
    }

    /// The member's RFC 4193 address (`InetAddress::makeIpv6rfc4193`): `fd`, the 8 bytes of
    /// the network id, `99 93`, the 5 bytes of the node address. The network is a /88.
    pub(crate) fn rfc4193(self, node: Address) -> Ipv6Addr {
        let mut b = [0u8; 16];
        b[0] = 0xfd;
        b[1..9].copy_from_slice(&self.0.to_be_bytes());
        b[9] = 0x99;
        b[10] = 0x93;
        b[11..16].copy_from_slice(&node.0.to_be_bytes()[3..8]);
        Ipv6Addr::from(b)
    }

    /// The member's 6PLANE address (`InetAddress::makeIpv66plane`): `fc`, the low 32 bits of
    /// `nwid ^ (nwid >> 32)`, the 5 bytes of the node address, zeros, and a last byte 1. The
    /// network is a /40 (each member owns the /80 its address starts).
    pub(crate) fn sixplane(self, node: Address) -> Ipv6Addr {
        let folded = (self.0 ^ (self.0 >> 32)) as u32;
        let mut b = [0u8; 16];
        b[0] = 0xfc;
        b[1..5].copy_from_slice(&folded.to_be_bytes());
        b[5..10].copy_from_slice(&node.0.to_be_bytes()[3..8]);
        b[15] = 0x01;
        Ipv6Addr::from(b)
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Prefix length of the RFC 4193 network.
pub(crate) const RFC4193_PREFIX: u8 = 88;
/// Prefix length of the 6PLANE network.
pub(crate) const SIXPLANE_PREFIX: u8 = 40;

/// Exactly `digits` hex digits as a number; the error says what was expected (`what`), and
/// shows the text only when it is short (these are public values).
fn parse_hex(s: &str, digits: usize, what: &str) -> Result<u64, String> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} is {digits} hex digits, not {:?}",
            crate::term::escape_controls_keep_lines(&s.chars().take(40).collect::<String>())
        ));
    }
    u64::from_str_radix(s, 16).map_err(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_addresses() {
        assert!(Address(0).is_reserved());
        assert!(Address(0xff00000001).is_reserved());
        assert!(!Address(0xfe00000001).is_reserved());
        assert!(Address::new(1 << 40).is_none());
    }

    #[test]
    fn network_id_is_controller_and_number() {
        let c = Address::parse("8056c2e21c").unwrap();
        let n = NetworkId::new(c, 1).unwrap();
        assert_eq!(n.to_string(), "8056c2e21c000001");
        assert_eq!(n.controller(), c);
        assert!(NetworkId::new(c, 1 << 24).is_none());
        assert_eq!(NetworkId::parse("8056C2E21C000001").unwrap(), n);
        assert!(NetworkId::parse("8056c2e21c00001").is_err());
        assert!(Address::parse("8056c2e21g").is_err());
    }

    /// Worked by hand from `makeIpv6rfc4193` and `makeIpv66plane`: network 8056c2e21c000001
    /// (ZeroTier's public "Earth" network), node 8e4df28b72 (selftest's known-good identity).
    #[test]
    fn member_addresses() {
        let n = NetworkId::parse("8056c2e21c000001").unwrap();
        let node = Address::parse("8e4df28b72").unwrap();
        assert_eq!(
            n.rfc4193(node).to_string(),
            "fd80:56c2:e21c:0:199:938e:4df2:8b72"
        );
        // 0x8056c2e21c000001 ^ 0x8056c2e2 = low 32 bits 0x1c000001 ^ 0x8056c2e2 = 0x9c56c2e3
        assert_eq!(n.sixplane(node).to_string(), "fc9c:56c2:e38e:4df2:8b72::1");
    }
}
