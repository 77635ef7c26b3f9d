"""The health page's facts (administrators and auditors): the doctor's findings, the retention report, the disk
forecast, the problems mailed about and the mails that could not be sent.

:func:`health` reads; it changes nothing and shows no footage.  The doctor runs as ``vms doctor`` does, without
probing the cameras (a page must not wait for RTSP time-outs; the recorder's own state of each camera is in the
retention report and on the cameras page), each time the page is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import outbox as store
from vms.ops import doctor, forecast
from vms.retention import rules


@dataclass(frozen=True)
class Health:
    findings: list[doctor.Finding]
    retention: rules.RetentionReport | None
    forecast: forecast.Forecast | None
    problems: list[store.ProblemRow]
    failed_mails: list[store.MailRow]
    mail_counts: dict[str, int]
    mail_configured: bool


def health(app) -> Health:
    findings = doctor.run(app.config_path, skip=frozenset({"cameras"}))
    try:
        report = rules.build_report(app.engine, app.config, app.clock.now_us())
    except Exception:  # the doctor's database finding says why
        report = None
    with Session(app.engine) as s:
        problems = store.problems(s, limit=50)
        failed = store.troubled(s, limit=50)
        counts = store.counts(s)
    return Health(findings, report, forecast.measure(app), problems, failed, counts, app.config.mail is not None)
