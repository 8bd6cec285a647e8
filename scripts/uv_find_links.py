"""Print the local folders pip takes the pinned torch and torchvision (and their CUDA wheels)
from, comma-separated, as UV_FIND_LINKS wants them (the requirements given as arguments, else
conda.yaml's pins).

uv does not read pip's configuration, so `mlflow run . --env-manager uv` would download the
several-GB wheels that pip installs from local disk here. Give uv the same folders:

    export UV_FIND_LINKS="$(python scripts/uv_find_links.py)"

Prints nothing when pip takes them from an index (uv then does the same). Without arguments,
the pins are read from conda.yaml, the file the uv environment is built from;
`scripts/setup.sh` names its own (before PyYAML is installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
PINNED = ("torch", "torchvision")


def pinned_requirements(conda_yaml: Path = ROOT / "conda.yaml") -> list[str]:
    """conda.yaml's pip requirements for torch and torchvision, e.g. `torch==2.14.1`."""
    import yaml

    deps = yaml.safe_load(conda_yaml.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return [r for r in pip if r.split("==")[0] in PINNED]


def local_wheel_folders(requirements: list[str]) -> list[str]:
    """The folders of the local files pip would install `requirements` (and their
    dependencies) from, asked of pip itself (a dry run with a report)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                               "--ignore-installed", "--report", str(report), *requirements],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"pip could not resolve {requirements}:\n{done.stderr[-2000:]}")
        installs = json.loads(report.read_text())["install"]
    folders: list[str] = []
    for item in installs:
        url = urlparse(item["download_info"]["url"])
        folder = str(Path(unquote(url.path)).parent)
        if url.scheme == "file" and folder not in folders:
            folders.append(folder)
    return folders


if __name__ == "__main__":
    print(",".join(local_wheel_folders(sys.argv[1:] or pinned_requirements())))
