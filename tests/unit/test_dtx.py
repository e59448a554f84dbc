"""The DTX schedule: which slots of a quiet feed are sent (libopus's timing, WebRTC's first DTX frame)."""

from __future__ import annotations

import pytest

from translator_bot.audio.dtx import (
    DTX_HANGOVER_SLOTS,
    DTX_KEEPALIVE_SLOTS,
    DTX_WELCOME_SLOTS,
    DtxSchedule,
    Send,
)


def run(schedule: DtxSchedule, slots: range, *, quiet: bool) -> list[Send]:
    return [schedule.decide(slot, quiet=quiet) for slot in slots]


def test_libopus_timing_200_ms_of_hangover_then_a_dtx_frame_every_400_ms() -> None:
    assert (DTX_HANGOVER_SLOTS, DTX_KEEPALIVE_SLOTS) == (10, 20)
    schedule = DtxSchedule()
    sent = run(schedule, range(100), quiet=True)
    assert sent[:10] == [Send.FRAME] * 10
    assert [n for n, s in enumerate(sent) if s is Send.DTX] == [10, 30, 50, 70, 90]
    assert sent.count(Send.NOTHING) == 100 - 10 - 5


def test_speech_goes_out_at_once_and_a_new_pause_starts_a_new_hangover() -> None:
    schedule = DtxSchedule()
    run(schedule, range(40), quiet=True)
    assert schedule.in_dtx and schedule.next_packet_slot() == 50
    assert schedule.decide(43, quiet=False) is Send.FRAME  # mid-gap: no waiting for a keep-alive
    assert not schedule.in_dtx and schedule.next_packet_slot() is None
    assert run(schedule, range(44, 54), quiet=True) == [Send.FRAME] * 10
    assert schedule.decide(54, quiet=True) is Send.DTX  # the pause's first DTX frame, at once


def test_skipped_slots_count_as_time_and_a_late_keepalive_still_goes_out() -> None:
    schedule = DtxSchedule()
    run(schedule, range(11), quiet=True)  # hangover, DTX at 10
    assert schedule.decide(29, quiet=True) is Send.NOTHING
    assert schedule.decide(33, quiet=True) is Send.DTX  # slot 30 was slept through (a late wake-up)
    assert schedule.next_packet_slot() == 53
    fresh = DtxSchedule()
    assert fresh.decide(0, quiet=True) is Send.FRAME
    assert fresh.decide(500, quiet=True) is Send.DTX  # hangover measured in slots, skipped ones too


def test_no_hangover_and_bad_settings() -> None:
    assert run(DtxSchedule(hangover=0, keepalive=2), range(5), quiet=True) == [
        Send.DTX,
        Send.NOTHING,
        Send.DTX,
        Send.NOTHING,
        Send.DTX,
    ]
    with pytest.raises(ValueError):
        DtxSchedule(keepalive=0)
    with pytest.raises(ValueError):
        DtxSchedule(hangover=-1)


def test_while_a_listener_connects_every_slot_goes_out_then_the_pause_is_dtx_again() -> None:
    assert DTX_WELCOME_SLOTS == 150
    schedule = DtxSchedule()
    run(schedule, range(40), quiet=True)  # deep in DTX: a keep-alive every 20 slots
    schedule.keep_sending(45 + DTX_WELCOME_SLOTS)
    assert schedule.decide(45, quiet=True) is Send.FRAME
    assert run(schedule, range(46, 195), quiet=True) == [Send.FRAME] * 149
    assert schedule.next_packet_slot() is None  # no sleeping between keep-alives meanwhile
    assert schedule.decide(195, quiet=True) is Send.DTX  # then the pause's first DTX frame, at once
    assert run(schedule, range(196, 216), quiet=True) == [Send.NOTHING] * 19 + [Send.DTX]


def test_a_welcome_never_shortens_one_already_under_way() -> None:
    schedule = DtxSchedule()
    schedule.keep_sending(DTX_WELCOME_SLOTS)  # published
    schedule.keep_sending(5)  # an older call's horizon
    assert run(schedule, range(DTX_WELCOME_SLOTS), quiet=True) == [Send.FRAME] * DTX_WELCOME_SLOTS
    assert schedule.decide(DTX_WELCOME_SLOTS, quiet=True) is Send.DTX
