"""The webhook address rule (reviews/netpolicy.py): on each range, at save time
through the admin, and at delivery through a real worker."""

import socket
import threading

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from reviews.models import DeliveryStatus, Project, WebhookAttempt, WebhookDelivery
from reviews.netpolicy import WebhookRefused, address_problem, webhook_target_resolve
from reviews.webhooks.services import webhook_deliver
from tests import factories
from tests.monitoring.helpers import wait_for

REFUSED = [
    ("100.64.0.1", "a carrier-grade NAT (shared) address"),
    ("100.127.255.254", "a carrier-grade NAT (shared) address"),
    ("2002:7f00:1::1", "a 6to4 address (it carries 127.0.0.1)"),
    ("2002:5db8:d822::1", "a 6to4 address (it carries 93.184.216.34)"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address (it carries 192.0.2.45)"),
    ("fec0::1", "a site-local address"),
    ("::ffff:127.0.0.1", "an IPv4-mapped address of 127.0.0.1, a loopback address"),
    ("::ffff:10.0.0.5", "an IPv4-mapped address of 10.0.0.5, a private address"),
    ("64:ff9b::a00:5", "a NAT64 address of 10.0.0.5, a private address"),
    ("64:ff9b:1::1", "a local-use NAT64 address"),
    ("::7f00:1", "an IPv4-compatible address (it carries 127.0.0.1)"),
    ("169.254.169.254", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("0.0.0.0", "an unspecified ('this network') address"),  # noqa: S104
    ("::", "the unspecified address"),
    ("127.0.0.1", "a loopback address"),
    ("127.8.9.10", "a loopback address"),
    ("::1", "the loopback address"),
    ("10.0.0.5", "a private address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.255", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fc00::1", "a unique-local address"),
    ("fd12:3456::1", "a unique-local address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("ff0e::1", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "the broadcast address"),
    ("192.0.0.8", "an IETF protocol address"),
    ("192.0.0.9", "an IETF protocol address"),
    ("192.0.2.1", "a documentation address"),
    ("198.51.100.7", "a documentation address"),
    ("203.0.113.9", "a documentation address"),
    ("2001:db8::1", "a documentation address"),
    ("3fff::1", "a documentation address"),
    ("198.18.0.1", "a benchmarking address"),
    ("198.19.255.255", "a benchmarking address"),
    ("2001:2::1", "a benchmarking address"),
    ("192.88.99.1", "a 6to4 relay address"),
    ("100::1", "a discard-only address"),
    ("5f00::1", "a segment-routing (SRv6) address"),
    ("2001:10::1", "an ORCHID identifier"),
]
# Python 3.11's ipaddress calls these global; the rule must not rely on is_global alone.
IS_GLOBAL_GAPS = [
    "224.0.0.1",
    "ff02::1",
    "2002:7f00:1::1",
    "fec0::1",
    "64:ff9b::a00:5",
    "::7f00:1",
    "192.0.0.9",
    "192.88.99.1",
    "3fff::1",
]
PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "100.63.255.255",
    "100.128.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


def url_for(address: str, port: int | None = None, scheme: str = "http") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}{f':{port}' if port else ''}/hook"


@pytest.fixture
def strict(settings):
    """The production rule: no private targets, ports 80 and 443."""
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = False
    settings.HITL_WEBHOOK_ALLOWED_PORTS = [80, 443]
    return settings


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for made-up host names; other names go to the real resolver."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        addresses = answers[host]
        if isinstance(addresses, list) and addresses and isinstance(addresses[0], list):
            addresses = addresses.pop(0)  # a sequence of answers, one per lookup
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


# --- the rule on each range -------------------------------------------------------


@pytest.mark.parametrize(("address", "problem"), REFUSED, ids=[a for a, _ in REFUSED])
def test_non_public_ranges_are_refused_with_their_name(address, problem, strict):
    assert address_problem(address) == problem
    with pytest.raises(WebhookRefused) as refused:
        webhook_target_resolve(url_for(address))
    assert str(refused.value).startswith(f"{address} is {problem}.")
    assert "HITL_WEBHOOK_ALLOW_PRIVATE" in str(refused.value)


@pytest.mark.parametrize("address", IS_GLOBAL_GAPS)
def test_addresses_python_calls_global_are_still_refused(address):
    assert address_problem(address) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://127.1/hook",
        "http://0177.0.0.1/hook",
        "HTTP://LOCALHOST/hook",
        "http://93.184.216.34@127.0.0.1/hook",
        "http://127.0.0.1#@93.184.216.34/hook",
        "http://[0:0:0:0:0:ffff:7f00:1]/hook",
    ],
)
def test_other_spellings_of_loopback_are_refused(url, strict):
    """The check and the connection read the host from the same parse of the URL."""
    with pytest.raises(WebhookRefused, match=r"127\.0\.0\.1, a loopback address|127\.0\.0\.1 is a"):
        webhook_target_resolve(url)


def test_a_scoped_link_local_address_is_refused():
    assert address_problem("fe80::1%eth0") == "a link-local address"


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address, strict):
    assert address_problem(address) is None
    target = webhook_target_resolve(url_for(address, scheme="https"))
    assert (target.scheme, target.port) == ("https", 443)


def test_every_answer_of_a_name_must_be_public(strict, fake_dns):
    answers, _ = fake_dns
    answers["hooks.corp.example"] = ["93.184.216.34", "10.0.0.5"]
    with pytest.raises(
        WebhookRefused, match=r"hooks\.corp\.example resolves to 10\.0\.0\.5, a private"
    ):
        webhook_target_resolve("https://hooks.corp.example/hitl")
    answers["dual.example"] = ["93.184.216.34", "fd00::7"]
    with pytest.raises(WebhookRefused, match="resolves to fd00::7, a unique-local address"):
        webhook_target_resolve("https://dual.example/hitl")
    answers["public.example"] = ["93.184.216.34", "2606:4700:4700::1111"]
    assert webhook_target_resolve("https://public.example/hitl").address == "93.184.216.34"


def test_a_name_that_does_not_resolve_is_refused(strict, fake_dns):
    answers, _ = fake_dns
    answers["gone.example"] = []
    with pytest.raises(WebhookRefused, match=r"gone\.example does not resolve"):
        webhook_target_resolve("https://gone.example/hitl")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://93.184.216.34/hook", True),
        ("https://93.184.216.34/hook", True),
        ("https://93.184.216.34:443/hook", True),
        ("http://93.184.216.34:8080/hook", False),
        ("http://93.184.216.34:22/hook", False),
        ("https://93.184.216.34:8443/hook", False),
    ],
)
def test_ports_are_limited_to_80_and_443(url, allowed, strict):
    if allowed:
        webhook_target_resolve(url)
    else:
        with pytest.raises(WebhookRefused, match=r"Port \d+ is not allowed .*allowed: 80, 443"):
            webhook_target_resolve(url)


def test_allowed_ports_are_configurable(strict):
    strict.HITL_WEBHOOK_ALLOWED_PORTS = [443, 8443]
    assert webhook_target_resolve("https://93.184.216.34:8443/hook").port == 8443
    with pytest.raises(WebhookRefused, match="Port 80 is not allowed"):
        webhook_target_resolve("http://93.184.216.34/hook")


def test_allow_private_lifts_the_address_and_port_rules(strict):
    strict.HITL_WEBHOOK_ALLOW_PRIVATE = True
    assert webhook_target_resolve("http://127.0.0.1:8080/hook").address == "127.0.0.1"
    assert webhook_target_resolve("http://93.184.216.34:22/hook").port == 22
    with pytest.raises(WebhookRefused, match="http or https only"):
        webhook_target_resolve("gopher://127.0.0.1:70/hook")


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "file:///etc/passwd", "http:///x"])
def test_only_http_urls_with_a_host(url, strict):
    with pytest.raises(WebhookRefused):
        webhook_target_resolve(url)


# --- at save time ------------------------------------------------------------------


def unsaved_project(url: str) -> Project:
    return Project(name="Hooked", slug="hooked", webhook_url=url, webhook_secret="s3cret")


def test_project_clean_names_the_private_address(strict, fake_dns):
    answers, _ = fake_dns
    answers["hooks.corp.example"] = ["10.0.0.5"]
    with pytest.raises(ValidationError) as error:
        unsaved_project("https://hooks.corp.example/hitl").clean()
    [message] = error.value.message_dict["webhook_url"]
    assert message.startswith("hooks.corp.example resolves to 10.0.0.5, a private address.")


def test_project_clean_refuses_a_name_that_does_not_resolve(strict):
    with pytest.raises(ValidationError) as error:
        unsaved_project("https://hooks.invalid/hitl").clean()
    [message] = error.value.message_dict["webhook_url"]
    assert message.startswith("hooks.invalid does not resolve")


def test_project_clean_accepts_a_public_receiver(strict):
    unsaved_project("https://93.184.216.34/hitl").clean()


def admin_form_data(client, url: str) -> dict:
    """The project change form as the browser would post it back, unchanged."""
    page = client.get(url)
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    data.update({"risk_keywords": "[]", "reason_codes": '["factual_error"]'})
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def test_the_admin_refuses_the_metadata_address(client, admin_user, project, strict):
    client.force_login(admin_user)
    url = reverse("admin:reviews_project_change", args=[project.pk])
    data = admin_form_data(client, url)
    data["webhook_url"] = "http://169.254.169.254/latest/"
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["webhook_url"] == [
        "169.254.169.254 is a link-local address. Webhooks may not call private or local "
        "addresses (the operator can allow them with HITL_WEBHOOK_ALLOW_PRIVATE=1)."
    ]
    assert "169.254.169.254 is a link-local address." in response.content.decode()
    project.refresh_from_db()
    assert project.webhook_url == ""


def test_the_admin_refuses_an_unresolvable_host_and_saves_a_public_one(
    client, admin_user, project, strict
):
    client.force_login(admin_user)
    url = reverse("admin:reviews_project_change", args=[project.pk])
    data = admin_form_data(client, url)
    data["webhook_url"] = "https://hooks.invalid/hitl"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "does not resolve" in response.context["adminform"].form.errors["webhook_url"][0]
    data["webhook_url"] = "https://93.184.216.34/hitl"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    project.refresh_from_db()
    assert project.webhook_url == "https://93.184.216.34/hitl"


# --- at delivery ---------------------------------------------------------------------


class ConnectionCounter:
    """A TCP listener on loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.accepted = 0
        self._socket.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self._socket.close()


@pytest.fixture
def listener():
    counter = ConnectionCounter()
    yield counter
    counter.close()


@pytest.fixture
def worker_allows_private() -> bool:
    """The worker runs under the production rule (see tests/monitoring/conftest.py)."""
    return False


def test_the_worker_refuses_a_private_target_without_connecting(rq_worker, listener):
    project = factories.make_project(
        name="Hooked", slug="hooked", mode="monitor", confidence_threshold=0.5
    )
    Project.objects.filter(pk=project.pk).update(
        webhook_url=f"http://127.0.0.1:{listener.port}/hook", webhook_secret="s3cret"
    )
    project.refresh_from_db()
    factories.ingest(project)
    wait_for(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).exists(),
        what="the delivery to be refused",
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("Refused: 127.0.0.1 is a loopback address.")
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.error == delivery.last_error
    assert listener.accepted == 0


def test_delivery_connects_to_the_address_it_checked(
    monitor_project, strict, fake_dns, monkeypatch
):
    """A second DNS answer (rebinding to loopback) is never looked up, let alone used."""
    answers, lookups = fake_dns
    answers["rebind.example"] = [["93.184.216.34"], ["127.0.0.1"]]
    Project.objects.filter(pk=monitor_project.pk).update(
        webhook_url="http://rebind.example/hook", webhook_secret="s3cret"
    )
    monitor_project.refresh_from_db()
    connected = []

    def create_connection(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    factories.ingest(monitor_project)
    delivery = webhook_deliver(delivery_id=str(WebhookDelivery.objects.get().pk))
    assert connected == [("93.184.216.34", 80)]
    assert lookups == ["rebind.example"]
    assert delivery.status == DeliveryStatus.PENDING  # a connection error: retried later
    assert "ConnectionRefusedError" in delivery.last_error


def test_a_host_that_stops_resolving_is_retried_not_failed(monitor_project, strict, fake_dns):
    answers, _ = fake_dns
    answers["flaky.example"] = []
    Project.objects.filter(pk=monitor_project.pk).update(
        webhook_url="https://flaky.example/hook", webhook_secret="s3cret"
    )
    monitor_project.refresh_from_db()
    factories.ingest(monitor_project)
    delivery = webhook_deliver(delivery_id=str(WebhookDelivery.objects.get().pk))
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("flaky.example does not resolve")
