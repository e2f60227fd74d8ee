"""What union 0.1.204's image builder uploads for each case: `spec.json` and the context
archive's members, from union's own `UCImageSpecBuilder._validate_configuration`, with the spec
as union's bridge describes it (for the same spec on our side).

Usage: python union_spec_oracle.py CASES.json  (a list of {"dir": ..., "spec": {ImageSpec kwargs}})
Prints a JSON list: {"image_name", "bridge", "spec_json", "members": [[name, kind, text]], "secret"},
or {"image_name", "bridge", "error"} where union raises a ValueError.
"""

import hashlib
import json
import os
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_bridge import bridge  # noqa: E402

from flytekit.constants import CopyFileDetection  # noqa: E402
from flytekit.image_spec.image_spec import ImageSpec  # noqa: E402
from union.ucimage._image_builder import UCImageSpecBuilder  # noqa: E402


def main(path):
    cases = json.load(open(path))
    out = []
    for case in cases:
        os.chdir(case["dir"])
        kwargs = dict(case["spec"])
        if "source_copy_mode" in kwargs:
            kwargs["source_copy_mode"] = CopyFileDetection[kwargs["source_copy_mode"]]
        spec = ImageSpec(**kwargs)
        name = spec.image_name()
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                spec_path, archive, secret = UCImageSpecBuilder()._validate_configuration(spec, Path(tmp), name)
            except ValueError as e:
                out.append({"image_name": name, "bridge": bridge.image_spec_to_json(spec), "error": str(e)})
                continue
            members = []
            if archive is not None:
                with tarfile.open(archive, "r:xz") as t:
                    for m in t.getmembers():
                        text = t.extractfile(m).read().decode() if m.isfile() else None
                        members.append([m.name, "file" if m.isfile() else "dir", text])
            out.append(
                {
                    "image_name": name,
                    "bridge": bridge.image_spec_to_json(spec),
                    "spec_json": spec_path.read_text(),
                    "members": members,
                    "secret": secret,
                }
            )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
