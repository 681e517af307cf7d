"""Which URLs the platform may call as webhook targets: one rule for saving and sending.

A webhook URL is typed by a project admin and called by a worker inside the
platform's network, so without a rule it reaches whatever the worker can: the
cloud metadata service, the database, an admin port on loopback. The rule:

- the scheme is http or https;
- the port is one of ``HITL_WEBHOOK_ALLOWED_PORTS`` (80 and 443 by default);
- every address the host resolves to (IPv4 and IPv6) is globally routable.
  Addresses that carry an IPv4 address (IPv4-mapped, NAT64) are judged by the
  address they carry; tunnel forms (6to4, Teredo, IPv4-compatible) are refused
  outright, since a relay turns them into whatever IPv4 address they embed.

``HITL_WEBHOOK_ALLOW_PRIVATE`` turns the address and port parts off (a trusted
network: development, tests, a platform deployed next to its receivers); the
scheme and the host must still be valid and resolve.

``Project.clean`` calls :func:`webhook_target_resolve` so the admin's form
refuses a bad URL; the delivery calls it again before every attempt (DNS may
have changed since) and connects to the address it returned, never to a second
lookup of the name, which closes the DNS-rebinding gap between check and connect.

Python's ``ipaddress.is_global`` is the backstop, not the rule: on Python 3.11
it calls multicast, 6to4 (``2002::/16``), site-local ``fec0::/10``, NAT64 and
IPv4-compatible forms of private addresses, ``192.0.0.0/24`` and the new
``3fff::/20`` documentation range global. The table below names them first.
"""

import ipaddress
import socket
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_LISTED = 3

# Ranges refused with a name, checked in order (a narrower range before the wider
# one holding it). IANA's special-purpose registries, plus multicast and site-local.
SPECIAL_RANGES: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = [
    (ipaddress.ip_network(network), description)
    for network, description in [
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "the loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address"),
        ("2001:2::/48", "a benchmarking address"),
        ("2001:10::/28", "an ORCHID identifier"),
        ("2001:20::/28", "an ORCHID identifier"),
        ("2001:db8::/32", "a documentation address"),
        ("2002::/16", "a 6to4 address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment-routing (SRv6) address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    ]
]
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class WebhookRefused(Exception):
    """The URL is not one the platform may call; the message says why."""


class WebhookUnresolved(WebhookRefused):
    """The URL's host does not resolve (at delivery this may be temporary)."""


class WebhookTarget(NamedTuple):
    scheme: str
    host: str
    port: int
    address: str
    """The checked address: the connection must go here, not to a new lookup."""


def address_problem(address: str) -> str | None:
    """What makes ``address`` unfit as a webhook target ("a private address"), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _carried_ipv4(ip)
        if carried is not None:
            form, inner, judged_by_inner = carried
            inner_problem = address_problem(str(inner))
            if judged_by_inner:
                return None if inner_problem is None else f"{form} of {inner}, {inner_problem}"
            return f"{form} (it carries {inner})"
    for network, description in SPECIAL_RANGES:
        if ip in network:
            return description
    if not ip.is_global:
        return "not a globally routable address"
    return None


def _carried_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address, bool] | None:
    """(form, IPv4 address carried, whether that address decides) for IPv6 forms of IPv4."""
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped address", ip.ipv4_mapped, True
    if ip in NAT64:
        return "a NAT64 address", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), True
    if ip.sixtofour is not None:
        return "a 6to4 address", ip.sixtofour, False
    if ip.teredo is not None:
        return "a Teredo address", ip.teredo[1], False
    if ip in IPV4_COMPATIBLE and int(ip) > 1:
        return "an IPv4-compatible address", ipaddress.IPv4Address(int(ip)), False
    return None


def allowed_ports() -> list[int]:
    return sorted(set(settings.HITL_WEBHOOK_ALLOWED_PORTS))


def webhook_target_resolve(url: str) -> WebhookTarget:
    """Check ``url`` against the rule and return where to connect; else ``WebhookRefused``.

    Resolves the host (every A and AAAA answer must pass, not just the first),
    so the result is only good for the attempt about to be made.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise WebhookRefused("Webhooks are sent over http or https only.")
    host = parts.hostname
    if not host:
        raise WebhookRefused("The webhook URL has no host.")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise WebhookRefused(f"The webhook URL has an invalid port: {exc}.") from exc
    addresses = _resolve(host, port)
    if not settings.HITL_WEBHOOK_ALLOW_PRIVATE:
        refused = [(a, problem) for a in addresses if (problem := address_problem(a))]
        if refused:
            if _is_literal(host):
                what = f"{host} is {refused[0][1]}"
            else:
                listed = "; ".join(f"{a}, {problem}" for a, problem in refused[:MAX_LISTED])
                what = f"{host} resolves to {listed}"
            raise WebhookRefused(
                f"{what}. Webhooks may not call private or local addresses "
                "(the operator can allow them with HITL_WEBHOOK_ALLOW_PRIVATE=1)."
            )
        if port not in allowed_ports():
            ports = ", ".join(str(p) for p in allowed_ports())
            raise WebhookRefused(
                f"Port {port} is not allowed for webhooks (allowed: {ports}; the operator "
                "sets the list with HITL_WEBHOOK_ALLOWED_PORTS)."
            )
    return WebhookTarget(parts.scheme, host, port, addresses[0])


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise WebhookUnresolved(f"{host} does not resolve ({reason}).") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise WebhookUnresolved(f"{host} does not resolve (no addresses).")
    return addresses
