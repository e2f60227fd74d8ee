"""Self-test of the comparison logic (no flytekit, no sandbox): python tests/conformance/test_compare.py"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
from compare import parse_local, parse_remote, parse_value, verdict  # noqa: E402


def ok(local_text, remote_text, outputs=("o0",), **kw):
    case = {"id": kw.pop("id", "m.wf"), "outputs": list(outputs)}
    local = {"ok": True, "text": local_text, "blobs": kw.pop("blobs", {}), "dataframes": kw.pop("ldf", [])}
    remote = {"ok": True, "text": remote_text, "dataframes": kw.pop("rdf", [])}
    return verdict(case, local, remote)


def test_parse():
    assert parse_value("3.0") == 3.0
    assert parse_value("-1.5") == -1.5
    assert parse_value("Hello, World!") == {"__text__": "Hello, World!"}
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("Datum(x=30, y='1020', z={10: '10'})") == {"__type__": "Datum", "x": 30, "y": "1020", "z": {"10": "10"}}
    assert parse_value("Coffee.LATTE") == "Coffee.LATTE"
    # pydantic's str(): fields separated by spaces, no class name
    assert parse_value("x=30 y='a b=c' z={10: '10', 20: '20'}") == {"__type__": "__model__", "x": 30, "y": "a b=c", "z": {"10": "10", "20": "20"}}
    assert parse_value("dataframe=SD(uri=None, f='p') file=/tmp/x") == {"__type__": "__model__", "dataframe": {"__type__": "SD", "uri": None, "f": "p"}, "file": "/tmp/x"}
    # unquoted paths (FlyteFile's str) still parse
    assert parse_value("T(file=/tmp/ab, d=file:///x/y)") == {"__type__": "T", "file": "/tmp/ab", "d": "file:///x/y"}


def test_outputs():
    outs = ["slope", "intercept"]
    assert parse_local("slope_and_intercept_values(slope=-1.5, intercept=3.0)", outs) == {"slope": -1.5, "intercept": 3.0}
    assert parse_remote("slope: -1.5\nintercept: 3.0", outs) == {"slope": -1.5, "intercept": 3.0}
    assert parse_local("(1.0, 2.0)", ["o0", "o1"]) == {"o0": 1.0, "o1": 2.0}
    # union may print several outputs as pyflyte's local run does
    assert parse_remote("slope_and_intercept_values(slope=-1.5, intercept=3.0)", outs) == {"slope": -1.5, "intercept": 3.0}
    # a value spanning lines stays with its output
    assert parse_remote("o0: a\nb\no1: 2", ["o0", "o1"]) == {"o0": {"__text__": "a\nb"}, "o1": 2}
    assert parse_local("", []) is None and parse_remote("", []) is None


def test_verdicts():
    assert ok("3.0", "3.0") == ("same", "")
    v, why = ok("slope_and_intercept_values(slope=-1.5, intercept=3.0)", "slope: -1.5\nintercept: 3.0", outputs=["slope", "intercept"])
    assert v == "same" and "printed differently" in why
    # a pydantic model: local repr inside a NamedTuple, sandbox str() after `o0: `
    assert ok("DefaultNamedTupleOutput(o0=Datum(x=30, y='1020'), o1=1)", "o0: x=30 y='1020'\no1: 1", outputs=["o0", "o1"])[0] == "same"
    assert ok("DefaultNamedTupleOutput(o0=Datum(x=30, y='1020'), o1=1)", "o0: x=31 y='1020'\no1: 1", outputs=["o0", "o1"])[0] == "different"
    # floats are exact
    assert ok("0.30000000000000004", "0.3")[0] == "different"
    assert ok("1", "1.0")[0] == "different"  # an int is not a float
    assert ok("[1, 'a']", "[1, 'a']")[0] == "same"
    assert ok("x(a=1)", "x(a=True)")[0] == "different"
    # failures
    v, why = verdict({"id": "m.wf", "outputs": ["o0"]}, {"ok": True, "text": "1"}, {"ok": False, "why": "exit 1: boom"})
    assert v == "failed" and "boom" in why
    # object addresses
    v, why = ok("<a.B object at 0x7f00>", "<a.B object at 0x7f11>")
    assert v == "same" and "address" in why
    # the launch plan whose local run is wrong: the verdict follows Flyte
    assert ok("-4.5", "-7.5", id="subworkflow.launch_plan")[0] == "same"
    assert ok("-4.5", "-4.5", id="subworkflow.launch_plan")[0] == "same"
    assert ok("-4.5", "-1.0", id="subworkflow.launch_plan")[0] == "different"
    # a local run that fails, compared with Flyte's answer
    case = {"id": "e.wf", "outputs": ["o0"], "flyte": "4"}
    assert verdict(case, {"ok": False, "why": "exit 1"}, {"ok": True, "text": "4"})[0] == "same"
    assert verdict(case, {"ok": False, "why": "exit 1"}, {"ok": True, "text": "5"})[0] == "different"
    assert verdict(case, {"ok": False, "why": "exit 1"}, {"ok": False, "why": "boom"})[0] == "failed"
    # a row Flyte fails: the sandbox must fail with the same error
    case = {"id": "e.wf", "outputs": ["o0"], "flyte_error": "TypeError: x"}
    assert verdict(case, {"ok": False, "why": "exit 1"}, {"ok": False, "why": "exit 1: TypeError: x"})[0] == "same"
    assert verdict(case, {"ok": False, "why": "exit 1"}, {"ok": False, "why": "exit 1: other"})[0] == "different"
    assert verdict(case, {"ok": False, "why": "exit 1"}, {"ok": True, "text": "4"})[0] == "different"
    # dataframes compared by content when both sides are read
    assert ok("SD()", "SD()", ldf=["df:a"], rdf=["df:a"])[0] == "same"
    assert ok("SD()", "SD()", ldf=["df:a"], rdf=["df:b"])[0] == "different"
    v, why = ok("SD()", "SD()", ldf=["df:a"], rdf=[])
    assert v == "same" and "not compared" in why


def test_paths():
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a"), os.path.join(d, "b")
        for p, content in ((a, b"hi"), (b, b"hi")):
            with open(p, "wb") as f:
                f.write(content)
        blobs = {a: compare.content_digest(a)}
        v, why = ok(f"T(file={a})", f"T(file={b})", blobs=blobs)
        assert v == "same" and "paths differ" in why, (v, why)
        two = ["o0", "o1"]
        v, why = ok(f"DefaultNamedTupleOutput(o0=D(x=1), o1=T(file={a}))", f"DefaultNamedTupleOutput(o0=D(x=1), o1=T(file={b}))", outputs=two, blobs=blobs)
        assert v == "same" and "paths differ" in why, (v, why)
        v, why = ok(f"DefaultNamedTupleOutput(o0=D(x=1), o1=T(file={a}))", f"o0: D(x=1)\no1: T(file={b})", outputs=two, blobs=blobs)
        assert v == "same" and "paths differ" in why, (v, why)
        with open(b, "wb") as f:
            f.write(b"ho")
        assert ok(f"T(file={a})", f"T(file={b})", blobs=blobs)[0] == "different"
        # a relative path printed alone (ShellTask output `output.txt`)
        v, why = ok("output.txt", a, blobs={"output.txt": compare.content_digest(a)})
        assert v == "same" and "paths differ" in why, (v, why)
        # directories: same names and contents
        da, db = os.path.join(d, "da"), os.path.join(d, "db")
        for x in (da, db):
            os.mkdir(x)
            with open(os.path.join(x, "f.txt"), "w") as f:
                f.write("x")
        assert compare.content_digest(da) == compare.content_digest(db)
        assert compare.content_digest("file://" + da) == compare.content_digest(da)


def test_errors():
    err = "Starting execution: x\nerror: execution x failed\n\n  [n1] input `message`: cannot take attribute\n\nhint: inspect it"
    assert compare.error_summary(err) == "[n1] input `message`: cannot take attribute"
    assert compare.error_summary("Traceback...\nValueError: bad\n") == "ValueError: bad"
    assert compare.last_running_nodes("  node n0: RUNNING\n  node n0: SUCCEEDED in 1s\n  node n1: RUNNING\n") == "still running: n1"


def test_remote_dataframes():
    get = 'Output:     o0 = "/x/raw/1"\nOutput:     o1 = {"dataframe":{"uri":"/x/raw/2","file_format":"csv"},"file":{"path":"/f"}}\n'
    printed = "o0: StructuredDataset(uri=None, file_format='parquet')\no1: T(dataframe=StructuredDataset(uri=None, file_format='csv'), file=/f)"
    assert compare.remote_dataframe_uris(get, printed, ["o0", "o1"]) == [("/x/raw/1", "parquet"), ("/x/raw/2", "csv")]
    # a top-level string output that is not a dataframe is not taken for one
    assert compare.remote_dataframe_uris('Output:     o0 = "/f"\n', "/f", ["o0"]) == []


if __name__ == "__main__":
    n = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            n += 1
    print(f"test_compare: {n} tests passed")
