"""Every key of the shipped configuration (``include/headroom/config/*.yaml``) is read by code, or it is removed.

Two views must agree that a key is read:

1. **At load time**, with :func:`include.headroom.configfile.track_reads` on, every loader of every package
   loads the shipped files; the mappings record which keys were looked up, unpacked or iterated. A leaf counts
   when it or a mapping holding it was read (a mapping kept for run time, like ``bottlenecks.yaml``
   ``detection``, is read key by key later, which only the second view sees).
2. **By code**: the key's name is used in the product code (``include/``, ``plugins/``, ``dags/``) as a string
   (``detection["cpu_high_pct"]``) or as an attribute read (``tier.hpa_profile``), not counting ``self.x`` in
   ``__init__``/``__post_init__``: a key that only reaches a dataclass field which nothing but the class's own
   validation reads is dead. Keys of a data mapping are names the user chooses, so only the first view
   applies to them: a mapping none of whose keys code names is data, and ``DATA_MAPS`` lists the data
   mappings whose keys happen to match names in code, each with why.

The files are found by globbing, so configuration added later is checked too. The failure lists
``file: dotted.key`` for every key nobody reads.
"""

from __future__ import annotations

import ast
import fnmatch
import shutil
from pathlib import Path

from include.headroom.configfile import leaf_keys, read_keys, read_yaml, track_reads
from tests.conftest import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "include" / "headroom" / "config"
PRODUCT_CODE = ("include", "plugins", "dags")
# (file, dotted mapping, list items as [], * for any name) -> why its keys are data although code names some of them.
DATA_MAPS = {
    ("bottlenecks.yaml", "remedies"): "keyed by bottleneck kind, looked up with the kind a finding has (remedies[kind])",
    ("connectors.yaml", "connectors.hubspot.calls_per_10s"): "keyed by HubSpot plan, looked up with connectors.hubspot.plan",
    ("connectors.yaml", "connectors.*.objects.*.fields"): "canonical field -> remote field, iterated when records are mapped",
    ("sources.yaml", "cloudwatch.queries[].dimensions"): "CloudWatch dimension names, sent to the API as they are",
    ("sources.yaml", "units.factors"): "unit name -> factor to the canonical unit, looked up with a series' unit",
    ("sources.yaml", "units.aliases"): "unit spelling -> canonical unit, looked up with a series' unit",
    ("validation.yaml", "families.*.units"): "units a family accepts, looked up with a series' unit",
}


def _is_data_map(file: str, mapping: str) -> bool:
    return any(f == file and fnmatch.fnmatchcase(mapping, pattern) for f, pattern in DATA_MAPS)


def load_everything(config_dir: Path) -> None:
    """Everything any loader of the library loads from ``config_dir``, uncached (tracking bypasses the file cache)."""
    from include.headroom.alerts.settings import load_alert_settings
    from include.headroom.bottlenecks.rootcause import load_rootcause_settings
    from include.headroom.config import load_config
    from include.headroom.metrics.source_config import load_source_settings, load_store_settings
    from include.headroom.pools import airflow_pools
    from include.headroom.report.settings import load_report_settings

    load_config(config_dir)  # catalog, tiers, scaling, cache, forecasting, bottlenecks, sample fleet, connectors, pipeline
    load_alert_settings(config_dir)
    load_report_settings(config_dir)
    load_source_settings(config_dir)
    load_store_settings(config_dir)
    airflow_pools(config_dir=config_dir)
    load_rootcause_settings(config_dir)


def names_used_by_code(roots: tuple[str, ...] = PRODUCT_CODE) -> set[str]:
    """String constants and attribute names in the product code (``self.x`` in a constructor does not count)."""
    used: set[str] = set()
    for root in roots:
        for path in (PROJECT_ROOT / root).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            constructors = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in ("__init__", "__post_init__")
                            for n in ast.walk(f)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    used.add(node.value)
                elif isinstance(node, ast.Attribute):
                    on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
                    if not (on_self and id(node) in constructors):
                        used.add(node.attr)
    return used


def unread_config_keys(config_dir: Path = CONFIG_DIR) -> list[str]:
    """``file: dotted.key`` of every shipped key that is not read, as the module docstring defines it."""
    with track_reads() as files:
        load_everything(config_dir)
    read_at_load: dict[str, set[str]] = {}
    for path, root in files:
        read_at_load.setdefault(path.name, set()).update(read_keys(root))
    used = names_used_by_code()
    unread = []
    for path in sorted(config_dir.glob("*.y*ml")):
        done = read_at_load.get(path.name, set())
        leaves = list(dict.fromkeys(leaf_keys(read_yaml(path))))
        siblings: dict[str, set[str]] = {}
        for leaf in leaves:
            parent, _, name = leaf.rpartition(".")
            siblings.setdefault(parent, set()).add(name.removesuffix("[]"))
        for leaf in leaves:
            parent, _, name = leaf.rpartition(".")
            data_map = not (siblings[parent] & used) or _is_data_map(path.name, parent)
            parts = leaf.split(".")
            handed_on = any(".".join(parts[:i]) in done for i in range(1, len(parts) + 1))
            if not handed_on or (name.removesuffix("[]") not in used and not data_map):
                unread.append(f"{path.name}: {leaf}")
    return unread


def test_every_shipped_key_is_read():
    unread = unread_config_keys()
    assert unread == [], "configuration keys nothing reads (read them or remove them):\n" + "\n".join(unread)


def test_a_key_nobody_reads_is_reported(tmp_path):
    """The check can fail: a key added to a copy of the configuration is listed, with its file and dotted path."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    text = (config / "cache.yaml").read_text()
    (config / "cache.yaml").write_text(text + "\npromised_feature:\n  knob_nobody_turns: 3\n")
    (config / "extra.yaml").write_text("feature: {enabled: true}\n")
    assert unread_config_keys(config) == ["cache.yaml: promised_feature.knob_nobody_turns", "extra.yaml: feature.enabled"]
