"""The default library (content/library/) loaded the way `manage.py load_content` loads it, for the
email tests, benchmark and screenshot script: the emails under test carry the real articles."""
from __future__ import annotations

from pathlib import Path

from nurture.services.library import library_import
from nurture.models import Series

LIBRARY = Path(__file__).resolve().parent.parent / "content" / "library"
LANGUAGES = ("en", "es")


def load_default_library() -> list[Series]:
    library_import(library_dir=LIBRARY)
    return list(Series.objects.all())
