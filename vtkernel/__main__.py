"""`python -m vtkernel`: run the kernel, install its kernelspec, attach a terminal shell, or check the setup.

`python -m vtkernel` alone, `-h`, `--help` or `help` prints `USAGE` (vtkernel's
own commands, not IPython's kernel options); `python -m vtkernel kernel --help`
shows those. Anything else that starts with an option (`-f FILE`, what the
kernelspec runs) launches the kernel.
"""

from __future__ import annotations

import argparse
import sys

USAGE = """\
usage: python -m vtkernel COMMAND ...

commands:
  install [--user | --sys-prefix | --prefix P]   install the `vtkernel` kernelspec for Jupyter
  shell --existing [CONNECTION_FILE]            attach a command shell to a running vtkernel kernel
                                                (default: the most recently started one)
  doctor [SESSION_FILE] [--scsynth HOST:PORT] [--osc HOST:PORT] [--timeout SECONDS]
                                                pre-flight check: kernelspec, versions, receivers, MIDI, disk
  kernel [KERNEL OPTIONS]                       run the kernel (`kernel --help` lists IPython's options)
  help                                          this help

Jupyter starts the kernel itself, as `python -m vtkernel -f CONNECTION_FILE`.
Each command takes --help.
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[:1] == ["kernel"]:
        argv = argv[1:]
    elif not argv[0].startswith("-") and argv[0] not in ("install", "doctor", "shell"):
        print(f"python -m vtkernel: unknown command {argv[0]!r}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
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
    from vtkernel import handoff
    from vtkernel.kernel import prespawn

    # The scheduler process warms up while ipykernel imports, so the first play is on time; its
    # loopback sockets (portable hand-off) keep off the ports ipykernel is about to bind.
    prespawn.start(handoff.kernel_ports(argv))
    from ipykernel.kernelapp import IPKernelApp

    from vtkernel.kernel.kernel import VTKernel

    IPKernelApp.launch_instance(argv=argv, kernel_class=VTKernel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
