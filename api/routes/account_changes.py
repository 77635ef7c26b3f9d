"""Four eyes on accounts: the changes that wait for a second person, confirmed or rejected by another
administrator or the auditor (vms.access.account_changes; the rules are the policy's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api import deps
from api.schemas import AccountChangePublic, Decision, from_us
from vms.access import account_changes, policy

router = APIRouter(prefix="/api/account-changes", tags=["users"],
                   dependencies=[Depends(deps.require(policy.Action.ACCOUNT_CONFIRM))])
Seq = Annotated[int, Path(ge=1, le=2**62, description="the audit entry that records the change")]
Confirmer = Annotated[deps.Principal, Depends(deps.require(policy.Action.ACCOUNT_CONFIRM))]


def public(c: account_changes.AccountChange) -> AccountChangePublic:
    return AccountChangePublic(entry=c.seq, at=from_us(c.at_us), requester=c.requester, change=c.change, user=c.user,
                               description=c.describe(), made_without_confirmation=c.made)


@router.get("", response_model=list[AccountChangePublic],
            summary="Changes to accounts waiting for a second person (and ones made without one, flagged)")
def open_changes(app: deps.ApplianceDep) -> list[AccountChangePublic]:
    return [public(c) for c in account_changes.open_changes(app.engine)]


@router.post("/{entry}/confirm", response_model=AccountChangePublic,
             summary="Confirm a change (not the person who asked for it, not the account's owner)")
def confirm(entry: Seq, body: Decision, principal: Confirmer, app: deps.ApplianceDep) -> AccountChangePublic:
    return public(account_changes.decide(app.engine, app.clock, principal.actor, entry, confirm=True,
                                         reason=body.reason))


@router.post("/{entry}/reject", response_model=AccountChangePublic,
             summary="Reject a change (a change made without confirmation is undone)")
def reject(entry: Seq, body: Decision, principal: Confirmer, app: deps.ApplianceDep) -> AccountChangePublic:
    return public(account_changes.decide(app.engine, app.clock, principal.actor, entry, confirm=False,
                                         reason=body.reason))
