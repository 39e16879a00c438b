"""One Registry for every kind of plug-in: the same unknown-name, unknown-option and wrong-type errors everywhere,
``base:`` inheritance for YAML entries, kinds found in their package without a hand-kept module list."""

from __future__ import annotations

import pytest

from benchmarks.suites import load_suite
from downstream.datasets import DATASET_KINDS, load_dataset
from downstream.metrics import METRICS
from downstream.tasks import TASKS, load_task
from sr.errors import ConfigError, UnknownNameError
from sr.guidance import TERMS, build_term
from sr.registry import METHODS, Registry, load_method
from sr.train.objectives import OBJECTIVES


@pytest.mark.parametrize(
    ("lookup", "wrong", "meant"),
    [
        (load_method, "bicubc", "bicubic"),
        (load_dataset, "synthir_dem", "synthir_demo"),
        (load_task, "detection_dem", "detection_demo"),
        (load_suite, "dmo", "demo"),
        (build_term, "fftt", "fft"),
        (lambda name: OBJECTIVES.get(name), "sinrs", "sinsr"),
        (lambda name: METRICS.get(name), "psnrr", "psnr"),
    ],
)
def test_unknown_names_say_did_you_mean(lookup, wrong, meant):
    with pytest.raises(UnknownNameError, match=f"Did you mean '{meant}'"):
        lookup(wrong)


def test_unknown_options_and_wrong_types_are_the_same_error_for_every_kind(tmp_path):
    cases = [
        (lambda: load_method("bicubic", resampel="bicubic"), "resample"),
        (lambda: load_dataset("synthir_demo", cout=3), "count"),
        (lambda: build_term("fft", wieght=2.0), None),
    ]
    for build, meant in cases:
        with pytest.raises(ConfigError, match="unknown key") as exc:
            build()
        if meant:
            assert f"did you mean {meant!r}" in str(exc.value)
    # a value of the wrong type in a YAML entry, for a YAML-backed kind and a Python-registered one
    (tmp_path / "bad_set.yaml").write_text("kind: synthir\ncount: many\n")
    with pytest.raises(ConfigError, match="count = 'many' has the wrong type"):
        load_dataset(str(tmp_path / "bad_set.yaml"))
    (tmp_path / "bad_suite.yaml").write_text("datasets: synthir_demo\n")
    with pytest.raises(ConfigError, match="datasets = 'synthir_demo' has the wrong type"):
        load_suite(str(tmp_path / "bad_suite.yaml"))
    (tmp_path / "bad_task.yaml").write_text(
        "factory: downstream.detection.task:DetectionTask\noptions: {imgsz: large, random_weights: true}\n"
    )
    with pytest.raises(ConfigError, match="imgsz = 'large' has the wrong type"):
        load_task(str(tmp_path / "bad_task.yaml"))


def test_yaml_entries_inherit_with_base(tmp_path):
    (tmp_path / "small.yaml").write_text("base: small_base.yaml\ncount: 2\n")
    (tmp_path / "small_base.yaml").write_text("kind: synthir\nfirst_seed: 7\ncount: 5\nheight: 64\nwidth: 96\n")
    dataset = load_dataset(str(tmp_path / "small.yaml"))
    assert dataset.ids() == ["synthir_000007", "synthir_000008"]
    assert tuple(dataset.load(dataset.ids()[0]).hr.shape[1:]) == (64, 96)
    (tmp_path / "suite.yaml").write_text("base: ../suite_base.yaml\nmethods: [bicubic]\n")
    (tmp_path.parent / "suite_base.yaml").write_text("datasets: [synthir_demo]\nmethods: all\nmetrics: [psnr]\n")
    suite = load_suite(str(tmp_path / "suite.yaml"))
    assert suite.name == "suite" and suite.methods == ("bicubic",) and suite.metrics == ("psnr",)
    (tmp_path / "loop_a.yaml").write_text("base: loop_b.yaml\n")
    (tmp_path / "loop_b.yaml").write_text("base: loop_a.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_suite(str(tmp_path / "loop_a.yaml"))


def test_a_method_yaml_path_is_named_by_its_stem_everywhere(tmp_path):
    """A method given as a YAML path: its name and (without paper_name) its paper name are the stem, not the path."""
    from sr.registry import method_spec

    path = tmp_path / "my_bicubic.yaml"
    path.write_text("factory: sr.methods.interpolation:PILResize\nscale: 4\noptions: {resample: bicubic}\n")
    spec = method_spec(str(path))
    assert (spec.name, spec.paper_name) == ("my_bicubic", "my_bicubic")


def test_kinds_come_from_their_package_and_entries_carry_metadata():
    assert set(DATASET_KINDS.names()) >= {"folder", "m3fd", "fmb", "synthir", "prepared"}
    assert set(OBJECTIVES.names()) == {"resshift", "sinsr", "difiisr", "hfdiff", "upsr"}
    assert TERMS.get("vgg").metadata == {"group": "perceptual"} and TERMS.get("fft").metadata == {"group": "visual"}
    assert METHODS.get("bicubic").metadata["scale"] == 4 and "bicubic" in METHODS
    assert "detection_demo" in TASKS.names()
    assert METRICS.get("lpips").metadata["higher_better"] is False and METRICS.get("psnr").metadata["reference"]


def test_registering_a_name_twice_is_an_error():
    reg = Registry("widget")

    def make_a(size: int = 1) -> tuple[str, int]:
        return "a", size

    reg.add("a", make_a, colour="red")
    assert reg.build("a", {"size": 3}) == ("a", 3) and reg.get("a").metadata == {"colour": "red"}
    with pytest.raises(ConfigError, match="size = 'big' has the wrong type"):
        reg.build("a", {"size": "big"})
    with pytest.raises(ConfigError, match="registered twice"):
        reg.add("a", lambda: None)
