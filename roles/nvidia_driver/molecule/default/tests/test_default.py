"""nvidia_driver on Debian 12 where a GPU is expected: nouveau blacklisted, non-free enabled,
and the driver packages really installable from it (their candidates resolve)."""


def test_nouveau_blacklisted(host):
    conf = host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string
    assert "blacklist nouveau" in conf
    assert "options nouveau modeset=0" in conf


def test_non_free_components_enabled(host):
    sources = host.file("/etc/apt/sources.list.d/debian-nonfree.sources").content_string
    assert "Components: contrib non-free non-free-firmware" in sources
    assert "Suites: bookworm bookworm-updates" in sources


def test_driver_packages_resolve_from_non_free(host):
    for package in ("nvidia-driver", "firmware-misc-nonfree", "nvidia-persistenced", "nvidia-smi"):
        policy = host.check_output(f"apt-cache policy {package}")
        assert "Candidate: (none)" not in policy, policy
        assert "non-free" in policy or "contrib" in policy, policy
    version = host.check_output("apt-cache policy nvidia-driver | awk '/Candidate/ {print $2}'")
    assert version.startswith("535."), version
