"""Admin login lockout (django-axes): per username and client address, with a cool-off."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from hitlplatform.login_lockout import client_ip_address

LOGIN = "/admin/login/"
OFFICE = "198.51.100.7"


def attempt(client, username, password, *, ip=OFFICE, **headers):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
        **headers,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def lock(client, username, *, ip=OFFICE, **headers):
    for _ in range(5):
        attempt(client, username, "wrong-password", ip=ip, **headers)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def test_wrong_passwords_lock_the_account_then_the_right_one_is_refused(admin_user):
    client = Client()
    for _ in range(4):
        response = attempt(client, "admin", "wrong-password")
        assert response.status_code == 200
        assert b"Please enter the correct username and password" in response.content
    fifth = attempt(client, "admin", "wrong-password")
    assert fifth.status_code == 429
    for _ in range(25):
        assert attempt(client, "admin", "wrong-password").status_code == 429

    refused = attempt(client, "admin", "admin-pass-1")
    assert refused.status_code == 429
    assert not logged_in(client)
    assert refused["Retry-After"] == str(15 * 60)
    page = refused.content.decode()
    assert "Too many failed login attempts" in page
    assert "blocked for 15 minutes" in page
    assert "Try again after" in page
    assert "ask an administrator" in page
    # The admin's own look: its stylesheet and the site header.
    assert "admin/css/login.css" in page
    assert "HITL Review" in page


def test_lockout_page_names_the_time_the_block_ends(admin_user):
    client = Client()
    lock(client, "admin")
    page = attempt(client, "admin", "admin-pass-1").content.decode()
    shown = re.search(r'id="lockout-until">(\d\d:\d\d) UTC<', page).group(1)
    until = timezone.localtime() + timedelta(minutes=15)
    assert shown in {(until - timedelta(minutes=m)).strftime("%H:%M") for m in (0, 1)}


def test_other_users_behind_the_same_address_still_log_in(admin_user, reviewer):
    lock(Client(), "admin")
    colleague = Client()
    response = attempt(colleague, "rita", "rita-pass-1")
    assert response.status_code == 302
    assert logged_in(colleague)


def test_the_locked_user_still_logs_in_from_another_address(admin_user):
    lock(Client(), "admin", ip="203.0.113.66")
    client = Client()
    assert attempt(client, "admin", "admin-pass-1").status_code == 302
    assert logged_in(client)


def test_the_block_lifts_after_the_cool_off(admin_user):
    client = Client()
    lock(client, "admin")
    assert attempt(client, "admin", "admin-pass-1").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert attempt(client, "admin", "admin-pass-1").status_code == 302
    assert logged_in(client)


def test_a_successful_login_clears_earlier_failures(admin_user):
    client = Client()
    for _ in range(4):
        attempt(client, "admin", "wrong-password")
    assert attempt(client, "admin", "admin-pass-1").status_code == 302
    client.logout()
    for _ in range(4):
        assert attempt(client, "admin", "wrong-password").status_code == 200
    assert attempt(client, "admin", "admin-pass-1").status_code == 302


def test_forwarded_for_is_ignored_unless_configured(admin_user):
    client = Client()
    for n in range(5):
        attempt(client, "admin", "wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = attempt(client, "admin", "admin-pass-1", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert response.status_code == 429


def test_behind_a_configured_proxy_the_forwarded_address_counts(settings, admin_user):
    settings.HITL_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.HITL_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    lock(Client(), "admin", ip=proxy, HTTP_X_FORWARDED_FOR="192.0.2.10")
    client = Client()
    elsewhere = attempt(
        client, "admin", "admin-pass-1", ip=proxy, HTTP_X_FORWARDED_FOR="192.0.2.11"
    )
    assert elsewhere.status_code == 302
    # A client prepending a made-up address does not escape its own lock.
    spoofed = attempt(
        Client(), "admin", "admin-pass-1", ip=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.10"
    )
    assert spoofed.status_code == 429


def request_with(remote="10.0.0.2", **meta) -> HttpRequest:
    request = HttpRequest()
    request.META = {"REMOTE_ADDR": remote, **meta}
    return request


def test_client_address_is_remote_addr_by_default(settings):
    settings.HITL_CLIENT_IP_HEADER = ""
    assert client_ip_address(request_with(HTTP_X_FORWARDED_FOR="192.0.2.1")) == "10.0.0.2"


@pytest.mark.parametrize(
    ("header", "hops", "expected"),
    [
        ("192.0.2.1", 1, "192.0.2.1"),
        ("6.6.6.6, 192.0.2.1", 1, "192.0.2.1"),
        ("6.6.6.6, 192.0.2.1, 10.0.0.9", 2, "192.0.2.1"),
        ("192.0.2.1", 2, "10.0.0.2"),  # shorter than the proxy chain: not trusted
        ("not-an-address", 1, "10.0.0.2"),
        ("", 1, "10.0.0.2"),
        (" 2001:db8::1 ", 1, "2001:db8::1"),
    ],
)
def test_client_address_from_a_trusted_proxy_header(settings, header, hops, expected):
    settings.HITL_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.HITL_TRUSTED_PROXY_COUNT = hops
    assert client_ip_address(request_with(HTTP_X_FORWARDED_FOR=header)) == expected


def test_force_login_and_client_login_with_a_request_still_work(admin_user):
    client = Client()
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    other = Client()
    # Axes needs the request authenticate() is called with; the test client has none.
    assert other.login(request=HttpRequest(), username="admin", password="admin-pass-1")
    assert other.get("/admin/").status_code == 200


def test_api_session_and_key_requests_are_not_login_attempts(admin_user, client_api):
    client = Client()
    client.force_login(admin_user)
    for _ in range(10):
        assert client.get("/api/v1/items/", REMOTE_ADDR=OFFICE).status_code != 429
    for _ in range(10):
        client_api.get("/api/v1/items/", REMOTE_ADDR=OFFICE)
    assert not AccessAttempt.objects.exists()
