"""HTTP routers, one module per resource, each exposing ``router``; ``ROUTERS`` joins them in order."""

from serving.routers import campaigns, dashboard, events, health, items, loyalty, offers, profiles, recommendations

ROUTERS = (
    health.router,
    recommendations.router,
    items.router,
    profiles.router,
    events.router,
    offers.router,
    campaigns.router,
    loyalty.router,
    dashboard.router,
)
