"""Parameter paths: one value of a scenario named by its place in the file.

``scenario.mobilization_days``, ``alliances.NATO.decision_rule``, ``states.EST.commitment``,
``aggressors.RUS.resolve``, ``attack_types.cyber.ambiguity``, ``exposure.default`` — the names
that ``crisis sweep --set``, ``crisis sensitivity`` and :meth:`Scenario.with_values` share.

Membership edits
    ``alliances.ID.members-`` removes states from an alliance and ``alliances.ID.members+`` adds
    them; the value is a state id or a list of ids (all removed or added at once).  On the
    command line the operator reads naturally: ``--set alliances.NATO.members-=SWD`` (the path
    is everything before ``=``), and ``members-=SWD,FIN`` gives two sweep points, one without
    Sweden and one without Finland.  In Python::

        scenario.with_values({"alliances.NATO.members-": "SWD"})
        scenario.with_values({"alliances.NATO.members+": ["SWD", "FIN"]})

    An empty value (``""`` or ``[]``; on the command line an empty item, ``members-=,SWD``)
    changes nothing: the "as is" point of a sweep.  A removed state also leaves the alliance's
    ``veto_holders`` and ``protected``; an added state joins ``members`` only (it is protected
    when the alliance protects every member, i.e. has no ``protected`` list).  Removing a
    state that is not a member, removing the last member, adding an unknown state or one that
    is already a member are errors (:class:`UserError`) naming the path and the state.  Sweep
    points show these edits as ``NATO −SWD`` and ``NATO +SWD`` (:func:`value_label`).  Setting
    the whole list, ``alliances.NATO.members = [...]``, still works as any other key.

Targets and attack mixes
    ``aggressors.RUS.targets.SWD`` is the weight of one target (``= 0`` drops it; a new key adds
    it), ``aggressors.RUS.attack_mix.cyber`` the weight of one attack type: "what if Russia
    also threatened Sweden" is ``--set aggressors.RUS.targets.SWD=0.5``.
"""

from __future__ import annotations

from ..errors import UserError

# list sections of a scenario and the key that names their entries
LISTS = {"states": "id", "alliances": "id", "aggressors": "state"}

# the keys of a membership edit and their sign in labels (U+2212 MINUS SIGN for removal)
MEMBERSHIP_EDITS = {"members-": "\u2212", "members+": "+"}


def membership_edit(path: str) -> tuple[str, str] | None:
    """``(alliance id, "members-" | "members+")`` when ``path`` is a membership edit, else None."""
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "alliances" and parts[2] in MEMBERSHIP_EDITS:
        return parts[1], parts[2]
    return None


def value_label(path: str, value) -> str:
    """How a sweep point shows one of its values: ``NATO −SWD``, ``NATO +SWD −FIN`` … for a
    membership edit (``NATO (as is)`` for an empty one), ``path=value`` for any other path."""
    edit = membership_edit(path)
    if edit is None:
        return f"{path}={value}"
    alliance, key = edit
    try:
        ids = _state_ids(value, path, "")
    except UserError:
        return f"{path}={value}"
    if not ids:
        return f"{alliance} (as is)"
    sign = MEMBERSHIP_EDITS[key]
    return alliance + "".join(f" {sign}{i}" for i in ids)


def set_value(data: dict, path: str, value, option: str = "--set") -> None:
    """Set ``path`` in a scenario dict (as from :meth:`Scenario.to_toml_dict`); a path that names
    nothing is a :class:`UserError` that starts with ``option`` and the path."""
    parts = path.split(".")
    head = parts[0]
    if head == "aggressors" and len(parts) == 4 and parts[2] in ("targets", "attack_mix"):
        for entry in data.get(head, []):
            if entry.get("state") == parts[1]:
                _set_weight(entry, parts[2], parts[3], value, f"{option} {path}")
                return
        raise UserError(f"{option} {path}: no aggressor with state {parts[1]!r}")
    if head in LISTS:
        if len(parts) != 3:
            raise UserError(f"{option} {path}: expected {head}.<id>.<key>"
                            + (" or aggressors.<state>.targets.<state> / .attack_mix.<type>"
                               if head == "aggressors" else ""))
        id_key = LISTS[head]
        for entry in data.get(head, []):
            if entry.get(id_key) == parts[1]:
                if membership_edit(path) is not None:
                    _edit_members(data, entry, path, value, option)
                elif parts[2].endswith(("-", "+")):
                    raise UserError(f"{option} {path}: -= and += only remove or add alliance "
                                    f"members (alliances.<id>.members-=STATE)")
                else:
                    entry[parts[2]] = value
                return
        raise UserError(f"{option} {path}: no {head[:-1]} with {id_key} {parts[1]!r}")
    if head == "exposure" and len(parts) >= 2:
        data.setdefault("exposure", {})[".".join(parts[1:])] = value
        return
    if head == "campaign" and len(parts) == 2:
        if data.get("campaign") is None:
            raise UserError(f"{option} {path}: the scenario has no [campaign] table")
        data["campaign"][parts[1]] = value
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
                    f"alliances.ID.members-/+, aggressors.STATE.*, attack_types.NAME.*, "
                    f"exposure.*, campaign.*)")


def _set_weight(aggressor: dict, table: str, key: str, value, where: str) -> None:
    """One weight of an aggressor's ``targets`` or ``attack_mix``: 0 drops the key (validation
    then checks the rest: a positive number, a known state or attack type)."""
    weights = dict(aggressor.get(table) or {})
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        if key not in weights:
            raise UserError(f"{where}=0: {key!r} is not in {table}")
        del weights[key]
        if not weights:
            raise UserError(f"{where}=0: would leave {table} empty")
    else:
        weights[key] = value
    aggressor[table] = weights


def _state_ids(value, path: str, option: str) -> list[str]:
    """The state ids of a membership edit's value: an id, a list of ids, or empty."""
    if isinstance(value, str):
        ids = [value] if value else []
    elif isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        ids = list(value)
    else:
        raise UserError(f"{option} {path}: expected a state id or a list of state ids, got "
                        f"{value!r}")
    for i in ids:
        if ids.count(i) > 1:
            raise UserError(f"{option} {path}: state {i!r} is named twice")
    return ids


def _edit_members(data: dict, alliance: dict, path: str, value, option: str) -> None:
    ids = _state_ids(value, path, option)
    where = f"{option} {path}={','.join(ids)}"
    name = alliance["id"]
    members = list(alliance.get("members", []))
    if path.endswith("-"):
        for i in ids:
            if i not in members:
                raise UserError(f"{where}: {i!r} is not a member of {name}")
        kept = [m for m in members if m not in ids]
        if not kept:
            raise UserError(f"{where}: would leave {name} with no member (an alliance needs "
                            f"at least one)")
        alliance["members"] = kept
        for key in ("veto_holders", "protected"):
            if alliance.get(key) is not None:
                alliance[key] = [m for m in alliance[key] if m not in ids]
        return
    known = {s.get("id") for s in data.get("states", [])}
    for i in ids:
        if i not in known:
            raise UserError(f"{where}: unknown state id {i!r} (not in [[states]])")
        if i in members:
            raise UserError(f"{where}: {i!r} is already a member of {name}")
    alliance["members"] = members + ids
