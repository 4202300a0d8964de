"""Enabling a Python plug-in in ``kritarc``, line by line.

kritarc is KConfig, not INI: Krita writes keys before the first group and values configparser
rejects, so the file is edited as lines and everything not ours is kept byte for byte.
"""

from __future__ import annotations

GROUP = "[python]"


def _key(name: str) -> str:
    return f"enable_{name}"


def set_plugin_enabled(text: str, name: str, enabled: bool = True) -> str:
    """``text`` with ``enable_<name>=true|false`` in the [python] group, added if missing."""
    line = f"{_key(name)}={'true' if enabled else 'false'}"
    lines = text.splitlines()
    start = next((i for i, x in enumerate(lines) if x.strip() == GROUP), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [GROUP, line]
        return "\n".join(lines) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if lines[i].split("=", 1)[0].strip() == _key(name):
            lines[i] = line
            break
    else:
        lines.insert(start + 1, line)
    return "\n".join(lines) + "\n"


def has_group(text: str) -> bool:
    return any(line.strip() == GROUP for line in text.splitlines())


def remove_plugin(text: str, name: str, drop_empty_group: bool = False) -> str:
    """``text`` without our ``enable_<name>`` line; every other line is kept as it was.
    With ``drop_empty_group`` (we added the group) an emptied [python] group goes too."""
    lines = text.splitlines(keepends=True)
    group = None
    kept: list[str] = []
    for raw in lines:
        stripped = raw.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            group = stripped
        if group == GROUP and stripped.split("=", 1)[0].strip() == _key(name):
            continue
        kept.append(raw)
    if drop_empty_group:
        header = next((i for i, x in enumerate(kept) if x.strip() == GROUP), None)
        if header is not None:
            end = next((i for i in range(header + 1, len(kept)) if kept[i].startswith("[")),
                       len(kept))
            if all(not x.strip() for x in kept[header + 1:end]):
                # The blank line set_plugin_enabled put before the group goes with it.
                first = header - 1 if header > 0 and not kept[header - 1].strip() else header
                del kept[first:end]
    return "".join(kept)
