"""Console page of the service catalog: the version in force, every version, add one as YAML, activate one.

It calls `api.catalog_versions`, as the API's /catalog/versions routes do: one check, one store, one
audit trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from api import catalog, catalog_versions
from api.console.login import Actor, PageSession, Viewer, require
from api.console.render import PageRoute, page, redirect
from api.errors import Conflict
from api.schemas import CatalogVersion
from fleet import errors
from fleet.tables import utcnow

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Source = Annotated[str, Form(max_length=catalog_versions.MAX_SOURCE)]


def catalog_page(request: Request, sess, who, *, form: dict | None = None, status_code: int = 200):  # noqa: ANN001, ANN201
    """The catalog page; `form` keeps a refused version's text and its problems."""
    require(who, "admin")
    context = {
        "who": who,
        "cat": catalog_versions.in_force(sess),
        "versions": catalog_versions.listing(sess),
        "form": form or {"source": "", "problems": []},
    }
    return page(request, "catalog.html", context, status_code=status_code)


@router.get("/admin/catalog", response_class=HTMLResponse)
def show(request: Request, sess: PageSession, who: Viewer):
    """The catalog in force (offer types, eligibility, price points, texts, downtime) and its versions."""
    return catalog_page(request, sess, who)


@router.post("/admin/catalog")
def add(
    request: Request,
    sess: PageSession,
    who: Actor,
    source: Source = "",
    upload: Annotated[UploadFile | None, File()] = None,
):
    """Check pasted or uploaded YAML as the catalog file is checked and store it as a new version."""
    require(who, "admin")
    if upload is not None and upload.filename:
        source = upload.file.read(catalog_versions.MAX_SOURCE * 4 + 1).decode("utf-8", errors="replace")
    problems: list[str] = []
    if not source.strip():
        problems = ["Paste a catalog (YAML) or choose a file."]
    else:
        try:
            cat = catalog_versions.add(sess, source=source, by=who, now=utcnow())
        except catalog.CatalogFileError as exc:
            problems = [_words(p) for p in exc.problems]
        except (Conflict, errors.InvalidInput) as exc:  # a taken version number, a text too long
            problems = [f"{str(exc).capitalize()}."]
    if problems:
        form = {"source": source, "problems": problems}
        return catalog_page(request, sess, who, form=form, status_code=422)
    return redirect(
        "/admin/catalog", f"Catalog version {cat.version} added; activate it to use it for new offers."
    )


def _words(problem) -> str:  # noqa: ANN001
    """A problem as the page says it: `line 12: items[0].min_risk: …`."""
    where = f"line {problem.line}: " if problem.line else ""
    return f"{where}{problem.field}: {problem.message}"


@router.post("/admin/catalog/{version}/activate")
def activate(version: CatalogVersion, sess: PageSession, who: Actor):
    """Put a stored version in force for new offers (audited with the version it replaces)."""
    require(who, "admin")
    cat = catalog_versions.activate(sess, version=version, by=who, now=utcnow())
    return redirect("/admin/catalog", f"Catalog version {cat.version} is now in force for new offers.")
