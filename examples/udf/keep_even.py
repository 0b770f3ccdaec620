#!/usr/bin/env python3
"""Keep the rows whose id is even (output schema = input schema, no "output_schema" needed)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import nurion_udf as udf  # noqa: E402


@udf.filter
def even(row):
    return row["id"] % 2 == 0


if __name__ == "__main__":
    udf.run()
