"""dbt-project-evaluator's rules, checked over dbt's manifest.json (the package cannot be installed offline): model
naming and directories by the types dbt_project.yml declares in the evaluator's own vars, sources only read by
staging, no unused source, a primary-key test on every model, a consumer for every staging and intermediate
model, every model and macro documented. Each rule is shown failing on a manifest built to break it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from creatorstays_infra.ops.dbt import dbt_command, dbt_env

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "creatorstays_infra"


def conventions() -> dict:
    ev = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["dbt_project_evaluator"]
    return {ev[f"{t}_folder_name"]: tuple(ev[f"{t}_prefixes"]) for t in ev["model_types"]}


def violations(manifest: dict, types: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Rule name -> the offending nodes (empty lists when the project follows the rules)."""
    nodes, children = manifest["nodes"], manifest["child_map"]
    models = {
        k: v for k, v in nodes.items() if v["resource_type"] == "model" and v["package_name"] == PROJECT
    }
    found: dict[str, list[str]] = {
        "model_directories": [],
        "model_naming_conventions": [],
        "unused_sources": [],
        "direct_join_to_source": [],
        "missing_primary_key_tests": [],
        "staging_or_intermediate_without_consumer": [],
        "undocumented_models": [],
        "undocumented_macros": [],
    }
    for uid, node in models.items():
        name, folder = node["name"], node["fqn"][1] if len(node["fqn"]) > 2 else ""
        if folder not in types:
            found["model_directories"].append(f"{name} (models/{folder}/ is not a declared model type)")
        elif not name.startswith(types[folder]):
            found["model_naming_conventions"].append(
                f"{name} (in models/{folder}/: prefixes {types[folder]})"
            )
        if folder != "staging" and any(d.startswith("source.") for d in node["depends_on"]["nodes"]):
            found["direct_join_to_source"].append(name)
        tests = [nodes[c] for c in children.get(uid, []) if c.startswith("test.")]
        by_kind: dict[str, set] = {}
        for t in tests:
            meta = t.get("test_metadata") or {}
            by_kind.setdefault(meta.get("name", ""), set()).add(meta.get("kwargs", {}).get("column_name"))
        if not (by_kind.get("unique", set()) & by_kind.get("not_null", set())) and not by_kind.get(
            "unique_combination_of_columns"
        ):
            found["missing_primary_key_tests"].append(name)
        consumers = [c for c in children.get(uid, []) if c.startswith(("model.", "exposure."))]
        if folder in ("staging", "intermediate") and not consumers:
            found["staging_or_intermediate_without_consumer"].append(name)
        if not node.get("description", "").strip():
            found["undocumented_models"].append(name)
    for uid, source in manifest["sources"].items():
        if not children.get(uid):
            found["unused_sources"].append(f"{source['source_name']}.{source['name']}")
    for uid, macro in manifest["macros"].items():
        if macro["package_name"] == PROJECT and not macro.get("description", "").strip():
            found["undocumented_macros"].append(macro["name"])
    return found


@pytest.fixture(scope="module")
def manifest(server, tmp_path_factory) -> dict:
    target = tmp_path_factory.mktemp("dbt_target")
    result = subprocess.run(
        [*dbt_command(["parse", "--target-path", str(target)])],
        check=False,
        env=dbt_env(server, "public"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((target / "manifest.json").read_text())


def test_the_project_follows_the_evaluators_rules(manifest):
    found = violations(manifest, conventions())
    assert {rule: names for rule, names in found.items() if names} == {}
    # the rules looked at something: every model, source and macro of the project
    assert sum(v["resource_type"] == "model" for v in manifest["nodes"].values()) >= 20
    assert len(manifest["sources"]) >= 5 and len(manifest["macros"]) > 50


def _model(manifest: dict, name: str) -> tuple[str, dict]:
    return next(
        (k, v) for k, v in manifest["nodes"].items() if v["resource_type"] == "model" and v["name"] == name
    )


def test_each_rule_fails_on_a_manifest_built_to_break_it(manifest):
    types = conventions()
    broken = copy.deepcopy(manifest)
    uid, dim = _model(broken, "dim_creators")
    # a mart named like a staging model, a model in an undeclared folder
    clone = copy.deepcopy(dim)
    clone.update(name="stg_creators_again", fqn=[PROJECT, "marts", "creators", "stg_creators_again"])
    broken["nodes"]["model.x.stg_creators_again"] = clone
    stray = copy.deepcopy(dim)
    stray.update(name="rpt_stray", fqn=[PROJECT, "reports", "rpt_stray"])
    broken["nodes"]["model.x.rpt_stray"] = stray
    # a mart reading a source directly, undocumented, without its tests
    dim["depends_on"]["nodes"].append(next(iter(broken["sources"])))
    dim["description"] = ""
    broken["child_map"][uid] = [c for c in broken["child_map"][uid] if not c.startswith("test.")]
    # a staging model nothing reads, a source nothing reads, a macro without documentation
    stg_uid, _ = _model(broken, "stg_app__users")
    broken["child_map"][stg_uid] = [
        c for c in broken["child_map"][stg_uid] if not c.startswith(("model.", "exposure."))
    ]
    source_uid = next(iter(broken["sources"]))
    broken["child_map"][source_uid] = []
    macro_uid = next(k for k, v in broken["macros"].items() if v["package_name"] == PROJECT)
    broken["macros"][macro_uid]["description"] = ""

    found = violations(broken, types)
    assert found["model_naming_conventions"] == [
        "stg_creators_again (in models/marts/: prefixes ('fct_', 'dim_', 'rpt_'))"
    ]
    assert found["model_directories"] == ["rpt_stray (models/reports/ is not a declared model type)"]
    assert "dim_creators" in found["direct_join_to_source"]
    assert "dim_creators" in found["missing_primary_key_tests"]
    assert "dim_creators" in found["undocumented_models"]
    assert found["staging_or_intermediate_without_consumer"] == ["stg_app__users"]
    assert found["unused_sources"] == [
        f"{broken['sources'][source_uid]['source_name']}.{broken['sources'][source_uid]['name']}"
    ]
    assert found["undocumented_macros"] == [broken["macros"][macro_uid]["name"]]


def test_macro_documentation_is_generated_from_the_macros_comments():
    script = ROOT / "scripts" / "docs" / "macro_docs.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _layout_entries() -> list[str]:
    """The paths the README's layout block names (the first column; `a, b` lists in one directory)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries = []
    for line in block.splitlines():
        if not line or line[0] == " ":
            continue
        names = line.split("  ")[0].strip()
        first, *rest = [n.strip() for n in names.split(",")]
        entries.append(first)
        folder = first.rsplit("/", 1)[0] + "/" if "/" in first.rstrip("/") else ""
        entries += [folder + n for n in rest]
    return entries


def test_the_readmes_layout_matches_the_tree():
    entries = _layout_entries()
    assert len(entries) > 20
    missing = [e for e in entries if not (ROOT / e).exists()]
    assert missing == [], f"the layout names what does not exist: {missing}"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    hidden = (".", "README.md")
    unnamed = sorted(
        {
            f
            for f in tracked
            if not f.startswith(hidden)
            and not any(f == e or f.startswith(e.rstrip("/") + "/") for e in entries)
        }
    )
    assert unnamed == [], f"tracked files under no entry of the README's layout: {unnamed}"
