"""The API documentation page (``/api/docs``) from the appliance's own files.

FastAPI's built-in page loads Swagger UI from a public CDN and starts it with an
inline script; an appliance without internet showed a blank page, and a CDN
script ran on the web UI's origin.  Here the page is a template
(templates/api_docs.html) that loads Swagger UI's files from
``/api/docs/assets/`` and starts it with /static/api-docs.js, so the web UI's
Content-Security-Policy (``script-src 'self'``, api/web/render.py) holds on it.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package (Apache-2.0:
the upstream swagger-ui-dist files, unchanged, version in the path).  The older
``swagger-ui-bundle`` ships Swagger UI 4, which cannot read the OpenAPI 3.1
schema FastAPI writes; both install the module ``swagger_ui_bundle``, so only
one of them may be installed.  Only the files the page uses are served (not the
upstream index.html, whose initializer points at a demo schema on the internet).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from swagger_ui_bundle import swagger_ui_path

from api.web.render import render

DOCS_PATH = "/api/docs"
ASSETS_PATH = DOCS_PATH + "/assets"
SWAGGER_UI = Path(str(swagger_ui_path))
#: file name -> media type; nothing else in the package is served
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "favicon-32x32.png": "image/png"}


def docs_page(request: Request):
    return render(request, "api_docs.html", {"openapi_url": request.app.openapi_url, "assets": ASSETS_PATH})


def docs_asset(request: Request):
    name = request.path_params["name"]
    if name not in ASSETS:
        raise HTTPException(404)
    # the same files until the package is upgraded; a day in the browser's cache is plenty
    return FileResponse(SWAGGER_UI / name, media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"})


def install(api: FastAPI) -> None:
    """Plain routes, as FastAPI's own docs route was: public, outside the schema and the API's dependencies."""
    api.add_route(DOCS_PATH, docs_page, methods=["GET"], include_in_schema=False)
    api.add_route(ASSETS_PATH + "/{name}", docs_asset, methods=["GET"], include_in_schema=False)
