"""Secrets at rest (the judge's API key): Fernet with a key from settings.

``HITL_FIELD_ENCRYPTION_KEY`` holds one or more comma-separated Fernet keys; the
first encrypts, all decrypt, so keys can be rotated. Without it the key is
derived from ``SECRET_KEY`` (changing ``SECRET_KEY`` then makes stored secrets
unreadable: re-enter them in the admin).
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretDecryptError(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if keys:
        try:
            return MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as exc:
            raise ImproperlyConfigured(
                "HITL_FIELD_ENCRYPTION_KEY must hold Fernet keys "
                "(generate one with cryptography.fernet.Fernet.generate_key())."
            ) from exc
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"hitl field encryption"
    ).derive(secret_key.encode())
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.HITL_FIELD_ENCRYPTION_KEY), settings.SECRET_KEY)


def encrypt_secret(plain: str) -> str:
    return _current().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptError(
            "The stored API key cannot be decrypted: SECRET_KEY or HITL_FIELD_ENCRYPTION_KEY "
            "changed since it was saved. Enter the key again in the judge configuration."
        ) from exc
