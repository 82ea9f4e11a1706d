"""What people open: the list's CSV with money in cents, and the contact sheet.

The Parquet list keeps full precision for machines; ``retention_priority.csv`` rounds money to
cents and probabilities to four decimals, so a spreadsheet shows what a person can use.

``contacts.csv`` holds only the selected customers of the treatment group (the control group
is held out, not contacted), in contact order, with what the retention
team needs to make the call: rank, customer, the playbook's description of the action, the
reasons in one cell, the churn risk in percent, and the value at risk and expected gain
rounded to cents, the currency (from ``retain.yaml``) in the column names. When ``openpyxl``
is importable, the same sheet is also written as ``contacts.xlsx`` (it is not a dependency).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.csvfile import write_csv
from retain.serving.config import Playbook
from retain.serving.contract import REASON_COLUMNS

__all__ = [
    "CONTACTS_CSV",
    "CONTACTS_XLSX",
    "MONEY_COLUMNS",
    "contact_sheet",
    "round_for_people",
    "write_contacts",
]

CONTACTS_CSV = "contacts.csv"
CONTACTS_XLSX = "contacts.xlsx"
#: List columns holding money (rounded to cents in CSVs).
MONEY_COLUMNS = ("clv", "clv_if_retained", "value_at_risk", "action_cost",
                 "expected_incremental_margin", "expected_net_gain", "monetary_total")  # fmt: skip
#: List columns holding probabilities or shares (rounded to four decimals in CSVs).
SHARE_COLUMNS = ("churn_probability", "save_rate", "expected_churn_effect")
#: Separator of the reasons in the contact sheet's one cell (reasons may hold ";").
REASON_SEPARATOR = " | "


def round_for_people(table: pa.Table) -> pa.Table:
    """Money columns rounded to cents, probabilities to four decimals (others unchanged)."""
    for names, digits in ((MONEY_COLUMNS, 2), (SHARE_COLUMNS, 4)):
        for name in names:
            if name in table.column_names and pa.types.is_floating(table.schema.field(name).type):
                index = table.column_names.index(name)
                rounded = pc.round(table.column(name), ndigits=digits)
                table = table.set_column(index, table.schema.field(name), rounded)
    return table


def contact_sheet(frame: pd.DataFrame, playbook: Playbook, currency: str) -> pd.DataFrame:
    """The selected customers of a ranked list to contact (not the control group), in
    contact order, worded for people.

    Parameters
    ----------
    frame : pandas.DataFrame
        The list (columns of :data:`retain.serving.contract.LIST_COLUMNS`), any row order.
    playbook : Playbook
        Gives each action's description.
    currency : str
        Currency code for the money columns' names.
    """
    contact = frame["selected"].astype(bool)
    if "group" in frame.columns:
        contact &= frame["group"].astype(object).to_numpy() != "control"
    chosen = frame[contact].sort_values("rank", kind="stable")
    described = {name: action.description or name for name, action in playbook.actions.items()}
    unit = f" ({currency})" if currency else ""
    return pd.DataFrame(
        {
            "rank": chosen["rank"].to_numpy(dtype=np.int64),
            "customer_id": chosen["customer_id"].astype(str).to_numpy(dtype=object),
            "action": chosen["recommended_action"].map(described).fillna(
                chosen["recommended_action"]).astype(str).to_numpy(dtype=object),
            "reasons": _joined(chosen, REASON_COLUMNS),
            "churn risk (%)": np.rint(
                np.nan_to_num(chosen["churn_probability"].to_numpy(float)) * 100
            ).astype(np.int64),
            f"value at risk{unit}": np.round(chosen["value_at_risk"].to_numpy(float), 2),
            f"expected gain{unit}": np.round(chosen["expected_net_gain"].to_numpy(float), 2),
        }
    )  # fmt: skip


def _joined(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    texts = [frame[c].fillna("").astype(str).to_numpy(dtype=object) for c in columns if c in frame]
    return np.asarray(
        [REASON_SEPARATOR.join(t for t in row if t) for row in zip(*texts, strict=True)]
        if texts
        else [""] * len(frame),
        dtype=object,
    )


def write_contacts(sheet: pd.DataFrame, folder: Path) -> list[Path]:
    """Write ``contacts.csv`` (and ``contacts.xlsx`` when openpyxl is importable) into
    ``folder``; return the files written."""
    folder = Path(folder)
    written = [folder / CONTACTS_CSV]
    write_csv(sheet, written[0])
    if importlib.util.find_spec("openpyxl") is not None:
        written.append(folder / CONTACTS_XLSX)
        sheet.to_excel(written[1], sheet_name="contacts", index=False, engine="openpyxl")
    return written
