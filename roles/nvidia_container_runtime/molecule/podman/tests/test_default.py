"""nvidia_container_runtime for Podman without GPU hardware or NVIDIA's servers: the package
source, the CDI folder Podman reads device specifications from, Docker left alone."""


def test_package_source_points_at_the_repo_with_its_keyring(host):
    source = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.list").content_string
    assert source.strip() == ("deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] "
                              "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /")


def test_cdi_folder_where_podman_looks_for_device_specs(host):
    folder = host.file("/etc/cdi")
    assert folder.is_directory
    assert folder.mode == 0o755


def test_docker_is_not_installed_or_configured(host):
    assert not host.package("docker.io").is_installed
    assert not host.file("/etc/docker/daemon.json").exists


def test_podman_runs_a_container(host):
    probe = host.run("podman image exists gxnb-probe || "
                     "(rm -rf /tmp/probe && mkdir -p /tmp/probe/bin && cp /bin/busybox /tmp/probe/bin/sh "
                     "&& tar -C /tmp/probe -c . | podman import - gxnb-probe)")
    assert probe.rc == 0, probe.stderr
    out = host.run("podman run --rm gxnb-probe /bin/sh -c 'echo inner-container-ok'")
    assert out.rc == 0, out.stderr
    assert "inner-container-ok" in out.stdout
