"""Who is calling: bearer tokens scoped to namespaces, and the rule for when none is needed.

A token is ``hf_<id>_<secret>``; the store keeps the id, the SHA-256 of the secret, the
namespaces and the admin flag, never the token. Rules (:meth:`Tokens.authenticate`):

* a token that is given must be valid (else 401), whether or not the server needs one;
* without a token: 401 if the server is bound to a non-loopback address or any token
  exists, else the caller is an anonymous admin (a loopback server nobody configured:
  the same trust as today's foreground commands);
* a caller may use a namespace it holds (else 403); an admin token holds all;
* a token created with a duration is refused (401) from its ``expires_at`` on; it still
  counts as a token that exists.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hyperflow.handlers.errors import FieldProblem, Forbidden, Invalid, NotFound, Unauthorized
from hyperflow.handlers.names import check_dns_label
from hyperflow.store.tokens import TokenRecord, TokenStore

# The longest a token may be made for: its expiry must stay a date (1e300 s is none).
MAX_DURATION = 100 * 365.25 * 86400
_TOKEN = re.compile(r"hf_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the namespaces it may use, or all (admin)."""

    name: str
    namespaces: frozenset[str]
    admin: bool = False

    def can(self, namespace: str) -> bool:
        return self.admin or namespace in self.namespaces

    def check(self, namespace: str) -> None:
        if not self.can(namespace):
            raise Forbidden(f"token {self.name} may not use namespace {namespace!r}")

    def authorize(self, namespace: str) -> None:
        """422 for a namespace that is no DNS label, 403 for one this caller may not use:
        every namespaced handler's first check, and the API's before it reads a body."""
        problems = check_dns_label(namespace, "namespace", what="a namespace")
        if problems:
            raise Invalid("invalid namespace", problems)
        self.check(namespace)

    def visible(self) -> frozenset[str] | None:
        """The namespaces a list across all namespaces shows; None: every one."""
        return None if self.admin else self.namespaces


def parse_bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (None if absent)."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return credentials.strip()


ANONYMOUS = Caller("anonymous", frozenset(), admin=True)
LOCAL_ADMIN = Caller("local", frozenset(), admin=True)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    """Token handlers: create/list/revoke (admins) and authenticate (every request)."""

    # How long what the store said is taken as known: whether any token exists (asked on a
    # loopback bind by every request without one), and a token's record (asked by every
    # request with one, the serving router's included, on its event loop). A token made
    # or revoked by this process counts at once; by another (``hyperflow token`` on the
    # store) within this time.
    TTL = 1.0

    def __init__(
        self, store: TokenStore, *, loopback: bool, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.loopback = loopback
        self.clock = clock  # for expiry: seconds since the epoch
        self._any: tuple[float, bool] | None = None  # (when asked, answer)
        self._records: dict[str, tuple[float, TokenRecord | None]] = {}

    def _record(self, token_id: str) -> TokenRecord | None:
        now = time.monotonic()
        known = self._records.get(token_id)
        if known is None or now - known[0] > self.TTL:
            if len(self._records) > 10_000:  # bounded: ids of bad tokens are keys too
                self._records.clear()
            known = (now, self.store.get(token_id))
            self._records[token_id] = known
        return known[1]

    def required(self) -> bool:
        if not self.loopback:
            return True
        now = time.monotonic()
        if self._any is None or now - self._any[0] > self.TTL:
            self._any = (now, self.store.any())
        return self._any[1]

    def authenticate(self, bearer: str | None) -> Caller:
        if bearer is None:
            if self.required():
                raise Unauthorized(
                    "this server needs a bearer token: Authorization: Bearer <token> "
                    "(hyperflow token create --namespace NS)"
                )
            return ANONYMOUS
        match = _TOKEN.fullmatch(bearer)
        record = self._record(match.group(1)) if match else None
        if (
            match is None
            or record is None
            or not hmac.compare_digest(record.secret_hash, _hash(match.group(2)))
        ):
            raise Unauthorized("invalid or revoked bearer token")
        if record.expired(self.clock()):
            raise Unauthorized(f"token {record.id} has expired")
        return Caller(record.id, frozenset(record.namespaces), record.admin)

    def still_valid(self, caller: Caller) -> bool:
        """Whether ``caller``'s token still holds (a stream checks it as it goes: a token
        revoked while it watches is cut off at once, as every new request is)."""
        if caller is LOCAL_ADMIN:
            return True
        if caller is ANONYMOUS:
            return not self.required()  # a first token makes anonymous calls stop
        record = self._record(caller.name)
        return record is not None and not record.expired(self.clock())

    def create(
        self,
        caller: Caller,
        namespaces: Iterable[str],
        *,
        admin: bool = False,
        description: str = "",
        duration: float | None = None,
    ) -> tuple[TokenRecord, str]:
        """A new token; the token itself is returned only here (only its hash is kept).
        ``duration``: seconds it is valid for (as ``kubectl create token --duration``);
        None: until it is revoked."""
        self._admin_only(caller)
        if duration is not None and not (math.isfinite(duration) and 0 < duration <= MAX_DURATION):
            raise Invalid(
                "invalid duration",
                [
                    FieldProblem(
                        "duration",
                        f"must be more than 0 s and at most {MAX_DURATION / 3600:.0f}h "
                        f"(100 years), got {duration} s",
                    )
                ],
            )
        names = sorted(set(namespaces))
        problems = [
            p
            for i, ns in enumerate(names)
            for p in check_dns_label(ns, f"namespaces[{i}]", what="a namespace")
        ]
        if problems:
            raise Invalid("invalid namespace", problems)
        if not names and not admin:
            raise Invalid("a token needs at least one namespace, or admin")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = self.clock()
        record = self.store.add(
            token_id,
            _hash(secret),
            names,
            admin,
            description,
            created_at=now,
            expires_at=None if duration is None else now + duration,
        )
        self._any = (time.monotonic(), True)
        return record, f"hf_{token_id}_{secret}"

    def list(self, caller: Caller) -> list[TokenRecord]:
        self._admin_only(caller)
        return self.store.list()

    def revoke(self, caller: Caller, token_id: str) -> None:
        self._admin_only(caller)
        if token_id.startswith("hf_"):
            token_id = token_id.split("_")[1]
        deleted = self.store.delete(token_id)
        self._records.pop(token_id, None)  # at once for this process's requests
        if not deleted:
            raise NotFound(f"no token {token_id}")

    @staticmethod
    def _admin_only(caller: Caller) -> None:
        if not caller.admin:
            raise Forbidden("managing tokens needs an admin token")
