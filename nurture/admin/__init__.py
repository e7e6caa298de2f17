"""The engine's admin, one module per area. Importing the package registers every ModelAdmin;
the custom staff views (previews, journey, overview) are routed by nurture.admin.urls."""
from nurture.admin import (  # noqa: F401  (registration happens on import)
    articles,
    audit,
    brake,
    care,
    deliveries,
    devices,
    events,
    series,
    subscribers,
    suppressions,
)
