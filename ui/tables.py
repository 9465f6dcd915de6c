"""Lists as the pages show them: a table you click to open a row, page controls that
reach every row, and the CSV of the page on screen.

The rows are read a page at a time by the domain (`limit`/`offset` in SQL); these
helpers only draw them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import pandas as pd
import streamlit as st

from automations.reports.exports import neutralise

PAGE_SIZES = (25, 50, 100, 500)
T = TypeVar("T")


def read_page(key: str, read: Callable[[int, int], tuple[list[T], int]], filters: object = None) -> tuple[list[T], int]:
    """The page of `key` the user is on, read by `read(offset, limit)` -> (rows, total).
    Other `filters` than last time start again at page 1; a page beyond the end
    (the list shrank) moves to the last one."""
    if st.session_state.get(f"{key}_filters") != repr(filters):
        st.session_state[f"{key}_filters"] = repr(filters)
        st.session_state[f"{key}_page"] = 1
    number, size = page_of(key)
    number = max(number, 1)
    found, total = read((number - 1) * size, size)
    pages = max(1, math.ceil(total / size))
    if number > pages:
        number = pages
        found, total = read((number - 1) * size, size)
    st.session_state[f"{key}_page"] = number
    return found, total


def page_of(key: str) -> tuple[int, int]:
    """The page number and size of the list `key` (a part of its tables' version)."""
    return int(st.session_state.get(f"{key}_page", 1)), int(st.session_state.get(f"{key}_size", PAGE_SIZES[1]))


def _go(key: str, number: int) -> None:
    st.session_state[f"{key}_page"] = number


def page_controls(key: str, total: int, shown: int, noun: str) -> None:
    """Where the page is in the list, and buttons to every other page."""
    number, size = page_of(key)
    pages = max(1, math.ceil(total / size))
    first = (number - 1) * size + 1 if total else 0
    c1, c2, c3, c4, c5, c6 = st.columns([3, 1, 1, 1, 1, 1.3], vertical_alignment="center")
    c1.caption(f"{noun} {first:,}–{first + shown - 1:,} of {total:,} · page {number:,} of {pages:,}")
    c2.button("First", key=f"{key}_first", disabled=number <= 1, on_click=_go, args=(key, 1), width="stretch")
    c3.button(
        "Previous", key=f"{key}_prev", disabled=number <= 1, on_click=_go, args=(key, number - 1), width="stretch"
    )
    c4.button(
        "Next", key=f"{key}_next", disabled=number >= pages, on_click=_go, args=(key, number + 1), width="stretch"
    )
    c5.button("Last", key=f"{key}_last", disabled=number >= pages, on_click=_go, args=(key, pages), width="stretch")
    c6.selectbox(
        "Rows per page",
        PAGE_SIZES,
        index=PAGE_SIZES.index(size) if size in PAGE_SIZES else 1,
        key=f"{key}_size",
        label_visibility="collapsed",
        format_func=lambda n: f"{n} per page",
        on_change=_go,
        args=(key, 1),
    )


def clickable_table(
    name: str,
    frame: pd.DataFrame | Any,
    ids: Sequence[Any],
    *,
    version: object = None,
    column_config: dict[str, Any] | None = None,
    height: int | Literal["auto"] = "auto",
) -> Any | None:
    """Draw `frame` with one selectable row; return the id (from `ids`, in row order)
    of a row the user has just selected, None when the selection did not change.

    A new `version` (other filters, another page) is a new table: its rows are
    other rows, so nothing is selected in it. `st.session_state[name + "_widget"]`
    is the key of the table on screen.
    """
    key = f"{name}_{zlib.crc32(repr(version).encode()):08x}"
    previous = st.session_state.get(f"{name}_widget")
    if previous != key:
        st.session_state.pop(f"{previous}__last", None)  # that table is gone
    st.session_state[f"{name}_widget"] = key
    event = st.dataframe(
        frame,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=height,
        column_config=column_config,
    )
    selected = tuple(event.selection.rows) if event is not None else ()
    last = st.session_state.get(f"{key}__last")
    if selected == last:
        return None
    st.session_state[f"{key}__last"] = selected
    if selected and selected[0] < len(ids):
        return ids[selected[0]]
    return None


def csv_of(frame: pd.DataFrame | Any) -> bytes:
    """The frame as a CSV file a spreadsheet opens (UTF-8 with BOM); a Styler's data."""
    data = frame.data if hasattr(frame, "data") and not isinstance(frame, pd.DataFrame) else frame
    # Text a spreadsheet would run as a formula is quoted, as in every export.
    return data.map(lambda v: neutralise(v) if isinstance(v, str) else v).to_csv(index=False).encode("utf-8-sig")


def page_download(key: str, frame: pd.DataFrame | Any, file_name: str) -> None:
    """A button that downloads the rows on screen (this page, with its filters)."""
    st.download_button(
        "Download this page (CSV)",
        data=csv_of(frame),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        key=f"{key}_csv",
        on_click="ignore",
    )


def scroll_to(key: str, when: bool) -> None:
    """Bring the container of `key` (`st.container(key=...)`) into view when `when`:
    the row a user clicked opens below the list, out of sight otherwise. Call it on
    every run (it holds its place on the page either way, so that what follows it
    keeps its place too and is updated, not drawn a second time)."""
    slot = st.empty()
    if when:
        with slot:
            # Our own fixed script (no user data in it), in a same-origin frame.
            st.iframe(
                "<script>const target = window.parent.document.querySelector("
                + repr(f".st-key-{key}")
                + ");if (target) target.scrollIntoView({behavior: 'smooth', block: 'start'});</script>",
                height=1,
            )
