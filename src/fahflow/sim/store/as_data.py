"""What the simulated assignment server (AS) holds: each WS's and each project's weights."""

from __future__ import annotations

import json

from fahflow.sim.errors import not_found
from fahflow.sim.records import ASProject, ASWorkServer
from fahflow.sim.store.base import StoreBase

AS_SCHEMA = """
CREATE TABLE IF NOT EXISTS as_ws (ip TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS as_projects (
    ip TEXT NOT NULL, project INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (ip, project)
);
"""


class ASTables(StoreBase):
    """The ``as_ws`` and ``as_projects`` tables, stored as the JSON they are answered with."""

    def get_as_ws(self, ip: str) -> ASWorkServer:
        with self.lock:
            row = self._db.execute("SELECT data FROM as_ws WHERE ip=?", (ip,)).fetchone()
        if row is None:
            raise not_found(f"work server {ip} not known to the AS")
        return ASWorkServer.from_json(json.loads(row["data"]))

    def put_as_ws(self, ip: str, data: ASWorkServer) -> ASWorkServer:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO as_ws VALUES (?, ?)", (ip, json.dumps(data.to_json()))
            )
        self.log("as.ws.put", ip=ip, **data.to_json())
        return data

    def get_as_project(self, ip: str, project: int) -> ASProject:
        with self.lock:
            row = self._db.execute(
                "SELECT data FROM as_projects WHERE ip=? AND project=?", (ip, project)
            ).fetchone()
        if row is None:
            raise not_found(f"project {project} on {ip} not known to the AS")
        return ASProject.from_json(json.loads(row["data"]))

    def put_as_project(self, ip: str, project: int, data: ASProject) -> ASProject:
        data = ASProject(ws=data.ws or ip, weight=data.weight, constraints=data.constraints)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO as_projects VALUES (?, ?, ?)",
                (ip, project, json.dumps(data.to_json())),
            )
        self.log("as.project.put", ip=ip, project=project, **data.to_json())
        return data
