# The Python half of union's bridge. It runs inside the interpreter that `union` embeds, with the
# user's own flytekit. Every function called from Rust takes and returns plain text (JSON): no
# Python object ever crosses into Rust. Errors in user code come back as structured data carrying
# the user's traceback, never as a raw exception.
#
# The bridge is one Python module made of the files of this directory, in the order
# `src/python/mod.rs` (BRIDGE_SOURCE) lists them: this one first (the imports and `_guard` the
# others use), then tracebacks, discover, inputs, run, serialize, remote, warm.
import dataclasses
import enum
import importlib
import inspect
import json
import os
import sys
import traceback
import typing

_SITE_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


class UserError(Exception):
    """An error whose message is meant for the user as is (kind + message + optional traceback)."""

    def __init__(self, kind, message, tb=None, **extra):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.tb = tb
        self.extra = extra


def _ok(value):
    text = json.dumps({"ok": value}, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: a file-name byte that is not UTF-8, as os.fsdecode represents it. Rust
        # strings cannot hold one, so such names are shown with U+FFFD (paths that must survive
        # the trip travel as bytes instead, see _fs_paths).
        import re

        text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    return text


def _fs_paths(paths):
    """Paths as base64 of their file-system bytes, so that none is mangled on its way to Rust."""
    import base64

    return [base64.b64encode(os.fsencode(p)).decode() for p in paths]


def _err(e: UserError):
    d = {"kind": e.kind, "message": e.message, "traceback": e.tb}
    d.update(e.extra)
    return json.dumps({"error": d})


def _guard(fn):
    def wrapper(*args):
        try:
            return _ok(fn(*args))
        except UserError as e:
            return _err(e)
        except KeyboardInterrupt:
            return json.dumps({"error": {"kind": "interrupted", "message": "interrupted", "traceback": None}})
        except BaseException as e:  # noqa: B902 - anything else is a bug on our side; report it whole
            return _err(UserError("internal", f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e))))

    wrapper.__name__ = fn.__name__
    return wrapper
