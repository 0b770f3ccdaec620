#!/usr/bin/env python3
"""Add a column y = id * 2 (the exec stage declares it in "output_schema")."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import nurion_udf as udf  # noqa: E402


@udf.map
def double(row):
    row["y"] = row["id"] * 2
    return row


if __name__ == "__main__":
    udf.run()
