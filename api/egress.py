"""Where a notification webhook may be sent: public addresses, and the hosts and networks the admin allows.

A technician names the URL of an incoming webhook, and the router POSTs to it from inside the OEM's
network; unchecked, that reaches the router's own host, the cloud's metadata service (169.254.169.254) and
the private network (server-side request forgery). The check runs at send time on every address the host
name resolves to, and again on the address the connection reached (a name may resolve anew meanwhile).

Every name a webhook delivery connects to is resolved by `delivery.addresses`, within the connect timeout.
"""

from __future__ import annotations

import ipaddress
import socket

import httpcore
import httpx

from api import delivery
from fleet.settings import env_name

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = env_name("webhook_allow_networks")


class _Backend(httpcore.SyncBackend):
    """httpcore's TCP connect with the name resolved by `addresses`, each address tried in turn."""

    def __init__(self, resolve: delivery.Resolve) -> None:
        self.resolve = resolve

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ANN001, ANN201
        found = delivery.addresses(host, within_s=timeout or delivery.RESOLVE_S, resolve=self.resolve)
        tcp = super().connect_tcp
        return delivery.connect_first(
            found,
            lambda address: tcp(address, port, timeout, local_address, socket_options),
            (httpcore.ConnectError, httpcore.ConnectTimeout),
        )


def client(*, timeout_s: float, resolve: delivery.Resolve = delivery.system_resolve) -> httpx.Client:
    """The router's HTTP client: redirects not followed, a fresh connection per attempt (its deadline is
    armed when it connects), names resolved within `timeout_s`; the environment's proxies still apply."""
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    direct = httpx.HTTPTransport(limits=no_reuse)
    direct._pool._network_backend = _Backend(resolve)  # httpx passes no network backend through
    return httpx.Client(timeout=timeout_s, follow_redirects=False, limits=no_reuse, mounts={"all://": direct})


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
        if isinstance(ip, ipaddress.IPv6Address) and (inner := ip.ipv4_mapped or ip.sixtofour) is not None:
            ip = inner  # ::ffff:127.0.0.1 is 127.0.0.1; 6to4's 2002:7f00:1:: is carried to it too
        if any(ip in network for network in self.networks):
            return None
        kind = _kind(ip)
        return None if kind is None else f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"

    def guard(
        self, url: str | None, *, within_s: float, resolve: delivery.Resolve = delivery.system_resolve
    ) -> delivery.PeerCheck | None:
        """Raise `Refused` if any address `url`'s host resolves to (within `within_s`) is refused; else the
        check of the address the connection reaches (None when the admin allowed the host, or the URL fails
        to parse later)."""
        try:
            host = httpx.URL(url or "").raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError):
            return None  # the attempt fails with the reason
        if not host or self.host_allowed(host):
            return None
        for address in delivery.addresses(host, within_s=within_s, resolve=resolve):
            if problem := self.problem(address):
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
        if (address := _literal(host)) is None:
            return None
        problem = self.problem(address)
        said = host if address == host else f"{host} ({address})"
        return problem and f"{said} is {problem}, not allowed by {SETTING}"


def _literal(host: str) -> str | None:
    """The address `host` writes, or None for a name. The resolver reads IPv4's old forms as addresses too
    (2130706433, 0x7f000001 and 127.1 are 127.0.0.1): refused at send time, so they are when subscribing."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, ValueError):  # ValueError: a NUL in it
        return None


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
