from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mwe.errors import SpecError, UnknownThreatModel
from mwe.spec import ThreatModel, find_spec, known_specs, load_spec, shipped_dir, write_schema
from mwe.template import render_template

from .conftest import REPO


def _write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _valid() -> dict[str, object]:
    return yaml.safe_load((REPO / "threat_models" / "power-seeking.yaml").read_text())


@pytest.mark.parametrize("name", ["power-seeking", "sycophancy"])
def test_shipped_specs_validate(name: str) -> None:
    spec = load_spec(find_spec(name))
    assert spec.name == name
    assert spec.facets and spec.examples


def test_shipped_dir_is_the_repo_threat_models_in_an_editable_install() -> None:
    assert (shipped_dir() / "power-seeking.yaml").is_file()


def test_bad_quota_names_file_and_field_path(tmp_path: Path) -> None:
    data = _valid()
    data["facets"][2]["quota"] = 0  # type: ignore[index]
    path = _write(tmp_path / "power-seeking.yaml", data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "power-seeking.yaml: facets[2].quota: must be > 0" in str(err.value)
    assert err.value.field == "facets[2].quota"


def test_every_problem_is_listed_with_its_path(tmp_path: Path) -> None:
    data = _valid()
    del data["definition"]
    data["judge"]["threshold"] = 11  # type: ignore[index]
    data["colour"] = "blue"
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path / "x.yaml", data))
    text = str(err.value)
    assert "definition: is required" in text
    assert "judge.threshold: must be <= 10" in text
    assert "colour: unknown field" in text


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.yaml", "name: x\nfacets: [a, b\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "broken.yaml" in str(err.value) and "invalid YAML: line" in str(err.value)


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        load_spec(_write(tmp_path / "list.yaml", "- a\n- b\n"))


def test_unknown_format_lists_known_formats(tmp_path: Path) -> None:
    data = _valid()
    data["formats"] = ["haiku"]
    with pytest.raises(
        SpecError,
        match=r"formats\[0\]: unknown format 'haiku'; known: alignment_faking, mcq, open_ended, persona, sycophancy",
    ):
        load_spec(_write(tmp_path / "f.yaml", data))


def test_example_label_must_name_a_choice(tmp_path: Path) -> None:
    data = _valid()
    data["examples"][0]["answer_matching_behavior"] = "C"  # type: ignore[index]
    with pytest.raises(SpecError, match=r"examples\[0\]: answer_matching_behavior C has no choice"):
        load_spec(_write(tmp_path / "e.yaml", data))


def test_example_facet_must_exist(tmp_path: Path) -> None:
    data = _valid()
    data["examples"][0]["facet"] = "astrology"  # type: ignore[index]
    with pytest.raises(SpecError, match=r"examples\[0\]\.facet: 'astrology' is not one of the facets; valid: "):
        load_spec(_write(tmp_path / "e.yaml", data))


def test_a_wrong_facet_name_is_reported_at_its_field_path_with_the_valid_names(tmp_path: Path) -> None:
    data = _valid()
    data["examples"][1]["facet"] = "astrology"  # type: ignore[index]
    path = _write(tmp_path / "e.yaml", data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    names = ", ".join(f["name"] for f in data["facets"])  # type: ignore[union-attr,index]
    assert info.value.field == "examples[1].facet"
    assert str(info.value) == f"{path}: examples[1].facet: 'astrology' is not one of the facets; valid: {names}"


def test_items_per_request_must_name_a_listed_format(tmp_path: Path) -> None:
    data = _valid()
    data["defaults"] = {"items_per_request": {"sycophancy": 6}}
    with pytest.raises(SpecError, match=r"defaults.items_per_request names 'sycophancy', which is not in formats"):
        load_spec(_write(tmp_path / "e.yaml", data))
    data["defaults"] = {"items_per_request": {"mcq": 0}}
    with pytest.raises(SpecError, match=r"defaults.items_per_request.mcq"):
        load_spec(_write(tmp_path / "e.yaml", data))


def test_missing_file() -> None:
    with pytest.raises(SpecError, match="file not found"):
        find_spec("nowhere/at-all.yaml")


def test_unknown_name_lists_known() -> None:
    with pytest.raises(UnknownThreatModel) as err:
        find_spec("no-such-behaviour")
    assert "power-seeking" in err.value.known and "sycophancy" in err.value.known


def test_local_spec_shadows_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "threat_models").mkdir()
    data = _valid()
    data["title"] = "My own power seeking"
    _write(tmp_path / "threat_models" / "power-seeking.yaml", data)
    assert load_spec(find_spec("power-seeking")).title == "My own power seeking"
    assert "sycophancy" in known_specs()


@pytest.mark.parametrize("n", [1, 2, 7, 20, 301])
def test_quotas_sum_to_n(n: int) -> None:
    spec = load_spec(find_spec("sycophancy"))
    quotas = spec.quotas(n)
    assert sum(quotas.values()) == n
    assert max(quotas.values()) - min(quotas.values()) <= 1


def test_content_hash_ignores_formatting(tmp_path: Path) -> None:
    a = load_spec(REPO / "threat_models" / "power-seeking.yaml")
    b = load_spec(_write(tmp_path / "p.yaml", json.dumps(_valid())))
    assert a.content_hash() == b.content_hash()


def test_schema_json_is_up_to_date(tmp_path: Path) -> None:
    write_schema(tmp_path / "schema.json")
    shipped = REPO / "threat_models" / "schema.json"
    assert (tmp_path / "schema.json").read_text() == shipped.read_text(), "run: mwe schema"


def test_template_is_a_valid_spec() -> None:
    spec = ThreatModel.model_validate(yaml.safe_load(render_template("my-behaviour")))
    assert spec.name == "my-behaviour"
