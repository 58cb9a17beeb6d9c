"""OutputStore on S3 (moto in server mode): what a local folder does, in as few requests.

S3 has no rename and no folders: a write is one PUT (atomic per object), nothing is
left under a temporary name, and every answer comes from the bucket, not a listing
cached earlier in the process.
"""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader

from reports.definitions import default_catalog
from reports.errors import OutputPathError
from reports.render import render_report
from reports.store import OutputStore


@pytest.fixture
def store(s3_url) -> OutputStore:
    return OutputStore(s3_url)


def prefix_of(store: OutputStore) -> str:
    return store.root.split("/", 1)[1]  # root is "<bucket>/<prefix>"


def methods(s3, mark: int, store: OutputStore) -> list[str]:
    return [r.method for r in s3.requests.since(mark, prefix_of(store))]


def test_write_is_one_put_and_leaves_no_temporary(s3, store):
    mark = s3.requests.mark()
    store.write_bytes("r/p=1/out.pdf", b"first")
    assert methods(s3, mark, store) == ["PUT"]  # no temporary, no copy, no delete
    store.write_bytes("r/p=1/out.pdf", b"second")
    assert store.read_bytes("r/p=1/out.pdf") == b"second"
    assert s3.keys(prefix_of(store)) == ["r/p=1/out.pdf"]


def test_read_exists_size_remove(s3, store):
    store.write_bytes("r/a.txt", b"abc")
    mark = s3.requests.mark()
    assert store.read_bytes("r/a.txt") == b"abc"
    assert methods(s3, mark, store) == ["GET"]  # one GET, no HEAD first

    mark = s3.requests.mark()
    assert store.exists("r/a.txt") and store.size("r/a.txt") == 3
    assert methods(s3, mark, store) == ["HEAD"]  # size right after exists: no second HEAD
    assert store.size("r/a.txt") == 3  # asked again later: asks the bucket again
    assert store.exists("r")  # a "folder" is a prefix with keys under it

    mark = s3.requests.mark()
    store.remove("r/a.txt")
    assert methods(s3, mark, store) == ["DELETE"]
    store.remove("r/a.txt")  # removing what is gone is fine
    assert not store.exists("r/a.txt")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("r/a.txt")
    with pytest.raises(FileNotFoundError):
        store.size("r/a.txt")
    assert s3.keys(prefix_of(store)) == []


def test_a_failed_write_leaves_nothing(s3, store):
    with pytest.raises(TypeError):
        store.write_bytes("r/out.pdf", "not bytes")
    assert not store.exists("r/out.pdf")
    assert s3.keys(prefix_of(store)) == []


def test_answers_come_from_the_bucket_not_a_cached_listing(s3, store):
    """Another worker's writes and removals are seen at once, even after a listing."""
    item = store.item_dir("rep", {"p": 1})
    store.write_manifest(item, {"report": "rep", "p": 1})
    store.write_bytes(f"{item}/a.pdf", b"pdf")
    assert len(store.manifests()) == 1  # a glob: s3fs would cache the listing
    client, key = s3.client(), f"{prefix_of(store)}/{item}"
    client.delete_object(Bucket=s3.bucket, Key=f"{key}/a.pdf")
    client.put_object(Bucket=s3.bucket, Key=f"{key}/b.pdf", Body=b"other")
    assert not store.exists(f"{item}/a.pdf")
    assert store.exists(f"{item}/b.pdf") and store.size(f"{item}/b.pdf") == 5


def test_paths_stay_inside_the_root(s3, store):
    mark = s3.requests.mark()
    for relative in ["../x", "a/../../x", "/etc/passwd", "..", "../t-neighbour/x"]:
        for use in (store.exists, store.read_bytes, store.remove, store.uri):
            with pytest.raises(OutputPathError):
                use(relative)
        with pytest.raises(OutputPathError):
            store.write_bytes(relative, b"x")
    assert s3.requests.since(mark) == []  # refused before any request
    relative = store.item_dir("rep", {"p": "../../a/b"})
    assert relative.startswith("rep/p=") and ".." not in relative.split("/")
    store.write_bytes(f"{relative}/f.txt", b"x")
    assert s3.keys(prefix_of(store)) == [f"{relative}/f.txt"]
    assert store.uri(f"{relative}/f.txt") == f"s3://{store.root}/{relative}/f.txt"


def test_manifests_round_trip_and_list(s3, store):
    for report, value in [("alpha", 1), ("alpha", 2), ("beta", 1)]:
        store.write_manifest(store.item_dir(report, {"p": value}), {"report": report, "p": value})
    store.write_bytes("beta/p=2/manifest.json", b"{damaged")
    store.write_bytes("beta/p=3/other.json", json.dumps({"report": "x"}).encode())
    assert store.read_manifest("alpha/p=1") == {"report": "alpha", "p": 1}
    assert store.read_manifest("alpha/p=9") is None
    assert store.read_manifest("beta/p=2") is None

    mark = s3.requests.mark()
    everything = store.manifests()
    assert [(m["report"], m["p"]) for m in everything] == [("alpha", 1), ("alpha", 2), ("beta", 1)]
    # One listing, then one GET per manifest (no HEADs).
    assert sorted(methods(s3, mark, store)) == ["GET"] * 5
    assert [m["p"] for m in store.manifests("alpha")] == [1, 2]
    assert store.manifests("gamma") == []


@pytest.fixture(scope="module")
def carrier_monthly(settings):
    return default_catalog().get("carrier-monthly")


def test_render_to_s3_reads_back_and_resumes(s3, store, carrier_monthly):
    params = {"carrier": "AA", "month": "2013-07"}
    manifest = render_report(carrier_monthly, params, store)
    assert manifest["skipped"] is False

    item = "carrier-monthly/carrier=AA/month=2013-07"
    names = {entry["name"] for entry in manifest["files"]}
    assert s3.keys(f"{prefix_of(store)}/{item}") == sorted([*names, "manifest.json"])
    assert not [k for k in s3.keys(prefix_of(store)) if k.endswith(".tmp")]
    reader = PdfReader(io.BytesIO(store.read_bytes(f"{item}/carrier-monthly_AA_2013-07.pdf")))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    assert len(reader.pages) == manifest["pages"] >= 2
    assert "American Airlines" in text and "2013-07" in text

    # Resume: unchanged, so nothing is written; the check reads the manifest and HEADs
    # each file once.
    mark = s3.requests.mark()
    again = render_report(carrier_monthly, params, store, skip_unchanged=True)
    assert again["skipped"] is True and again["fingerprint"] == manifest["fingerprint"]
    sent = methods(s3, mark, store)
    assert sent.count("PUT") == sent.count("DELETE") == 0
    assert sorted(sent) == ["GET"] + ["HEAD"] * len(names)

    # A missing file makes the item render again.
    store.remove(f"{item}/carrier-monthly_AA_2013-07.html")
    assert render_report(carrier_monthly, params, store, skip_unchanged=True)["skipped"] is False
    assert store.exists(f"{item}/carrier-monthly_AA_2013-07.html")
