"""nfs: the exports the server would serve, and the client's mount unit as systemd reads it.
No NFS in this kernel: mounting, locking and UIDs over the wire are for a real host (README)."""


def test_packages(host):
    assert host.package("nfs-kernel-server").is_installed
    assert host.package("nfs-common").is_installed


def test_exports_name_each_client_with_root_squashed(host):
    exports = host.file("/etc/exports.d/gxnb.exports")
    assert exports.mode == 0o644
    lines = [line for line in exports.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "/srv/share 10.0.0.11(rw,sync,no_subtree_check,root_squash) 10.0.0.12(rw,sync,no_subtree_check,root_squash)",
        "/srv/scratch 10.0.0.0/24(rw,async,no_subtree_check)",
    ]
    assert host.file("/srv/share").is_directory


def test_nfs_server_unit_is_installed(host):
    assert host.run("systemctl cat nfs-server.service").rc == 0


def test_the_mount_unit_is_valid_and_enabled(host):
    unit = "srv-galaxy.mount"
    verify = host.run(f"systemd-analyze verify /etc/systemd/system/{unit}")
    assert verify.rc == 0, verify.stderr
    shown = host.check_output(f"systemctl show {unit} -p What -p Where -p Type -p Options -p UnitFileState")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props["What"] == "10.0.0.10:/srv/share" and props["Where"] == "/srv/galaxy", props
    assert props["Type"] == "nfs" and "hard" in props["Options"].split(","), props
    assert props["UnitFileState"] == "enabled", props
    assert unit in host.check_output("systemctl list-dependencies --plain --no-pager remote-fs.target")


def test_a_service_that_needs_the_share_waits_for_it(host):
    shown = host.check_output("systemctl show gxnb-probe.service -p RequiresMountsFor -p Requires -p After")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props["RequiresMountsFor"] == "/srv/galaxy", props
    assert "srv-galaxy.mount" in props["Requires"].split() and "srv-galaxy.mount" in props["After"].split(), props
