"""Compare two pyflyte-package-style directories of .pb files, as decoded messages.

Usage: python compare_packages.py THEIRS_DIR OURS_DIR

Prints one line per entity ("same <name> <kind>" or "DIFF ..."), lists entities only one side has,
and exits 1 on any difference. Entities that pyflyte adds from the union CLI plugin itself
(`union.*` internal tasks) are reported as "extra-theirs" without failing.
"""

import os
import sys

from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2

TYPES = {1: task_pb2.TaskSpec, 2: workflow_pb2.WorkflowSpec, 3: launch_plan_pb2.LaunchPlan}


def canonical(m):
    """flytekit lists a node's upstream node ids from a Python set (`list(set(nodes))` in
    flytekit/core/promise.py), so pyflyte's own order changes from run to run: compare them as
    sets (union sorts them, for a stable version)."""
    if isinstance(m, workflow_pb2.WorkflowSpec):

        def visit(node):
            ids = sorted(node.upstream_node_ids)
            del node.upstream_node_ids[:]
            node.upstream_node_ids.extend(ids)
            kind = node.WhichOneof("target")
            if kind == "branch_node":
                ie = node.branch_node.if_else
                for child in [ie.case.then_node] + [c.then_node for c in ie.other]:
                    visit(child)
                if ie.HasField("else_node"):
                    visit(ie.else_node)
            elif kind == "array_node":
                visit(node.array_node.node)

        for template in [m.template, *m.sub_workflows]:
            for node in template.nodes:
                visit(node)
            if template.HasField("failure_node"):
                visit(template.failure_node)
    return m


def load(d):
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".pb"):
            continue
        kind = int(f[-4])
        name = f.split("_", 1)[1][: -len("_1.pb")]
        m = TYPES[kind]()
        with open(os.path.join(d, f), "rb") as fh:
            m.ParseFromString(fh.read())
        out[(name, kind)] = canonical(m)
    return out


def main():
    theirs, ours = load(sys.argv[1]), load(sys.argv[2])
    bad = False
    for key in sorted(ours):
        if key not in theirs:
            print("extra-ours", *key)
            bad = True
        elif theirs[key] == ours[key]:
            print("same", *key)
        else:
            print("DIFF", *key)
            print("theirs:", theirs[key])
            print("ours:", ours[key])
            bad = True
    for key in sorted(set(theirs) - set(ours)):
        if key[0].startswith("union."):
            print("extra-theirs", *key)
        else:
            print("missing", *key)
            bad = True
    if not ours:
        print("nothing packaged")
        bad = True
    sys.exit(1 if bad else 0)


main()
