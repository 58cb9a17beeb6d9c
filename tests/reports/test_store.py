"""OutputStore: sanitized names stay inside the root, writes are atomic, manifests list."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import re
import uuid
from pathlib import Path

import pytest

from reports.errors import OutputPathError
from reports.store import OutputStore, safe_component

AWKWARD = [
    "../../etc",
    "a/b",
    "a_b",
    "..",
    ".",
    "...",
    "",
    "_",
    "/abs/path",
    "a\\b",
    ".hidden",
    "ünïcödé",
    "ünïcödè",
    "nul\x00byte",
    "new\nline",
    "x" * 300,
    "x" * 299 + "y",
    "x" * 80,
    "spaces in name",
    "AA",
    "2013-07",
]


@pytest.fixture
def root(tmp_path) -> Path:
    return (tmp_path / "out").resolve()


@pytest.fixture
def store(root) -> OutputStore:
    return OutputStore(str(root))


@pytest.fixture
def memory_store():
    store = OutputStore(f"memory://unit-{uuid.uuid4().hex[:8]}/outputs")
    yield store
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


def leave_error(relative: str) -> str:
    return f"output path {relative!r} would leave the output root"


# --- names ----------------------------------------------------------------------------


def test_safe_values_are_kept_as_they_are(store):
    params = {"carrier": "AA", "month": "2013-07"}
    assert store.item_dir("carrier-monthly", params) == "carrier-monthly/carrier=AA/month=2013-07"
    assert store.file_stem("carrier-monthly", params) == "carrier-monthly_AA_2013-07"


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_stay_inside_the_root(store, root, value):
    relative = store.item_dir("rep", {"p": value})
    parts = relative.split("/")
    assert len(parts) == 2 and parts[0] == "rep" and parts[1].startswith("p=")
    assert posixpath.normpath(relative) == relative  # no '..', '.', '' or absolute parts
    assert len(parts[1]) <= len("p=") + 80 + len("~12345678")
    store.write_bytes(f"{relative}/f.txt", b"x")
    written = Path(store.path(f"{relative}/f.txt")).resolve()
    assert written.relative_to(root) == Path("rep", parts[1], "f.txt")
    assert written.read_bytes() == b"x"


def test_distinct_values_stay_distinct():
    components = [safe_component(value) for value in AWKWARD]
    assert len(set(components)) == len(AWKWARD)


def test_sanitized_values_get_a_hash_suffix():
    assert safe_component("a/b") == "a_b~" + hashlib.sha256(b"a/b").hexdigest()[:8]
    assert safe_component("a_b") == "a_b"
    assert safe_component("..").startswith("_~")
    assert safe_component(7) == "7"


def test_awkward_keys_and_report_names_are_sanitized(store):
    relative = store.item_dir("../evil", {"../k": "v"})
    assert ".." not in relative.split("/")
    assert store.path(relative).startswith(store.root + "/")


# --- paths that leave the root --------------------------------------------------------------


@pytest.mark.parametrize(
    "relative",
    [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "..",
        "a/b/../../../x",
        "../out-evil/x",
    ],
)
def test_escaping_paths_are_rejected(store, relative):
    for use in (store.path, store.uri, store.exists, store.read_bytes, store.remove):
        with pytest.raises(OutputPathError) as caught:
            use(relative)
        assert str(caught.value) == leave_error(relative)
    with pytest.raises(OutputPathError) as caught:
        store.write_bytes(relative, b"x")
    assert str(caught.value) == leave_error(relative)


def test_sibling_folder_with_the_same_prefix_is_outside(store, root):
    # "<root>-evil" starts with the root's text but is not inside it.
    with pytest.raises(OutputPathError):
        store.write_bytes(f"../{root.name}-evil/x", b"x")
    assert not (root.parent / f"{root.name}-evil").exists()


def test_paths_inside_are_normalized(store, root):
    assert store.path("a/./b/../c.txt") == f"{root}/a/c.txt"
    assert store.path("") == str(root)
    assert store.uri("a/c.txt") == f"file://{root}/a/c.txt"


# --- writing ----------------------------------------------------------------------------


def test_write_creates_folders_and_leaves_no_temporary(store, root):
    store.write_bytes("r/p=1/out.pdf", b"first")
    store.write_bytes("r/p=1/out.pdf", b"second")
    assert store.read_bytes("r/p=1/out.pdf") == b"second"
    assert (store.exists("r/p=1/out.pdf"), store.size("r/p=1/out.pdf")) == (True, 6)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["out.pdf"]


def test_remove(store):
    store.write_bytes("r/a.txt", b"a")
    store.remove("r/a.txt")
    store.remove("r/a.txt")  # removing what is gone is fine
    assert not store.exists("r/a.txt")


def test_failed_write_leaves_no_target(store, root):
    with pytest.raises(TypeError):
        store.write_bytes("r/out.pdf", "not bytes")  # fails after the temporary is opened
    assert not (root / "r" / "out.pdf").exists()
    assert not store.exists("r/out.pdf")


def test_failed_write_leaves_no_temporary(store, root):
    with pytest.raises(TypeError):
        store.write_bytes("r/out.pdf", "not bytes")
    assert [p.name for p in root.rglob("*.tmp")] == []


def test_write_onto_a_directory_fails_cleanly(store, root):
    (root / "r" / "out.pdf").mkdir(parents=True)
    message = "output path 'r/out.pdf' is a folder, not a file"
    with pytest.raises(OutputPathError, match=re.escape(message)):
        store.write_bytes("r/out.pdf", b"data")
    assert list((root / "r" / "out.pdf").iterdir()) == []
    assert [p.name for p in root.rglob("*.tmp")] == []


# --- manifests --------------------------------------------------------------------------


def test_manifest_round_trip(store):
    item = store.item_dir("rep", {"day": "2013-01-01"})
    manifest = {"report": "rep", "created": dt.date(2013, 1, 1), "files": []}
    store.write_manifest(item, manifest)
    assert store.read_manifest(item) == {"report": "rep", "created": "2013-01-01", "files": []}


@pytest.mark.parametrize("damage", [b"{not json", b"", b"\xff\xfe\x00", b'{"cut": "off'])
def test_damaged_manifest_reads_as_none(store, damage):
    store.write_bytes("rep/p=1/manifest.json", damage)
    assert store.read_manifest("rep/p=1") is None


def test_missing_manifest_reads_as_none(store):
    assert store.read_manifest("rep/p=1") is None


def test_manifests_lists_every_valid_manifest(store):
    for report, value in [("alpha", 1), ("alpha", 2), ("beta", 1)]:
        store.write_manifest(store.item_dir(report, {"p": value}), {"report": report, "p": value})
    store.write_bytes("beta/p=2/manifest.json", b"{damaged")
    store.write_bytes("beta/p=3/other.json", json.dumps({"report": "x"}).encode())
    everything = store.manifests()
    assert [(m["report"], m["p"]) for m in everything] == [("alpha", 1), ("alpha", 2), ("beta", 1)]
    assert [m["p"] for m in store.manifests("alpha")] == [1, 2]
    assert store.manifests("gamma") == []


# --- fsspec URLs --------------------------------------------------------------------------


def test_memory_url_write_read_exists(memory_store):
    store = memory_store
    item = store.item_dir("rep", {"p": "a/b"})
    path = f"{item}/out.txt"
    assert not store.exists(path)
    store.write_bytes(path, b"in memory")
    assert store.exists(path) and store.read_bytes(path) == b"in memory"
    assert store.size(path) == 9
    assert store.uri(path) == f"memory://{store.root}/{path}"
    store.write_manifest(item, {"report": "rep"})
    assert store.read_manifest(item) == {"report": "rep"}
    assert store.manifests("rep") == [{"report": "rep"}]
    assert not any(p.endswith(".tmp") for p in store.fs.find(store.root))
    store.remove(path)
    assert not store.exists(path)


def test_memory_url_rejects_escaping_paths(memory_store):
    with pytest.raises(OutputPathError) as caught:
        memory_store.write_bytes("../neighbour/x", b"x")
    assert str(caught.value) == leave_error("../neighbour/x")
