"""The health page (administrators and auditors, ``Action.OPS_READ``): the doctor's findings, the retention
report and the disk forecast in words, the problems mailed about, and the mails that failed (vms/ops/health.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.web.render import lang_of, render
from api.web.session import allow
from vms.access import policy
from vms.access.auth import Principal
from vms.ops import forecast
from vms.ops.health import health

router = APIRouter(include_in_schema=False)
OpsReader = Annotated[Principal, Depends(allow(policy.Action.OPS_READ))]


@router.get("/health")
def health_page(request: Request, principal: OpsReader):
    app = request.app.state.appliance
    facts = health(app)
    words = forecast.words(facts.forecast, lang_of(request)) if facts.forecast is not None else ""
    return render(request, "health.html", {"h": facts, "forecast_words": words, "now": app.clock.now_us()})
