"""The web UI at ``/ui``: server-rendered Jinja2 pages with SVG charts, no JavaScript and no CDN."""
