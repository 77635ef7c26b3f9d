"""Which controls a page shows: the access policy asked for this user and this object.

Every page gets ``can(action, obj=None, change="")`` and ``refusal(action, obj=None, change="")`` in its
context (api/web/render.py).  A template shows a button, link or form only when ``can`` says yes, and where a
person would otherwise wonder it says who can instead (``who(action)``: the roles the policy's table names,
in the reader's language, or the refusal's own key, e.g. ``refused.four_eyes``).  The answers are the
policy's (vms/access/policy.py), the same functions the routes and services enforce, so a control shown is a
control that works:

========================  ==========================================================================
object                    rule asked
========================  ==========================================================================
none                      :func:`policy.role_refusal` (the table)
a ticket                  :func:`policy.ticket_refusal` at the appliance's now (four eyes, states,
                          the access window, export tickets; ``delivery.manage``: exported tickets)
a delivery link           :func:`policy.link_refusal` (only a live link is revoked)
an export job             the role rule, and only a queued or running job is cancelled
a change to an account    :func:`policy.confirm_refusal` (never the requester, never the account's owner)
a user account            the role rule and :func:`policy.account_refusal` for ``change`` (role, disable,
                          enable, reset): nobody changes their own account on the administrator's page
========================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from vms.access import account_changes, policy, tickets
from vms.access.auth import Principal
from vms.core.errors import Kind
from vms.core.i18n import N_
from vms.evidence import delivery, export_jobs

JOB_ENDED = policy.Refusal("the export has ended; only a queued or running export is cancelled",
                           key=N_("refused.job_ended"), kind=Kind.CONFLICT)


class Controls:
    """The policy's answers for one principal at one moment (built per page)."""

    def __init__(self, principal: Principal | None, now_us: int):
        self.principal, self.now_us = principal, now_us

    def refusal(self, action: str, obj=None, change: str = "") -> policy.Refusal | None:
        """Why the principal may not do ``action`` (on ``obj``); None: they may."""
        p = self.principal
        if p is None:
            return policy.Refusal("sign in first", key=N_("refused.signed_out"), kind=Kind.UNAUTHENTICATED)
        act = policy.Action(action)
        if obj is None:
            return policy.role_refusal(p.role, act)
        if isinstance(obj, tickets.TicketView):
            scope = policy.TicketScope(obj.id, obj.state, obj.requester_id, obj.cameras, obj.start_us, obj.end_us,
                                       obj.access_until_us, obj.action)
            return policy.ticket_refusal(p.role, p.user_id, act, scope, now_us=self.now_us)
        if isinstance(obj, delivery.DeliveryView):
            return policy.link_refusal(p.role, obj.state)
        if isinstance(obj, export_jobs.ExportJob):
            return policy.role_refusal(p.role, act) or (None if obj.state in ("queued", "running") else JOB_ENDED)
        if isinstance(obj, account_changes.AccountChange):
            return policy.confirm_refusal(p.role, p.name, obj.requester, obj.user)
        if hasattr(obj, "must_change_password"):  # a user account (a row of the user list)
            return policy.role_refusal(p.role, act) or policy.account_refusal(p.user_id, obj.id, change)
        raise TypeError(f"the policy has no rule for {type(obj).__name__} objects")

    def can(self, action: str, obj=None, change: str = "") -> bool:
        return self.refusal(action, obj, change) is None


def who(t: Callable[..., str], action: str) -> str:
    """The roles the policy's table allows ``action``, in the reader's language ("leder", "leder eller
    operatør")."""
    names = [t("role." + r) for r in policy.roles_for(policy.Action(action))]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " " + t("word.or") + " " + names[-1]
