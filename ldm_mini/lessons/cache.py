"""A cache of models for the lessons' panels: each model is loaded once, on first use."""

from __future__ import annotations

from ..zoo import load_pretrained


class ModelCache:
    """A mapping name -> model that loads each model once, on first use (``load(name)``).

    ``names`` lists what may be asked for; loaded models stay in memory, so switching back
    and forth in a panel is instant.
    """

    def __init__(self, names, load=None):
        self.names, self.load, self.loaded = list(names), load or load_pretrained, {}

    def __contains__(self, name) -> bool:
        return name in self.names

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, name):
        if name not in self.names:
            raise KeyError(f"no model called {name!r}; available: {self.names}")
        if name not in self.loaded:
            self.loaded[name] = self.load(name)
        return self.loaded[name]
