"""The dependency graph of an incident as an SVG picture: the symptom, the ranked root cause and the path between them highlighted."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

SYMPTOM_COLOR, ROOT_COLOR, PATH_COLOR, OTHER_COLOR = "#f0a202", "#d1495b", "#d1495b", "#9aa5b1"


def layers(edges: Sequence[Sequence[str]], symptom: str) -> dict[str, int]:
    """Column of each node: its call distance from the symptom; a node the symptom does not reach sits one column
    left of the nearest node it calls (e.g. another caller of a shared database)."""
    callees: dict[str, list[str]] = {}
    nodes = {symptom}
    for a, b in edges:
        callees.setdefault(a, []).append(b)
        nodes |= {a, b}
    depth = {symptom: 0}
    todo = deque([symptom])
    while todo:
        n = todo.popleft()
        for c in sorted(callees.get(n, [])):
            if c not in depth:
                depth[c] = depth[n] + 1
                todo.append(c)
    for _ in range(len(nodes)):
        for n in sorted(nodes - set(depth)):
            known = [depth[c] for c in callees.get(n, []) if c in depth]
            if known:
                depth[n] = max(0, min(known) - 1)
    for n in nodes - set(depth):
        depth[n] = 0
    return depth


def incident_graph_svg(edges: Sequence[Sequence[str]], symptom: str, root: str | None, path: Sequence[str], dpi: int = 90) -> bytes:
    """Nodes in columns by call distance from ``symptom``; arrows caller -> callee; the path from the symptom to the
    root cause in red, the symptom in amber, the root cause in red. SVG: small, sharp, and told apart from the forecast plots."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = layers(edges, symptom)
    columns: dict[int, list[str]] = {}
    for node, d in sorted(depth.items(), key=lambda kv: (kv[1], kv[0])):
        columns.setdefault(d, []).append(node)
    pos = {n: (d * 3.0, -i * 1.2 + (len(col) - 1) * 0.6) for d, col in columns.items() for i, n in enumerate(col)}
    on_path = {(a, b) for a, b in zip(path, path[1:], strict=False)}
    width = max(4.0, 2.6 * len(columns))
    height = max(2.0, 0.9 * max(len(c) for c in columns.values()) + 0.8)
    fig, ax = plt.subplots(figsize=(width, height), dpi=dpi)
    for a, b in edges:
        hot = (a, b) in on_path
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops={"arrowstyle": "-|>", "color": PATH_COLOR if hot else OTHER_COLOR, "lw": 2.4 if hot else 1.0,
                                "shrinkA": 14, "shrinkB": 14})
    for node, (x, y) in pos.items():
        color = ROOT_COLOR if node == root else SYMPTOM_COLOR if node == symptom else ("#f6d6db" if node in path else "#eef1f4")
        text_color = "white" if node == root else "black"
        label = node if len(node) <= 28 else node[:26] + "…"
        ax.text(x, y, label, ha="center", va="center", fontsize=8, color=text_color,
                bbox={"boxstyle": "round,pad=0.35", "fc": color, "ec": "#52606d", "lw": 0.8})
    ax.set_xlim(-1.6, max(p[0] for p in pos.values()) + 1.6)
    ys = [p[1] for p in pos.values()]
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    title = f"symptom {symptom}" + (f" -> root cause {root}" if root else "")
    ax.set_title(title, fontsize=9, loc="left")
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()
