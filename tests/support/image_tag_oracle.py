"""Oracle for tests/images/tag.rs: computes ImageSpec tags with the real flytekit.

Usage: python image_tag_oracle.py CASES.json RESULTS.json

Each case is {"dir": <cwd>, "kind": "kwargs"|"yaml", "spec": {...} | "yaml": <text>,
"import": [module names to import from "sys_path" first]}. In "kwargs" specs, a nested base image
is {"__spec__": {...}}, `source_copy_mode` is the enum NAME and `pip_secret_mounts` pairs become
tuples. For every case the result holds flytekit's image_name(), id, the text `id` hashes, the
bridge's JSON of the constructed spec (src/python/bridge/discover.py `image_spec_to_json`), and the loaded
module files flytekit's LOADED_MODULES mode would consider (outside flytekit/site-packages/prefix).
"""

import dataclasses
import importlib.util
import json
import os
import site
import sys
import traceback
import types

import yaml

import flytekit
from flytekit.constants import CopyFileDetection
from flytekit.image_spec.image_spec import ImageSpec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from load_bridge import bridge  # noqa: E402


def build(kw):
    kw = dict(kw)
    if isinstance(kw.get("base_image"), dict) and "__spec__" in kw["base_image"]:
        kw["base_image"] = build(kw["base_image"]["__spec__"])
    if kw.get("source_copy_mode") is not None:
        kw["source_copy_mode"] = CopyFileDetection[kw["source_copy_mode"]]
    if kw.get("pip_secret_mounts") is not None:
        kw["pip_secret_mounts"] = [tuple(p) for p in kw["pip_secret_mounts"]]
    return ImageSpec(**kw)


def id_text(spec):
    excl = ["pip_secret_mounts", "builder", "runtime_packages"]
    d = dataclasses.asdict(spec, dict_factory=lambda x: {k: v for (k, v) in x if v is not None and k not in excl})
    return str(d)


def user_module_files():
    bad = [os.path.dirname(flytekit.__file__), sys.prefix, sys.base_prefix, site.getusersitepackages()]
    bad += site.getsitepackages()
    out = []
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f:
            continue
        if any(os.path.commonpath([f, d]) == d for d in bad if os.path.isabs(d)):
            continue
        out.append(f)
    return out


def main():
    cases = json.load(open(sys.argv[1]))
    results = []
    start = os.getcwd()
    for case in cases:
        os.chdir(case["dir"])
        try:
            if case.get("sys_path"):
                sys.path.insert(0, case["sys_path"])
            for m in case.get("import", []):
                importlib.import_module(m)
            if case["kind"] == "yaml":
                spec = ImageSpec(**yaml.safe_load(case["yaml"]))
            else:
                spec = build(case["spec"])
            results.append(
                {
                    "image_name": spec.image_name(),
                    "id": spec.id,
                    "id_text": id_text(spec),
                    "bridge": bridge.image_spec_to_json(spec),
                    "modules": user_module_files(),
                }
            )
        except Exception as e:  # noqa: BLE001 - the error itself is the expected result
            results.append({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})
        finally:
            os.chdir(start)
    json.dump(results, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
