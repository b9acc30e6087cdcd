"""The login brake counts an attempt before its slow password check, so attempts sent at once
cannot get past the limit together."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("argon2")

from inspect_review.auth import FAILURES_ALLOWED, LoginBrake


def test_attempts_sent_at_once_are_held_to_the_limit():
    brake = LoginBrake()
    go = threading.Barrier(40)
    allowed = []

    def attempt() -> None:
        go.wait()
        if brake.try_start("erik") == 0:
            allowed.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == FAILURES_ALLOWED  # the rest are told to wait, not checked
    assert brake.try_start("erik") > 0 and brake.try_start("olga") == 0  # per name


def test_a_right_password_clears_the_count():
    brake = LoginBrake()
    for _ in range(FAILURES_ALLOWED - 1):
        assert brake.try_start("olga") == 0
    brake.succeeded("olga")  # the last attempt was right
    assert all(brake.try_start("olga") == 0 for _ in range(FAILURES_ALLOWED))


def test_a_flood_of_other_names_does_not_unlock_a_locked_one():
    from inspect_review.auth import MAX_NAMES

    brake = LoginBrake()
    for _ in range(FAILURES_ALLOWED):
        assert brake.try_start("olga") == 0
    assert brake.try_start("olga") > 0
    for i in range(MAX_NAMES + 50):
        brake.try_start(f"random-{i}")
    assert brake.try_start("olga") > 0  # still locked out
    assert len(brake._failures) <= MAX_NAMES + 1
    assert "random-0" not in brake._failures  # the oldest unlocked names went instead


def test_a_table_full_of_locked_names_still_locks_a_new_one_without_a_scan_per_try():
    from inspect_review.auth import MAX_NAMES

    brake = LoginBrake()
    for i in range(MAX_NAMES + 5):  # every name locked out
        brake._failures[f"filler-{i}"] = [time.monotonic()] * FAILURES_ALLOWED
    for _ in range(FAILURES_ALLOWED):
        assert brake.try_start("admin") == 0
    assert brake.try_start("admin") > 0  # locked, though the table was full
    assert brake._full_at > MAX_NAMES  # only locked names were left: no scan on every try
    assert all(f"filler-{i}" in brake._failures for i in range(0, MAX_NAMES, 997))


def test_logins_beyond_the_waiting_limit_are_told_to_come_back_uncounted(
    sqlite_url, tmp_path, monkeypatch
):
    """A flood of logins is not queued without bound: past the limit a login is answered 503
    at once, and it does not count against the name it tried."""
    from review_kit import Client, add_user, live_server

    import inspect_review.pages as pages
    from inspect_db.engine import make_engine
    from inspect_db.migrate import ensure_schema

    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    add_user(engine, "olga")
    with live_server(engine) as base:
        monkeypatch.setattr(pages, "MAX_LOGINS_WAITING", 0)  # as if 32 were waiting
        for _ in range(FAILURES_ALLOWED + 2):
            r = Client(base).login("olga", "wrong")
            assert r.status == 503 and "busy checking passwords" in r.text
        monkeypatch.setattr(pages, "MAX_LOGINS_WAITING", 32)
        assert Client(base).login("olga").status == 303  # never counted: not locked out
    engine.dispose()
