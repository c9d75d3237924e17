"""Text for a terminal of any width: tensor names folded at their dots, report lines wrapped with a
hanging indent, tables that fall back to two lines a row before they would cut a number.

Rich's own folding breaks a name anywhere ("embedding / s.LayerNo / rm.bias") and shrinks numeric
columns to "0.00021…" when a table is wider than the terminal. Here nothing is ever cut: a name
breaks after a dot (or, for a segment wider than the line, inside it), a line breaks at a space,
and a table whose numbers would not fit beside the names prints each name on its own line with
the numbers under it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# Where a line may break: after the last of these that fits, tried in this order.
_SOFT_BREAKS = (" ", "/", ".", ",")
# A stacked row's numbers sit under its name, indented by this much.
_STACK_INDENT = 4
# Narrower than this, a name column folds too much to read: the table is stacked instead.
_MIN_NAME_WIDTH = 24


def console() -> Any:
    """The console the commands print to: the terminal's width on a terminal, COLUMNS when set,
    else (a pipe, a file) unlimited, so that a redirected report keeps one line per entry."""
    from rich.console import Console

    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=100_000)
    return out


def wrap_line(line: str, width: int, hang: int | None = None) -> list[str]:
    """`line` as lines of at most `width` columns. Continuation lines are indented by `hang`
    (default: under the text after "<- " when the line has one, else four past the line's own
    indentation). Breaks at the last space that fits; a run without one breaks after a dot,
    comma or slash, and only a run without any of those is cut at the width."""
    width = max(width, 8)
    if len(line) <= width:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    if hang is None:
        arrow = line.find("<- ")
        hang = arrow + 3 if 0 <= arrow and arrow + 3 <= width // 2 else indent + 4
    hang = min(hang, width // 2)
    lines = []
    rest = line
    floor = indent  # no break inside the indentation
    while len(rest) > width:
        cut = _break_at(rest, floor + 1, width)
        lines.append(rest[:cut].rstrip())
        rest = " " * hang + rest[cut:].lstrip(" ")
        floor = hang
    lines.append(rest)
    return lines


def _break_at(text: str, low: int, width: int) -> int:
    """The index to break `text` before: just after the last soft break in text[low:width + 1]."""
    for mark in _SOFT_BREAKS:
        at = text.rfind(mark, low, width if mark != " " else width + 1)
        if at >= low:
            return at + 1
    return width


def fold_name(name: str, width: int) -> str:
    """A tensor name as lines of at most `width`, broken after dots ("\\n"-joined)."""
    return "\n".join(wrap_line(name, width, hang=0))


def print_text(console: Any, text: str) -> None:
    """Print plain text (a load report) wrapped to the console's width; rich adds no wrapping of
    its own and reads no markup in it."""
    for line in text.rstrip("\n").split("\n"):
        for part in wrap_line(line, console.width):
            console.print(part, markup=False, highlight=False, soft_wrap=True)


def print_table(console: Any, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
                title: str = "") -> None:
    """A table whose first column holds names and the others short values (numbers, dtypes,
    shapes). columns: (header, "left" | "right"). Cells may hold rich markup. The values are
    never wrapped or cut: a name wider than its column folds after a dot, its values on its last
    line; when the values leave the names fewer than _MIN_NAME_WIDTH columns, each row prints as
    its name, then its values indented under it (on more lines, whole columns each, when one line
    cannot hold them), under a header laid out the same way."""
    from rich.text import Text

    cells = [[Text.from_markup(c) for c in row] for row in rows]
    widths = [max([len(header), *(row[i].cell_len for row in cells)])
              for i, (header, _) in enumerate(columns)]
    gap = 2
    values_width = sum(widths[1:]) + gap * (len(columns) - 1)
    name_width = console.width - values_width
    if title:
        print_text(console, title)
    if name_width >= min(widths[0], _MIN_NAME_WIDTH):
        name_width = min(name_width, widths[0])
        layout = [name_width, *widths[1:]]
        console.print(_line([Text(h, style="bold") for h, _ in columns], layout, columns, gap),
                      soft_wrap=True)
        for row in cells:
            # A folded name's values sit on its last line, so that the name reads on unbroken.
            *head, last = fold_name(row[0].plain, name_width).split("\n")
            for part in head:
                console.print(Text(part), soft_wrap=True)
            console.print(_line([Text(last), *row[1:]], layout, columns, gap), soft_wrap=True)
        return
    # Stacked: the values under the name, in as many lines of whole columns as the width needs.
    groups: list[list[int]] = [[]]
    used = _STACK_INDENT
    for i in range(1, len(columns)):
        need = widths[i] + (gap if groups[-1] else 0)
        if groups[-1] and used + need > console.width:
            groups.append([])
            used, need = _STACK_INDENT, widths[i]
        groups[-1].append(i)
        used += need
    indent = Text(" " * _STACK_INDENT)

    def print_values(values: Sequence[Any]) -> None:
        for group in groups:
            console.print(indent + _line([values[i] for i in group], [widths[i] for i in group],
                                         [columns[i] for i in group], gap), soft_wrap=True)

    console.print(Text(columns[0][0], style="bold"), soft_wrap=True)
    print_values([Text(h, style="bold") for h, _ in columns])
    for row in cells:
        for part in wrap_line(row[0].plain, console.width, hang=0):
            console.print(Text(part), soft_wrap=True)
        print_values(row)


def _line(cells: Sequence[Any], widths: Sequence[int], columns: Sequence[tuple[str, str]],
          gap: int) -> Any:
    from rich.text import Text

    out = Text()
    for i, (cell, width, (_, justify)) in enumerate(zip(cells, widths, columns)):
        pad = " " * (width - cell.cell_len)
        if i:
            out.append(" " * gap)
        out.append_text(Text(pad) + cell if justify == "right" else cell + Text(pad))
    out.rstrip()
    return out
