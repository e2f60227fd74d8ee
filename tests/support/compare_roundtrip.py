"""Check that messages re-encoded by another implementation are lossless, using flyteidl's own Python types.

Usage: python compare_roundtrip.py TYPE ORIGINAL REENCODED [TYPE ORIGINAL REENCODED ...]

TYPE is a full message name such as `flyteidl.admin.TaskSpec`; ORIGINAL holds the bytes flytekit wrote
with `SerializeToString(deterministic=True)`, REENCODED the same message after a decode/encode round
trip elsewhere (prost). For each triple, prints `ok <REENCODED>` when

- both parse as TYPE and compare equal (`==`),
- the re-encoded message carries no field unknown to flyteidl, and
- its deterministic re-serialization is byte-identical to ORIGINAL (so nothing was dropped or
  changed, including unknown fields ORIGINAL may carry and the presence of wrapper/sub-messages),

and `mismatch <REENCODED>: <reason>` otherwise. Exit status 0 even on mismatch: the caller decides.
"""

import sys

from google.protobuf import symbol_database
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet


def load(kind):
    module_by_type = {
        "flyteidl.admin.TaskSpec": "flyteidl.admin.task_pb2",
        "flyteidl.admin.WorkflowSpec": "flyteidl.admin.workflow_pb2",
        "flyteidl.admin.LaunchPlan": "flyteidl.admin.launch_plan_pb2",
    }
    __import__(module_by_type.get(kind, "flyteidl.admin.task_pb2"))
    return symbol_database.Default().GetSymbol(kind)


def unknown_fields(msg: Message, path="") -> list:
    """Paths of messages that carry unknown fields, recursively."""
    found = []
    if len(UnknownFieldSet(msg)):
        found.append(path or "<root>")
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        sub = f"{path}.{field.name}" if path else field.name
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for k, v in value.items():
                    found += unknown_fields(v, f"{sub}[{k!r}]")
        elif field.is_repeated:
            for i, v in enumerate(value):
                found += unknown_fields(v, f"{sub}[{i}]")
        else:
            found += unknown_fields(value, sub)
    return found


def compare(kind, original_path, reencoded_path):
    cls = load(kind)
    with open(original_path, "rb") as f:
        original_bytes = f.read()
    with open(reencoded_path, "rb") as f:
        reencoded_bytes = f.read()
    a, b = cls(), cls()
    a.ParseFromString(original_bytes)
    b.ParseFromString(reencoded_bytes)
    if a != b:
        return "messages differ"
    unknown = unknown_fields(b)
    if unknown:
        return "unknown fields in " + ", ".join(unknown)
    if b.SerializeToString(deterministic=True) != original_bytes:
        return "deterministic re-serialization differs from the original bytes"
    return None


def main(argv):
    args = argv[1:]
    if not args or len(args) % 3:
        sys.stderr.write(__doc__)
        return 2
    for i in range(0, len(args), 3):
        kind, original, reencoded = args[i : i + 3]
        problem = compare(kind, original, reencoded)
        print(f"ok {reencoded}" if problem is None else f"mismatch {reencoded}: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
