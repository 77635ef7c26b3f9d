"""Errors as RFC 9457 problem details (``application/problem+json``).

One handler maps :class:`vms.core.errors.DomainError` kinds to HTTP status; request
validation errors become 422 naming each field (``body.start``,
``query.limit``) and what is allowed, without echoing the input (it may be a
password).  Anything unexpected is a 500 whose body says nothing internal; the
log has the traceback (never footage, keys or passwords: those are not in
exception messages).

A domain error with a message id (``DomainError.key``) also carries it as ``message_id`` with its
``params``, and ``localized_detail`` in the language ``Accept-Language`` prefers (Danish or English; Danish
when it names neither), the same text the web pages show; ``detail`` stays English (docs/api.md).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import i18n
from api.schemas import Invalid
from vms.access.auth import LockedOut
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
STATUS = {
    Kind.INVALID: 422,
    Kind.NOT_FOUND: 404,
    Kind.FORBIDDEN: 403,
    Kind.CONFLICT: 409,
    Kind.PRECONDITION: 409,
    Kind.UNAUTHENTICATED: 401,
}
TITLES = {
    400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Too large", 416: "Range not satisfiable", 422: "Invalid input",
    429: "Too many attempts", 500: "Internal error",
}


def problem(status: int, detail: str, *, kind: str | None = None, instance: str = "", headers=None,
            **extra) -> JSONResponse:
    body = {"type": f"/problems/{kind or status}", "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _loc(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# FastAPI's own words for a JSON body it cannot decode (not UTF-8, nested too deeply): say neither what is
# wrong nor what is allowed; the cause it chains says which
UNREADABLE_BODY = "There was an error parsing the body"


def unreadable_body(cause: BaseException | None) -> tuple[str, str]:
    """(message id, English text) for why FastAPI could not decode a JSON body."""
    if isinstance(cause, UnicodeError):
        return N_("invalid.body_not_utf8"), ("the request body is not UTF-8 text; send JSON encoded in UTF-8 "
                                             "(Content-Type: application/json)")
    if isinstance(cause, RecursionError):
        return N_("invalid.body_too_deep"), ("the request body is JSON nested too deeply; no operation takes "
                                             "more than a few levels")
    return N_("invalid.body_unreadable"), ("the request body could not be read; send one JSON value encoded in "
                                           "UTF-8 (Content-Type: application/json)")


NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type"}


# pydantic's error types -> our message ids (api/locale: invalid.*); ctx names -> our params
PYDANTIC_KEYS = {
    "missing": N_("invalid.missing"), "json_invalid": N_("invalid.json"), "extra_forbidden": N_("invalid.extra"),
    "string_too_long": N_("invalid.too_long"), "string_too_short": N_("invalid.too_short"),
    "too_long": N_("invalid.too_many"), "too_short": N_("invalid.too_few"),
    "greater_than_equal": N_("invalid.ge"), "greater_than": N_("invalid.gt"),
    "less_than_equal": N_("invalid.le"), "less_than": N_("invalid.lt"),
    "int_parsing": N_("invalid.integer"), "int_type": N_("invalid.integer"), "int_from_float": N_("invalid.integer"),
    "float_parsing": N_("invalid.number"), "float_type": N_("invalid.number"), "finite_number": N_("invalid.number"),
    "bool_type": N_("invalid.bool"), "bool_parsing": N_("invalid.bool"), "string_type": N_("invalid.text"),
    "string_pattern_mismatch": N_("invalid.pattern"), "literal_error": N_("invalid.choice"),
    "enum": N_("invalid.choice"), "datetime_type": N_("invalid.time_format"),
    "datetime_parsing": N_("invalid.time_format"), "datetime_from_date_parsing": N_("invalid.time_format"),
    "timezone_aware": N_("invalid.time_zone"), "model_type": N_("invalid.object"), "dict_type": N_("invalid.object"),
    "model_attributes_type": N_("invalid.object"), "list_type": N_("invalid.list"),
}
CTX_PARAMS = {"max_length": "max", "min_length": "min", "ge": "limit", "gt": "limit", "le": "limit", "lt": "limit",
              "expected": "expected"}


def validation_errors(exc: RequestValidationError, t=None) -> list[dict]:
    """One entry per problem: ``field`` (``body.start``), ``message`` (English) and, with a translator, ``localized``
    (the reader's language) and ``message_id``.  The input itself is never echoed (it may be a password)."""
    out = []
    for err in exc.errors():
        kind, ctx = err.get("type"), err.get("ctx") or {}
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        loc = tuple(err.get("loc", ()))
        if kind == "json_invalid":  # loc is ("body", character offset)
            at = f" (at character {loc[1]})" if len(loc) > 1 and isinstance(loc[1], int) else ""
            msg, loc = f"the request body is not valid JSON{at}", ("body",)
        elif kind == "missing":
            msg = "this field is required"
        elif kind in NOT_AN_OBJECT:
            msg = ("the request body must be a JSON object (Content-Type: application/json)" if loc == ("body",)
                   else "must be a JSON object")
        row = {"field": _loc(loc), "message": msg}
        if t is not None:
            own = ctx.get("error")
            if isinstance(own, Invalid):
                key, params = own.key, own.params
            else:
                key = PYDANTIC_KEYS.get(kind, N_("invalid.other"))
                params = {CTX_PARAMS[k]: v for k, v in ctx.items() if k in CTX_PARAMS}
            row["message_id"] = key
            row["localized"] = t.format(key, {k: str(v) for k, v in params.items()}, default=msg)
        out.append(row)
    return out


def _person_field(t, field: str) -> str:
    """``body.purpose`` -> "Formål" where the catalog names the field (``field.*``, as the pages do), else the
    path without where the request carried it (``body.redaction.zones[0].x`` -> ``redaction.zones[0].x``)."""
    head, _, rest = field.partition(".")
    rest = rest if head in ("body", "query", "path", "header", "cookie") and rest else field
    return i18n.words(t, {"field": rest})["field"]


def localized(request: Request, exc: DomainError, headers: dict) -> dict:
    """The message id, its params and the text in the reader's language (nothing for an error without an id)."""
    t = i18n.translator(i18n.accept_language(request.headers.get("accept-language")))
    if not exc.key or not t.has(exc.key):
        return {}
    headers["Content-Language"] = t.lang
    return {"message_id": exc.key, "params": exc.params, "localized_detail": i18n.error_text(t, exc)}


PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "required": ["type", "title", "status", "detail"],
    "description": "RFC 9457 problem details; `detail` (English) says what is wrong and what is allowed",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "message_id": {"type": "string"}, "params": {"type": "object"}, "localized_detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"], "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}, "message_id": {"type": "string"},
            "localized": {"type": "string"}}}},
    },
}


def document(app: FastAPI) -> None:
    """The OpenAPI schema says what the handlers below send: every 4xx and 5xx is ``application/problem+json``
    (not FastAPI's default ``HTTPValidationError`` in ``application/json``)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if status[:1] in ("4", "5"):
                        response["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        components["Problem"] = PROBLEM_SCHEMA
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def install(app: FastAPI) -> None:
    document(app)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        if isinstance(exc, LockedOut):
            return problem(429, exc.message, kind="locked-out", instance=request.url.path,
                           headers={"Retry-After": str(exc.retry_after_s)})
        status = STATUS[exc.kind]
        headers = {"WWW-Authenticate": 'Bearer realm="vms"'} if status == 401 else {}
        extra = localized(request, exc, headers)  # first: it adds Content-Language to the headers
        return problem(status, exc.message, kind=exc.kind.value, instance=request.url.path, headers=headers or None,
                       **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        t = i18n.translator(i18n.accept_language(request.headers.get("accept-language")))
        errors = validation_errors(exc, t)
        first = errors[0] if errors else {"field": "request", "message": "invalid", "localized": t("invalid.other")}
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        text = first["localized"]
        local = t.format(N_("invalid.field"), {"field": _person_field(t, first["field"]),
                                               "problem": text[:1].upper() + text[1:]})
        if len(errors) > 1:
            local += " " + t.format(N_("invalid.more"), {"n": len(errors) - 1})
        return problem(422, f"{first['field']}: {first['message']}{more}", kind=Kind.INVALID.value,
                       instance=request.url.path, errors=errors, headers={"Content-Language": t.lang},
                       message_id=first.get("message_id", "invalid.other"), localized_detail=local)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        if exc.status_code == 400 and detail == UNREADABLE_BODY:
            key, text = unreadable_body(exc.__cause__)
            t = i18n.translator(i18n.accept_language(request.headers.get("accept-language")))
            return problem(400, text, kind=Kind.INVALID.value, instance=request.url.path,
                           headers={"Content-Language": t.lang}, message_id=key, localized_detail=t(key))
        return problem(exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        path = request.scope.get("path", "")  # not request.url: building it can fail on the very input that failed
        log.error("unexpected %s on %s %s", exc.__class__.__name__, request.method, path, exc_info=exc)
        return problem(500, "the appliance failed to handle this request; the error is in its log", instance=path)
