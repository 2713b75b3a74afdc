"""texnets.allocator: freed CPU memory stays in the process, so a second large tensor costs no page faults."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Twenty steps that each make and free three 64 MB tensors (as a network step makes and frees its activations);
# prints the state and the minor page faults of each step.
PROBE = textwrap.dedent("""
    import resource, sys, torch
    from texnets.allocator import allocator_state, keep_freed_memory
    state = keep_freed_memory() if sys.argv[1] == "keep" else allocator_state()
    def step():
        a = torch.ones(4, 16, 512, 512)   # 64 MB, above glibc's largest mmap threshold (32 MB)
        b = (a * 2).relu()
        return float((a + b).sum())
    faults = []
    for _ in range(20):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(state, "|", min(faults[-5:]))
""")


def probe(mode: str, **env) -> tuple[str, int]:
    """The allocator state and the fewest page faults of one of the last five steps."""
    environment = {key: value for key, value in os.environ.items() if key not in ("TEXNETS_MALLOC", "GLIBC_TUNABLES")}
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                            env={**environment, **env})
    state, faults = result.stdout.strip().rsplit("|", 1)
    return state.strip(), int(faults)


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_freed_memory_is_reused_without_page_faults():
    state, faults = probe("keep")
    assert state == "glibc malloc, freed memory kept"
    # A step's 192 MB are 49,152 pages of 4 KB. Once the heap has grown to fit a step (a few steps, more on a busy
    # machine: freed blocks are not always where the next request fits), none is faulted in again.
    assert faults < 2000
    plain_state, plain_faults = probe("plain")
    assert plain_state == "system malloc"
    assert plain_faults > 30_000   # without it, glibc returns each block to the kernel and it is paged in anew


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_the_user_can_keep_the_system_allocator():
    state, faults = probe("keep", TEXNETS_MALLOC="system")
    assert state == "system malloc (TEXNETS_MALLOC=system)"
    assert faults > 30_000
    assert probe("keep", GLIBC_TUNABLES="glibc.malloc.mmap_max=0")[0] == "glibc malloc (GLIBC_TUNABLES)"
