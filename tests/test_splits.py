"""The restricted split-file unpickler: plain data only, every refusal names the file."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass

import pytest

from racam.data import load_split_file
from racam.data.splits import ksdd_folds
from racam.errors import DataError


@dataclass
class Unit:
    name: str


class Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write(tmp_path, obj, protocol: int = pickle.HIGHEST_PROTOCOL, name: str = "split.pyb"):
    p = tmp_path / name
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    return p


@pytest.mark.data
def test_real_split_file_structure(ksdd_root) -> None:
    train, test = ksdd_folds(ksdd_root / "splits" / "split_33_0.pyb")
    assert [len(f) for f in test] == [17, 17, 16]
    assert [len(f) for f in train] == [33, 33, 34]
    for tr, te in zip(train, test):
        assert not set(tr) & set(te)
        assert len(set(tr) | set(te)) == 50
    assert sorted(u for f in test for u in f) == [f"kos{i:02d}" for i in range(1, 51)]
    raw = load_split_file(ksdd_root / "splits" / "split_33_0.pyb")
    assert raw[1][0][0] == ("kos02", True)


def test_plain_data_round_trips(tmp_path) -> None:
    obj = ([[("kos01", True), ("kos02", False)]], [[("kos03", True)]], [1, -2, "x", (True,)])
    for protocol in (0, 2, 4, 5):
        assert load_split_file(_write(tmp_path, obj, protocol)) == obj


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize(
    "payload",
    [
        {"kos01", "kos02"},                      # a set (opcodes or builtins.set global)
        frozenset({"kos01"}),
        {"train": ["kos01"]},                    # dict
        [("kos01", 1.5)],                        # float
        [("kos01", None)],                       # None
        [b"kos01"],                              # bytes
        [Unit("kos01")],                         # a class instance
        OrderedDict(a=1),                        # a class from the standard library
    ],
    ids=["set", "frozenset", "dict", "float", "none", "bytes", "instance", "ordereddict"],
)
def test_non_plain_content_is_refused_naming_the_file(tmp_path, payload, protocol) -> None:
    p = _write(tmp_path, ([payload], [[]]), protocol)
    with pytest.raises(DataError) as exc:
        load_split_file(p)
    assert str(p) in str(exc.value)


def test_reduce_to_os_system_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / "pwned"
    p = _write(tmp_path, [Exploit(str(marker))])
    with pytest.raises(DataError, match="refused global") as exc:
        load_split_file(p)
    assert str(p) in str(exc.value)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps([["kos01"]])[:-3]],
                         ids=["empty", "garbage", "truncated"])
def test_unreadable_split_files_name_the_file(tmp_path, content) -> None:
    p = tmp_path / "bad.pyb"
    p.write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_split_file(p)
    assert str(p) in str(exc.value)


def test_missing_split_file(tmp_path) -> None:
    with pytest.raises(DataError, match="not found") as exc:
        load_split_file(tmp_path / "nope.pyb")
    assert "nope.pyb" in str(exc.value)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([["kos01"]], "train_folds, test_folds"),
        (([["kos01"]], [["kos02"], ["kos03"]]), "same number of folds"),
        (([[("kos01", True)]], [[("kos01", True)]]), "both train and test"),
        (([[(1, True)]], [[("kos02", True)]]), "item_folder"),
    ],
)
def test_ksdd_structure_errors(tmp_path, obj, message) -> None:
    p = _write(tmp_path, obj)
    with pytest.raises(DataError, match=message) as exc:
        ksdd_folds(p)
    assert str(p) in str(exc.value)
