"""The ``deltaprop`` command through click's runner: tables end to end, every bad input,
info/datasets/gradcheck, and ``explain`` against the core objective."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import deltaprop as dp
from deltaprop.cli import cli
from deltaprop.serialization import load_with_metadata

FAST = ["--epochs", "300", "--hidden", "16", "--no-plot", "--quiet"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_error_line(result, message):
    """Exit status 2 and one line on stderr, ``error: …`` with ``message`` in it."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0] and "Traceback" not in result.output


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def flowers(folder):
    """A CSV with a text column and text class labels that depend on it."""
    rng = np.random.default_rng(0)
    n = 200
    x1, x2 = rng.normal(50, 10, n), rng.normal(0, 1, n)
    color = rng.choice(["red", "green", "blue"], n)
    score = x2 + 1.5 * (color == "red") + (x1 - 50) / 10
    species = np.where(score > 1, "setosa", np.where(score > -0.5, "versicolor", "virginica"))
    frame = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "species": species})
    frame.to_csv(folder / "flowers.csv", index=False)
    return frame


def test_table_with_text_column_and_labels_end_to_end(folder, flowers):
    result = run("train", "flowers.csv", *FAST, "--out", "flowers.safetensors")
    assert result.exit_code == 0, result.output
    network, metadata = load_with_metadata(folder / "flowers.safetensors")
    prep = metadata["preprocessing"]
    assert prep["classes"] == ["setosa", "versicolor", "virginica"]
    assert prep["categories"] == {"color": ["blue", "green", "red"]}
    assert network.sizes == [5, 16, 3]  # x1, x2 and three one-hot inputs
    assert metadata["training"]["metrics"]["training"]["accuracy"] > 0.9

    # predict ignores the target column; class names come back
    result = run("predict", "flowers.safetensors", "flowers.csv", "--proba", "--out", "p.csv")
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(folder / "p.csv")
    assert list(predictions.columns) == [
        "prediction", "p(setosa)", "p(versicolor)", "p(virginica)"
    ]  # fmt: skip
    assert (predictions["prediction"] == flowers["species"]).mean() > 0.9
    np.testing.assert_allclose(predictions.iloc[:, 1:].sum(axis=1), 1, rtol=1e-5)

    # without the target column, to standard output
    flowers.drop(columns="species").to_csv(folder / "new.csv", index=False)
    result = run("predict", "flowers.safetensors", "new.csv")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == predictions["prediction"].tolist()
    flowers.assign(color="purple").to_csv(folder / "odd.csv", index=False)
    result = run("predict", "flowers.safetensors", "odd.csv")
    assert result.exit_code == 0
    assert "column 'color' has values unseen in training ('purple')" in result.stderr

    result = run("evaluate", "flowers.safetensors", "flowers.csv")
    assert result.exit_code == 0, result.output
    accuracy = float(re.search(r"accuracy: ([\d.]+)%", result.stdout).group(1)) / 100
    assert accuracy == pytest.approx((predictions["prediction"] == flowers["species"]).mean())
    assert "confusion matrix" in result.stdout and "virginica" in result.stdout

    result = run("info", "flowers.safetensors")
    assert result.exit_code == 0
    assert "5-16-3" in result.stdout and "setosa, versicolor, virginica" in result.stdout


def test_task_auto_says_what_it_chose_and_regression_reports_r2(folder, flowers):
    frame = flowers.assign(price=1000 * flowers["x2"] + 5000 + 300 * (flowers["color"] == "red"))
    frame.drop(columns="species").to_csv(folder / "prices.csv", index=False)
    result = run("train", "prices.csv", "--epochs", "300", "--hidden", "16", "--no-plot")
    assert result.exit_code == 0, result.output
    assert "task: regression" in result.stderr and "--task classification" in result.stderr
    result = run("evaluate", "model.safetensors", "prices.csv")
    assert result.exit_code == 0
    r2 = float(re.search(r"R²\s*│\s*([-\d.]+)", result.stdout).group(1))
    assert r2 > 0.95  # in the target's own units (predictions are de-standardised)


def test_impute_fills_missing_values(folder, flowers):
    flowers.loc[[3, 10], "x1"] = np.nan
    flowers.loc[5, "color"] = np.nan
    flowers.to_csv(folder / "holes.csv", index=False)
    assert run("train", "holes.csv", *FAST).exit_code == 2
    result = run("train", "holes.csv", *FAST, "--impute", "median")
    assert result.exit_code == 0, result.output
    fill = load_with_metadata(folder / "model.safetensors")[1]["preprocessing"]["fill"]
    assert set(fill) == {"x1", "x2", "color"}
    assert fill["x1"] == pytest.approx(np.nanmedian(flowers["x1"]), rel=0.05)  # training rows
    assert run("predict", "model.safetensors", "holes.csv").exit_code == 0


def bad_inputs(folder):
    (folder / "nonnum.csv").write_text("a,b,y\n1,2,x\n3,oops,y\n4,5,x\n6,7,y\n")
    (folder / "missing.csv").write_text("a,b,y\n1,2,x\n3,,y\n4,5,x\n6,7,y\n")
    (folder / "empty.csv").write_text("")
    (folder / "other.csv").write_text("p,q\n1,2\n")
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    (folder / "gaps.csv").write_text("x1,x2\n1,\n")
    (folder / "real.csv").write_text("a,y\n" + "".join(f"{i},{i / 7:.3f}\n" for i in range(20)))
    (folder / "semicolons.csv").write_text("a;b;y\n1;2;x\n3;4;y\n")
    (folder / "junk.npz").write_bytes(b"not a zip archive at all")
    np.savez(folder / "objects.npz", x=np.arange(2), y=np.array(["a", None], dtype=object))
    (folder / "tables").mkdir()
    n, n_val = 20, 4  # the class 'z' only in a validation row of --seed 0's split
    rare = pd.DataFrame({"x": np.arange(n, dtype=float), "y": ["a", "b"] * (n // 2)})
    rare.loc[np.sort(np.random.default_rng(0).permutation(n)[:n_val])[0], "y"] = "z"
    rare.to_csv(folder / "rare.csv", index=False)
    model = dp.Network([2, 3, 2], seed=0)
    dp.save(model, folder / "model.safetensors", preprocessing={
        "features": ["x1", "x2"], "target": "y", "task": "classification",
        "mean": [0, 0], "scale": [1, 1], "classes": ["a", "b"],
    })  # fmt: skip


BAD = [
    (["train", "nope.csv"], "nope.csv: no such file"),
    (["train", "spirl"], "did you mean 'spiral'"),
    (["train", "nonnum.csv", "--target", "yy"], "no target column 'yy'; did you mean 'y'"),
    (["train", "nonnum.csv"], "column 'b', row 2 (line 3): 'oops' is not a number"),
    (["train", "missing.csv"], "column 'b', row 2 (line 3) is missing"),
    (["train", "empty.csv"], "the file is empty"),
    (["train", "--activation", "swish"], "'swish' is not one of"),
    (["train", "--solver", "sgd"], "'sgd' is not one of"),
    (["train", "--learning-rate", "0"], "--learning-rate"),
    (["train", "--learning-rate", "-0.5"], "--learning-rate"),
    (["train", "--hidden", "64,0"], "every width must be a positive integer"),
    (["train", "--validation", "1.5"], "--validation"),
    (["train", "--out", "nowhere/m.safetensors"], "the folder nowhere does not exist"),
    (["train", "--checkpoint-every", "5"], "--checkpoint-every needs --checkpoint"),
    (["predict", "model.safetensors", "other.csv"], "lacks the feature column(s) 'x1', 'x2'"),
    (["evaluate", "model.safetensors", "other.csv"], "lacks the feature column(s) 'x1', 'x2'"),
    (["predict", "broken.safetensors", "other.csv"], "broken.safetensors"),
    (["evaluate", "broken.safetensors", "other.csv"], "not a deltaprop model file"),
    (["info", "broken.safetensors"], "not a deltaprop model file"),
    (["predict", "none.safetensors", "other.csv"], "no such model file"),
    (["train", "--resume", "model.safetensors"], "not a training checkpoint"),
    (["train", "nonnum.csv", "--out", "nonnum.csv"], "--out nonnum.csv is also the DATA file"),
    (["train", "--out", "m.st", "--checkpoint", "./m.st"], "--checkpoint m.st is also the --out"),
    (["train", "--out", "curves.png"], "--plot curves.png is also the --out"),
    (["predict", "model.safetensors", "other.csv", "--out", "other.csv"], "also the DATA file"),
    (["predict", "model.safetensors", "gaps.csv"], "drop the row (or train with --impute"),
    (["train", "semicolons.csv"], "the values seem separated by ';', not ','"),
    (["train", "junk.npz"], "junk.npz: not an .npz archive"),
    (["train", "objects.npz"], "array 'y' holds Python objects"),
    (["train", "tables"], "tables is a folder"),
    (["train", "rare.csv"], "class(es) 'z' of target 'y' fall only in the rows held out"),
    (["train", "real.csv", "--task", "classification"], "holds real numbers (e.g. 0.143)"),
    (["train", "--features", ""], "--features is empty"),
    (["train", "nonnum.csv", "--features", "a,a"], "names 'a' more than once"),
    (["train", "--solver", "lbfgs", "--batch-size", "16"], "trains full batch; drop --batch-size"),
    (["train", "--scheduler", "bogus"], "'bogus' is not a Dask scheduler address"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(folder, args, message):
    bad_inputs(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert_one_error_line(run(*args), message)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert [p.name for p in folder.iterdir() if p.is_dir()] == ["tables"]


def test_resume_refuses_contradicting_settings(folder):
    args = ["train", "moons", "--hidden", "4", "--epochs", "5", "--no-plot", "-q"]
    assert run(*args, "--checkpoint", "run.ckpt").exit_code == 0
    result = run("train", "moons", "--hidden", "8", "--epochs", "9", "--resume", "run.ckpt")
    assert result.exit_code == 2
    assert "--hidden [8] differs from the checkpoint's [4]" in result.stderr
    result = run("info", "run.ckpt")
    assert result.exit_code == 0 and "checkpoint at epoch 5 of 5" in result.stdout
    assert "the run is complete; to train further" in result.stdout
    result = run("train", "--resume", "run.ckpt", "--epochs", "5")
    assert result.exit_code == 2 and "already at epoch 5" in result.stderr
    result = run("train", "--resume", "run.ckpt")  # the stored total: 5 epochs
    assert result.exit_code == 2 and "already at epoch 5" in result.stderr


def test_a_folder_named_like_a_dataset_leaves_the_dataset(folder):
    (folder / "moons").mkdir()
    assert run("train", "moons", "--epochs", "2", "--no-plot", "-q").exit_code == 0


def test_info_on_a_checkpoint_written_from_python(folder):
    from deltaprop.checkpoint import save_checkpoint

    net = dp.Network([2, 3, 2], seed=0)
    history = dp.fit(net, np.eye(2), [0, 1], epochs=3)
    save_checkpoint("lib.ckpt", net, dp.GradientDescent(0.1), history, np.random.default_rng(0))
    save_checkpoint("odd.ckpt", net, dp.GradientDescent(0.1), history, np.random.default_rng(0),
                    settings={"run": "x", "epochs": 9})  # fmt: skip
    for name in ("lib.ckpt", "odd.ckpt"):
        result = run("info", name)
        assert result.exit_code == 0, result.output
        assert "at epoch 3" in result.stdout and "written from Python" in result.stdout


def test_resume_from_another_folder_with_the_default_target_named(folder, flowers, monkeypatch):
    args = ["train", "flowers.csv", "--epochs", "4", "--hidden", "4", "--no-plot", "-q"]
    assert run(*args, "--checkpoint", "run.ckpt").exit_code == 0
    (folder / "elsewhere").mkdir()
    monkeypatch.chdir(folder / "elsewhere")  # flowers.csv is ../flowers.csv from here
    result = run("train", "--resume", "../run.ckpt", "--epochs", "6", "--target", "species")
    assert result.exit_code == 0, result.output
    assert load_with_metadata("model.safetensors")[1]["training"]["epochs_run"] == 6


def test_predict_and_evaluate_take_a_built_in_dataset(folder):
    assert run("train", "moons", "--epochs", "20", "--no-plot", "-q").exit_code == 0
    result = run("predict", "model.safetensors", "moons")
    assert result.exit_code == 0 and result.stdout.splitlines()[0] == "prediction"
    result = run("evaluate", "model.safetensors", "moons")
    assert result.exit_code == 0 and "rows of moons, target 'y'" in result.stdout


def test_bare_command_prints_the_help():
    result = run()
    assert result.exit_code == 0
    assert "Commands:" in result.stdout and "train" in result.stdout


def test_datasets_gradcheck_and_activation_plot(folder):
    result = run("datasets")
    assert result.exit_code == 0
    assert all(name in result.stdout for name in dp.datasets.names())
    result = run("gradcheck", "--hidden", "4,3", "--activation", "sigmoid", "--task", "regression")
    assert result.exit_code == 0 and "passed" in result.stdout
    assert len(re.findall(r"^\s+\d\s+\S+e-\d+\s+\S+e-\d+$", result.stdout, re.M)) == 3
    assert run("plot", "activations", "--out", "act.png").exit_code == 0
    assert (folder / "act.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def blocks(text: str) -> dict[str, np.ndarray]:
    """Every printed array, by its label (the text before the [shape] on its line)."""
    found, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^  (\S.*?)   \[\d+ × \d+\]$", line)
        if match:
            rows = []
            for row in lines[i + 1 :]:
                if not row.startswith("      "):
                    break
                rows.append([float(v) for v in re.findall(r"-?\d+\.\d+", row)])
            found.setdefault(match.group(1), np.array(rows).squeeze())
    return found


def test_explain_prints_the_core_objectives_gradient_and_update(folder):
    result = run("explain", "--hidden", "3,2", "--l2", "0.01", "--learning-rate", "0.3")
    assert result.exit_code == 0, result.output
    arrays = blocks(result.stdout)
    # rebuild the printed network and batch, and ask the core objective
    net = dp.Network([2, 3, 2, 2], activation="sigmoid", dtype="float64")
    for h in range(3):
        net.weights[h][...] = arrays[f"W^({h + 1})"]
        net.biases[h][...] = arrays[f"b^({h + 1})"]
    X, Y = arrays["X = Z^(0)"], arrays["Ỹ"]
    J, g = dp.Objective(net, l2=0.01).value_and_grad(X, Y)
    grad_w, grad_b = net.split(g)
    for h in range(1, 4):
        printed = arrays[f"∇_W^({h}) J = (1/n) Δ^({h})ᵀ Z^({h - 1}) + λ W^({h})"]
        np.testing.assert_allclose(printed, grad_w[h - 1], atol=2e-6)
        np.testing.assert_allclose(
            arrays[f"∇_b^({h}) J = (1/n) Σ_i Δ^({h})_i"], grad_b[h - 1], atol=2e-6
        )
        updated = arrays[f"W^({h}) ← W^({h}) − η ∇_W^({h}) J"]
        np.testing.assert_allclose(updated, net.weights[h - 1] - 0.3 * grad_w[h - 1], atol=2e-6)
    assert f"= {J:.6f}   (λ = 0.01)" in result.stdout
    # the single sample's gradient is the outer product δ^(h) z^(h−1)ᵀ of the printed vectors
    outer = np.outer(arrays["δ^(3) = f − Ỹ"], arrays["z^(2) = sigmoid(a^(2))"])
    np.testing.assert_allclose(arrays["∇_W^(3) ℓ = δ^(3) z^(2)ᵀ"], outer, atol=2e-6)
    delta2 = arrays["σ′(a^(2))"] * (net.weights[2].T @ arrays["δ^(3) = f − Ỹ"])
    np.testing.assert_allclose(arrays["δ^(2) = σ′(a^(2)) ∘ (W^(3))ᵀ δ^(3)"], delta2, atol=2e-6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model file and a checkpoint from a short run on the built-in moons."""
    folder = tmp_path_factory.mktemp("trained")
    result = run(
        "train", "moons", "--hidden", "4", "--epochs", "3", "--checkpoint", folder / "run.ckpt",
        "--out", folder / "model.safetensors", "--no-plot", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


def damaged_copy(source, target, path, value):
    """``source`` with the metadata entry at ``path`` set to ``value`` (deleted: KeyError)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(source, "np") as handle:
        metadata = json.loads(handle.metadata()["deltaprop"])
    entry = metadata
    for key in path[:-1]:
        entry = entry[key]
    if value is KeyError:
        del entry[path[-1]]
    else:
        entry[path[-1]] = value
    save_file(load_file(source), target, metadata={"deltaprop": json.dumps(metadata)})


MODEL, CHECKPOINT = "model.safetensors", "run.ckpt"
DAMAGED = [  # (file, command, metadata entry, new value or KeyError to delete it, message)
    (MODEL, "predict", ("preprocessing", "classes"), ["0", "1", "2"], "names 3 classes but"),
    (MODEL, "evaluate", ("preprocessing", "classes"), [], "classes is []: expected a list"),
    (MODEL, "predict", ("preprocessing", "mean"), ["a", "b"], "['a', 'b']: expected 2 finite"),
    (MODEL, "predict", ("preprocessing", "task"), "banana", "task is 'banana': expected"),
    (MODEL, "predict", ("preprocessing", "fill"), {"x1": "?"}, "fill is {'x1': '?'}"),
    (MODEL, "info", ("training", "seconds"), "abc", "the file's metadata is mangled"),
    (CHECKPOINT, "resume", ("history", "records", -1, "time"), KeyError, "not 3 records"),
    (CHECKPOINT, "resume", ("optimizer", "learning_rate"), KeyError, "entry 'learning_rate'"),
    (CHECKPOINT, "info", ("optimizer", "steps"), "x", "invalid literal for int()"),
    (CHECKPOINT, "resume", ("settings", "run", "validation"), "x", "validation = 'x' is mangled"),
    (CHECKPOINT, "resume", ("settings", "run", "hidden"), ["a"], "hidden = ['a'] is mangled"),
    (CHECKPOINT, "resume", ("settings", "run", "features"), "x1", "features = 'x1' is mangled"),
    (CHECKPOINT, "resume", ("settings", "preprocessing"), KeyError, "preprocessing is None"),
    (CHECKPOINT, "predict", None, None, "a training checkpoint, not a model file"),
]


@pytest.mark.parametrize(
    "name, command, entry, value, message", DAMAGED, ids=[d[-1] for d in DAMAGED]
)
def test_a_damaged_model_file_or_checkpoint_is_one_clear_line(
    trained, tmp_path, name, command, entry, value, message
):
    damaged = tmp_path / name
    if entry is None:
        damaged.write_bytes((trained / name).read_bytes())
    else:
        damaged_copy(trained / name, damaged, entry, value)
    args = {
        "predict": ["predict", damaged, "moons"],
        "evaluate": ["evaluate", damaged, "moons"],
        "info": ["info", damaged],
        "resume": ["train", "--resume", damaged, "--epochs", "5", "--out", tmp_path / "m.st"],
    }[command]
    assert_one_error_line(run(*args), message)
    assert not (tmp_path / "m.st").exists()


def test_info_summarises_the_preprocessing(folder, flowers):
    args = ["train", "flowers.csv", "--target", "x1", "--impute", "mean", *FAST]
    assert run(*args).exit_code == 0
    result = run("info", "model.safetensors")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # the console wraps long lines
    assert "preprocessing: 1 numeric column(s) standardised" in text
    assert "color one-hot over 3 values" in text and "species one-hot over 3 values" in text
    assert "filled with the training rows' mean" in text and "target standardised" in text


def test_batch_size_full_in_any_case_and_library_warnings_as_notes(folder):
    assert (
        run("train", "moons", "--epochs", "2", "--batch-size", "FULL", "--no-plot").exit_code == 0
    )
    result = run("train", "moons", "--epochs", "6", "--track-sharpness", "5", "--no-plot")
    assert result.exit_code == 0, result.output
    assert "note: gradient descent with learning rate η = 0.5 exceeds 2/λ_max" in result.stderr
    assert "Warning:" not in result.stderr and ".py:" not in result.stderr


def test_options_that_have_no_effect_are_said_so(folder):
    (folder / "two.csv").write_text("a,y\n1,0\n2,1\n")
    result = run("train", "two.csv", "--epochs", "2", "--plot", "p.png", "--no-plot")
    assert result.exit_code == 0, result.output
    assert "note: --no-plot is given, so no plot is written to --plot" in result.stderr
    assert "note: --validation 0.2 of 2 rows holds out none" in result.stderr
    assert not (folder / "p.png").exists()
    result = run("train", "moons", "--hidden", "0", "--activation", "relu", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "--activation has no effect" in result.stderr
    assert "training a 2-2 network (no hidden layer) on moons" in result.stderr
