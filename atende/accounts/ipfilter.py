"""IP allow and block lists for staff routes (CIDR networks, IPv4 and IPv6)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs ("10.0.0.0/8, 2001:db8::/32"); a bare address is a one-address network."""
    networks = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{part.strip()!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


class IPPolicy:
    """Blocked networks always lose; with an allow list, only its networks get through."""

    def __init__(self, allow: Iterable[Network] = (), block: Iterable[Network] = ()) -> None:
        self._allow = tuple(allow)
        self._block = tuple(block)

    @classmethod
    def from_strings(cls, allow: str, block: str) -> IPPolicy:
        return cls(parse_networks(allow), parse_networks(block))

    def allows(self, ip: str | None) -> bool:
        if not self._allow and not self._block:
            return True
        try:
            address = ipaddress.ip_address((ip or "").strip())
        except ValueError:
            # An unparseable peer (a test client, a unix socket) is only trusted when no list restricts it.
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self._block):
            return False
        return not self._allow or any(address in network for network in self._allow)
