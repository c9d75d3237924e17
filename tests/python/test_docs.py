"""The docs name what the code has: every built-in family is in the family table."""

from __future__ import annotations

from pathlib import Path

import hfport

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_family_table_lists_every_builtin_family():
    text = (DOCS / "families.md").read_text()
    table = text.split("<!-- families:begin -->", 1)[1].split("<!-- families:end -->", 1)[0]
    listed = {line.split("|")[1].strip().strip("`") for line in table.strip().splitlines()[2:]}
    assert listed == set(hfport.families())
