"""The base of keyed detectors: lazily restored, dirty-tracked per-key state."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar

from slowleak.models import Alert, FeedbackEvent, InteractionEvent

__all__ = ["KeyedDetector", "ObjectDetector", "State", "StateStore", "alert_id"]

#: A detector's state for one key: plain JSON-able data, with a ``"v"`` version number.
State = dict[str, Any]
#: Where states persist between chunks and restarts: a faust table in the worker, a dict in
#: replay. Keys are ``"<detector name>/<key>"``.
StateStore = MutableMapping[str, Any]
T = TypeVar("T")


def alert_id(*parts: str) -> str:
    """A stable id for one firing of one condition."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


class KeyedDetector:
    """Base class: subclasses set :attr:`name`, :attr:`version` and implement ``on_*``.

    State is read with :meth:`state` (restored from the store the first time a key is seen),
    changed in place, and marked with :meth:`touch`; :meth:`dirty_states` hands the changed ones
    to the caller, which writes them to the store once per chunk.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1

    def __init__(self, *, store: StateStore | None = None) -> None:
        self.store = store
        self._reset()

    def _reset(self) -> None:
        self._states: dict[str, State] = {}
        self._dirty: set[str] = set()

    def new_state(self) -> State:
        return {"v": self.version}

    def state(self, key: str) -> State:
        state = self._states.get(key)
        if state is None:
            stored = self.store.get(self._store_key(key)) if self.store is not None else None
            if isinstance(stored, dict) and stored.get("v") == self.version:
                state = dict(stored)
            else:
                state = self.new_state()
            self._states[key] = state
        return state

    def touch(self, key: str) -> None:
        self._dirty.add(key)

    def dirty_states(self) -> dict[str, State]:
        """States changed since the last call, by store key; clears the dirty set."""
        out = {self._store_key(k): self._states[k] for k in self._dirty}
        self._dirty.clear()
        return out

    def forget(self) -> None:
        """Drop cached states (partitions moved); they are restored from the store on use."""
        self._reset()

    def _store_key(self, key: str) -> str:
        return f"{self.name}/{key}"

    def on_interaction(self, event: InteractionEvent) -> Iterable[Alert]:
        return ()

    def on_feedback(self, feedback: FeedbackEvent) -> Iterable[Alert]:
        return ()


class ObjectDetector(KeyedDetector, Generic[T]):
    """A keyed detector whose per-key state is a live object (e.g. a bank of CUSUMs).

    Subclasses implement :meth:`new_object`, :meth:`load` and :meth:`dump`; the object is
    restored from the store the first time its key is seen and serialised only when
    :meth:`dirty_states` is called (once per chunk), not on every event.
    """

    def _reset(self) -> None:
        super()._reset()
        self._objects: dict[str, T] = {}

    def new_object(self, key: str) -> T:
        raise NotImplementedError

    def load(self, key: str, state: State) -> T:
        raise NotImplementedError

    def dump(self, obj: T) -> State:
        """Plain JSON-able state; :meth:`dirty_states` adds the version."""
        raise NotImplementedError

    def obj(self, key: str) -> T:
        """The live object of ``key``; the caller marks it changed with :meth:`touch`."""
        found = self._objects.get(key)
        if found is None:
            stored = self.store.get(self._store_key(key)) if self.store is not None else None
            if isinstance(stored, dict) and stored.get("v") == self.version:
                found = self.load(key, stored)
            else:
                found = self.new_object(key)
            self._objects[key] = found
        return found

    def dirty_states(self) -> dict[str, State]:
        out = {
            self._store_key(k): self.dump(self._objects[k]) | {"v": self.version}
            for k in self._dirty
        }
        self._dirty.clear()
        return out
