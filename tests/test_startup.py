"""`startup.paused_collector`: the garbage collector paused inside, resumed as it was after;
what exists frozen only after a block that imported something."""

import gc
import weakref

import pytest

from pneumonia_aug.startup import paused_collector


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""


def _cycle() -> weakref.ref:
    node = Node()
    node.itself = node
    return weakref.ref(node)


@pytest.fixture
def collector():
    """The collector running, as in a fresh process; left as it was found."""
    enabled = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if enabled else gc.disable()


def test_paused_inside_and_resumed_after(collector):
    with paused_collector():
        assert not gc.isenabled()
        with paused_collector():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves it paused for the outer one
    assert gc.isenabled()
    gc.disable()
    with paused_collector():
        pass
    assert not gc.isenabled()  # resumed as it was: not enabled where it was not


def test_resumed_when_the_block_raises(collector):
    with pytest.raises(ImportError), paused_collector():
        import pneumonia_aug.no_such_module  # noqa: F401
    assert gc.isenabled()


def test_an_import_freezes_what_exists_and_nothing_else_does(collector, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "startup_probe_module.py").write_text("VALUE = 1\n")
    garbage = _cycle()  # garbage in a cycle, made before either block
    with paused_collector():
        pass  # imports nothing: freezes nothing
    gc.collect()
    assert garbage() is None, "a block that imported nothing froze what existed"

    frozen_before = gc.get_freeze_count()
    kept = _cycle()
    with paused_collector():
        import startup_probe_module  # noqa: F401
    assert gc.get_freeze_count() > frozen_before
    gc.collect()
    assert kept() is not None  # frozen: later collections skip it
