"""``ldflow outbox`` and ``ldflow inbound``: what the outbox holds and what was quarantined."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from connectors.ports import OutboxStatus
from flows.cli.common import ActorOpt, JsonOpt, WriteCommand, actor, choice, iso_or_none, open_app, print_json
from states.errors import FieldError, InvalidInput
from states.wording import plural

if TYPE_CHECKING:
    from connectors.ports import InboundRecord, OutboxRow

outbox_app = typer.Typer(help="Outgoing mail: list it, retry what failed or has an unknown outcome, close "
                              "what the mail server's log shows as sent.", no_args_is_help=True)
inbound_app = typer.Typer(help="Incoming mail and drop-folder files: what was quarantined and why.",
                          no_args_is_help=True)

_STYLE = {OutboxStatus.UNKNOWN: "bold yellow", OutboxStatus.FAILED: "red", OutboxStatus.SENT: "green"}


def _outbox_table(rows: list[OutboxRow], status: OutboxStatus | None) -> Any:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from flows import views

    table = Table(box=box.SIMPLE_HEAD, caption=plural(len(rows), "row") + (f" with status {status}" if status else ""),
                  caption_justify="left")
    for name, justify in (("id", "right"), ("key", "left"), ("template", "left"), ("status", "left"),
                          ("attempts", "right"), ("last error", "left"), ("sent", "left")):
        table.add_column(name, justify=justify, no_wrap=name not in ("last error", "key"))  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r.id), escape(r.key), escape(r.template),
                      f"[{_STYLE[r.status]}]{r.status}[/]" if r.status in _STYLE else escape(r.status),
                      str(r.attempts), escape((r.last_error or "")[:300]),
                      views.utc(r.sent_at) if r.sent_at is not None else "")
    return table


@outbox_app.command("list")
def outbox_list(
    status: Annotated[OutboxStatus | None, typer.Option(
        "--status", help="Only rows with this status.", parser=choice(OutboxStatus, "status"))] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many rows (newest first).")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """The outbox: one row per e-mail ldflow sends (id, key, template, status, attempts, last error, sent)."""
    rows = open_app().mail.outbox(status, limit)
    if as_json:
        print_json([{"id": r.id, "key": r.key, "request_id": r.request_id, "template": r.template,
                     "status": r.status.value, "attempts": r.attempts, "last_error": r.last_error,
                     "sent_at": iso_or_none(r.sent_at), "message_id": r.message_id} for r in rows])
        return
    from flows import views

    views.console().print(_outbox_table(rows, status))


@outbox_app.command("retry", cls=WriteCommand)
def outbox_retry(
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="An outbox key to send again (repeatable); the row must be unknown or failed.")] = None,
    all_unknown: Annotated[bool, typer.Option(
        "--all-unknown", help="Every row whose outcome is unknown.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Put rows back to pending so the next dispatch sends them (same Message-ID).

    Rows whose outcome is unknown are never resent automatically: check the mail server's log
    first; if it went out, use `ldflow outbox mark-sent KEY` instead."""
    if not key and not all_unknown:
        raise InvalidInput([FieldError("key", "name the rows to retry: --key KEY (repeatable) or --all-unknown")])
    count = open_app().mail.retry(key or [], all_unknown=all_unknown)
    if as_json:
        print_json({"requeued": count})
    else:
        typer.echo(f"{plural(count, 'outbox row')} back to pending; the next dispatch sends them")


@outbox_app.command("mark-sent", cls=WriteCommand)
def outbox_mark_sent(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The outbox key (see `ldflow outbox list`).",
                                       show_default=False)],
    who: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a row whose outcome is unknown as sent, without sending (after checking the mail server's log)."""
    marked = open_app().mail.mark_sent(key, actor(who))
    if as_json:
        print_json({"key": marked.key, "status": OutboxStatus.SENT.value, "message_id": marked.message_id})
    else:
        typer.echo(f"outbox {marked.key}: marked sent (Message-ID {marked.message_id})")


def _quarantine_table(rows: list[InboundRecord]) -> Any:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from flows import views

    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(rows)} quarantined", caption_justify="left")
    for name in ("id", "received", "source", "message-id", "reason", "raw copy"):
        table.add_column(name, justify="right" if name == "id" else "left", no_wrap=name in ("id", "received"))
    for r in rows:
        table.add_row(str(r.id), views.utc(r.received_at), escape(r.source or ""), escape(r.message_id or ""),
                      escape((r.reason or "")[:500]), escape(r.raw_path or ""))
    return table


@inbound_app.command("quarantined")
def inbound_quarantined(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many (newest first).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Incoming mail and files that were quarantined, with the reason and where the raw copy is."""
    rows = open_app().mail.quarantined(limit)
    if as_json:
        print_json([{"id": r.id, "source": r.source, "uidvalidity": r.uidvalidity, "uid": r.uid,
                     "message_id": r.message_id, "received_at": iso_or_none(r.received_at),
                     "status": r.status.value, "request_id": r.request_id, "reason": r.reason,
                     "raw_path": r.raw_path} for r in rows])
        return
    from flows import views

    views.console().print(_quarantine_table(rows))
