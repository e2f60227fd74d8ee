"""Export the protobuf schema of union's remote image builder and secret service, as the installed
`union` package carries it, as a FileDescriptorSet.

Usage: python export_union.py OUT.fds

`union/internal/imagebuilder/{definition,payload,service}_pb2.py` and
`union/internal/secret/{definition,payload,secret}_pb2.py` embed their serialized file
descriptors (as flyteidl's modules do). We import them, collect each `DESCRIPTOR` with its
transitive dependencies (`common/identifier.proto`, `validate/validate.proto`, Google's
descriptor, duration and timestamp), and write one serialized
`google.protobuf.descriptor_pb2.FileDescriptorSet`, dependencies first, otherwise by file name, so
the output is byte-stable for a given installation.

Run by `regenerate.sh` (beside this file), which commits the output as `union.fds` and the
version it prints (`version X.Y.Z`) as `union.version`; the crate's build script compiles the
committed set, so building needs no Python.
"""

import importlib
import sys

MODULES = [
    "union.internal.imagebuilder.definition_pb2",
    "union.internal.imagebuilder.payload_pb2",
    "union.internal.imagebuilder.service_pb2",
    "union.internal.secret.definition_pb2",
    "union.internal.secret.payload_pb2",
    "union.internal.secret.secret_pb2",
]


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: export_union.py OUT.fds\n")
        return 2
    out_path = argv[1]
    try:
        from google.protobuf import descriptor_pb2

        modules = [importlib.import_module(m) for m in MODULES]
    except ImportError as e:
        sys.stderr.write(f"cannot import union's image builder types: {e}\n")
        return 3

    files = {}

    def collect(fd):
        if fd.name in files:
            return
        files[fd.name] = fd
        for dep in fd.dependencies:
            collect(dep)

    for module in modules:
        collect(module.DESCRIPTOR)

    ordered, done = [], set()

    def visit(name, stack=()):
        if name in done:
            return
        if name in stack:
            raise RuntimeError("import cycle through " + " -> ".join(stack + (name,)))
        for dep in sorted(d.name for d in files[name].dependencies):
            visit(dep, stack + (name,))
        done.add(name)
        ordered.append(files[name])

    for name in sorted(files):
        visit(name)

    fds = descriptor_pb2.FileDescriptorSet()
    for fd in ordered:
        fd.CopyToProto(fds.file.add())
    with open(out_path, "wb") as f:
        f.write(fds.SerializeToString(deterministic=True))

    from importlib.metadata import version

    print(f"version {version('union')}")
    sys.stderr.write(
        f"union {version('union')}: {len(ordered)} files ({', '.join(f.name for f in ordered)})\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
