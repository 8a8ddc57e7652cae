"""Evidence pictures of plate reads: JPEG files under the state directory, within a quota.

Files are grouped by day (``<dir>/2026-11-25/<read id>-frame.jpg``); the database keeps
their paths and sizes, and the oldest are deleted first when the quota is exceeded, so a
camera that reads all day can never fill the disk of the cabinet.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import cv2
import numpy as np


class EvidenceStore:
    def __init__(self, directory: str, quota_mb: int, *, quality: int = 85) -> None:
        self.directory = Path(directory)
        self.quota_bytes = quota_mb * 1024 * 1024
        self.quality = quality

    def save(
        self, read_id: int, at: datetime, frame: np.ndarray | None, crop: np.ndarray | None
    ) -> tuple[str | None, str | None, int]:
        """Write the pictures (blocking: run it in a thread); returns their paths and total size."""
        folder = self.directory / at.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        paths: list[str | None] = []
        size = 0
        for kind, image in (("frame", frame), ("crop", crop)):
            if image is None or image.size == 0:
                paths.append(None)
                continue
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                paths.append(None)
                continue
            path = folder / f"{read_id}-{kind}.jpg"
            path.write_bytes(data.tobytes())
            size += len(data)
            paths.append(str(path))
        return paths[0], paths[1], size
