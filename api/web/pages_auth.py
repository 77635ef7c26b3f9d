"""Sign-in, sign-out, change own password, language, and the home page per role.

Sign-in is the only form without a session; it carries a double-submit token
(a random ``vms_signin`` cookie, SameSite=Strict, that the form must echo) so
another site cannot sign a browser in behind its user's back.  The session
cookies are the API's (HttpOnly session, CSRF token derived from it).
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from api import deps
from api.web import i18n
from api.web.render import LANG_COOKIE, error_text, lang_of, render
from api.web.session import FormDep, User, form_fields, safe_next, status_of
from vms.access import auth, policy, users
from vms.access.auth import AddressLockedOut
from vms.core.errors import DomainError

router = APIRouter(include_in_schema=False)
SIGNIN_COOKIE = "vms_signin"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _signin_page(request: Request, *, next_url: str, name: str = "", error: str = "", status: int = 200):
    token = secrets.token_urlsafe(24)
    response = render(request, "signin.html", {"next": next_url, "name": name, "error": error,
                                               "signin_token": token}, status=status)
    response.set_cookie(SIGNIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=_secure(request), path="/signin")
    return response


@router.get("/signin")
def signin_form(request: Request, next: str = "/"):  # noqa: A002 - the query parameter's name
    return _signin_page(request, next_url=safe_next(next))


@router.post("/signin")
async def signin(request: Request):
    form = await form_fields(request)  # control characters: 422 before any lookup
    name, password = form.get("name").strip(), form.get("password")
    next_url = safe_next(str(form.get("next", "/")))
    t = i18n.translator(lang_of(request))
    cookie, echoed = request.cookies.get(SIGNIN_COOKIE, ""), str(form.get("signin_token", ""))
    if not cookie or not auth.same_secret(cookie, echoed):
        return _signin_page(request, next_url=next_url, name=name, error=t("signin.stale"), status=400)
    if not name or not password or len(name) > 64 or len(password) > 256:
        return _signin_page(request, next_url=next_url, name=name[:64], error=t("signin.missing"), status=422)
    try:
        issued = await run_in_threadpool(auth.sign_in, request.app.state.appliance, name, password,
                                         client=deps.client_address(request))
    except AddressLockedOut as exc:  # this address guessed too often: says nothing about the name
        return _signin_page(request, next_url=next_url, name=name,
                            error=t("signin.address_locked").format(seconds=exc.retry_after_s), status=429)
    except DomainError:  # unknown name, wrong password, locked or disabled account: one answer
        return _signin_page(request, next_url=next_url, name=name, error=t("signin.wrong"), status=401)
    target = "/password" if issued.principal.must_change_password else (
        next_url if next_url != "/" else policy.home_page(issued.principal.role))
    response = RedirectResponse(target, status_code=303)
    max_age = request.app.state.appliance.config.api.session_hours * 3600
    response.set_cookie(deps.SESSION_COOKIE, issued.secret, max_age=max_age, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")
    response.set_cookie(deps.CSRF_COOKIE, issued.csrf_token, max_age=max_age, httponly=False, samesite="strict",
                        secure=_secure(request), path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
def signout(request: Request, principal: User):
    auth.sign_out(request.app.state.appliance, principal)
    response = RedirectResponse("/signin", status_code=303)
    for name in (deps.SESSION_COOKIE, deps.CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict", httponly=name == deps.SESSION_COOKIE)
    return response


@router.get("/")
def home(principal: User):
    return RedirectResponse(policy.home_page(principal.role), status_code=303)


@router.get("/password")
def password_form(request: Request, principal: User, done: str = ""):
    return render(request, "password.html", {"done": done == "1"})


@router.post("/password")
def change_password(request: Request, principal: User, form: FormDep):
    t = i18n.translator(lang_of(request))
    current, new, again = form.get("current_password"), form.get("new_password"), form.get("new_password_again")
    if new != again:
        return render(request, "password.html", {"error": t("password.mismatch")}, status=422)
    try:
        auth.change_password(request.app.state.appliance, principal, current, new)
    except DomainError as exc:
        return render(request, "password.html", {"error": error_text(request, exc)}, status=status_of(exc))
    return RedirectResponse("/password?done=1", status_code=303)


@router.get("/lang/{code}")
async def set_language(code: str, request: Request, next: str = "/"):  # noqa: A002
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=_secure(request), path="/")
        try:  # signed in (the session cookie is SameSite=Strict: only from this site): mails follow the choice
            principal = await deps.any_principal(request)
        except DomainError:
            return response
        await run_in_threadpool(users.remember_language, request.app.state.appliance.engine, principal.user_id, code)
    return response
