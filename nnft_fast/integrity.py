"""Checksums of everything a store's results depend on (the store guarantee in
``docs``: a file is read with every committed number as written, or refused).

``digest(*parts)`` is the SHA-256 of the parts in order, each framed by its length; an
array part contributes its dtype, shape and bytes, so a change of any value, type or
shape changes the digest. The store writes the digest of the configuration and of the
inputs when it creates a file, and the digest of each checkpoint slot (its committed
count and every accumulator array) together with the slot, before the header's
``committed`` moves to it. Raw outputs are checked chunk by chunk by HDF5's fletcher32
filter, also written before the commit.
"""

import hashlib

import numpy as np


def digest(*parts):
    """Hex SHA-256 of ``parts`` (str, int or NumPy array), framed and typed."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            data = b"s" + part.encode("utf-8", "surrogatepass")
        elif isinstance(part, (int, np.integer)):
            data = b"i" + int(part).to_bytes(16, "little", signed=True)
        else:
            arr = np.ascontiguousarray(part)
            data = (
                b"a"
                + arr.dtype.newbyteorder("<").str.encode()
                + repr(arr.shape).encode()
                + arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            )
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def slot_digest(committed, arrays):
    """Digest of a checkpoint slot: its committed count and its arrays by name."""
    parts = [committed]
    for name in sorted(arrays):
        parts += [name, arrays[name]]
    return digest(*parts)
