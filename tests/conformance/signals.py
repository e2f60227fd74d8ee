"""Answer an execution's gate nodes the way a user does with FlyteRemote (what the Flyte console's
approve/input buttons call): list the execution's signals, set those we have an answer for.

Usage: python signals.py CONFIG EXECUTION_NAME '{"signal id": value, ...}'

Polls every 2 s until every answer is set (or it is killed). Each step goes to stderr, so that a row
that times out can say whether the backend listed the signals at all.
"""

import json
import sys
import time


def main():
    config, name, answers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(Config.auto(config), default_project="flytesnacks", default_domain="development")
    pending = dict(answers)
    last_error = None
    while pending:
        try:
            listed = remote.list_signals(name)
            for s in listed:
                sid = s.id.signal_id
                if sid in pending:
                    v = pending.pop(sid)
                    remote.set_signal(sid, name, v, python_type=type(v))
                    print(f"signals: set {sid} = {v!r}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - e.g. UNIMPLEMENTED: report once, keep polling
            msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            if msg != last_error:
                print(f"signals: {msg}", file=sys.stderr, flush=True)
                last_error = msg
        time.sleep(2)


if __name__ == "__main__":
    main()
