"""The dashboard's tables: plain HTML (pandas escapes every cell), so they draw at once, with no grid to load."""

from __future__ import annotations

import pandas as pd

TABLE_STYLE = """<style>
table.ts-table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
table.ts-table th { text-align: left; font-weight: 600; color: rgba(49, 51, 63, 0.75); }
table.ts-table th, table.ts-table td { padding: 0.3rem 0.6rem; border-bottom: 1px solid rgba(49, 51, 63, 0.1); }
table.ts-table td { vertical-align: top; white-space: nowrap; }
table.ts-table td:last-child { white-space: normal; }
</style>"""


def html_table(df: pd.DataFrame, name: str | None = None) -> str:
    """``df``'s rows and columns as an HTML table (every cell escaped), with the tables' style;
    ``name`` goes to its ``data-table`` attribute."""
    table = df.to_html(index=False, border=0, classes="ts-table", escape=True, na_rep="–")
    if name:
        table = table.replace("<table ", f'<table data-table="{name}" ', 1)
    return TABLE_STYLE + table
