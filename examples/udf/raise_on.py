#!/usr/bin/env python3
"""Add y = id * 2, but raise on the ids listed in the environment variable RAISE_IDS
("7,1234"): those rows are dead-lettered one by one with the exception's message, and the rest
of each split goes on."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import nurion_udf as udf  # noqa: E402

BAD = {int(x) for x in os.environ.get("RAISE_IDS", "").split(",") if x.strip()}


@udf.map
def double_or_raise(row):
    if row["id"] in BAD:
        raise ValueError("id %d is on the RAISE_IDS list" % row["id"])
    row["y"] = row["id"] * 2
    return row


if __name__ == "__main__":
    udf.run()
