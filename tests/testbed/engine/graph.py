"""Pulumi's dependency graph over a checkpoint and its delete schedule.

Ported from pulumi/pulumi v3.259.0 pkg/resource/graph/dependency_graph.go
(NewDependencyGraph, DependenciesOf, TransitiveDependenciesOf) and
pkg/resource/deploy/step_generator.go (ScheduleDeletes). A resource depends on its parent,
its `dependencies` and its property dependencies (providers and deletedWith do not occur
here: the stand-in records no provider resources and refuses deletedWith). The list must be
in topological order; a dependency resolves to the resources before it with that URN, and
a dependency on a component also takes the component's children before it.
"""
from __future__ import annotations


def _deps(record: dict) -> set[str]:
    """The URNs of `dependencies` and property dependencies (not the parent)."""
    urns = set(record.get("dependencies") or ())
    for deps in (record.get("propertyDependencies") or {}).values():
        urns.update(deps)
    urns.discard("")
    return urns


class DependencyGraph:
    def __init__(self, resources: list[dict]):
        self.resources = resources
        self.index = {id(r): i for i, r in enumerate(resources)}
        self.children_of: dict[str, list[int]] = {}  # transitive children, by index
        urn_index: dict[str, int] = {}
        for i, record in enumerate(resources):
            urn_index[record["urn"]] = i
            parent = record.get("parent") or ""
            while parent:
                self.children_of.setdefault(parent, []).append(i)
                parent = resources[urn_index[parent]].get("parent") or ""

    def dependencies_of(self, record: dict) -> list[dict]:
        """DependenciesOf: what must outlive `record` (resources before it in the list)."""
        wanted = _deps(record)
        cursor = self.index[id(record)]
        found: dict[int, dict] = {}
        for i in range(cursor - 1, -1, -1):
            candidate = self.resources[i]
            if candidate["urn"] in wanted:
                found[id(candidate)] = candidate
                if not candidate.get("custom"):
                    for child in self.children_of.get(candidate["urn"], ()):
                        if child < cursor:
                            found[id(self.resources[child])] = self.resources[child]
            if candidate["urn"] == record.get("parent"):
                found[id(candidate)] = candidate
        return list(found.values())

    def transitive_dependencies_of(self, record: dict) -> set[int]:
        """TransitiveDependenciesOf, as ids of records: an old copy (delete: true) resolves
        URNs to old copies, anything else to the live records."""
        olds = {r["urn"]: r for r in self.resources if r.get("delete")}
        news = {r["urn"]: r for r in self.resources if not r.get("delete")}

        def lookup(origin: dict, urn: str):
            if urn in olds and urn in news:
                return olds[urn] if origin.get("delete") else news[urn]
            return olds.get(urn) or news.get(urn)

        marked: set[int] = set()

        def mark(node: dict) -> None:
            while True:
                marked.add(id(node))
                for urn in _deps(node):
                    dep = lookup(node, urn)
                    if dep is not None and id(dep) not in marked:  # same set, no re-walk
                        mark(dep)
                parent = lookup(node, node.get("parent") or "")
                if parent is None or id(parent) in marked:
                    return
                node = parent

        start = lookup(record, record["urn"])
        if start is None:
            return set()
        mark(start)
        marked.discard(id(record))
        return marked


def schedule_deletes(condemned: list[dict], graph: DependencyGraph) -> list[list[dict]]:
    """ScheduleDeletes: antichains of records that can be deleted together; each must be
    done before the next starts. Records whose dependencies are all spared come first in
    the decomposition; the list is then reversed, so dependents go before what they use."""
    left = {id(r): r for r in condemned}
    antichains: list[list[dict]] = []
    while left:
        chain = [r for r in left.values()
                 if not any(id(d) in left for d in graph.dependencies_of(r))]
        if not chain:
            raise RuntimeError("dependency cycle in the state: " + ", ".join(
                r["urn"] for r in left.values()))
        for record in chain:
            del left[id(record)]
        antichains.append(chain)
    antichains.reverse()
    return antichains
