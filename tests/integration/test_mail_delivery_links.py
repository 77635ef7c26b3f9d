"""The two mails about delivery links, read from a real SMTP server (aiosmtpd on 127.0.0.1), on SQLite and
PostgreSQL: "your link was downloaded" (at once, one per download) and "your link expired unused" (by the clock),
both to the manager who made the link, in that manager's language, with a link to the packages page and nothing
about the recipient, the passcode, the token or the footage."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql import outbox as store
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import make_api_env
from tests.support.delivery_env import make_export_env, token_path
from tests.support.smtp import *  # noqa: F403 (fixtures)
from tests.support.smtp import PUBLIC_URL
from vms.core.i18n import translator
from vms.notify.sender import MailSender
from vms.notify.timers import due_notices

H = 3600
RECIPIENT = "Politi Midt, journal 4711-88"
ADDRESSES = {"olga": "olga@library.example", "mia": "mia@library.example", "max": "max@library.example",
             "aud": "aud@library.example", "adam": "adam@library.example"}


def delivery_env(appliance_factory, database_url, fake_clock, clip_factory, smtp_server):
    env = make_api_env(appliance_factory, database_url, fake_clock, mail=smtp_server.config())
    with Session(env.app.engine) as s, s.begin():
        for name, address in ADDRESSES.items():
            store.set_contact(s, index.user_by_name(s, name).id, email=address, language="en" if name == "max" else None)
    x = make_export_env(env, clip_factory.get(seconds=8).path)
    MailSender(env.app).send_due()  # the ticket's own mails (filed, approved)
    smtp_server.inbox.clear()
    return x


def local(app, t_us: int, lang: str) -> str:
    """A moment as the reader's language writes it in the appliance's zone (Babel's locale data)."""
    moment = datetime.fromtimestamp(t_us / 1e6, UTC).astimezone(ZoneInfo(app.config.timezone))
    return translator(lang).datetime(moment)


def text(mail) -> str:
    """The body as written (SMTP carries its lines with CRLF)."""
    return mail.body.replace("\r\n", "\n")


def assert_tells_nothing_more(mail, *secrets: str) -> None:
    for secret in (RECIPIENT, "4711", "olga@", "Bicycle", "GDPR", *secrets):
        assert secret not in text(mail) and secret not in mail.subject, secret
    assert not [p for p in mail.message.walk() if p.get_content_maintype() != "text"]  # no attachment, no footage


def test_a_download_is_mailed_to_the_manager_who_made_the_link(appliance_factory, database_url, fake_clock,
                                                              clip_factory, smtp_server):
    x = delivery_env(appliance_factory, database_url, fake_clock, clip_factory, smtp_server)
    inbox, package_id = smtp_server.inbox, x.export("olga")["package_id"]
    created = x.link(package_id, "mia", recipient=RECIPIENT, generate_passcode=True, max_downloads=3)
    token, passcode, delivery_id = created["token"], created["passcode"], created["delivery"]["id"]
    x.env.advance(90)
    downloaded_us = x.env.clock.now_us()
    r = x.env.anonymous().post(token_path(created["url"]), json={"passcode": passcode})
    assert r.status_code == 200, r.text
    assert MailSender(x.app).send_due() == 1
    (mail,) = inbox.messages
    assert mail.to == "mia@library.example" and mail.message["Content-Language"] == "da"
    assert mail.subject == f"Pakken i sag {x.ticket['id']} er hentet"
    assert text(mail).startswith("Hej mia\n\n")
    assert (f"hentet pakken via udleveringslink nr. {delivery_id} i sag {x.ticket['id']} den "
            f"{local(x.app, downloaded_us, 'da')}. Det var download nr. 1 af højst 3.") in text(mail)
    assert f"Se pakkerne: {PUBLIC_URL}/exports\n" in text(mail)
    assert_tells_nothing_more(mail, token, passcode, package_id)

    # a second download: a mail of its own; a link made by the English-speaking manager: an English mail
    inbox.clear()
    x.env.anonymous().post(token_path(created["url"]), json={"passcode": passcode})
    other = x.link(package_id, "max", recipient=RECIPIENT)
    x.env.anonymous().post(token_path(other["url"]))
    assert MailSender(x.app).send_due() == 2
    (second,) = inbox.to("mia@library.example")
    assert "Det var download nr. 2 af højst 3." in text(second)
    (en,) = inbox.to("max@library.example")
    assert en.message["Content-Language"] == "en"
    assert en.subject == f"The package of ticket {x.ticket['id']} was downloaded"
    assert f"delivery link no. {other['delivery']['id']} of ticket {x.ticket['id']} on " in text(en)
    assert f"See the packages: {PUBLIC_URL}/exports\n" in text(en) and "holds no footage" in text(en)
    assert_tells_nothing_more(en, other["token"], package_id)
    assert not inbox.to("olga@library.example")  # the requester is not told of deliveries


def test_a_link_that_expired_unused_is_mailed_once_to_the_manager_who_made_it(appliance_factory, database_url,
                                                                              fake_clock, clip_factory, smtp_server):
    x = delivery_env(appliance_factory, database_url, fake_clock, clip_factory, smtp_server)
    inbox, package_id = smtp_server.inbox, x.export("olga")["package_id"]
    unused = x.link(package_id, "max", recipient=RECIPIENT, generate_passcode=True, expires_hours=2)
    mine = x.link(package_id, "mia", recipient=RECIPIENT, expires_hours=2)
    used = x.link(package_id, "mia", recipient=RECIPIENT, expires_hours=2)
    expires_us = x.env.clock.now_us() + 2 * H * 1_000_000
    assert x.env.anonymous().post(token_path(used["url"])).status_code == 200
    MailSender(x.app).send_due()
    inbox.clear()

    x.env.advance(2 * H - 60)
    assert due_notices(x.app) == 0  # still live
    x.env.advance(120)
    assert due_notices(x.app) == 2  # the two unused links; the used one is not mailed about
    assert due_notices(x.app) == 0  # once
    assert MailSender(x.app).send_due() == 2
    (en,) = inbox.to("max@library.example")
    assert en.message["Content-Language"] == "en"
    assert en.subject == f"The delivery link of ticket {x.ticket['id']} expired unused"
    assert (f"Delivery link no. {unused['delivery']['id']} of ticket {x.ticket['id']} expired on "
            f"{local(x.app, expires_us, 'en')} without the recipient downloading the package.") in text(en)
    assert f"See the packages: {PUBLIC_URL}/exports\n" in text(en)
    assert_tells_nothing_more(en, unused["token"], unused["passcode"], package_id)
    (da,) = inbox.to("mia@library.example")
    assert da.subject == f"Udleveringslinket i sag {x.ticket['id']} udløb uden at blive brugt"
    assert (f"Udleveringslink nr. {mine['delivery']['id']} i sag {x.ticket['id']} udløb den "
            f"{local(x.app, expires_us, 'da')}, uden at modtageren havde hentet pakken.") in text(da)
    assert f"Se pakkerne: {PUBLIC_URL}/exports\n" in text(da)
    assert_tells_nothing_more(da, mine["token"], package_id)
    x.env.advance(H)
    assert due_notices(x.app) == 0 and MailSender(x.app).send_due() == 0
