"""Style routing (DESIGN.md §3b, issue 13 item 3): the adapter name "auto" picks, per input, the adapter
`settings.routes` declares for the input's style; styles without a route go to the default adapter.

The style is the one the default adapter's input pipeline gives (typed input) or detects (plain string):
the same the result reports as `style`. Only the adapters a request needs are leased, so a route to an
adapter that is not loaded fails only the requests holding a text of that style, with a 404 naming it.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

from phishlens.training.contract.pipeline import InputItem

from ..errors import AdapterNotFound
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings
from .inputs import Preparer

AUTO = "auto"


class Router:
    def __init__(self, registry: AdapterRegistry, settings: Settings) -> None:
        self.registry = registry
        self.routes = settings.routes

    async def entries(self, prep: Preparer, stack: ExitStack) -> list[AdapterEntry]:
        """The adapter for each input of `prep`, leased on `stack`."""
        (default,) = stack.enter_context(self.registry.lease([None]))
        styles = await asyncio.to_thread(lambda: [prep(i, default).style for i in range(len(prep.items))])
        targets = [self.routes.get(s, default.name) for s in styles]
        needed = list(dict.fromkeys(targets))
        try:
            leased = stack.enter_context(self.registry.lease(needed))
        except AdapterNotFound:
            loaded = {e.name for e in self.registry.list()}
            missing = [(s, t) for s, t in zip(styles, targets) if t not in loaded]
            if not missing:  # unloaded and reloaded meanwhile: the registry's own message
                raise
            style, target = missing[0]
            raise AdapterNotFound(
                f"adapter '{AUTO}': the route {style} -> {target} (PHISHLENS_ROUTES) names an "
                f"adapter that is not loaded (loaded: {sorted(loaded)}); load it or change the "
                "route"
            ) from None
        by_name = dict(zip(needed, leased))
        return [by_name[t] for t in targets]

    async def name(self, item: InputItem, adapter: str | None, field: str = "input") -> str | None:
        """`adapter` itself, or for "auto" the name of the adapter routed for `item` (one-input services:
        explain, probe; checked as loaded)."""
        if adapter != AUTO:
            return adapter
        with ExitStack() as stack:
            (entry,) = await self.entries(Preparer([item], field), stack)
            return entry.name
