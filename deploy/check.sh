#!/usr/bin/env bash
# Checks that the deployment files parse and hold what they must (CI runs this, see .ci/run):
#   - every YAML file under deploy/ parses (PyYAML, multi-document);
#   - every Kubernetes document (deploy/k8s) has apiVersion, kind and metadata.name;
#   - every compose file (deploy/compose) has a `services` mapping, each service an image or
#     a build;
#   - the systemd unit passes `systemd-analyze verify` (else a configparser read of its
#     sections), with a stand-in for the daojia binary that is not installed here;
#   - the Dockerfile: first instruction FROM, every FROM image with an explicit tag other than
#     `latest` (or a digest), a USER in the final stage that is not root.
# PyYAML comes from a venv under ${XDG_CACHE_HOME:-$HOME/.cache}/daojia-venv, made on first use.
# Usage: bash deploy/check.sh [DEPLOY_DIR]   (default: the directory of this script)
set -euo pipefail

deploy_dir="$(cd "${1:-$(dirname "$0")}" && pwd)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/daojia-venv"

if ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    echo "check.sh: making $venv with PyYAML" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pyyaml
fi

failed=0

# YAML, Kubernetes and compose.
"$venv/bin/python" - "$deploy_dir" <<'PY' || failed=1
import pathlib, sys
import yaml

root = pathlib.Path(sys.argv[1])
errors = []
files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
if not files:
    errors.append(f"{root}: no YAML files found")
for path in files:
    rel = path.relative_to(root)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{rel}: does not parse: {e}")
        continue
    if not docs:
        errors.append(f"{rel}: empty")
        continue
    parts = rel.parts
    before = len(errors)
    if parts[0] == "k8s":
        for i, doc in enumerate(docs):
            where = f"{rel} document {i + 1}"
            if not isinstance(doc, dict):
                errors.append(f"{where}: not a mapping")
                continue
            for key in ("apiVersion", "kind"):
                if not isinstance(doc.get(key), str) or not doc[key]:
                    errors.append(f"{where}: no {key}")
            meta = doc.get("metadata")
            if not isinstance(meta, dict) or not meta.get("name"):
                errors.append(f"{where}: no metadata.name")
    elif parts[0] == "compose":
        if len(docs) != 1 or not isinstance(docs[0], dict):
            errors.append(f"{rel}: a compose file is one mapping")
            continue
        services = docs[0].get("services")
        if not isinstance(services, dict) or not services:
            errors.append(f"{rel}: no services")
            continue
        for name, svc in services.items():
            if not isinstance(svc, dict) or not ("image" in svc or "build" in svc):
                errors.append(f"{rel}: service {name} has neither image nor build")
    if len(errors) == before:
        print(f"ok   {rel} ({len(docs)} document{'s' if len(docs) != 1 else ''})")
for e in errors:
    print(f"FAIL {e}")
sys.exit(1 if errors else 0)
PY

# The systemd unit.
unit="$deploy_dir/systemd/daojia.service"
if [[ ! -f "$unit" ]]; then
    echo "FAIL systemd/daojia.service: missing"
    failed=1
elif command -v systemd-analyze >/dev/null; then
    # verify insists that ExecStart's binary exists: point it at an executable stand-in.
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    printf '#!/bin/sh\nexit 0\n' > "$tmp/daojia-stub"
    chmod +x "$tmp/daojia-stub"
    sed "s#/usr/local/bin/daojia#$tmp/daojia-stub#g" "$unit" > "$tmp/daojia.service"
    # Any output (unknown keys, bad values) counts as a failure, not only the exit code.
    if out="$(cd "$tmp" && systemd-analyze verify ./daojia.service 2>&1)" && [[ -z "$out" ]]; then
        echo "ok   systemd/daojia.service (systemd-analyze verify)"
    else
        echo "FAIL systemd/daojia.service: systemd-analyze verify:"
        printf '%s\n' "$out" | sed 's/^/     /'
        failed=1
    fi
else
    "$venv/bin/python" - "$unit" <<'PY' || failed=1
import configparser, sys
p = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                 comment_prefixes=("#", ";"))
p.optionxform = str
try:
    p.read_string(open(sys.argv[1]).read())
except configparser.Error as e:
    sys.exit(f"FAIL systemd/daojia.service: {e}")
missing = [s for s in ("Unit", "Service", "Install") if not p.has_section(s)]
if missing or not p.has_option("Service", "ExecStart"):
    sys.exit(f"FAIL systemd/daojia.service: needs [Unit], [Service] with ExecStart, [Install]")
print("ok   systemd/daojia.service (INI; systemd-analyze not installed)")
PY
fi

# The Dockerfile.
"$venv/bin/python" - "$deploy_dir/Dockerfile" <<'PY' || failed=1
import re, sys

path = sys.argv[1]
try:
    text = open(path).read()
except OSError as e:
    sys.exit(f"FAIL Dockerfile: {e}")
# Join continuation lines, drop comments and blank lines.
lines, cur = [], ""
for raw in text.splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if s.startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    lines.append(cur)
    cur = ""
if cur:
    lines.append(cur)
instrs = [(l.split(None, 1)[0].upper(), (l.split(None, 1) + [""])[1]) for l in lines]
errors = []
known = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
for op, _ in instrs:
    if op not in known:
        errors.append(f"unknown instruction {op}")
if not instrs or instrs[0][0] != "FROM":
    errors.append("the first instruction is not FROM")
stage_users, stages, aliases = [], [], set()
for op, arg in instrs:
    if op == "FROM":
        words = [w for w in arg.split() if not w.startswith("--")]
        image = words[0] if words else ""
        # An earlier stage's alias (FROM builder) or scratch needs no tag.
        is_stage = image.lower() in aliases or image.lower() == "scratch"
        if len(words) >= 3 and words[1].upper() == "AS":
            aliases.add(words[2].lower())
        stages.append(image)
        stage_users.append(None)
        if not is_stage:
            name = image.split("@")[0]
            tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
            if "@sha256:" not in image and (not tag or tag == "latest"):
                errors.append(f"FROM {image}: pin a tag other than latest (or a digest)")
    elif op == "USER" and stage_users:
        stage_users[-1] = arg.strip()
if stage_users:
    user = stage_users[-1]
    if user is None:
        errors.append("the final stage has no USER (it would run as root)")
    elif re.split(r"[:\s]", user)[0] in ("root", "0", ""):
        errors.append(f"the final stage runs as root (USER {user})")
if not any(op == "ENTRYPOINT" for op, _ in instrs):
    errors.append("no ENTRYPOINT")
for e in errors:
    print(f"FAIL Dockerfile: {e}")
if errors:
    sys.exit(1)
print(f"ok   Dockerfile ({len(stages)} stages, final USER {stage_users[-1]})")
PY

if (( failed )); then
    echo "deploy/check.sh: FAILED" >&2
    exit 1
fi
echo "deploy/check.sh: all deployment files check out"
