"""The one input loader: YAML and JSON mappings from CLI files, drop-folder files and mailed-in intakes.

Every channel reads input the same way, so a file means the same whether an
operator passes it with ``-f`` or drops it in the inbox folder:

* safe YAML only, and no anchors/aliases (input never needs them; nested ones
  can blow up exponentially, the "billion laughs");
* a key given twice is an error (the last one silently winning hides typos);
* no YAML 1.1 booleans: ``yes``/``no``/``on``/``off`` stay strings (a cause
  check answered ``no`` must not become ``False``); only ``true``/``false``
  are booleans;
* dates and times become ISO strings: the models parse them, and a date in a
  text field stays text; a date-shaped value that is no date (``2026-02-30``)
  stays text too, so the model names its field;
* the top level must be a mapping, at most :data:`MAX_INPUT_BYTES` long and
  nested at most :data:`MAX_DEPTH` deep. Depth is checked *before* anything
  is built: JSON by a scan of its brackets before ``json.loads`` runs, YAML
  node by node as the composer opens each collection, so a hostile
  ``[[[[…`` is refused at the first level too deep (line and column named)
  without deep recursion or scanning the rest of the file.

Problems raise :class:`states.errors.InvalidInput` naming the source, line and
column.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any, Literal

from states.errors import FieldError, InvalidInput

__all__ = ["MAX_DEPTH", "MAX_INPUT_BYTES", "load_file", "parse_mapping"]

MAX_INPUT_BYTES = 5_000_000
MAX_DEPTH = 50

Kind = Literal["json", "yaml"]


@cache
def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader without aliases, duplicate keys or YAML 1.1 booleans (see the module docstring)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
                depth = getattr(self, "_ldflow_depth", 0) + 1
                if depth > MAX_DEPTH:
                    event = self.peek_event()  # type: ignore[no-untyped-call]
                    raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                      event.start_mark)
                self._ldflow_depth = depth
                try:
                    return self._compose_checked(parent, index)
                finally:
                    self._ldflow_depth = depth - 1
            return self._compose_checked(parent, index)

        def _compose_checked(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not supported in input files",
                                                  event.start_mark)
            return super().compose_node(parent, index)

    bool_tag = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

    def mapping(loader: Any, node: Any) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark)
            seen[key] = loader.construct_object(value_node, deep=True)
        return seen

    def timestamp(loader: Any, node: Any) -> Any:
        # a date-shaped scalar that is no date (2026-02-30) stays text: the model it is read into
        # then names its field, instead of the whole file failing as "malformed YAML"
        try:
            return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
        except ValueError:
            return loader.construct_scalar(node)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
    return Loader


def _plain(value: Any, depth: int = 0) -> Any:
    """String keys, ISO strings for dates; refuses nesting deeper than ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} is given twice")
        seen[key] = value
    return seen


def parse_mapping(text: str, source: str, kind: Kind) -> dict[str, Any]:
    """Parse ``text`` (YAML or JSON) as a mapping of fields; InvalidInput names ``source`` and the line."""
    if len(text) > MAX_INPUT_BYTES:
        raise InvalidInput([FieldError("file", f"{source} is larger than {MAX_INPUT_BYTES // 1_000_000} MB")])
    try:
        data = _json(text, source) if kind == "json" else _yaml(text, source)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidInput([FieldError("", f"expected a mapping of fields at the top level, "
                                                f"got {type(data).__name__}")], source)
        plain: dict[str, Any] = _plain(data)
    except (RecursionError, ValueError) as exc:
        if isinstance(exc, RecursionError):
            exc = ValueError(f"nested more than {MAX_DEPTH} levels deep")
        raise InvalidInput([FieldError("", f"malformed {kind.upper()}: {exc}")], source) from None
    return plain


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str, source: str) -> None:
    """Refuse JSON nested deeper than ``MAX_DEPTH`` before ``json.loads`` recurses into it."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    blanked = _JSON_STRING.sub(lambda m: " " * len(m.group()), text)  # brackets inside strings do not count
    depth = 0
    for match in _JSON_BRACKET.finditer(blanked):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                pos = match.start()
                line = text.count("\n", 0, pos) + 1
                column = pos - (text.rfind("\n", 0, pos) + 1) + 1
                raise InvalidInput([FieldError(
                    "", f"line {line}, column {column}: malformed JSON: nested more than {MAX_DEPTH} levels deep")],
                    source)
        else:
            depth -= 1


def _json(text: str, source: str) -> Any:
    _json_depth(text, source)
    try:
        return json.loads(text, object_pairs_hook=_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput([FieldError(
            "", f"line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}")], source) from None


def _yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise InvalidInput([FieldError("", f"{where}malformed YAML: {what}")], source) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([FieldError("", f"malformed YAML: {exc}")], source) from None


def kind_of(name: str) -> Kind:
    """JSON for ``*.json``, YAML for everything else (``.yaml``, ``.yml``, stdin)."""
    return "json" if name.lower().endswith(".json") else "yaml"


def load_file(path: str) -> tuple[dict[str, Any], str]:
    """Read a YAML or JSON input file (``-`` = stdin); return (mapping, source name).

    Raises :class:`InvalidInput` naming the file and line on any problem.
    """
    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(path).open("rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
        if len(raw) > MAX_INPUT_BYTES:
            raise InvalidInput([FieldError("file", f"{source} is larger than {MAX_INPUT_BYTES // 1_000_000} MB")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise InvalidInput([FieldError("file", f"{path}: no such file")]) from None
    except IsADirectoryError:
        raise InvalidInput([FieldError("file", f"{path} is a directory, not a YAML or JSON file")]) from None
    except UnicodeDecodeError:
        raise InvalidInput([FieldError("file", f"{path} is not UTF-8 text")]) from None
    except OSError as exc:
        raise InvalidInput([FieldError("file", f"{path}: {exc.strerror or exc}")]) from None
    return parse_mapping(text, source, kind_of(source)), source
