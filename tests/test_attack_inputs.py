"""Issue 10, hostile and careless input: owners in the data fingerprint, damaged or pickled .npz files,
absurd labels, ids and settings, output paths that are links, pipes or folders, and ``python -m obliviate``.

Each test here failed on the code before the issue was addressed (a wrong answer, a silent
acceptance, a replaced file or a traceback) and passes now.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import obliviate as ob
from obliviate.data import from_arrays, from_npz
from obliviate.errors import InvalidInputError


def one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert fragment in " ".join(result.stderr.split()), result.stderr


def tiny_arrays(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype(np.float32), np.arange(n) % 3


# ---------------------------------------------------------------------------------- case 1: owners
def test_fingerprint_covers_owners():
    X, y = tiny_arrays()
    owners = np.array([f"o{i % 4}" for i in range(12)])
    shuffled = np.random.default_rng(1).permutation(owners)
    assert not np.array_equal(owners, shuffled)
    base = from_arrays(X, y, owners=owners)
    assert from_arrays(X, y, owners=shuffled).fingerprint != base.fingerprint
    assert from_arrays(X, y, owners=owners).fingerprint == base.fingerprint
    assert base.subset(base.ids[::-1]).fingerprint == base.fingerprint  # row order still does not matter
    # owner names cannot be re-split across examples to the same hash
    a = from_arrays(X[:2], np.array([0, 1]), owners=["ab", "c"])
    b = from_arrays(X[:2], np.array([0, 1]), owners=["a", "bc"])
    assert a.fingerprint != b.fingerprint
    assert from_arrays(X, y).fingerprint != base.fingerprint  # owners recorded or not


def test_fingerprint_without_owners_is_unchanged():
    """Data without owners keeps its fingerprint (oracle caches and ensembles of such data stay valid)."""
    X, y = tiny_arrays()
    d = from_arrays(X, y, ids=np.arange(12)[::-1] + 5)
    order = np.argsort(d.ids, kind="stable")
    h = hashlib.sha256()  # the fingerprint as it was computed before owners were covered
    h.update(np.ascontiguousarray(d.ids[order]).tobytes())
    h.update(np.ascontiguousarray(d.y[order].astype(np.int64)).tobytes())
    h.update(np.ascontiguousarray(d.X[order]).tobytes())
    h.update(str(d.X.shape[1:]).encode())
    h.update(f"classes={d.num_classes}".encode())
    assert d.fingerprint == h.hexdigest()


@pytest.fixture(scope="module")
def owned_sisa(tmp_path_factory):
    """240 digits owned by 8 writers and a 2-shard, 1-slice SISA ensemble fitted on them (milliseconds)."""
    from obliviate.exact import SISA

    full = ob.data.digits(writers=8)
    data = full.subset(full.ids[:240])
    recipe = ob.Recipe(model="mlp", epochs=1, lr=0.05, seed=0, model_options={"hidden": (8,)})
    folder = tmp_path_factory.mktemp("attack") / "ensemble"
    SISA(recipe, shards=2, slices=1, assign="owner", seed=0).fit(data, folder)
    return data, folder


def test_apply_refuses_data_whose_owners_were_shuffled(owned_sisa, tmp_path):
    """The issue's attack: same X, y and ids, owners shuffled. Resolving an owner request through such data
    deletes other people's examples; apply must refuse it before any request or the ensemble changes."""
    import shutil

    from obliviate.ledger import RECEIVED, Ledger, SisaTarget, apply

    data, fitted = owned_sisa
    folder = tmp_path / "ensemble"
    shutil.copytree(fitted, folder)
    victim = data.owner_names[3]
    shuffled_owners = np.random.default_rng(7).permutation(data.owners)
    forged = from_arrays(data.X, data.y, ids=data.ids, owners=shuffled_owners, num_classes=data.num_classes)
    # the forged data resolves the request to other examples: that is what must never reach the model
    assert not np.array_equal(forged.ids_of_owners([victim]), data.ids_of_owners([victim]))

    with Ledger(tmp_path / "ledger", create=True) as book:
        stored, _ = book.add(ob.ForgetRequest(owners=victim))
        target = SisaTarget(folder)
        before = target.current_sha256()
        with pytest.raises(InvalidInputError, match="fingerprint"):
            apply(book, target, forged)
        assert book.get(stored.request_id).status == RECEIVED  # nothing changed state
        assert SisaTarget(folder).current_sha256() == before and not SisaTarget(folder).deleted_ids()

        outcome = apply(book, SisaTarget(folder), data)  # the real training data: the owner's examples go
        assert [r.request_id for r, _, _ in outcome.applied] == [stored.request_id]
        assert SisaTarget(folder).deleted_ids() == set(data.ids_of_owners([victim]).tolist())


# ---------------------------------------------------------------------------------- .npz files
def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class _Payload:
    """Unpickling this creates a file: proof that a loader executed pickled code."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_npz_empty_corrupt_truncated_and_not_a_zip(tmp_path):
    X, y = tiny_arrays()
    good = npz_bytes(X=X, y=y)
    cases = {
        "empty.npz": (b"", "empty (0 bytes)"),
        "noise.npz": (os.urandom(300), "not an .npz archive"),
        "truncated.npz": (good[: len(good) // 2], "npz"),
        "plain.npz": (b"X,y\n1,2\n", "not an .npz archive"),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as info:
            from_npz(path)
        assert str(path) in str(info.value)


def test_npz_never_unpickles(tmp_path):
    X, y = tiny_arrays()
    marker = tmp_path / "pwned"
    _Payload.marker = str(marker)
    payload = np.empty(12, dtype=object)
    payload[:] = [_Payload() for _ in range(12)]
    inside = tmp_path / "object_array.npz"
    np.savez(inside, X=X, y=y, owners=payload)  # an object array is stored pickled
    with pytest.raises(InvalidInputError, match="never unpickles"):
        from_npz(inside)
    whole = tmp_path / "pickle.npz"  # a bare pickle given the .npz name
    whole.write_bytes(pickle.dumps({"X": X, "y": y, "evil": _Payload()}))
    with pytest.raises(InvalidInputError, match="not an .npz archive"):
        from_npz(whole)
    assert not marker.exists()


def test_npz_header_larger_than_the_file_allocates_nothing(tmp_path):
    """An .npy header claiming 10**12 float64 (8 TB) over a few bytes is refused from the header."""
    X, y = tiny_arrays()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 1)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", header.getvalue() + b"\0" * 64)
        buf = io.BytesIO()
        np.save(buf, y)
        zf.writestr("y.npy", buf.getvalue())
    with pytest.raises(InvalidInputError, match="truncated or damaged"):
        from_npz(path)


def test_npz_bad_contents_are_typed(tmp_path):
    X, y = tiny_arrays()
    cases = {
        "complex": ({"X": X + 1j, "y": y}, "X must be numeric"),
        "label_1e9": ({"X": X, "y": np.where(np.arange(12) == 3, 10**9, y)}, "too large"),
        "label_1e20": ({"X": X, "y": np.where(np.arange(12) == 3, 1e20, y.astype(float))}, "too large"),
        "label_u64": ({"X": X, "y": np.where(np.arange(12) == 3, 2**63 + 5, y).astype(np.uint64)}, "too large"),
        "ids_u64": ({"X": X, "y": y, "ids": np.arange(12, dtype=np.uint64) + np.uint64(2**63)}, "fit in int64"),
        "ids_1e20": ({"X": X, "y": y, "ids": np.arange(12) * 1e20}, "fit in int64"),
        "owners_2d": ({"X": X, "y": y, "owners": np.array([["a", "b"]] * 12)}, "one entry per example"),
    }
    for name, (arrays, fragment) in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(npz_bytes(**arrays))
        with pytest.raises(InvalidInputError, match=fragment):
            from_npz(path)


def test_npz_byte_string_owners_are_decoded(tmp_path):
    X, y = tiny_arrays()
    path = tmp_path / "bytes_owners.npz"
    path.write_bytes(npz_bytes(X=X, y=y, owners=np.array([b"alice", b"bob"] * 6)))
    data = from_npz(path)
    assert data.owner_names == ("alice", "bob")
    assert data.ids_of_owners(["alice"]).tolist() == list(range(0, 12, 2))


def test_a_label_of_1e9_is_refused_before_any_model_exists():
    X, y = tiny_arrays()
    with pytest.raises(InvalidInputError, match="too large"):
        from_arrays(X, np.where(np.arange(12) == 0, 10**9, y))
    with pytest.raises(InvalidInputError, match="num_classes must be in"):
        from_arrays(X, y, num_classes=10**9)


def test_complex_features_are_refused_not_truncated():
    X, y = tiny_arrays()
    with pytest.raises(InvalidInputError, match="X must be numeric"):
        from_arrays(X + 2j, y)


@pytest.mark.parametrize(
    "ids", [np.arange(12, dtype=np.uint64) + np.uint64(2**63), np.arange(12) * 1e20, np.arange(12) - 2.0**64]
)
def test_ids_beyond_int64_are_refused_not_wrapped(ids):
    X, y = tiny_arrays()
    with pytest.raises(InvalidInputError, match="fit in int64"):
        from_arrays(X, y, ids=ids)


def test_corrupt_npz_through_the_cli_is_one_line(run_cli, tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    one_line_error(run_cli("train", "--data", str(empty), "--out", str(tmp_path / "m.safetensors")), "empty (0 bytes)")
    assert not (tmp_path / "m.safetensors").exists()


def test_ids_file_binary_or_beyond_int64_is_typed(tmp_path):
    from obliviate.cli.common import read_ids

    binary = tmp_path / "ids.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidInputError, match="binary file"):
        read_ids(binary)
    big = tmp_path / "ids.txt"
    big.write_text(f"1\n{2**64}\n")
    with pytest.raises(InvalidInputError, match="does not fit in int64"):
        read_ids(big)


# ---------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"epochs": "1000000000"}, "0..10000"),
        ({"batch_size": "1000000000"}, "1..16777216"),
        ({"lr": "nan"}, "finite number"),
        ({"lr": "-inf"}, "finite number"),
    ],
)
def test_absurd_method_settings_name_the_valid_range(settings, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        ob.make_method("finetune", settings)


def test_absurd_settings_in_a_composite_and_a_built_unlearner():
    with pytest.raises(InvalidInputError, match=r"scrub\.epochs \(passes\) must be in 0\.\.10000"):
        ob.make_method("finetune+scrub", {"scrub.epochs": 10**9})
    from obliviate.unlearning import method_class

    with pytest.raises(InvalidInputError, match="0..10000"):
        ob.make_method(method_class("finetune")(epochs=10**9))


def test_model_target_refuses_absurd_settings_before_any_request_changes(tmp_path):
    """`obliviate apply --model M --set epochs=1000000000` fails when the target is built, first."""
    from obliviate.ledger import ModelTarget

    data = ob.data.digits().subset(np.arange(60))
    recipe = ob.Recipe(model="mlp", epochs=1, model_options={"hidden": (8,)})
    path = tmp_path / "model.safetensors"
    ob.save_model(ob.train(recipe, data), path, metadata={"data_fingerprint": data.fingerprint})
    with pytest.raises(InvalidInputError, match="0..10000"):
        ModelTarget(path, method="finetune", settings={"epochs": "1000000000"})


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"epochs": 10**9}, "1..10000"), ({"batch_size": 10**9}, "1..16777216"), ({"seed": 2**64}, "int64")],
)
def test_absurd_recipes_are_refused(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        ob.Recipe(**kwargs)


def test_cli_train_with_a_billion_epochs_fails_at_once(run_cli, tmp_path):
    out = run_cli("train", "--epochs", "1000000000", "--out", str(tmp_path / "m.safetensors"))
    one_line_error(out, "epochs must be in 1..10000")


# ---------------------------------------------------------------------------------- output paths
def test_atomic_write_refuses_a_symlink_and_leaves_both_ends_alone(tmp_path):
    from obliviate.storage import atomic_write_bytes

    real = tmp_path / "real.bin"
    real.write_bytes(b"precious")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.bin", "real.bin"]  # no temp file left


def test_atomic_write_refuses_a_pipe_and_a_folder(tmp_path):
    from obliviate.storage import atomic_write_bytes

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="a pipe"):
        atomic_write_bytes(fifo, b"x")
    assert fifo.exists() and not fifo.is_file()
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match="a folder"):
        atomic_write_bytes(folder, b"x")


def test_a_device_is_not_a_writable_target():
    """Checked without writing: a regression must not replace /dev/null on the test machine."""
    from obliviate.storage import check_regular_target

    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null here")
    with pytest.raises(InvalidInputError, match="a device"):
        check_regular_target("/dev/null", what="--out")


@pytest.mark.parametrize("kind", ["symlink", "folder"])
def test_cli_train_out_refused_before_training(run_cli, tmp_path, kind):
    real = tmp_path / "real.safetensors"
    real.write_bytes(b"precious")
    out = tmp_path / "out"
    if kind == "symlink":
        out.symlink_to(real)
    else:
        out.mkdir()
    result = run_cli("train", "--epochs", "1", "--out", str(out))
    one_line_error(result, "symbolic link" if kind == "symlink" else "a folder")
    assert "trained" not in result.stdout  # refused before training, not after
    assert real.read_bytes() == b"precious" and (out.is_symlink() if kind == "symlink" else out.is_dir())


# ---------------------------------------------------------------------------------- python -m obliviate
def test_python_dash_m_obliviate_is_the_console_script(tmp_path):
    """One subprocess (importing torch is slow): the command runs and its typed error is one line, exit 2."""
    out = subprocess.run(
        [sys.executable, "-m", "obliviate", "train", "--epochs", "0", "--out", str(tmp_path / "m.safetensors")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    one_line_error(out, "epochs and batch_size must be >= 1")


def test_ledger_model_target_refuses_a_symlinked_model_file(tmp_path):
    """``apply --model`` on a link is refused when the target is built, before any request changes."""
    from obliviate.ledger import ModelTarget

    real = tmp_path / "real.safetensors"
    real.write_bytes(b"not read")
    link = tmp_path / "model.safetensors"
    link.symlink_to(real)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        ModelTarget(link)
    assert real.read_bytes() == b"not read"
