"""Sign-in and sign-out, the caller's own account, API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api import deps
from api.schemas import (
    Id,
    PasswordChange,
    SignedIn,
    SignIn,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    UserPublic,
    from_us,
)
from vms.access import auth

public = APIRouter(prefix="/api/auth", tags=["auth"])
router = APIRouter(prefix="/api/auth", tags=["auth"], dependencies=[Depends(deps.any_principal)])


def _set_cookies(request: Request, response: Response, issued: auth.Issued, max_age_s: int) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(deps.SESSION_COOKIE, issued.secret, max_age=max_age_s, httponly=True, samesite="strict",
                        secure=secure, path="/")
    response.set_cookie(deps.CSRF_COOKIE, issued.csrf_token, max_age=max_age_s, httponly=False, samesite="strict",
                        secure=secure, path="/")


def _clear_cookies(response: Response) -> None:
    for name in (deps.SESSION_COOKIE, deps.CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict", httponly=name == deps.SESSION_COOKIE)


def _me(p: auth.Principal) -> UserPublic:
    return UserPublic(id=p.user_id, name=p.name, role=p.role, must_change_password=p.must_change_password)


@public.post("/signin", response_model=SignedIn, summary="Sign in with name and password (sets the session cookie)",
             responses={401: {"description": "unknown name, wrong password, locked or disabled account: one answer"},
                        429: {"description": "too many failed sign-ins from this client address"}})
async def sign_in(body: SignIn, request: Request, response: Response, app: deps.ApplianceDep) -> SignedIn:
    issued = await run_in_threadpool(auth.sign_in, app, body.name, body.password, client=deps.client_address(request))
    _set_cookies(request, response, issued, app.config.api.session_hours * 3600)
    return SignedIn(user=_me(issued.principal), csrf_token=issued.csrf_token, expires_at=from_us(issued.expires_us))


@router.post("/signout", status_code=204, summary="End this session (or revoke the bearer token used)")
def sign_out(principal: deps.AnyPrincipal, app: deps.ApplianceDep) -> Response:
    auth.sign_out(app, principal)
    response = Response(status_code=204)
    _clear_cookies(response)
    return response


@router.get("/me", response_model=UserPublic, summary="Who am I")
async def me(principal: deps.AnyPrincipal) -> UserPublic:  # nothing blocking: no worker thread
    return _me(principal)


@router.post("/password", status_code=204, summary="Change my password (other sessions and tokens are revoked)")
def change_password(body: PasswordChange, principal: deps.AnyPrincipal, app: deps.ApplianceDep) -> Response:
    auth.change_password(app, principal, body.current_password, body.new_password)
    return Response(status_code=204)


def _token(row) -> TokenPublic:
    return TokenPublic(id=row.id, label=row.label, created_at=from_us(row.created_us),
                       expires_at=from_us(row.expires_us), last_used_at=from_us(row.last_used_us))


@router.get("/tokens", response_model=list[TokenPublic], summary="My API tokens (active ones)")
def list_tokens(principal: deps.CurrentUser, app: deps.ApplianceDep) -> list[TokenPublic]:
    return [_token(r) for r in auth.list_tokens(app, principal)]


@router.post("/tokens", response_model=TokenIssued, status_code=201, summary="Create an API token (shown once)")
def create_token(body: TokenCreate, principal: deps.CurrentUser, app: deps.ApplianceDep) -> TokenIssued:
    issued = auth.create_token(app, principal, label=body.label, days=body.days)
    now = app.clock.now_us()
    return TokenIssued(id=issued.principal.credential_id, label=body.label, created_at=from_us(now),
                       expires_at=from_us(issued.expires_us), last_used_at=None, token=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: Id, principal: deps.CurrentUser, app: deps.ApplianceDep) -> Response:
    auth.revoke_token(app, principal, token_id)
    return Response(status_code=204)
