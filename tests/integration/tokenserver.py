"""A registry token server for tests (Docker's token authentication), run as a script.

    python tokenserver.py PORT KEY.pem CERT.pem ISSUER SERVICE USER:PASSWORD

It answers `GET /token?service=..&scope=repository:NAME:ACTIONS` with a JWT signed RS256 by KEY
(with CERT in its `x5c` header, the chain docker-registry checks against its rootcertbundle),
granting what the scope asks, but only to a client presenting USER:PASSWORD as basic auth.
Signing goes through the openssl CLI so the tests need no crypto library.
"""
from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cert_der_b64(cert_pem: str) -> str:
    der = subprocess.run(["openssl", "x509", "-in", cert_pem, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return base64.b64encode(der).decode()


def access_of(scopes: list[str]) -> list[dict]:
    """`repository:name:pull,push` -> the JWT `access` claim granting exactly that."""
    granted = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        granted.append({"type": kind, "name": name, "actions": actions.split(",") if actions else []})
    return granted


class TokenIssuer:
    def __init__(self, key: str, cert: str, issuer: str, service: str, account: str) -> None:
        self.key, self.issuer, self.service = key, issuer, service
        self.x5c = [cert_der_b64(cert)]
        self.basic = "Basic " + base64.b64encode(account.encode()).decode()

    def token(self, scopes: list[str], subject: str) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access_of(scopes)}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{b64url(signature)}"


def serve(port: int, issuer: TokenIssuer) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path != "/token" or self.headers.get("Authorization") != issuer.basic:
                body = json.dumps({"details": "incorrect username or password"}).encode()
                self.send_response(401)
            else:
                body = json.dumps({"token": issuer.token(query.get("scope", []), "alice"),
                                   "expires_in": 300}).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    port, key, cert, iss, service, account = sys.argv[1:7]
    serve(int(port), TokenIssuer(key, cert, iss, service, account))
