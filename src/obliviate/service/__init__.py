"""Deletion requests as a service: an HTTP API with scoped tokens and a dashboard (``obliviate serve``).

    from obliviate.service import ServiceConfig, TokenStore, create_app
    token, _ = TokenStore("obliviate-ledger").create("requester")
    app = create_app(ServiceConfig(ledger=Path("obliviate-ledger"), sisa=Path("sisa/")))

Needs the ``service`` extra (FastAPI, uvicorn). See :mod:`obliviate.service.app` for the endpoints,
:mod:`obliviate.service.gateway` for what every call passes, :mod:`obliviate.service.writer` for
group commit and :mod:`obliviate.service.tokens` for tokens and the audit trail.
"""

from obliviate.service.app import ServiceConfig, create_app
from obliviate.service.tokens import AUDITOR, OPERATOR, REQUESTER, SCOPES, Token, TokenStore

__all__ = ["ServiceConfig", "create_app", "TokenStore", "Token", "SCOPES", "REQUESTER", "OPERATOR", "AUDITOR"]
