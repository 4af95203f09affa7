"""The OpenID provider the tests run: the npm package oidc-provider (installed by `npm ci` in tests/identity/oidc)
under the machine's Node.js, on a free port, with a signing key the test holds, so that it can also forge the
tokens a careless relying party would accept."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.processes import free_port

FOLDER = Path(__file__).parent / "oidc"
CLIENT_ID = "grantflow"
CLIENT_SECRET = "grantflow-oidc-client-secret"
ACCOUNTS = {
    "nadia": {"password": "nadia-idp-pw", "email": "nadia@corp.example", "name": "Nadia Idp", "groups": ["sre"]},
    "theo": {"password": "theo-idp-pw", "email": "theo@corp.example", "name": "Theo Idp", "groups": ["leads"]},
}


@dataclass
class IdentityProvider:
    issuer: str
    key: rsa.RSAPrivateKey
    kid: str

    def forge(self, **claims: Any) -> str:
        """A token signed with the provider's own key, with whatever claims the test wants."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "nadia", "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})

    def id_token(self, username: str, nonce: str | None = None) -> str:
        """A real ID token for the account, through the provider's own authorization-code flow."""
        import base64
        import hashlib
        import secrets

        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect = "http://127.0.0.1/token-for-tests"
        with httpx.Client(base_url=self.issuer, follow_redirects=False, timeout=10) as browser:
            location = authorize(browser, self.issuer, redirect, "s", nonce or "n", challenge)
            code = httpx.URL(log_in(browser, location, username)).params["code"]
            tokens = browser.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect,
                    "code_verifier": verifier,
                },
                auth=(CLIENT_ID, CLIENT_SECRET),
            )
            assert tokens.status_code == 200, tokens.text
            return str(tokens.json()["id_token"])


def authorize(browser: httpx.Client, issuer: str, redirect: str, state: str, nonce: str, challenge: str) -> str:
    answer = browser.get(
        f"{issuer}/auth",
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": "openid email profile groups",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


def log_in(browser: httpx.Client, location: str, username: str) -> str:
    """Sign in on the provider's login page; the redirect back to the relying party, with its code."""
    interaction = browser.get(location)
    assert interaction.status_code == 200, interaction.text
    account = ACCOUNTS[username]
    answer = browser.post(location, data={"username": username, "password": account["password"]})
    while (
        answer.status_code in (302, 303)
        and not answer.headers["location"].startswith("http://127.0.0.1/")
        and "code=" not in answer.headers["location"]
    ):
        answer = browser.get(answer.headers["location"])
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


@contextmanager
def running_provider(folder: Path, redirect_uris: list[str], port: int | None = None) -> Iterator[IdentityProvider]:
    """oidc-provider on `port` (a free one by default) with a new signing key, until the context ends."""
    node = shutil.which("node")
    if node is None or not (FOLDER / "node_modules" / "oidc-provider").exists():
        raise AssertionError("node and oidc-provider are needed: cd tests/identity/oidc && npm ci (.ci/run does)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex[:8]
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update(kid=kid, alg="RS256", use="sig")
    port = port or free_port()
    config = {
        "port": port,
        "jwks": {"keys": [jwk]},
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [*redirect_uris, "http://127.0.0.1/token-for-tests"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
        "accounts": ACCOUNTS,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "provider.json").write_text(json.dumps(config))
    log = folder / "provider.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [node, str(FOLDER / "provider.mjs"), str(folder / "provider.json")],
            stdout=sink,
            stderr=sink,
            cwd=FOLDER,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while b"listening" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the OpenID provider did not start within 30 s"
            time.sleep(0.05)
        yield IdentityProvider(issuer, key, kid)
    finally:
        process.terminate()
        process.wait(timeout=10)
