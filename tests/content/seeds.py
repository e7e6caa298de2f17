"""The two versions of the guide (the seeds), for the tests that re-read the library against them.

The seed texts are the guide's author's copyrighted material and are not part of this repository: they sit next
to it (../shared/seeds, or NURTURE_SEEDS_DIR). What the verbatim check needs is kept here as a fingerprint
instead (tests/content/data/seed_fingerprint.json: hashed runs of words, no text), so that check runs in every
checkout; the checks that need the seed's lines run where the seeds are present and are skipped, saying so,
elsewhere. `python -m tests.content.seeds` rewrites the fingerprint after a seed changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "content" / "library"
FINGERPRINT = Path(__file__).resolve().parent / "data" / "seed_fingerprint.json"
# Words in a row that an article may share with the guide: more than this reads as a pasted sentence.
MAX_SHARED_WORDS = 7
RUN = MAX_SHARED_WORDS + 1


def coverage() -> dict:
    return yaml.safe_load((LIBRARY / "coverage.yaml").read_text(encoding="utf-8"))


def seeds_dir() -> Path | None:
    candidates = [os.environ.get("NURTURE_SEEDS_DIR", ""), REPO.parent / "shared" / "seeds", REPO.parents[1] / "shared" / "seeds"]
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in coverage()["seeds"].values()):
            return Path(candidate)
    return None


def seed_lines(key: str) -> list[str]:
    """The lines of seed '000' or '001' (1-based: index 0 is line 1)."""
    return (seeds_dir() / coverage()["seeds"][key]).read_text(encoding="utf-8").split("\n")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def runs(text: str, length: int = RUN) -> set[str]:
    w = words(text)
    return {" ".join(w[i:i + length]) for i in range(len(w) - length + 1)}


def run_hash(run: str) -> str:
    return hashlib.sha256(run.encode()).hexdigest()[:16]


def fingerprint_from_seeds() -> dict:
    texts = {key: (seeds_dir() / name).read_text(encoding="utf-8") for key, name in coverage()["seeds"].items()}
    return {
        "run_length": RUN,
        "sha256": {key: hashlib.sha256(text.encode()).hexdigest() for key, text in sorted(texts.items())},
        "runs": sorted({run_hash(run) for text in texts.values() for run in runs(text)}),
    }


def fingerprint() -> dict:
    return json.loads(FINGERPRINT.read_text(encoding="utf-8"))


if __name__ == "__main__":
    FINGERPRINT.write_text(json.dumps(fingerprint_from_seeds(), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {FINGERPRINT}")
