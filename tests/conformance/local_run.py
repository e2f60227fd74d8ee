"""Run the real `pyflyte run` in this process and record what it printed as the result.

Usage: python local_run.py RESULT.json PYFLYTE_ARGS...

pyflyte's local run ends with `click.echo(output)`; the tasks' own prints share stdout with it, so
this wrapper observes `click.echo` (and nothing else: pyflyte runs unchanged) and writes to
RESULT.json the text of the last message echoed (what pyflyte printed as the result) plus, for the
files, directories and dataframes inside the returned value, a digest of their content, keyed by
the path pyflyte printed (local outputs live in temporary paths that a sandbox run cannot share).
"""

import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import content_digest, dataframe_dir_digest, df_digest  # noqa: E402


def collect_blobs(v, out, dataframes, depth=0):
    """{printed path: digest} for every file and directory reachable in v; the digests of its
    dataframes, in order, appended to `dataframes`."""
    if depth > 8:
        return
    try:
        from flytekit.types.directory import FlyteDirectory
        from flytekit.types.file import FlyteFile
        from flytekit.types.structured import StructuredDataset
    except Exception:  # noqa: BLE001
        return
    try:
        import pandas as pd
    except Exception:  # noqa: BLE001
        pd = None
    if isinstance(v, (FlyteFile, FlyteDirectory)):
        p = str(v.path)
        d = content_digest(p)
        if d:
            out[p] = d
        return
    if isinstance(v, StructuredDataset):
        # What was stored (all columns), read the way compare.py reads the sandbox's copy; a
        # dataframe never written (still in memory) as it is.
        lit = getattr(v, "_literal_sd", None)
        uri = getattr(lit, "uri", None) or v.uri
        try:
            d = None
            if uri:
                fmt = getattr(getattr(getattr(lit, "metadata", None), "structured_dataset_type", None), "format", "") or v.file_format
                d = dataframe_dir_digest(str(uri), fmt or "parquet")
            if d is None:
                df = v.dataframe if pd is not None and isinstance(v.dataframe, pd.DataFrame) else v.open(pd.DataFrame).all()
                d = df_digest(df)
            dataframes.append(d)
        except Exception as e:  # noqa: BLE001
            dataframes.append(f"unreadable: {e!r}")
        return
    if pd is not None and isinstance(v, pd.DataFrame):
        dataframes.append(df_digest(v))
        return
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        for f in dataclasses.fields(v):
            collect_blobs(getattr(v, f.name), out, dataframes, depth + 1)
        return
    if hasattr(v, "model_fields") and not isinstance(v, type):
        for name in type(v).model_fields:
            collect_blobs(getattr(v, name, None), out, dataframes, depth + 1)
        return
    if isinstance(v, dict):
        for x in v.values():
            collect_blobs(x, out, dataframes, depth + 1)
    elif isinstance(v, (list, tuple)):
        for x in v:
            collect_blobs(x, out, dataframes, depth + 1)


def main():
    result_path = sys.argv[1]
    args = sys.argv[2:]
    import click
    import rich_click

    seen = {"message": None, "count": 0}
    real_echo = click.echo

    def echo(message=None, *a, **k):
        seen["message"] = message
        seen["count"] += 1
        return real_echo(message, *a, **k)

    # flytekit's run.py imports rich_click as click; rich_click re-exports click.echo
    click.echo = echo
    rich_click.echo = echo
    from flytekit.clis.sdk_in_container.pyflyte import main as pyflyte_main

    code = 0
    try:
        pyflyte_main.main(args=args, prog_name="pyflyte", standalone_mode=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    doc = {"exit": code, "echoed": seen["count"] > 0}
    if seen["count"]:
        msg = seen["message"]
        doc["text"] = "" if msg is None else str(msg)  # click.echo(None) prints an empty line
        doc["type"] = type(msg).__module__ + "." + type(msg).__qualname__
        blobs, dataframes = {}, []
        try:
            collect_blobs(msg, blobs, dataframes)
        except Exception as e:  # noqa: BLE001
            doc["blob_error"] = repr(e)
        doc["blobs"] = blobs
        doc["dataframes"] = dataframes
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
