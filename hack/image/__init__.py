"""The CPU runtime image, built here without Docker (buildah on a Debian base made by mmdebstrap).

    from hack.image import runtime_image
    image = runtime_image()   # builds on first use, then reuses: keyed by the hash of its inputs
    image.ref                 # modelfleet.local/runtime-cpu:<hash>
    image.archive             # docker archive for `ctr -n k8s.io images import`

`make image-cpu` (or ``python -m hack.image build``) builds it ahead of the tests.
"""

from hack.image.runtime import RuntimeImage, planned, runtime_image

__all__ = ["RuntimeImage", "planned", "runtime_image"]
