"""Encryption of secrets at rest, so that a database dump alone does not reveal them."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from grantflow.config import Config

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open_untrusted(self, sealed: str) -> str | None:
        """A value sealed by this box that came back from outside (a URL): None when it is not one, or altered."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, UnicodeError):
            return None

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError("stored secret cannot be decrypted: GRANTFLOW_SECRET_KEY differs") from exc


def write_private_file(path: Path, content: str) -> None:
    """Create a file only its owner can read, without a window where it is world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def load_secret_box(config: Config) -> SecretBox:
    """The configured key, or the data directory's key file, created on first use."""
    if config.secret_key is not None:
        return SecretBox(config.secret_key.get_secret_value().encode())
    path = config.data_dir / KEY_FILE
    if not path.exists():
        write_private_file(path, Fernet.generate_key().decode())
    return SecretBox(path.read_text().strip().encode())
