"""`mwe review`: a local page (Starlette on uvicorn, 127.0.0.1 only) for a person to check items.

The page and the scripts that drive it use the same small JSON API:

    GET  /api/items?facet=F&undecided=1&min_quality=X&max_quality=Y   the items under review
    POST /api/decisions  {"item_id", "decision", "new_key"?, "reason"?, "note"?, "blind"?, "blind_answer"?}
    POST /api/undo       withdraw the latest decision still in force
    GET  /api/progress   totals, decisions by kind, the review file

Every decision is appended to the review file (mwe.reviews) before the answer is sent, so what the
page shows as recorded is on disk. The page, its script and its style are files of this package;
nothing is fetched from elsewhere, so it works offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dataset import Dataset
from .errors import MissingDependency, UsageError
from .items import Item
from .reviews import DECISIONS, REJECT_REASONS, ReviewLog, judge_rejected, stratified_sample, summary

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = ["ReviewSession", "make_app", "preflight", "serve"]

ASSETS = Path(__file__).resolve().parent / "_review_assets"
LETTERS = "ABCDEFGH"


class ReviewSession:
    """The items one reviewer reviews in one version, and the log their decisions go to."""

    def __init__(
        self, ds: Dataset, log: ReviewLog, sample: int | None = None, seed: int = 0, with_rejected: bool = False
    ) -> None:
        self.ds = ds
        self.log = log
        self.published = {it.id for it in ds}
        extra = judge_rejected(ds)
        by_id = {it.id: it for it in [*ds, *extra]}
        session = log.state.session
        if session is None:
            pool = [*ds, *extra] if with_rejected else list(ds)
            chosen = stratified_sample(pool, sample, seed) if sample else pool
            log.start(int(ds.manifest.version), [it.id for it in chosen], sample, seed)
        elif sample is not None and (session.sample, session.seed) != (sample, seed):
            raise UsageError(
                f"{log.path} was started with --sample {session.sample} --seed {session.seed}; "
                "reopen it with those (or without --sample), or review under another --reviewer"
            )
        ids = log.state.session.items if log.state.session else []
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UsageError(
                f"{log.path}: item {missing[0]} is not in {ds.path}; the review belongs to another version"
            )
        self.items: list[Item] = [by_id[i] for i in ids]
        self.by_id = {it.id: it for it in self.items}

    def item_json(self, it: Item) -> dict[str, Any]:
        current = self.log.state.current().get(it.id)
        return {
            "id": it.id,
            "format": it.format,
            "facet": it.facet,
            "question": it.question,
            "statement": it.statement,
            "choices": it.choices,
            "key": it.answer_matching_behavior,
            "rubric": it.rubric,
            "scores": it.scores,
            "published": it.id in self.published,
            "rejected_by": it.lineage.get("rejected"),
            "decision": current.model_dump(mode="json", exclude_none=True) if current else None,
        }

    def progress(self) -> dict[str, Any]:
        current = self.log.state.current()
        return {
            "total": len(self.items),
            "decided": sum(1 for it in self.items if it.id in current),
            **summary(current.values()),
            "reviewer": self.log.reviewer,
            "file": str(self.log.path),
            "version": str(self.ds.path),
            "fake": bool(self.ds.manifest.fake),
            "threat_model": self.ds.manifest.threat_model,
            "reject_reasons": list(REJECT_REASONS),
        }

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check one decision against its item, then append it; a ValueError names what is wrong."""
        it = self.by_id.get(str(body.get("item_id")))
        if it is None:
            raise ValueError(f"item_id {body.get('item_id')!r} is not under review")
        decision = body.get("decision")
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        letters = tuple(LETTERS[: len(it.choices)])
        new_key = body.get("new_key")
        if decision == "relabel":
            if not it.choices:
                raise ValueError("an item without options cannot be relabelled; reject it with a reason instead")
            if not isinstance(new_key, str) or new_key not in letters or new_key == it.answer_matching_behavior:
                raise ValueError(f"relabel needs new_key: one of {', '.join(letters)} other than the key")
        elif new_key is not None:
            raise ValueError("new_key goes only with decision 'relabel'")
        reason = (body.get("reason") or "").strip() or None
        if decision == "reject" and reason is None:
            raise ValueError("reject needs a reason")
        blind_answer = body.get("blind_answer")
        if blind_answer is not None and blind_answer not in letters:
            raise ValueError(f"blind_answer must be one of {', '.join(letters)}")
        record = self.log.record(
            item_id=it.id,
            decision=decision,
            key=it.answer_matching_behavior,
            new_key=new_key,
            reason=reason,
            note=(body.get("note") or "").strip() or None,
            blind=bool(body.get("blind")),
            blind_answer=blind_answer,
        )
        return record.model_dump(mode="json", exclude_none=True)

    def listing(self, params: dict[str, str]) -> list[dict[str, Any]]:
        current = self.log.state.current()
        lo = float(params["min_quality"]) if params.get("min_quality") else None
        hi = float(params["max_quality"]) if params.get("max_quality") else None
        out = []
        for it in self.items:
            q = it.scores.get("quality")
            if params.get("facet") and it.facet != params["facet"]:
                continue
            if params.get("undecided") in ("1", "true") and it.id in current:
                continue
            if lo is not None and not (isinstance(q, int | float) and q >= lo):
                continue
            if hi is not None and not (isinstance(q, int | float) and q <= hi):
                continue
            out.append(self.item_json(it))
        return out


def make_app(session: ReviewSession) -> Starlette:
    try:
        from starlette.applications import Starlette
        from starlette.responses import FileResponse, JSONResponse
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles
    except ImportError:
        raise MissingDependency("mwe review needs Starlette and uvicorn: pip install 'mwe[review]'") from None

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def page(request: Request) -> FileResponse:
        return FileResponse(ASSETS / "index.html", headers={"Cache-Control": "no-store"})

    async def items(request: Request) -> JSONResponse:
        try:
            listed = session.listing(dict(request.query_params))
        except ValueError as exc:
            return error(f"bad filter: {exc}")
        return JSONResponse({"items": listed, "count": len(listed), "total": len(session.items)})

    async def decisions(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            record = session.decide(body)
        except ValueError as exc:  # json.JSONDecodeError is one
            return error(str(exc))
        return JSONResponse({"recorded": record, "progress": session.progress()})

    async def undo(request: Request) -> JSONResponse:
        undone = session.log.undo()
        return JSONResponse(
            {
                "undone": undone.model_dump(mode="json", exclude_none=True) if undone else None,
                "progress": session.progress(),
            }
        )

    async def progress(request: Request) -> JSONResponse:
        return JSONResponse(session.progress())

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/items", items),
            Route("/api/decisions", decisions, methods=["POST"]),
            Route("/api/undo", undo, methods=["POST"]),
            Route("/api/progress", progress),
            Mount("/assets", StaticFiles(directory=ASSETS), name="assets"),
        ]
    )


def preflight(port: int) -> None:
    """Clear errors before anything is written: the extra is missing, or the port is taken
    (instead of uvicorn's log line and exit)."""
    import importlib.util
    import socket

    if not all(importlib.util.find_spec(m) for m in ("starlette", "uvicorn")):
        raise MissingDependency("mwe review needs Starlette and uvicorn: pip install 'mwe[review]'")

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(f"port {port} on 127.0.0.1 is in use: pass another --port") from None


def serve(session: ReviewSession, port: int) -> None:
    """Serve on 127.0.0.1 only (reviews are private) until Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        raise MissingDependency("mwe review needs Starlette and uvicorn: pip install 'mwe[review]'") from None
    app = make_app(session)
    preflight(port)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
