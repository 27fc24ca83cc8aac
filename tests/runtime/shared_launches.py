"""One `torchrun` per world size for the Trainer runs of several test files (tests.runtime.trainer_runs).

A two-rank launch costs about 25 CPU-s of imports before any step, a one-rank launch half that; most runs
these tests check cost a few. A test file registers a function that builds its case with
`shared_case(nproc)`, at import; the session's `shared_trainer_runs` fixture (conftest.py) gives it back
with `SharedLaunches.case(build)` (or `cases(build)`, for a builder of several cases). The first such
request for a world size builds the cases of every registered function of that world size whose module
has a test in the session, and runs them in one launch; later requests find their case done. A case that
fails is reported by its own tests (`Case.check`), and the cases after it still run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runtime.trainer_runs import Case, run_trainer_cases

Built = Case | dict[str, Case]
CaseBuilder = Callable[[pytest.FixtureRequest, Path], Built]
"""(the session fixture's request, for the session fixtures a case needs; the directory to put its
cases in) -> the case, or several keyed by name, their inputs written."""

REGISTERED: dict[CaseBuilder, int] = {}
"""Every registered builder, with the number of ranks of its launch."""


def shared_case(nproc: int = 2) -> Callable[[CaseBuilder], CaseBuilder]:
    """Registers a case builder for the shared launch of `nproc` ranks (at import, so before any
    fixture runs, every collected file's builders are known)."""

    def register(build: CaseBuilder) -> CaseBuilder:
        REGISTERED[build] = nproc
        return build

    return register


class SharedLaunches:
    """The session's shared launches, each run when a test first asks for one of its cases."""

    def __init__(self, request: pytest.FixtureRequest, root: Path) -> None:
        self.request, self.root = request, root
        self.built: dict[CaseBuilder, Built] = {}
        self.failed: dict[CaseBuilder, Exception] = {}
        self.launched: set[int] = set()

    def case(self, build: CaseBuilder) -> Case:
        """`build`'s case, run (not checked: see `Case.check`); fails the test should it not have
        been built, or its launch itself have failed."""
        built = self.run(build)
        assert isinstance(built, Case), f"{build.__name__} builds several cases"
        return built

    def cases(self, build: CaseBuilder) -> dict[str, Case]:
        """`build`'s cases by name, as `case` gives one."""
        built = self.run(build)
        assert isinstance(built, dict), f"{build.__name__} builds one case"
        return built

    def run(self, build: CaseBuilder) -> Built:
        """What `build` built, once the launch of its world size has run (now, if no test asked yet)."""
        nproc = REGISTERED[build]
        if nproc not in self.launched:
            self.launched.add(nproc)
            self.launch(nproc)
        if build in self.failed:
            raise AssertionError(f"{build.__name__}'s cases did not run") from self.failed[build]
        return self.built[build]

    def launch(self, nproc: int) -> None:
        """The selected modules' cases of `nproc` ranks, built (a builder that fails fails only its
        own tests) and run in one launch."""
        selected = {
            item.module.__name__ for item in self.request.session.items if isinstance(item, pytest.Function)
        }
        work = self.root / f"ranks{nproc}"
        for build, ranks in REGISTERED.items():
            if ranks != nproc or build.__module__ not in selected:
                continue
            try:
                self.built[build] = build(
                    self.request, work / f"{build.__module__.rsplit('.', 1)[-1]}.{build.__name__}"
                )
            except Exception as error:
                self.failed[build] = error
        launched = [build for build in self.built if REGISTERED[build] == nproc]
        cases = [case for build in launched for case in flatten(self.built[build])]
        if not cases:
            return
        try:
            run_trainer_cases(cases, work, nproc)
        except Exception as error:
            self.failed.update(dict.fromkeys(launched, error))


def flatten(built: Built) -> list[Case]:
    """A builder's cases, in the order it gave them."""
    return [built] if isinstance(built, Case) else list(built.values())
