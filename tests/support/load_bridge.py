"""union's Python bridge as union loads it, for test scripts: its files concatenated in
BRIDGE_SOURCE's order (src/python/mod.rs), executed as one module under a name no user module
can take. `from load_bridge import bridge`."""

import os
import types

_BRIDGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "python", "bridge")
_BRIDGE_FILES = ["protocol", "tracebacks", "discover", "inputs", "run", "serialize", "remote", "warm"]

bridge = types.ModuleType("union_bridge_under_test")
exec(
    compile(
        "\n".join(open(os.path.join(_BRIDGE_DIR, f + ".py")).read() for f in _BRIDGE_FILES),
        "<union-bridge>",
        "exec",
    ),
    bridge.__dict__,
)
