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


def counted_as(ip: str | None) -> str:
    """The key a client's address is counted under by rate limits: an IPv6 address by its /64, since one
    subscriber is routinely given a whole /64 and could otherwise change address on every request."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # the test client's "testclient", a Unix socket
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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


class ClientAddress:
    """Who is calling: the socket's peer, unless that peer is a trusted reverse proxy.

    Behind trusted proxies the client is the right-most X-Forwarded-For entry that is not itself a trusted
    proxy: each proxy appends the address it saw, so entries to the left of it are whatever the client wrote.
    With no trusted proxies (the default) the header is ignored, so no client can pick its own address.
    """

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self._trusted = tuple(trusted)

    @classmethod
    def from_string(cls, trusted: str) -> ClientAddress:
        return cls(parse_networks(trusted))

    def _is_trusted(self, ip: str) -> bool:
        address = _address(ip)
        return address is not None and any(address in network for network in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        if not self._trusted or peer is None or not forwarded_for or not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if _address(hop) is None:
                return peer  # a malformed entry: keep the address we can vouch for
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
