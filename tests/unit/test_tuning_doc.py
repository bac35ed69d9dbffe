# -*- coding: utf-8 -*-
"""docs/tuning.md: the generated tables must match what the filters compute today."""

import io

from tuning_tables import DOC, TABLES, render


def test_generated_tables_are_current():
    with io.open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    for name in TABLES:
        assert f"<!-- BEGIN GENERATED {name} -->" in text
    assert render(text) == text, "run: .venv/bin/python tests/unit/tuning_tables.py --write"
