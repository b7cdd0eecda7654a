"""The review studio's web app: pages over one output folder, its files, and
the endpoints that record decisions.

Starlette with Jinja2 templates (autoescaped) and a little vanilla JS; the
assets ship in the package, so the page works offline. The manifest is read
afresh for every page, so a render finishing in another process shows at the
next reload; every write goes through `pipeline.review.decisions`, the code
`repurpose captions` uses. Export makes `repurpose export`'s files (pipeline.export)
for the page to offer as downloads; it writes nothing into OUT.

Access: every write needs the run's token (sent by the page's script in the
X-Review-Token header, so a foreign page cannot forge one: a cross-origin
request with that header needs a preflight this app never grants). On a host
other than loopback, every request needs it: the address printed at start
carries `?token=`, which is then kept in a cookie, as Jupyter does. A Host
header that is not the address served is refused (DNS rebinding).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.captions.model import Limits
from pipeline.errors import PipelineError, printable
from pipeline.export.schedule import ScheduleError
from pipeline.review import decisions, editing, exporting, files, focus, masters, thumbs
from pipeline.review.cards import FILTERS, card, group_cards

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
COOKIE = "repurpose_review"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
log = logging.getLogger(__name__)


@dataclass
class Studio:
    """What one `repurpose review` serves: the folder, who decides, the token."""
    out: Path
    by: str
    token: str
    host: str = "127.0.0.1"
    port: int = 8765
    hosts: set[str] = field(default_factory=set)     # Host headers accepted
    # Each preset's safe area (top, right, bottom, left as fractions of the frame):
    # outside it the platform draws its interface.
    safe_areas: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    masters: list[Path] = field(default_factory=list)  # where `source` labels are relative to
    presets_dirs: tuple[Path, ...] = ()                 # for the caption limits
    trust_shoots: bool = False                          # re-render without --untrusted
    _limits: dict[str, Limits | None] = field(default_factory=dict)

    def limits(self, preset_id: str) -> Limits | None:
        """A preset's caption limits, read once."""
        if preset_id not in self._limits:
            self._limits[preset_id] = decisions.caption_limits(preset_id, self.presets_dirs)
        return self._limits[preset_id]

    @property
    def local(self) -> bool:
        return self.host in LOOPBACK


def create_app(studio: Studio) -> Starlette:
    """The ASGI app for `studio`."""
    env = Environment(loader=PackageLoader("pipeline.review", "templates"),
                      autoescape=select_autoescape(["html"]))
    formats = exporting.formats()

    def page(request: Request, name: str, **context: Any) -> Response:
        html = env.get_template(name).render(token=studio.token, by=studio.by,
                                             out=str(studio.out), **context)
        return Response(html, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    async def overview(request: Request) -> Response:
        body = _manifest(studio.out)
        show = request.query_params.get("show", "")
        cards = [card(entry, index) for index, entry in enumerate(body.get("variants", []))]
        shown = [c for c in cards if not show or show in c.filters]
        counts = {key: sum(key in c.filters for c in cards) for key in FILTERS}
        return page(request, "overview.html", groups=group_cards(shown), show=show,
                    filters=FILTERS, counts=counts, total=len(cards),
                    errors=body.get("errors") or [], formats=formats,
                    export_limits=exporting.FIELDS)

    async def variant(request: Request) -> Response:
        path = request.path_params["path"]
        entry = _entry(studio.out, path)
        if entry is None:
            return Response("no such variant in the manifest", status_code=404)
        caption = entry.get("caption") if isinstance(entry.get("caption"), dict) else None
        counted = None
        if caption and isinstance(caption.get("text"), str):
            limits = await run_in_threadpool(studio.limits, str(entry.get("preset")))
            counted = editing.measure(caption["text"], limits)
        found = masters.find(studio.out, entry, studio.masters)
        frame = await run_in_threadpool(masters.framing, entry, found) if found else None
        return page(request, "variant.html", v=card(entry, 0), entry=entry, framing=frame,
                    safe=studio.safe_areas.get(str(entry.get("preset"))),
                    caption=caption, count=counted,
                    version=decisions.version(entry),
                    state=decisions.review_state(entry))

    async def serve_file(request: Request) -> Response:
        found = files.inside(studio.out, request.path_params["path"])
        if found is None:
            return Response("not found", status_code=404)
        return FileResponse(found, headers={"Cache-Control": "no-cache"})

    async def serve_thumb(request: Request) -> Response:
        found = files.inside(studio.out, request.path_params["path"])
        if found is None:
            return Response("not found", status_code=404)
        try:        # a decode: off the event loop
            thumb = await run_in_threadpool(thumbs.thumbnail, studio.out, found)
        except PipelineError as exc:
            return Response(str(exc), status_code=422)
        return FileResponse(thumb, media_type="image/jpeg",
                            headers={"Cache-Control": "no-cache"})

    async def serve_master(request: Request) -> Response:
        """The master of the variant at `path`, as a picture (a frame for video)."""
        entry = _entry(studio.out, request.path_params["path"])
        found = masters.find(studio.out, entry, studio.masters) if entry else None
        if found is None:
            return Response("master not found", status_code=404)
        try:
            thumb = await run_in_threadpool(thumbs.thumbnail, studio.out, found, 960)
        except PipelineError as exc:
            return Response(str(exc), status_code=422)
        return FileResponse(thumb, media_type="image/jpeg",
                            headers={"Cache-Control": "no-cache"})

    async def decide(request: Request) -> Response:
        data = await _json(request)
        if isinstance(data, Response):
            return data
        paths = data.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            return _problem(400, "paths: give the variants' paths in OUT")
        versions = data.get("versions") if isinstance(data.get("versions"), dict) else None
        changed = await _saving(decisions.decide, studio.out, paths, str(data.get("action")),
                                studio.by, _text(data.get("reason")), versions)
        if isinstance(changed, Response):
            return changed
        return JSONResponse({"variants": [_public(e) for e in changed]})

    async def captioned(request: Request
                        ) -> tuple[dict[str, Any], str, str, Limits | None] | Response:
        """A caption request's JSON, variant path, text and the variant's limits."""
        data = await _json(request)
        if isinstance(data, Response):
            return data
        path, text = data.get("path"), data.get("text")
        entry = _entry(studio.out, path) if isinstance(path, str) else None
        if entry is None or not isinstance(path, str) or not isinstance(text, str):
            return _problem(400, "give the path of a variant and the text")
        limits = await run_in_threadpool(studio.limits, str(entry.get("preset")))
        return data, path, text, limits

    async def count(request: Request) -> Response:
        """The text's length in its platform's unit, by the guard's own function."""
        asked = await captioned(request)
        if isinstance(asked, Response):
            return asked
        _, _, text, limits = asked
        return JSONResponse(editing.measure(text, limits).to_dict())

    async def edit(request: Request) -> Response:
        """Save a person's caption, held to the platform by the guard's steps."""
        asked = await captioned(request)
        if isinstance(asked, Response):
            return asked
        data, path, text, limits = asked
        if len(text) > decisions.MAX_TEXT:
            return _problem(400, f"the caption is {len(text)} characters; at most "
                                 f"{decisions.MAX_TEXT}")
        held, changes = editing.hold(text.replace("\r\n", "\n").rstrip(), limits)
        expected = data.get("version")
        saved = await _saving(decisions.edit_caption, studio.out, path, held, studio.by,
                              {path: expected} if isinstance(expected, str) else None,
                              studio.presets_dirs)
        if isinstance(saved, Response):
            return saved
        return JSONResponse({**_public(saved), "text": held, "changes": changes,
                             "count": editing.measure(held, limits).to_dict()})

    async def refocus(request: Request) -> Response:
        """Write the clicked focus into the master's shoot.yaml and render that
        master again, into the same presets."""
        data = await _json(request)
        if isinstance(data, Response):
            return data
        path, x, y = data.get("path"), _number(data.get("x")), _number(data.get("y"))
        entry = _entry(studio.out, path) if isinstance(path, str) else None
        if entry is None or x is None or y is None:
            return _problem(400, "give the path of a variant and the focus as x and y")
        label = str(entry.get("source") or "")
        base = masters.base_of(studio.out, label, studio.masters)
        if base is None:
            return _problem(404, f"{label}: master not found; start the studio with "
                                 "--masters DIR (the folder the render ran from)")
        body = _manifest(studio.out)
        presets = sorted({str(v.get("preset")) for v in body.get("variants", [])
                          if isinstance(v, dict) and v.get("source") == label})
        try:
            written, before = await run_in_threadpool(
                focus.set_focus, (base / label).parent, Path(label).name, x, y)
            done = await run_in_threadpool(focus.render_again, base, label, studio.out,
                                           presets, studio.trust_shoots)
            if done.returncode != 0:
                await run_in_threadpool(focus.restore, written, before)
        except PipelineError as exc:
            return _problem(400, str(exc))
        said = [printable(line) for line in done.stderr.splitlines() if line.strip()][-20:]
        if done.returncode != 0:
            return _problem(422, f"{label} did not render with the new focus, so "
                                 f"{written} is as it was: " + " / ".join(said[-3:]))
        return JSONResponse({"shoot_yaml": str(written), "rendered": True, "log": said})

    async def exported(request: Request) -> Response:
        """OUT's posts in one of pipeline.export's formats, as text files for the
        page to offer; a refusal (format, schedule, base URL) is a 422."""
        data = await _json(request)
        if isinstance(data, Response):
            return data
        asked = exporting.asked(data)
        if isinstance(asked, str):
            return _problem(400, asked)
        try:        # reads and hashes every posted file: off the event loop
            result = await run_in_threadpool(exporting.run, studio.out, studio.presets_dirs,
                                             asked)
        except (PipelineError, ScheduleError) as exc:
            return _problem(422, printable(str(exc)))
        except OSError as exc:
            return _problem(500, f"nothing exported: {printable(str(exc))}")
        except Exception as exc:    # a plug-in exporter's bug: its traceback goes to the log
            log.exception("export to %s failed", asked["format"])
            return _problem(500, f"the {asked['format']} export failed "
                                 f"({type(exc).__name__}); the studio's log says more")
        return JSONResponse(exporting.reply(result))

    routes = [
        Route("/", overview),
        Route("/v/{path:path}", variant),
        Route("/files/{path:path}", serve_file),
        Route("/thumbs/{path:path}", serve_thumb),
        Route("/masters/{path:path}", serve_master),
        Route("/api/decide", decide, methods=["POST"]),
        Route("/api/caption", edit, methods=["POST"]),
        Route("/api/length", count, methods=["POST"]),
        Route("/api/focus", refocus, methods=["POST"]),
        Route("/api/export", exported, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_Guard, studio=studio)
    return app


class _Guard:
    """Host check, the token for writes (and for everything off loopback)."""

    def __init__(self, app: Callable[..., Awaitable[None]], studio: Studio) -> None:
        self.app, self.studio = app, studio

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        answer = self.refusal(request)
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, request: Request) -> Response | None:
        studio = self.studio
        host = request.headers.get("host", "")
        if studio.hosts and host not in studio.hosts:
            return Response("unknown Host", status_code=421)
        given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
        header = request.headers.get("x-review-token", "")
        if request.method not in ("GET", "HEAD"):
            if not _same(header, studio.token):
                return _problem(403, "this write needs the studio's token; reload the page")
            return None
        if studio.local or _same(given, studio.token) or _same(header, studio.token):
            if not studio.local and request.query_params.get("token"):
                # The token leaves the address bar for a cookie on the first visit.
                target = request.url.remove_query_params("token")
                redirect = RedirectResponse(str(target), status_code=303)
                redirect.set_cookie(COOKIE, studio.token, httponly=True, samesite="strict")
                return redirect
            return None
        return Response("this studio needs its token: open the address it printed at start "
                        "(with ?token=...)", status_code=403)


def _same(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _manifest(out: Path) -> dict[str, Any]:
    """OUT's manifest for a page; one that cannot be read is an empty one whose
    error the overview shows (the studio stays up while a render replaces it)."""
    try:
        return decisions.read_manifest(out)
    except decisions.ReviewError as exc:
        return {"variants": [], "errors": [{"error": printable(str(exc))}]}


def _entry(out: Path, path: str) -> dict[str, Any] | None:
    for entry in _manifest(out).get("variants", []):
        if isinstance(entry, dict) and entry.get("path") == path:
            return entry
    return None


async def _saving(call: Callable[..., T], *args: Any) -> T | Response:
    """A write through pipeline.review.decisions, off the event loop (it waits for
    the manifest's lock), with its refusals as answers: 409 for a stale view, 400
    for a refused change, 500 with the reason when OUT cannot be written."""
    try:
        return await run_in_threadpool(call, *args)
    except decisions.Conflict as exc:
        return _problem(409, str(exc))
    except decisions.ReviewError as exc:
        return _problem(400, str(exc))
    except (PipelineError, OSError) as exc:
        return _problem(500, f"nothing saved: {printable(str(exc))}")


async def _json(request: Request) -> dict[str, Any] | Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _problem(415, "send JSON")
    raw = await request.body()
    if len(raw) > 1 << 20:
        return _problem(413, "at most 1 MiB")
    try:
        data = json.loads(raw)
    except ValueError:
        return _problem(400, "not JSON")
    return data if isinstance(data, dict) else _problem(400, "send a JSON object")


def _number(value: Any) -> float | None:
    """A JSON number (not true/false, which Python counts as 1 and 0)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """What the page needs back after a write."""
    return {"path": entry.get("path"), "state": decisions.review_state(entry),
            "version": decisions.version(entry), "review": entry.get("review"),
            "caption": entry.get("caption")}


def address(studio: Studio) -> str:
    """The address to open, with the token off loopback."""
    base = f"http://{_bracket(studio.host)}:{studio.port}/"
    return base if studio.local else f"{base}?token={studio.token}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
