"""Trajectories in the formats other tools read: Hugging Face datasets, parquet, SFT chat JSONL.

See :mod:`agentgym.data.export` for the schema.
"""

from agentgym.data.export import (
    FORMATS,
    export,
    ledger_rows,
    sft_records,
    to_hf,
    to_parquet,
    to_sft,
)
from agentgym.data.runs import Source, load_source

__all__ = [
    "FORMATS",
    "export",
    "ledger_rows",
    "sft_records",
    "to_hf",
    "to_parquet",
    "to_sft",
    "Source",
    "load_source",
]
