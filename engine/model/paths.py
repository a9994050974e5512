"""Parameter paths: one value of a scenario named by its place in the file.

``scenario.mobilization_days``, ``alliances.NATO.decision_rule``, ``states.EST.commitment``,
``aggressors.RUS.resolve``, ``attack_types.cyber.ambiguity``, ``exposure.default`` — the names
that ``crisis sweep --set``, ``crisis sensitivity`` and :meth:`Scenario.with_values` share.
"""

from __future__ import annotations

from ..errors import UserError

# list sections of a scenario and the key that names their entries
LISTS = {"states": "id", "alliances": "id", "aggressors": "state"}


def set_value(data: dict, path: str, value, option: str = "--set") -> None:
    """Set ``path`` in a scenario dict (as from :meth:`Scenario.to_toml_dict`); a path that names
    nothing is a :class:`UserError` that starts with ``option`` and the path."""
    parts = path.split(".")
    head = parts[0]
    if head in LISTS:
        if len(parts) != 3:
            raise UserError(f"{option} {path}: expected {head}.<id>.<key>")
        id_key = LISTS[head]
        for entry in data.get(head, []):
            if entry.get(id_key) == parts[1]:
                entry[parts[2]] = value
                return
        raise UserError(f"{option} {path}: no {head[:-1]} with {id_key} {parts[1]!r}")
    if head == "exposure" and len(parts) >= 2:
        data.setdefault("exposure", {})[".".join(parts[1:])] = value
        return
    if head in ("scenario", "attack_types") and len(parts) >= 2:
        node = data.setdefault(head, {})
        for part in parts[1:-1]:
            if part not in node:
                raise UserError(f"{option} {path}: no {part!r} under {head}")
            node = node[part]
        node[parts[-1]] = value
        return
    raise UserError(f"{option} {path}: unknown path (scenario.*, states.ID.*, alliances.ID.*, "
                    f"aggressors.STATE.*, attack_types.NAME.*, exposure.*)")
