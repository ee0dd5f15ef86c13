# SPDX-License-Identifier: MIT
import itertools
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import shmgraph as sg  # noqa: E402

_n = itertools.count()


@pytest.fixture
def segname():
    name = f"/shg-pytest-{os.getpid()}-{next(_n)}"
    sg.Segment.unlink(name, missing_ok=True)
    yield name
    sg.Segment.unlink(name, missing_ok=True)


@pytest.fixture
def seg(segname):
    s = sg.Segment.create(segname, capacity=64 << 20)
    yield s
    s.close()
