"""`python -m vtkernel`: run the kernel, install its kernelspec, or attach a terminal shell.

    python -m vtkernel -f CONNECTION_FILE            the kernel (what the kernelspec runs)
    python -m vtkernel install [--user | --sys-prefix | --prefix P]
    python -m vtkernel shell --existing [CONNECTION_FILE]
    python -m vtkernel doctor [SESSION_FILE] [--scsynth HOST:PORT]   the pre-flight check
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["install"]:
        parser = argparse.ArgumentParser(prog="python -m vtkernel install")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true", help="install for this user")
        where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (venv, conda)")
        where.add_argument("--prefix", help="install under this prefix")
        args = parser.parse_args(argv[1:])
        from vtkernel.kernel.install import install

        path = install(user=args.user, prefix=args.prefix, sys_prefix=args.sys_prefix)
        print(f"Installed kernelspec vtkernel in {path}")
        return 0
    if argv[:1] == ["doctor"]:
        from vtkernel.doctor import main as doctor_main

        return doctor_main(argv[1:])
    if argv[:1] == ["shell"]:
        from shells.terminal import main as shell_main

        return shell_main(argv[1:])
    from vtkernel.kernel import prespawn

    prespawn.start()  # the scheduler process warms up while ipykernel imports: the first play is on time
    from ipykernel.kernelapp import IPKernelApp

    from vtkernel.kernel.kernel import VTKernel

    IPKernelApp.launch_instance(argv=argv, kernel_class=VTKernel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
