"""Identical images on both sides of a folder dataset's split: KolektorSDD's items kos01 and
kos26 are the same eight photos (byte for byte), so a split by file puts a training image in
the test set. racam's own split keeps identical images together; a user's split file that
separates them is named, image by image."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from racam.cli import app
from racam.data import FolderDataset
from racam.data.stratify import grouped_split, stratified_split
from racam.errors import DataError

#: items whose parts are distinct photos (one defective part each, as KolektorSDD labels them)
OTHERS = {"kos02": 6, "kos03": 2, "kos04": 3, "kos05": 5, "kos06": 7, "kos07": 1}


def twin_folder(ksdd_root, root) -> list[tuple[str, str]]:
    """Copies of KolektorSDD's kos01 and kos26 (the same photos) and six other items; returns
    the identical pairs of stems."""
    for sub in ("good", "defect"):
        (root / sub).mkdir(parents=True)

    def put(item: str, part: int, defective: bool) -> None:
        shutil.copyfile(ksdd_root / item / f"Part{part}.jpg",
                        root / ("defect" if defective else "good") / f"{item}_Part{part}.jpg")

    for item in ("kos01", "kos26"):
        for part in range(8):
            put(item, part, part == 5)
    for item, bad in OTHERS.items():
        for part in [*[k for k in (0, 1, 2) if k != bad][:2], bad]:
            put(item, part, part == bad)
    assert (root / "defect/kos01_Part5.jpg").read_bytes() == \
        (root / "defect/kos26_Part5.jpg").read_bytes()
    return [(f"kos01_Part{k}", f"kos26_Part{k}") for k in range(8)]


def side(ds: FolderDataset) -> set[str]:
    return {r.image_path.stem for r in ds.records}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_racams_split_keeps_identical_images_on_one_side(ksdd_root, tmp_path, seed) -> None:
    pairs = twin_folder(ksdd_root, tmp_path / "parts")
    test = side(FolderDataset(tmp_path / "parts", "test", seed=seed))
    train = side(FolderDataset(tmp_path / "parts", "train", seed=seed))
    assert not test & train and len(test | train) == 16 + 3 * len(OTHERS)
    for a, b in pairs:
        assert (a in test) == (b in test), (a, b)
    # 30 % of each class's groups: 19 good groups (7 twin pairs, 12 others) -> 6, 7 defective -> 2
    groups = {s.replace("kos26", "kos01") for s in test}
    defective = {"kos01_Part5", *(f"{i}_Part{b}" for i, b in OTHERS.items())}
    assert len(groups & defective) == 2 and len(groups - defective) == 6


def test_without_identical_images_the_split_is_the_stratified_one() -> None:
    labels = [0] * 30 + [1] * 9
    groups = [f"g{i}" for i in range(39)]
    for seed in range(5):
        assert grouped_split(labels, groups, 0.3, seed) == stratified_split(labels, 0.3, seed)


def test_grouped_split_draws_groups_by_their_class() -> None:
    labels = [0, 0, 0, 0, 1, 1, 0, 0, 1, 1]
    groups = ["a", "a", "b", "c", "d", "d", "e", "f", "g", "h"]
    rest, picked = grouped_split(labels, groups, 0.5, 0)
    assert sorted(rest + picked) == list(range(10))
    for g in set(groups):
        members = {i for i, x in enumerate(groups) if x == g}
        assert members <= set(picked) or members <= set(rest)
    # 5 groups of good images, 3 of defective ones: half of each, rounded (Python's rounding)
    picked_groups = {groups[i] for i in picked}
    assert len(picked_groups & {"a", "b", "c", "e", "f"}) == 2
    assert len(picked_groups & {"d", "g", "h"}) == 2


def test_a_split_file_that_separates_identical_images_is_named(ksdd_root, tmp_path) -> None:
    root = tmp_path / "parts"
    twin_folder(ksdd_root, root)
    stems = sorted(p.stem for p in root.glob("*/*.jpg"))
    test = [s for s in stems if s.startswith(("kos01", "kos02"))]
    train = [s for s in stems if s not in test]
    (root / "split.yaml").write_text(f"train: {train}\ntest: {test}\n")
    res = CliRunner().invoke(app, ["data", "info", str(root), "--dataset", "folder"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    named = [ln for ln in res.output.splitlines()
             if ln.startswith("warning:") and "duplicate across the split" in ln]
    assert len(named) == 8  # the eight kos01 parts in test, each with its kos26 twin in train
    assert any(f"{root}/defect/kos01_Part5.jpg" in ln and f"{root}/defect/kos26_Part5.jpg" in ln
               for ln in named)
    ds = FolderDataset(root, "test")
    assert len(ds.split_problems) == 8 and side(ds) == set(test)
    with pytest.raises(DataError, match="duplicate image"):  # strict: every copy is an error
        FolderDataset(root, "test", strict=True)


def test_run_report_counts_problems_by_kind_and_names_every_file(ksdd_root, tmp_path) -> None:
    """Eight identical pairs: the report's table says 8 duplicate images (counted here by
    MD5), shows the first with the root left out, and the folded list names all 8 files."""
    import hashlib

    from racam.report.data_problems import data_problems_section
    from racam.stages.problems import DataProblems

    root = tmp_path / "parts"
    twin_folder(ksdd_root, root)
    seen: dict[str, str] = {}
    copies = []
    for f in sorted(root.glob("*/*.jpg")):
        digest = hashlib.md5(f.read_bytes()).hexdigest()
        copies += [f] if digest in seen else []
        seen.setdefault(digest, f.name)
    ds = FolderDataset(root, "test", seed=0)
    problems = DataProblems.found(ds.audit.problems, ds.audit.without_usable_mask)
    lines = data_problems_section(problems, str(root))
    text = "\n".join(lines)
    row = next(line for line in text.splitlines() if line.startswith("| duplicate image |"))
    assert row.split("|")[2].strip() == str(len(copies)) == "8"
    first = row.split("|")[3].strip().strip("`")
    assert (root / first) in copies and str(root) not in row
    folded = text[text.index("<details"):text.index("</details>")]
    assert all(str(f) in folded for f in copies)


def test_problems_stored_as_lines_are_read_with_their_kind() -> None:
    from racam.stages.problems import DataProblems

    old = {"problems": ["/d/good/a.png: duplicate image: same content as /d/good/b.png",
                        "/d/masks/c.png: mask not binary: 3 values: 0, 1, 255"]}
    got = DataProblems.from_json(old)
    assert [p.kind for p in got.problems] == ["duplicate image", "mask not binary"]
    assert got.problems[1].message == "3 values: 0, 1, 255"
    assert [str(p) for p in got.problems] == old["problems"]
    assert DataProblems.from_json(got.to_json()) == got


def test_log_names_three_problems_of_a_kind_and_counts_the_rest() -> None:
    from racam.stages.problems import DataProblems, FileProblem

    dups = [FileProblem(f"/d/good/{i}.png", "duplicate image", f"same content as /d/{i}b.png")
            for i in range(8)]
    odd = FileProblem("/d/masks/m.png", "mask not binary", "3 values")
    lines = DataProblems([dups[0], odd, *dups[1:]]).log_lines(shown=3)
    assert lines == [*map(str, dups[:3]), "5 more 'duplicate image' problem(s): the run report "
                     "and `racam data info` name every file", str(odd)]


def test_data_info_names_the_five_commonest_sizes_and_counts_the_rest(ksdd_root, tmp_path) -> None:
    from collections import Counter

    from PIL import Image

    root = tmp_path / "parts"
    twin_folder(ksdd_root, root)
    sizes = Counter(Image.open(f).size for f in root.glob("*/*.jpg"))
    res = CliRunner().invoke(app, ["data", "info", str(root), "--dataset", "folder"],
                             catch_exceptions=False)
    line = next(ln for ln in " ".join(res.output.split()).split("masks")
                if "image sizes" in ln)
    shown = [f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(5)]
    assert all(s in line for s in shown) and f"and {len(sizes) - 5} more sizes" in line
    assert "8 problem(s): 8 duplicate image" in res.output
