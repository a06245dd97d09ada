"""redis: Celery's broker answers with the password only, on the loopback only."""

PASSWORD = "molecule-only-password-5678"


def redis_cli(host, command, password=None):
    # The password travels in the environment (REDISCLI_AUTH), never in argv.
    env = f"REDISCLI_AUTH={password} " if password else ""
    return host.run(f"env {env}redis-cli -h 127.0.0.1 --no-auth-warning {command}")


def test_redis_runs_and_starts_at_boot(host):
    service = host.service("redis-server")
    assert service.is_running and service.is_enabled


def test_the_password_lets_a_client_in(host):
    assert redis_cli(host, "SET probe 1", PASSWORD).stdout.strip() == "OK"
    assert redis_cli(host, "GET probe", PASSWORD).stdout.strip() == "1"


def test_without_or_with_a_wrong_password_nothing_is_read(host):
    assert "NOAUTH" in redis_cli(host, "GET probe").stdout
    wrong = redis_cli(host, "GET probe", "not-the-password")
    assert "WRONGPASS" in wrong.stdout + wrong.stderr or "AUTH failed" in wrong.stdout + wrong.stderr


def test_loopback_only_and_bounded(host):
    listening = host.check_output("ss -Hltn")
    ports = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(":6379")]
    assert ports and all(p.startswith(("127.0.0.1:", "[::1]:")) for p in ports), ports
    assert redis_cli(host, "CONFIG GET maxmemory", PASSWORD).stdout.split() == ["maxmemory", str(256 * 1024 * 1024)]


def test_the_config_file_is_not_world_readable(host):
    config = host.file("/etc/redis/redis.conf")
    assert config.mode == 0o640 and config.user == "redis"
