"""The graph of legacy links: which container is linked into which, under what name.

One edge a link: the parent, the child, the alias and the link's own name (`/web/db`), which is
reserved in the daemon's name space like a container name. The child's name at link time is
kept too: when the child is removed, the edge stays (as in Docker), and the parent's start then
fails naming the container it lost.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edge:
    name: str          # "/web/db"
    parent_id: str
    child_id: str
    child_name: str    # "/db"
    alias: str         # "db"


class LinkGraph:
    def __init__(self) -> None:
        self._edges: dict[str, Edge] = {}

    def add(self, edge: Edge) -> None:
        self._edges[edge.name] = edge

    def get(self, name: str) -> Edge | None:
        return self._edges.get(name)

    def remove(self, name: str) -> Edge | None:
        return self._edges.pop(name, None)

    def children(self, parent_id: str) -> list[Edge]:
        """The links of a parent, in the order they were made."""
        return [e for e in self._edges.values() if e.parent_id == parent_id]

    def parents(self, child_id: str) -> list[Edge]:
        return [e for e in self._edges.values() if e.child_id == child_id]

    def names_of(self, child_id: str) -> list[str]:
        """The link names a container is known by (`/web/db`), for the API list's Names."""
        return sorted(e.name for e in self._edges.values() if e.child_id == child_id)

    def edges(self) -> list[Edge]:
        return list(self._edges.values())
