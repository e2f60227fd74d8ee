"""Read registered entities back through the real FlyteRemote (flytekit 1.16.31).

Usage: python fetch_entities.py ENDPOINT PROJECT DOMAIN VERSION KIND:NAME [KIND:NAME ...]
       python fetch_entities.py ENDPOINT PROJECT DOMAIN --count-tasks
       python fetch_entities.py ENDPOINT PROJECT DOMAIN --active-lp NAME

KIND is task, workflow or launch_plan. Prints one JSON line per entity with what FlyteRemote saw
(its name, version, input and output names, and for tasks the container image and args).
"""

import json
import sys

from flytekit.configuration import Config
from flytekit.remote import FlyteRemote


def main():
    endpoint, project, domain = sys.argv[1:4]
    remote = FlyteRemote(Config.for_endpoint(endpoint, insecure=True), default_project=project, default_domain=domain)
    if sys.argv[4] == "--active-lp":
        from flytekit.models.common import NamedEntityIdentifier

        lp = remote.client.get_active_launch_plan(NamedEntityIdentifier(project, domain, sys.argv[5]))
        print(json.dumps({"active": lp.id.version}))
        return
    if sys.argv[4] == "--count-tasks":
        ids, _ = remote.client.list_task_ids_paginated(project, domain, limit=1000)
        print(json.dumps({"task_names": sorted(i.name for i in ids)}))
        return
    version = sys.argv[4]
    for spec in sys.argv[5:]:
        kind, name = spec.split(":", 1)
        if kind == "task":
            e = remote.fetch_task(project, domain, name, version)
            c = e.template.container
            out = {"kind": kind, "name": e.id.name, "version": e.id.version, "image": c.image, "args": list(c.args)}
        elif kind == "workflow":
            e = remote.fetch_workflow(project, domain, name, version)
            out = {"kind": kind, "name": e.id.name, "version": e.id.version, "nodes": len(e.flyte_nodes)}
        else:
            e = remote.fetch_launch_plan(project, domain, name, version)
            out = {"kind": kind, "name": e.id.name, "version": e.id.version, "workflow": e.workflow_id.name}
        out["inputs"] = sorted(e.interface.inputs.keys())
        out["outputs"] = sorted(e.interface.outputs.keys())
        print(json.dumps(out))


main()
