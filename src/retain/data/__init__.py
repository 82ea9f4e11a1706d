"""The data contract: canonical schemas, loaders, column mapping, validation and the simulator.

``load_dataset(data_dir, mapping=None)`` reads a data folder, converts it to the canonical tables
and checks it, raising one :class:`~retain.errors.DataError` that lists every problem found.
"""

from retain.data.dataset import Dataset, load_dataset
from retain.data.mapping import Mapping, TableMapping, load_mapping
from retain.data.schemas import CUSTOMERS, INTERACTIONS, TABLES, TRANSACTIONS, canonical_schema
from retain.data.summary import print_summary, summarize

__all__ = [
    "CUSTOMERS",
    "INTERACTIONS",
    "TABLES",
    "TRANSACTIONS",
    "Dataset",
    "Mapping",
    "TableMapping",
    "canonical_schema",
    "load_dataset",
    "load_mapping",
    "print_summary",
    "summarize",
]
