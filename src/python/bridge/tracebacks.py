# ---------------------------------------------------------------------------------------------
# Tracebacks that show the user's code, not flytekit's plumbing.


def _is_user_frame(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    if any(m in filename for m in _SITE_MARKERS):
        return False
    for p in {sys.prefix, sys.base_prefix, getattr(sys, "exec_prefix", sys.prefix)}:
        if p and filename.startswith(p + os.sep) and "lib" in filename[len(p) :].split(os.sep)[1:2]:
            return False
    return True


def _root_cause(e: BaseException) -> BaseException:
    """flytekit wraps a task's exception in its own ones; find the user's original exception."""
    seen = set()
    cur = e
    while id(cur) not in seen:
        seen.add(id(cur))
        nxt = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
        # flytekit's FlyteUserRuntimeException keeps the user's exception as `.value`
        val = getattr(cur, "value", None)
        if isinstance(val, BaseException) and val is not cur:
            nxt = val
        if nxt is None:
            break
        cur = nxt
    return cur


def format_user_traceback(e: BaseException) -> str:
    root = _root_cause(e)
    frames = traceback.extract_tb(root.__traceback__)
    user = [f for f in frames if _is_user_frame(f.filename)]
    lines = []
    if user:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(user))
    lines.extend(traceback.format_exception_only(type(root), root))
    return "".join(lines)


def _format_import_error(e: BaseException) -> str:
    # SyntaxError carries file/line/caret in format_exception_only; for other errors show the user frames.
    if isinstance(e, SyntaxError):
        return "".join(traceback.format_exception_only(type(e), e))
    return format_user_traceback(e)
