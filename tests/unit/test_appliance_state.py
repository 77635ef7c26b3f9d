"""Per-appliance state lives on the Appliance: two appliances in one process share no export jobs and no
delivery limits or guessing counters (there are no module registries keyed by the app)."""

from __future__ import annotations

from vms.evidence import delivery, export_jobs


def test_two_appliances_share_no_export_jobs(appliance_factory):
    a, b = appliance_factory(), appliance_factory()
    assert a.export_jobs is not b.export_jobs
    job = export_jobs.runner(a).submit("test", lambda progress: "done")
    assert export_jobs.runner(a).wait(job, 10).state == "succeeded"
    assert [s.job_id for s in export_jobs.runner(a).jobs()] == [job]
    assert export_jobs.runner(b).jobs() == []


def test_two_appliances_share_no_delivery_state(appliance_factory):
    a, b = appliance_factory(), appliance_factory()
    delivery.configure(a, delivery.DeliveryPolicy(guess_limit=2, passcode_attempts=1))
    assert delivery.policy(a).guess_limit == 2
    assert delivery.policy(b) == delivery.policy_from_config(b.config)
    for _ in range(2):
        locked = a.delivery_state.guard.address_failed("203.0.113.7")
    assert locked and a.delivery_state.guard.address_retry_after("203.0.113.7") > 0
    assert b.delivery_state.guard.address_retry_after("203.0.113.7") == 0


def test_a_shut_down_runner_is_replaced(appliance_factory):
    app = appliance_factory()
    first = export_jobs.runner(app)
    export_jobs.shutdown(app)
    second = export_jobs.runner(app)
    assert second is not first
    job = second.submit("test", lambda progress: 1)
    assert second.wait(job, 10).state == "succeeded"
