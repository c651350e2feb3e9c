"""ipykernel glue: the kernel, the comm hub, magics and the subshell wrapper."""
