"""GET /metrics: Prometheus exposition format, for the operator's Prometheus only.

Off (404) until NURTURE_METRICS_TOKEN is set; then a request must carry
`Authorization: Bearer <token>` (403 otherwise, saying what is missing)."""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from nurture import metrics


@require_GET
def metrics_view(request):
    token = settings.NURTURE_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return HttpResponse("Forbidden: send the header Authorization: Bearer <NURTURE_METRICS_TOKEN>.\n", status=403,
                            content_type="text/plain")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("Forbidden: the bearer token does not match NURTURE_METRICS_TOKEN.\n", status=403,
                            content_type="text/plain")
    response = HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
