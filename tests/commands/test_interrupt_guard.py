"""Ctrl+C during ``skastro fit``: an interrupt that Python loses is raised again after a batch."""

import signal

import pytest

from skastro.commands.fit import InterruptGuard


def test_an_interrupt_swallowed_where_it_landed_is_raised_again_by_check():
    guard = InterruptGuard()
    with guard.installed():
        try:  # where Python may run the handler: a finalizer that ignores exceptions
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # "Exception ignored in ...": the interrupt is lost here
        with pytest.raises(KeyboardInterrupt):
            guard.check()  # the next batch end stops training all the same
    assert guard.count == 1


def test_check_waits_while_a_checkpoint_is_written_and_the_shield_raises_after():
    guard = InterruptGuard()
    with guard.installed():
        with pytest.raises(KeyboardInterrupt):
            with guard.shield():
                signal.raise_signal(signal.SIGINT)  # held back: no exception here
                guard.check()  # nor here, inside the write
    assert guard.count == 1


def test_without_ctrl_c_check_does_nothing():
    guard = InterruptGuard()
    with guard.installed():
        guard.check()
    assert not guard.requested
