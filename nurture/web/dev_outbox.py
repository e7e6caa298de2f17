"""DEBUG only: the emails `make run` writes under var/outbox/, as web pages."""
from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render

from nurture.web.signup import dev_outbox_enabled


def dev_outbox(request, name: str | None = None):
    """DEBUG only: the emails written under var/outbox/, newest first."""
    if not dev_outbox_enabled():
        raise Http404()
    outbox = settings.NURTURE_OUTBOX_DIR
    if name:
        path = outbox / name
        if path.parent != outbox or path.suffix != ".eml" or not path.is_file():
            raise Http404()
        return dev_outbox_message(request, path)
    files = sorted(outbox.glob("*.eml"), reverse=True) if outbox.is_dir() else []
    return render(request, "nurture/dev_outbox.html", {"messages_": [_summary(p) for p in files[:200]]})


def _summary(path):
    import email
    from email import policy

    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return {"name": path.name, "subject": msg["Subject"], "to": msg["To"], "date": msg["Date"]}


def dev_outbox_message(request, path):
    import email
    from email import policy

    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    if request.GET.get("part") == "text":
        part = msg.get_body(preferencelist=("plain",))
        return HttpResponse(part.get_content() if part else "", content_type="text/plain; charset=utf-8")
    if request.GET.get("raw"):
        return FileResponse(path.open("rb"), content_type="text/plain; charset=utf-8")
    part = msg.get_body(preferencelist=("html", "plain"))
    content = part.get_content() if part else ""
    if part is not None and part.get_content_type() == "text/plain":
        return HttpResponse(content, content_type="text/plain; charset=utf-8")
    return HttpResponse(content)
