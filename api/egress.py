"""Where a notification webhook may be sent: public addresses, and the hosts and networks the admin allows.

A technician names the URL of an incoming webhook, and the router POSTs to it from inside the OEM's
network; unchecked, that reaches the router's own host, the cloud's metadata service (169.254.169.254) and
the private network (server-side request forgery). The check runs at send time on every address the host
name resolves to, and again on the address the connection reached (a name may resolve anew meanwhile).
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

from api import delivery

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "SERVICECAST_WEBHOOK_ALLOW_NETWORKS"


class Refused(delivery.DeliveryError):
    """The address is one the router does not send to; retrying cannot help until the admin allows it."""

    final = True


class Policy:
    """Public addresses pass; others only inside an allowed network, or under an allowed host name."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.hosts = frozenset(entry for entry in allowed if not _is_network(entry))
        self.networks = tuple(ipaddress.ip_network(e, strict=False) for e in allowed if _is_network(e))

    def host_allowed(self, host: str) -> bool:
        """Whether the admin named this host, so that whatever it resolves to is fine."""
        return host.lower().rstrip(".") in self.hosts

    def problem(self, address: str) -> str | None:
        """Why the router must not connect to `address` (an IP literal): 'a loopback address', …; or None."""
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.networks):
            return None
        kind = _kind(ip)
        return None if kind is None else f"a {kind} address"

    def guard(self, url: str | None) -> delivery.PeerCheck | None:
        """Raise `Refused` if any address `url`'s host resolves to is refused; else the check of the address
        the connection reaches (None when the admin allowed the host, or the URL fails to parse later)."""
        try:
            host = httpx.URL(url or "").raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError):
            return None  # the attempt fails with the reason
        if not host or self.host_allowed(host):
            return None
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise delivery.DeliveryError(f"cannot resolve {host}: {exc}"[:500]) from exc
        for *_, sockaddr in found:
            if problem := self.problem(address := str(sockaddr[0])):
                said = f"{host} is" if address == host else f"{host} resolves to {address},"
                raise Refused(f"refused: {said} {problem}, not allowed by {SETTING}"[:500])

        def check_peer(address: str) -> None:
            if problem := self.problem(address):
                said = f"the connection to {host} reached {address}"
                raise Refused(f"refused: {said}, {problem}, not allowed by {SETTING}")

        return check_peer

    def literal_problem(self, url: str) -> str | None:
        """Why a URL whose host is an IP literal is refused, or None (a name is checked at send time)."""
        host = httpx.URL(url).host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        problem = self.problem(host)
        return problem and f"{host} is {problem}, not allowed by {SETTING}"


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _kind(ip: Address) -> str | None:
    """The kind of a non-public address, or None for a public one."""
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"
