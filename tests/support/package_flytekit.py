"""Ground truth for tests/packaging/archive.rs: flytekit's own file listing, digest and tar.

Reads a JSON request on stdin: {"cases": [{"root": ..., "ignores": "fast"|"image", "deref": bool}],
"tar": {"root": ..., "files": [...abs], "out": ...} (optional)} and prints a JSON answer.
"""

import json
import os
import sys
import tarfile

from flytekit.constants import CopyFileDetection
from flytekit.tools.ignore import DockerIgnore, FlyteIgnore, GitIgnore, IgnoreGroup, StandardIgnore
from flytekit.tools.script_mode import ls_files, tar_strip_file_attributes

IGNORES = {
    # fast_registration.fast_package's default_ignores
    "fast": [GitIgnore, DockerIgnore, StandardIgnore, FlyteIgnore],
    # ImageSpec.source_root
    "image": [GitIgnore, DockerIgnore, StandardIgnore],
}


def listing(case):
    root = case["root"]
    group = IgnoreGroup(root, IGNORES[case["ignores"]])
    files, digest = ls_files(root, CopyFileDetection.ALL, case.get("deref", False), group)
    return {"files": [os.path.relpath(f, root) for f in files], "digest": digest}


def flytekit_tar(req):
    """fast_package's tar loop, with the mtime as an int so Python writes no PAX mtime record."""
    root = req["root"]

    def strip(info):
        info = tar_strip_file_attributes(info)
        info.mtime = int(info.mtime)
        return info

    with tarfile.open(req["out"], "w", dereference=req.get("deref", False)) as tar:
        for f in req["files"]:
            tar.add(os.path.join(root, f), recursive=False, arcname=os.path.relpath(f, root), filter=strip)


def members(path):
    out = []
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read().hex() if m.isreg() else None
            out.append(
                {
                    "name": m.name,
                    "type": m.type.decode(),
                    "mode": m.mode,
                    "uid": m.uid,
                    "gid": m.gid,
                    "uname": m.uname,
                    "gname": m.gname,
                    "mtime": m.mtime,
                    "size": m.size,
                    "linkname": m.linkname,
                    "pax": m.pax_headers,
                    "data": data,
                }
            )
    return out


def main():
    req = json.load(sys.stdin)
    answer = {"cases": [listing(c) for c in req.get("cases", [])]}
    if "tar" in req:
        flytekit_tar(req["tar"])
    if "members" in req:
        answer["members"] = members(req["members"])
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
