"""What every API call passes before it reaches an endpoint: size limit, token, scope, rate limit, audit.

One ASGI middleware, in this order, so that no endpoint code (and no body parsing) runs for a call
that is refused:

1. **token**: ``Authorization: Bearer obl_...`` must name an active token (not expired, not revoked):
   else 401 with ``WWW-Authenticate: Bearer``; only the dashboard's static files, ``/`` and the
   OpenAPI schema are public;
2. **size**: a body larger than ``max_body`` bytes (by ``Content-Length``, or counted while it
   streams in) is 413;
3. **scope**: the matched route's endpoint names the scopes it accepts (:func:`scoped`); a token
   holding none of them is 403;
4. **rate**: a token bucket per token (``rate`` calls/s, bursts of ``burst``) refuses with 429 and
   ``Retry-After`` (the classic token bucket, e.g. Tanenbaum, Computer Networks, Sec. 5.4.2);
5. **audit**: every call, refused or not, is queued as one audit row (time, token id or none,
   method, path, status, a detail the endpoint may set in ``request.state.audit``).

Every refusal is JSON ``{"detail": "<one line>"}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.routing import Match

from obliviate.service.tokens import AuditRow, TokenStore

__all__ = ["Gateway", "RateLimiter", "scoped", "PUBLIC_PATHS"]

PUBLIC_PATHS = ("/", "/dashboard", "/openapi.json", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


def scoped(*scopes: str) -> Callable:
    """Mark an endpoint with the scopes that may call it (any one of them suffices)."""

    def mark(fn: Callable) -> Callable:
        fn.required_scopes = frozenset(scopes)
        return fn

    return mark


class RateLimiter:
    """A token bucket per key: ``rate`` per second on average, at most ``burst`` at once (0: no limit)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), int(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 if a call is allowed now (and counted), else the seconds until one is."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


async def _send_json(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


ANONYMOUS_AUDIT_RATE = 5.0
ANONYMOUS_AUDIT_BURST = 20


class Gateway:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app, *, tokens: TokenStore, limiter: RateLimiter, max_body: int, audit: Callable) -> None:
        self.app = app
        self.tokens = tokens
        self.limiter = limiter
        self.max_body = int(max_body)
        self.audit = audit
        # calls without a valid token are audited at most ANONYMOUS_AUDIT_RATE per second per client address (a
        # burst of ANONYMOUS_AUDIT_BURST), so anonymous callers cannot grow the audit table without bound; the
        # rest are counted in ``unaudited``
        self.anonymous = RateLimiter(ANONYMOUS_AUDIT_RATE, ANONYMOUS_AUDIT_BURST)
        self.unaudited = 0

    def _route_scopes(self, scope) -> frozenset[str] | None:
        app = scope.get("app")  # the FastAPI app, set by Starlette before its middleware runs
        for route in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(getattr(route, "endpoint", None), "required_scopes", None)
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        state = scope.setdefault("state", {})
        status_box = {"status": 0}

        async def audited_send(message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            await send(message)

        token = None
        try:
            if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
                await self.app(scope, receive, send)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            auth = headers.get("authorization", "")
            kind, _, secret = auth.partition(" ")
            if not auth:
                await _send_json(
                    audited_send,
                    401,
                    "no token: send Authorization: Bearer <token> (create one with `obliviate token create`).",
                    {"WWW-Authenticate": "Bearer"},
                )
                return
            token = self.tokens.authenticate(secret.strip()) if kind.lower() == "bearer" else None
            if token is None:
                await _send_json(
                    audited_send,
                    401,
                    "the token is unknown, expired or revoked; ask an operator for a new one (`obliviate token create`).",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                return
            state["token"] = token
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await _send_json(
                    audited_send, 413, f"the request body is over {self.max_body} bytes; send a smaller one."
                )
                return
            needed = self._route_scopes(scope)
            if needed is not None and not needed & set(token.scopes):
                await _send_json(
                    audited_send,
                    403,
                    f"this token's scope ({', '.join(token.scopes)}) may not call {method} {path}; it needs "
                    f"{' or '.join(sorted(needed))}.",
                )
                return
            wait = self.limiter.take(token.token_id)
            if wait > 0:
                await _send_json(
                    audited_send,
                    429,
                    f"rate limit of this token reached; retry in {wait:.2f} s.",
                    {"Retry-After": str(max(1, int(wait + 0.999)))},
                )
                return
            body, more = b"", True  # read whole (it is at most max_body) before any endpoint sees it
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away: nothing to answer
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body:
                    await _send_json(
                        audited_send, 413, f"the request body is over {self.max_body} bytes; send a smaller one."
                    )
                    return
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, audited_send)
        finally:
            client = (scope.get("client") or ("?", 0))[0]
            if token is None and self.anonymous.take(str(client)) > 0:
                self.unaudited += 1
            elif not (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)):
                self.audit(
                    AuditRow(
                        at=datetime.now(UTC).isoformat(),
                        token_id=token.token_id if token is not None else None,
                        method=method,
                        path=path[:300],
                        status=status_box["status"] or 500,
                        detail=str(state.get("audit", ""))[:300],
                    )
                )
