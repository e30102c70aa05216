"""The API's interactive docs at /docs, with Swagger UI served by the platform itself (no CDN)."""

from __future__ import annotations

import html
import json

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs-assets"


def install(app: FastAPI) -> None:
    """Mount Swagger UI's files and the /docs page; create the app with docs_url=None."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        # The page's one inline script carries the nonce the security headers put in this response's
        # Content-Security-Policy; no other inline script or style may run.
        nonce = html.escape(getattr(request.state, "csp_nonce", ""), quote=True)
        return HTMLResponse(_PAGE.format(
            title=html.escape(f"{app.title} API"), assets=ASSETS, nonce=nonce,
            openapi_url=json.dumps(app.openapi_url or "/openapi.json")))

    app.add_api_route("/docs", docs, include_in_schema=False, response_class=HTMLResponse)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon-32x32.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
SwaggerUIBundle({{url: {openapi_url}, dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
                  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}});
</script>
</body>
</html>
"""
