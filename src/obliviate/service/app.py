"""``obliviate serve``: the ledger and its target behind an HTTP API, and the dashboard, in one process.

Built only on the ledger's public API (:class:`~obliviate.ledger.Ledger`, :func:`~obliviate.ledger.apply`,
:func:`~obliviate.ledger.verify_certificate`). Endpoints (OpenAPI schema at ``/openapi.json``; no Swagger
page, whose scripts would come from a CDN); the scopes that may call each are in brackets:

- ``POST /requests`` [requester]: file a request; idempotent by ``client_key`` (or ``Idempotency-Key``)
  per token: 201 when filed, 200 with the stored request when the key was seen. Acknowledged only once
  durable (group commit, :mod:`obliviate.service.writer`);
- ``GET /requests/{id}`` and ``GET /requests?state=&overdue=&offset=&limit=`` [requester: its own
  only; operator, auditor: all]: a request with its lifecycle; the queue by deadline, paged;
- ``POST /apply`` [operator]: apply every due request to the target in one batch (one at a time);
- ``GET /status``, ``GET /batches``, ``GET /stats`` [operator, auditor]: counts, batch history, chart data;
- ``GET /certificates/{id}`` [requester: its own; operator, auditor]: the signed certificate;
- ``POST /verify`` [operator, auditor]: upload a certificate, get its checks (a certificate the ledger
  issued that passes against the model marks its request verified, as ``obliviate verify`` does);
- ``GET /audit`` [auditor, operator], ``GET /whoami`` and ``GET /report`` [any scope].

A requester asking for another requester's request gets 404, as for one that does not exist (whether
it exists is not revealed). Bad input (malformed JSON, an unknown field, an id of the wrong type, a
body over the size limit, a request id not of the ledger's form) is a 4xx with a one-line reason
and writes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import tempfile
import threading
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from obliviate.errors import CorruptCheckpointError, InvalidInputError, ObliviateError
from obliviate.ledger import (
    APPLIED,
    ApplyInProgressError,
    Ledger,
    LedgerDiskFullError,
    LedgerRequest,
    LedgerUnavailableError,
    UnknownRequestError,
    content_key,
)
from obliviate.ledger.store import is_dsn
from obliviate.service.gateway import Gateway, RateLimiter, scoped
from obliviate.service.models import FileRequest
from obliviate.service.tokens import AUDITOR, OPERATOR, REQUESTER, Token, TokenStore
from obliviate.service.writer import GroupCommitter

__all__ = ["ServiceConfig", "create_app", "ApiError", "STATIC"]

STATIC = Path(__file__).parent / "static"
REQUEST_ID_PATTERN = r"^req-[0-9a-f]{8,64}$"
MAX_REPORT_BYTES = 8 * 2**20


class ApiError(Exception):
    """An HTTP refusal with a one-line reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class ServiceConfig:
    """What one server serves. ``data``: the target's training set (a Dataset, ``digits`` or an .npz
    file); ``sisa``/``model``: the target (at
    most one; neither: the API files and reads but cannot apply, and verify checks signatures only)."""

    ledger: Path | str
    sisa: Path | None = None
    model: Path | None = None
    method: str = "finetune"
    settings: dict = field(default_factory=dict)
    data: Any = None
    test: Any = None
    seed: int = 0
    report: Path | None = None
    rate: float = 50.0
    burst: int = 100
    max_body: int = 1 << 20
    token_cache_seconds: float = 2.0
    max_group: int = 512
    #: A PostgreSQL ledger (``ledger`` a ``postgresql://`` DSN) keeps its key, certificate files and the
    #: service's tokens (``service.sqlite``) in this folder (``--ledger-files``); unused with a ledger folder.
    ledger_files: Path | None = None


def _one_line(text: object, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_of(exc: ObliviateError) -> int:
    if isinstance(exc, UnknownRequestError):
        return 404
    if isinstance(exc, ApplyInProgressError):
        return 409
    if isinstance(exc, LedgerDiskFullError):
        return 507
    if isinstance(exc, LedgerUnavailableError):
        return 503
    if isinstance(exc, CorruptCheckpointError):
        return 503
    return 400


class _Service:
    """The state one app holds: config, token store, group committer, per-thread ledger connections."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.location = config.ledger if is_dsn(config.ledger) else Path(config.ledger)
        with Ledger(self.location, files=config.ledger_files) as book:  # missing or damaged: an error before starting
            self.folder, self.shown = book.folder, book.location
        if config.sisa is not None and config.model is not None:
            raise InvalidInputError("give one target: --sisa FOLDER or --model FILE, not both.")
        self.tokens = TokenStore(self.folder, cache_seconds=config.token_cache_seconds)
        self.committer = GroupCommitter(
            self.location, self.tokens, max_group=config.max_group, files=config.ledger_files
        )
        self.limiter = RateLimiter(config.rate, config.burst)
        self._local = threading.local()
        self._apply_lock = threading.Lock()
        self._data = None
        self._test = None
        if config.sisa is not None or config.model is not None:
            target = self.target()  # a missing or unreadable target fails here, not at the first apply
            self._data = self._load(config.data or getattr(target, "data_name", None) or "digits")
            self._test = self._load(config.test) if config.test is not None else None

    @staticmethod
    def _load(spec):
        """A Dataset as given, ``digits``/``digits-test`` (the seed-0 split of sklearn's digits), or an .npz."""
        from obliviate.data import digits, from_npz
        from obliviate.data.dataset import Dataset

        if isinstance(spec, Dataset):
            return spec
        if spec in ("digits", "digits-test"):
            return digits().split(test_size=0.25, seed=0)[spec == "digits-test"]
        path = Path(str(spec))
        if path.suffix != ".npz":
            raise InvalidInputError(f"--data must be 'digits' or an .npz file with X, y (ids, owners); got {spec!r}.")
        return from_npz(path)

    def target(self):
        from obliviate.ledger import ModelTarget, SisaTarget

        if self.config.sisa is not None:
            return SisaTarget(self.config.sisa)
        if self.config.model is not None:
            return ModelTarget(
                self.config.model, method=self.config.method, settings=self.config.settings, seed=self.config.seed
            )
        return None

    def ledger(self) -> Ledger:
        """This thread's connection to the ledger (SQLite connections stay in the thread that made them)."""
        book = getattr(self._local, "ledger", None)
        if book is None:
            book = self._local.ledger = Ledger(self.location, files=self.config.ledger_files)
        return book

    # ------------------------------------------------------------------ views
    @staticmethod
    def owner_prefix(token: Token) -> str:
        return f"svc:{token.token_id}:"

    def may_read(self, token: Token, request: LedgerRequest) -> bool:
        if OPERATOR in token.scopes or AUDITOR in token.scopes:
            return True
        return request.key.startswith(self.owner_prefix(token))

    def request_json(self, r: LedgerRequest, token: Token, now: datetime) -> dict:
        filed_by, client_key = None, None
        if r.key.startswith("svc:"):
            filed_by, _, client_key = r.key[4:].partition(":")
        out = {
            "request_id": r.request_id,
            "ids": list(r.ids),
            "owners": list(r.owners),
            "note": r.note,
            "received": r.received.isoformat(),
            "deadline": r.deadline.isoformat(),
            "status": r.status,
            "overdue": r.overdue(now),
            "batch_id": r.batch_id,
            "reason": r.reason,
            "updated": r.updated.isoformat(),
            "client_key": client_key if client_key and not client_key.startswith("sha256:") else None,
        }
        if OPERATOR in token.scopes or AUDITOR in token.scopes:
            out["filed_by"] = filed_by  # None: filed outside the service (the CLI)
        return out

    def readable(self, token: Token, request_id: str) -> LedgerRequest:
        try:
            r = self.ledger().get(request_id)
        except UnknownRequestError:
            r = None
        if r is None or not self.may_read(token, r):
            raise ApiError(404, f"no request {request_id} that this token may read.")
        return r


async def token_of(request: Request) -> Token:
    """The token the gateway authenticated for this call (async: a plain ``def`` would cost a thread hop)."""
    return request.state.token


TokenDep = Annotated[Token, Depends(token_of)]


def create_app(config: ServiceConfig) -> FastAPI:
    """The FastAPI app for ``config`` (run it with uvicorn; use it in ``with TestClient(app)``)."""
    service = _Service(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # the objects of the imports (torch, numpy, the app) are moved out of the collector's view: a full
        # collection then scans only what requests allocate, not ~10^6 long-lived objects (a pause of
        # hundreds of ms under load otherwise; as in Instagram's gc.freeze(), Python docs "gc.freeze")
        gc.collect()
        gc.freeze()
        service.committer.start()
        try:
            yield
        finally:
            service.committer.stop()
            service.tokens.close()

    app = FastAPI(
        title="obliviate deletion requests",
        version="1",
        description="File, track and apply deletion requests; download and verify their signed certificates. "
        "Every call needs `Authorization: Bearer <token>` (`obliviate token create --scope ...`).",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger and ReDoc pages load their scripts from a CDN; the schema is local
        redoc_url=None,
        dependencies=[Depends(HTTPBearer(auto_error=False, description="A token from `obliviate token create`."))],
    )
    app.state.service = service
    app.add_middleware(
        Gateway, tokens=service.tokens, limiter=service.limiter, max_body=config.max_body, audit=service.committer.audit
    )

    # ------------------------------------------------------------------ errors: one line, JSON
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return JSONResponse({"detail": _one_line(exc.detail)}, status_code=exc.status)

    @app.exception_handler(ObliviateError)
    async def _obliviate_error(_request: Request, exc: ObliviateError):
        return JSONResponse({"detail": _one_line(exc)}, status_code=_status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": _one_line(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        kind = first.get("type", "")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if kind == "json_invalid":
            return JSONResponse({"detail": "malformed JSON in the body; send one JSON object."}, status_code=400)
        if kind == "extra_forbidden":
            fields = ", ".join(FileRequest.model_fields)
            detail = f"unknown field {where!r}; the fields are {fields}."
        elif kind == "missing" and where == "body":
            detail = "no body; send a JSON object."
        else:
            detail = f"{where}: {first.get('msg', 'invalid')}"
            if "input" in first and kind not in ("missing",):
                detail += f" (got {json.dumps(jsonable_encoder(first['input']))[:60]})"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        return JSONResponse({"detail": _one_line(detail + more)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):  # pragma: no cover - a bug, not an input
        return JSONResponse(
            {"detail": _one_line(f"internal error ({type(exc).__name__}); the server log has the details.")},
            status_code=500,
        )

    # ------------------------------------------------------------------ dashboard (public files)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    @app.get("/dashboard", include_in_schema=False)
    def dashboard():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ API
    @app.get("/whoami", summary="The calling token's id, scopes and expiry")
    @scoped(REQUESTER, OPERATOR, AUDITOR)
    def whoami(token: TokenDep) -> dict:
        return token.to_dict()

    @app.post("/requests", status_code=201, summary="File a deletion request (idempotent by client key)")
    @scoped(REQUESTER)
    async def file_request(body: FileRequest, request: Request, token: TokenDep) -> JSONResponse:
        from obliviate.request import ForgetRequest

        header_key = request.headers.get("idempotency-key")
        if header_key is not None and body.client_key is not None and header_key != body.client_key:
            raise ApiError(400, "the Idempotency-Key header and client_key differ; send one of them.")
        client_key = body.client_key if body.client_key is not None else header_key
        if client_key is not None:
            try:
                FileRequest.model_validate({"client_key": client_key})  # the header meets the body's rules
            except ValidationError as exc:
                raise ApiError(422, "Idempotency-Key: printable ASCII without spaces, at most the key length.") from exc
        if body.deadline is not None and body.deadline_days is not None:
            raise ApiError(422, "give deadline or deadline_days, not both.")
        if not body.ids and not body.owners:
            raise ApiError(422, "name what to delete: ids and/or owners.")
        days = 30 if body.deadline_days is None else body.deadline_days
        deadline = body.deadline if body.deadline is not None else timedelta(days=days)
        forget = ForgetRequest(body.ids or None, owners=body.owners or None, deadline=deadline, note=body.note)
        key = _Service.owner_prefix(token) + (client_key or content_key(forget.ids, forget.owners))
        stored, created = await asyncio.wrap_future(service.committer.file(forget, key))
        request.state.audit = f"{'filed' if created else 'already filed'} {stored.request_id}"
        return JSONResponse(
            {**service.request_json(stored, token, datetime.now(UTC)), "created": created},
            status_code=201 if created else 200,
        )

    @app.get("/requests/{request_id}", summary="One request and its lifecycle")
    @scoped(REQUESTER, OPERATOR, AUDITOR)
    def get_request(
        request_id: Annotated[str, PathParam(pattern=REQUEST_ID_PATTERN)], request: Request, token: TokenDep
    ) -> dict:
        r = service.readable(token, request_id)
        request.state.audit = f"read {request_id}"
        book = service.ledger()
        history = [
            {
                "at": t.at.isoformat(),
                "from": t.from_status,
                "to": t.to_status,
                "batch_id": t.batch_id,
                "detail": t.detail,
            }
            for t in book.history(request_id)
        ]
        return {
            **service.request_json(r, token, datetime.now(UTC)),
            "history": history,
            "certificate": book.certificate(request_id) is not None,
        }

    @app.get("/requests", summary="The queue by deadline, paged (a requester sees its own requests)")
    @scoped(REQUESTER, OPERATOR, AUDITOR)
    def list_requests(
        token: TokenDep,
        state: Annotated[Literal["received", "scheduled", "applied", "verified", "failed"] | None, Query()] = None,
        overdue: Annotated[bool, Query()] = False,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict:
        found = service.ledger().requests(status=state, overdue=overdue)
        if not (OPERATOR in token.scopes or AUDITOR in token.scopes):
            prefix = _Service.owner_prefix(token)
            found = [r for r in found if r.key.startswith(prefix)]
        now = datetime.now(UTC)
        page = found[offset : offset + limit]
        return {
            "items": [service.request_json(r, token, now) for r in page],
            "total": len(found),
            "offset": offset,
            "next_offset": offset + limit if offset + limit < len(found) else None,
        }

    @app.post("/apply", summary="Apply every due request in one batch (operator)")
    @scoped(OPERATOR)
    def apply_due(request: Request) -> dict:
        from obliviate.ledger import apply

        target = service.target()
        if target is None:
            raise ApiError(409, "this server has no target to apply to; restart it with --sisa FOLDER or --model FILE.")
        if not service._apply_lock.acquire(blocking=False):
            raise ApiError(409, "an apply is already running on this server; wait for it to finish.")
        try:
            outcome = apply(service.ledger(), target, service._data, test=service._test, seed=config.seed)
        finally:
            service._apply_lock.release()
        batches = [
            {
                "batch_id": b.batch_id,
                "resumed": b.resumed,
                "applied": [r.request_id for r, _, _ in b.applied],
                "failed": [{"request_id": r.request_id, "reason": _one_line(why)} for r, why in b.failed],
                "seconds": round(b.seconds, 3),
                "method": b.deletion.method if b.deletion else None,
                "shards_rebuilt": list(b.deletion.shards_rebuilt) if b.deletion else [],
            }
            for b in outcome.batches
        ]
        request.state.audit = f"applied {len(outcome.applied)}, failed {len(outcome.failed)}"
        return {
            "nothing_due": outcome.nothing_due,
            "batches": batches,
            "applied": len(outcome.applied),
            "failed": [
                {"request_id": r.request_id, "reason": _one_line(why)} for r, why in outcome.failed_before_scheduling
            ],
        }

    @app.get("/status", summary="Counts per state, overdue, next deadline, signing key, group commit")
    @scoped(OPERATOR, AUDITOR)
    def status() -> dict:
        book = service.ledger()
        upcoming = book.next_deadline()
        target = config.sisa or config.model
        return {
            "ledger": service.shown,
            "counts": book.counts(),
            "overdue": len(book.requests(overdue=True)),
            "next_deadline": (
                {"request_id": upcoming.request_id, "deadline": upcoming.deadline.isoformat()} if upcoming else None
            ),
            "signing_key": book.get_meta("signing_key_fingerprint"),
            "pending_batches": sorted(book.pending_batches()),
            "target": {"kind": "sisa" if config.sisa else "model", "path": str(target)} if target else None,
            "group_commit": {
                "groups": service.committer.groups,
                "filed": service.committer.filed,
                "largest_group": service.committer.largest_group,
                "queued": service.committer.depth,
            },
        }

    @app.get("/batches", summary="Batch history, newest first")
    @scoped(OPERATOR, AUDITOR)
    def batches() -> list[dict]:
        book = service.ledger()
        found: dict[str, dict] = {}
        for t in book.history():
            if not t.batch_id:
                continue
            b = found.setdefault(
                t.batch_id,
                {
                    "batch_id": t.batch_id,
                    "scheduled_at": None,
                    "finished_at": None,
                    "requests": [],
                    "applied": 0,
                    "failed": 0,
                },
            )
            if t.to_status == "scheduled":
                b["scheduled_at"] = b["scheduled_at"] or t.at.isoformat()
                if t.request_id not in b["requests"]:
                    b["requests"].append(t.request_id)
            elif t.to_status in (APPLIED, "failed"):
                b["finished_at"] = t.at.isoformat()
                b["applied" if t.to_status == APPLIED else "failed"] += 1
        for body in book.certificates().values():
            cert = json.loads(body)
            b = found.get(cert.get("batch_id"))
            if b is not None and "method" not in b:
                b["method"] = cert.get("method")
                b["guarantee"] = cert.get("guarantee")
                b["shards_rebuilt"] = (cert.get("rebuilt") or {}).get("shards")
                b["seconds"] = (cert.get("seconds") or {}).get("batch")
        return sorted(found.values(), key=lambda b: b["scheduled_at"] or "", reverse=True)

    @app.get("/stats", summary="Chart data: requests per day, time to apply against the deadline")
    @scoped(OPERATOR, AUDITOR)
    def stats() -> dict:
        book = service.ledger()
        requests = book.requests()
        per_day = Counter(r.received.astimezone(UTC).date().isoformat() for r in requests)
        applied_at: dict[str, datetime] = {}
        for t in book.history():
            if t.to_status == APPLIED and t.request_id not in applied_at:
                applied_at[t.request_id] = t.at
        times = []
        for r in requests:
            if r.request_id in applied_at:
                at = applied_at[r.request_id]
                times.append(
                    {
                        "request_id": r.request_id,
                        "days_taken": (at - r.received).total_seconds() / 86400,
                        "days_allowed": (r.deadline - r.received).total_seconds() / 86400,
                        "late": at > r.deadline,
                    }
                )
        return {"per_day": dict(sorted(per_day.items())), "apply_times": times}

    @app.get("/certificates/{request_id}", summary="The signed certificate of an applied request")
    @scoped(REQUESTER, OPERATOR, AUDITOR)
    def certificate(
        request_id: Annotated[str, PathParam(pattern=REQUEST_ID_PATTERN)], request: Request, token: TokenDep
    ) -> JSONResponse:
        service.readable(token, request_id)
        body = service.ledger().certificate(request_id)
        if body is None:
            raise ApiError(404, f"request {request_id} has no certificate yet (it is issued when it is applied).")
        request.state.audit = f"certificate {request_id}"
        return JSONResponse(json.loads(body))

    @app.post(
        "/verify",
        summary="Upload a certificate, get its checks",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object", "description": "A certificate."}}},
            }
        },
    )
    @scoped(OPERATOR, AUDITOR)
    async def verify(request: Request) -> dict:
        raw = await request.body()
        try:
            cert = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, "the body is not JSON; upload the certificate file as it was issued.") from None
        if not isinstance(cert, dict):
            raise ApiError(400, f"a certificate is a JSON object, not a {type(cert).__name__}.")
        result = await run_in_threadpool(_verify, cert)
        request.state.audit = f"verify {result['request_id']}: {'ok' if result['ok'] else 'FAILED'}"
        return result

    def _verify(cert: dict) -> dict:
        from obliviate.ledger import verify_certificate

        with tempfile.TemporaryDirectory(prefix="obliviate-verify-") as tmp:
            path = Path(tmp) / "certificate.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(cert, fh)
            result = verify_certificate(path, service.target(), ledger=service.ledger())
        return {
            "request_id": result.request_id,
            "ok": result.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks],
            "model_checked": result.model_checked,
            "issued_by_ledger": result.issued_by_ledger,
            "marked_verified": result.marked_verified,
        }

    @app.get("/audit", summary="The service's audit trail, newest first")
    @scoped(AUDITOR, OPERATOR)
    def audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 200, before: Annotated[int | None, Query(ge=1)] = None
    ) -> list[dict]:
        return service.tokens.audit(limit=limit, before=before)

    @app.get("/report", summary="The latest benchmark report, if the server was given one")
    @scoped(REQUESTER, OPERATOR, AUDITOR)
    def report() -> dict:
        path = _latest_report(config.report)
        if path is None:
            return {"name": None, "kind": None, "text": None}
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise ApiError(413, f"the report {path.name} is over {MAX_REPORT_BYTES} bytes; open it from disk.")
        kind = "html" if path.suffix.lower() in (".html", ".htm") else "text"
        return {
            "name": path.name,
            "kind": kind,
            "modified": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(),
            "text": path.read_text(encoding="utf-8", errors="replace"),
        }

    return app


def _latest_report(where: Path | None) -> Path | None:
    """``where`` if it is a file; the newest ``report.html`` (else ``RESULTS.md``) under it if a folder."""
    if where is None:
        return None
    where = Path(where)
    if where.is_file():
        return where
    if not where.is_dir():
        return None
    found = [p for p in where.rglob("report.html") if p.is_file()][:1000]
    found = found or [p for p in where.rglob("RESULTS.md") if p.is_file()][:1000]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
