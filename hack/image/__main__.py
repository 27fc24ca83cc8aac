"""``python -m hack.image build|ref|archive``: build the CPU runtime image, or print where it is."""

from __future__ import annotations

import json
import sys

from hack.image.buildah import ImageBuildFailed
from hack.image.runtime import planned, runtime_image


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    if command == "build":
        try:
            image = runtime_image()
        except ImageBuildFailed as exc:
            print(exc, file=sys.stderr)
            return 1
        record = json.loads(image.build_record.read_text()) if image.build_record.exists() else {}
        size = f"{image.archive.stat().st_size / 2**30:.2f} GiB"
        took = f", built in {record['seconds']:.0f} s on {record['built']}" if "seconds" in record else ""
        print(f"{image.ref}\n{image.archive} ({size}{took})")
        return 0
    if command in ("ref", "archive"):
        image = planned()
        print(image.ref if command == "ref" else image.archive)
        return 0 if image.built else 1
    print(f"unknown command {command!r}; use build, ref or archive", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
