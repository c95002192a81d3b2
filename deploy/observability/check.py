#!/usr/bin/env python3
"""Checks the observability files: valid YAML/JSON of the right shape, and every taskhost_*
metric they use is one the host exports (host/src/metrics/mod.rs). Run by `just test`."""
import json, re, sys, pathlib

try:
    import yaml
except ImportError:
    sys.exit("check.py needs PyYAML: pip install pyyaml")

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
source = (root / "host/src/metrics/mod.rs").read_text()
exported = set(re.findall(r'pub const [A-Z_]+: &str = "(taskhost_[a-z_]+)";', source))
if not exported:
    sys.exit("no metric names found in host/src/metrics/mod.rs")
errors = []

def check_expr(where, expr):
    recorded = set(re.findall(r"^\s*- record: (\S+)", (here / "prometheus-rules.yaml").read_text(), re.M))
    for name in re.findall(r"\b(taskhost[a-z0-9_:]*)\b", expr):
        if name in recorded:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base not in exported:
            errors.append(f"{where}: `{name}` is not a metric taskhost exports ({', '.join(sorted(exported))})")
    if expr.count("(") != expr.count(")"):
        errors.append(f"{where}: unbalanced parentheses in `{expr}`")

rules = yaml.safe_load((here / "prometheus-rules.yaml").read_text())
groups = rules.get("groups") if isinstance(rules, dict) else None
if not groups:
    errors.append("prometheus-rules.yaml: no `groups`")
for g in groups or []:
    for i, r in enumerate(g.get("rules", [])):
        where = f"prometheus-rules.yaml {g.get('name')}[{i}]"
        if ("record" in r) == ("alert" in r):
            errors.append(f"{where}: a rule has exactly one of record/alert")
        if not isinstance(r.get("expr"), str) or not r["expr"].strip():
            errors.append(f"{where}: missing expr")
            continue
        if "alert" in r and not r.get("annotations", {}).get("summary"):
            errors.append(f"{where}: alert without a summary annotation")
        if "for" in r and not re.fullmatch(r"\d+[smh]", str(r["for"])):
            errors.append(f"{where}: `for: {r['for']}` is not a duration")
        check_expr(where, r["expr"])

scrape = yaml.safe_load((here / "prometheus-scrape.yaml").read_text())
if not scrape.get("scrape_configs"):
    errors.append("prometheus-scrape.yaml: no scrape_configs")

dash = json.loads((here / "grafana-dashboard.json").read_text())
ids = set()
for p in dash.get("panels", []):
    if p["id"] in ids:
        errors.append(f"grafana-dashboard.json: duplicate panel id {p['id']}")
    ids.add(p["id"])
    if not p.get("targets"):
        errors.append(f"grafana-dashboard.json panel {p['id']}: no targets")
    for t in p.get("targets", []):
        check_expr(f"grafana-dashboard.json panel {p['id']} ({p['title']})", t["expr"])
used = set(re.findall(r"taskhost_[a-z_]+", json.dumps(dash)))
if not used:
    errors.append("grafana-dashboard.json uses no taskhost metric")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"observability files OK: {sum(len(g['rules']) for g in groups)} rules, {len(ids)} dashboard panels, {len(exported)} metrics")
