"""Streets inside one demo grid: a jittered street grid clipped to the polygon, with routing."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import shapely

__all__ = ["Network", "street_network"]


@dataclass
class Network:
    """A street graph inside one grid (local metres): nodes, edges as polylines, routing."""

    node_xy: np.ndarray
    edge_coords: list[np.ndarray]
    edge_len: np.ndarray
    adj: list[list[tuple[int, int, bool]]]  # node -> (neighbour, edge, forward)
    _pred: dict[int, np.ndarray] = field(default_factory=dict)

    def route(self, a: int, b: int) -> list[tuple[np.ndarray, float]]:
        """Shortest path a → b as oriented edge polylines with their lengths."""
        pred = self._pred.get(a)
        if pred is None:
            pred = self._pred[a] = self._dijkstra(a)
        out = []
        node = b
        while node != a:
            prev, edge, forward = self.adj[node][pred[node]]
            coords = self.edge_coords[edge]
            # adj[node] holds the edge seen from `node`; the walk goes prev -> node
            out.append((coords[::-1] if forward else coords, float(self.edge_len[edge])))
            node = prev
        return out[::-1]

    def _dijkstra(self, a: int) -> np.ndarray:
        n = len(self.node_xy)
        dist = np.full(n, np.inf)
        pred = np.full(n, -1, dtype=np.int64)  # index into adj[node] of the edge back to the tree
        dist[a] = 0.0
        heap = [(0.0, a)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, e, _ in self.adj[u]:
                nd = d + self.edge_len[e]
                if nd < dist[v]:
                    dist[v] = nd
                    pred[v] = next(k for k, (w, ee, _) in enumerate(self.adj[v]) if w == u and ee == e)
                    heapq.heappush(heap, (nd, v))
        return pred


def street_network(poly: shapely.Polygon, rng: np.random.Generator, spacing: float) -> Network:
    """Jittered, slightly rotated street grid clipped to the polygon, plus its edge ring.

    Lines are noded against the ring before clipping so every street meets the boundary road
    exactly; about 15 % of inner street pieces are removed (cul-de-sacs, T-junctions).
    """
    minx, miny, maxx, maxy = poly.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = math.hypot(maxx - minx, maxy - miny) / 2 + spacing
    angle = rng.uniform(0, np.pi / 2)
    lines = []
    for direction in (0, 1):
        a = angle + direction * (np.pi / 2 + rng.normal(0, 0.08))
        ux, uy = math.cos(a), math.sin(a)  # along the street
        px, py = -uy, ux  # across
        for off in np.arange(-half, half, spacing) + rng.uniform(0, spacing):
            along = np.arange(-half, half + spacing / 2, spacing / 2)
            across = off + rng.normal(0, 0.1 * spacing) + rng.normal(0, 0.05 * spacing, along.size)
            lines.append(shapely.linestrings(cx + along * ux + across * px, cy + along * uy + across * py))
    ring = poly.exterior
    noded = shapely.get_parts(shapely.union_all(np.array([*lines, ring], dtype=object)))
    mid = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    inside = shapely.contains_xy(shapely.buffer(poly, 0.05), *shapely.get_coordinates(mid).T)
    on_ring = shapely.distance(mid, ring) < 0.01
    keep = inside & (on_ring | (rng.random(len(noded)) > 0.15)) & (shapely.length(noded) > 0.5)
    edges = noded[keep]
    coords = [shapely.get_coordinates(e) for e in edges]
    ends = np.array([[c[0], c[-1]] for c in coords]).reshape(-1, 2)
    key = np.round(ends, 2)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1, 2)
    # keep the largest connected component
    parent = list(range(len(uniq)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for u, v in inv:
        parent[find(int(u))] = find(int(v))
    roots = np.array([find(i) for i in range(len(uniq))])
    big = np.bincount(roots).argmax()
    edge_keep = roots[inv[:, 0]] == big
    node_ids = np.flatnonzero(roots == big)
    remap = np.full(len(uniq), -1)
    remap[node_ids] = np.arange(len(node_ids))
    adj: list[list[tuple[int, int, bool]]] = [[] for _ in node_ids]
    edge_coords: list[np.ndarray] = []
    edge_len: list[float] = []
    for (u, v), c, k in zip(inv, coords, edge_keep, strict=True):
        if not k or u == v:
            continue
        e = len(edge_coords)
        edge_coords.append(c)
        edge_len.append(float(np.hypot(*np.diff(c, axis=0).T).sum()))
        adj[remap[u]].append((int(remap[v]), e, True))
        adj[remap[v]].append((int(remap[u]), e, False))
    return Network(uniq[node_ids].astype(float), edge_coords, np.array(edge_len), adj)
