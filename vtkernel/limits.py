"""The comm target's name and the size bound of protocol v1, importable before anything else.

`vtkernel.protocol` re-exports both (that is where clients read them); they
live here, with no import at all, so the kernel's shell-channel screening
can use them without loading pydantic on the start-up path.
"""

COMM_TARGET = "vtkernel.state"
MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: larger comm messages are refused whole.
