"""The continuous player's plays in memory: a play is its credential's, and lapses when idle."""

from __future__ import annotations

from vms.evidence.plays import IDLE_S, MAX_PLAYS, Play, Plays


def _play(pid: str, credential: int = 1) -> Play:
    return Play(pid, credential, 7, 3, ("entrance",), 0, 0.0)


def test_a_play_is_its_credentials_and_lapses_when_idle():
    now = [0.0]
    plays = Plays(lambda: now[0])
    plays.add(_play("a" * 22))
    assert plays.get("a" * 22, 1) is not None
    assert plays.get("a" * 22, 2) is None  # another session or token
    now[0] += IDLE_S - 1
    assert plays.get("a" * 22, 1) is not None  # a fragment keeps it alive
    now[0] += IDLE_S - 1
    assert plays.get("a" * 22, 1) is not None
    now[0] += IDLE_S + 1
    assert plays.get("a" * 22, 1) is None and len(plays) == 0


def test_plays_are_bounded_oldest_first():
    plays = Plays(lambda: 0.0)
    for i in range(MAX_PLAYS + 5):
        plays.add(_play(f"p{i:021d}"))
    assert len(plays) == MAX_PLAYS
    assert plays.get(f"p{0:021d}", 1) is None and plays.get(f"p{MAX_PLAYS + 4:021d}", 1) is not None
