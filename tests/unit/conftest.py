# -*- coding: utf-8 -*-
"""Make the filter plugins importable as plain modules (they are self-contained files)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (os.path.join(ROOT, "filter_plugins"), HERE):
    if path not in sys.path:
        sys.path.insert(0, path)
