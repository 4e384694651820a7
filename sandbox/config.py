"""Where the sandbox keeps its state and which names and loopback ports it uses.

Every value can be overridden from the environment, so that two checkouts can run side by side
(`SANDBOX_PORT_BASE`, `SANDBOX_HOST`)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REGION = "ap-northeast-1"
BUCKET = "jram-gghouse"
LEGACY_IAM_USER = "legacy-dump"
LEGACY_DB_USER = "ggh_reader"
# The password the vendor gave years ago and the legacy scripts hard-code. It exists only in
# the sandbox, as the production one exists only on the production host.
LEGACY_DB_PASSWORD = "GgH0use#2019"  # noqa: S105 (the legacy state being reproduced)


@dataclass(frozen=True)
class Settings:
    state: Path
    host: str
    mariadb_port: int
    moto_port: int
    imds_port: int
    scale: int

    @property
    def mariadb_dir(self) -> Path:
        return self.state / "mariadb"

    @property
    def mariadb_socket(self) -> Path:
        return self.mariadb_dir / "mysqld.sock"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def imds_url(self) -> str:
        return f"http://127.0.0.1:{self.imds_port}"

    @property
    def image_tar(self) -> Path:
        """The cached root filesystem; its name changes whenever the recipe (build.sh) does."""
        default = self.state / "image" / f"dumphost-bookworm-{image_recipe_digest()}.tar"
        return Path(os.environ.get("SANDBOX_IMAGE_CACHE", default))

    @property
    def env_file(self) -> Path:
        return self.state / "env"

    @property
    def state_file(self) -> Path:
        return self.state / "state.json"

    def pidfile(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.state / "log" / f"{name}.log"


def image_recipe_digest() -> str:
    return hashlib.sha256((REPO / "sandbox" / "image" / "build.sh").read_bytes()).hexdigest()[:12]


def load() -> Settings:
    base = int(os.environ.get("SANDBOX_PORT_BASE", "0"))
    return Settings(
        state=Path(os.environ.get("SANDBOX_STATE", REPO / ".sandbox")).resolve(),
        host=os.environ.get("SANDBOX_HOST", "jram-dumphost"),
        mariadb_port=13306 + base,
        moto_port=15000 + base,
        imds_port=18169 + base,
        scale=int(os.environ.get("SANDBOX_SCALE", "2000")),
    )
