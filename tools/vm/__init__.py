"""The Mininet VM: a Debian guest with a full kernel (the kernel datapath, netem, SRv6) run under qemu.

``build.sh`` makes its disk image from Debian packages, ``init.sh`` is the guest's PID 1, :mod:`.qemu` the
pure part (the command line, which accelerator a result came from) and :mod:`.boot` the plumbing that boots
it, runs one job and brings the results back (docs/vm.md).
"""
