"""Export the protobuf schema carried by the installed `flyteidl` package as a FileDescriptorSet.

Usage: python export_flyteidl.py OUT.fds

Every `flyteidl.*_pb2` module of the PyPI package embeds its serialized file descriptor. We import
each of them, collect `DESCRIPTOR` together with its transitive dependencies (Google's well-known
types, google/api annotations, openapiv2 options, ...), and write one serialized
`google.protobuf.descriptor_pb2.FileDescriptorSet`. Files are ordered so that dependencies always
come before their dependents; apart from that, order is by file name, so the output is byte-stable
for a given installation.

Run by `regenerate.sh` (beside this file), which commits its output as `flyteidl.fds` and the
version it prints (`version X.Y.Z`) as `flyteidl.version`; the crate's build script compiles the
committed set, so building needs no Python.
"""

import importlib
import pkgutil
import sys


def iter_pb2_modules(package):
    """Yield every `*_pb2` module under `package`, sorted by dotted name."""
    names = []
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        if info.name.endswith("_pb2"):
            names.append(info.name)
    for name in sorted(names):
        yield importlib.import_module(name)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: export_flyteidl.py OUT.fds\n")
        return 2
    out_path = argv[1]

    try:
        import flyteidl
        from google.protobuf import descriptor_pb2
    except ImportError as e:  # build.rs turns a failure into a how-to-fix message
        sys.stderr.write(f"cannot import flyteidl: {e}\n")
        return 3

    files = {}  # name -> FileDescriptor (python descriptor objects)

    def collect(fd):
        if fd.name in files:
            return
        files[fd.name] = fd
        for dep in fd.dependencies:
            collect(dep)

    count = 0
    for module in iter_pb2_modules(flyteidl):
        collect(module.DESCRIPTOR)
        count += 1
    if count == 0:
        sys.stderr.write("no flyteidl *_pb2 modules found\n")
        return 3

    # Topological order: dependencies first, ties broken by name (deterministic).
    ordered = []
    done = set()

    def visit(name, stack=()):
        if name in done:
            return
        if name in stack:
            raise RuntimeError("import cycle through " + " -> ".join(stack + (name,)))
        fd = files[name]
        for dep in sorted(d.name for d in fd.dependencies):
            visit(dep, stack + (name,))
        done.add(name)
        ordered.append(fd)

    for name in sorted(files):
        visit(name)

    fds = descriptor_pb2.FileDescriptorSet()
    for fd in ordered:
        proto = fds.file.add()
        fd.CopyToProto(proto)

    with open(out_path, "wb") as f:
        f.write(fds.SerializeToString(deterministic=True))

    # For build.rs: the installed version, and files whose change means "flyteidl was reinstalled".
    version, watch = "unknown", [flyteidl.__file__]
    try:
        from importlib.metadata import distribution

        dist = distribution("flyteidl")
        version = dist.version
        watch += [str(dist.locate_file(f)) for f in (dist.files or []) if f.name in ("RECORD", "METADATA")]
    except Exception:
        pass
    print(f"version {version}")
    for path in watch:
        print(f"watch {path}")
    sys.stderr.write(
        f"flyteidl {version}: {count} _pb2 modules, {len(ordered)} files in the descriptor set\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
