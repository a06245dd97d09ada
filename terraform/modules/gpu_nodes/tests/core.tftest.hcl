# terraform test (no provider): plans, rendered cloud-init, inventory shape, validation.

variables {
  ssh_public_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqv2G3dVw0Jmx8rj6RRX3zOP4HVo3Ea2t6mT5j4a7nZ ansible@controller"
  ssh_allowed_cidrs = ["203.0.113.10/32"]
  nodes = {
    gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12", scratch_disk_gb = 200 }
    gpu-b = { flavor = "p4d.24xlarge", gpu_count = 8, image = "debian-12", root_disk_gb = 200 }
  }
  addresses             = { gpu-a = "10.0.0.11", gpu-b = "10.0.0.12" }
  galaxy_server         = { name = "galaxy", address = "10.0.0.2" }
  extra_ca_certificates = ["-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTest\n-----END CERTIFICATE-----"]
}

run "inventory_has_site_groups_and_gpu_counts" {
  command = plan

  assert {
    condition     = output.inventory.all.children.gpu_nodes.hosts["gpu-b"].gxnb_gpu_count == 8
    error_message = "gpu-b must carry its 8 GPUs"
  }
  assert {
    condition     = output.inventory.all.children.gpu_nodes.hosts["gpu-a"].ansible_host == "10.0.0.11"
    error_message = "hosts must use the cloud module's addresses"
  }
  assert {
    condition     = keys(output.inventory.all.children.job_nodes.hosts) == ["gpu-a", "gpu-b"]
    error_message = "every GPU node is a job node"
  }
  assert {
    condition     = output.inventory.all.children.galaxy_servers.hosts["galaxy"].ansible_host == "10.0.0.2"
    error_message = "the Galaxy server lands in galaxy_servers"
  }
  assert {
    condition     = output.gpu_count_total == 9
    error_message = "total GPUs"
  }
  assert {
    condition     = can(yamldecode(output.inventory_yaml).all.children.gpu_nodes)
    error_message = "inventory_yaml must be YAML with the same groups"
  }
}

run "cloud_init_is_rendered_per_node" {
  command = plan

  assert {
    condition     = startswith(output.user_data["gpu-a"], "#cloud-config")
    error_message = "user data must be cloud-config"
  }
  assert {
    condition     = can(yamldecode(output.user_data["gpu-a"]).users[0].ssh_authorized_keys[0])
    error_message = "user data must parse as YAML and carry the login key"
  }
  assert {
    condition     = yamldecode(output.user_data["gpu-a"]).mounts[0][1] == "/scratch"
    error_message = "a node with a scratch disk mounts it"
  }
  assert {
    condition     = !can(yamldecode(output.user_data["gpu-b"]).mounts)
    error_message = "a node without a scratch disk has no mount"
  }
  assert {
    condition     = strcontains(yamldecode(output.user_data["gpu-a"]).ca_certs.trusted[0], "BEGIN CERTIFICATE")
    error_message = "extra CA certificates are trusted"
  }
  assert {
    condition     = yamldecode(output.user_data["gpu-a"]).ssh_pwauth == false
    error_message = "password login stays off"
  }
}

run "user_data_holds_no_secret" {
  command = plan

  assert {
    condition = alltrue([for ud in values(output.user_data) :
      !can(regex("(?im)(PRIVATE KEY|^\\s*-?\\s*(password|passwd|plain_text_passwd|hashed_passwd)\\s*:|chpasswd|api[_-]?key\\s*[:=]|token\\s*[:=])", ud))
    ])
    error_message = "user data must not carry key material, passwords or tokens"
  }
}

run "zero_gpus_is_refused" {
  command = plan
  variables {
    nodes = { cpu-only = { flavor = "m5.large", gpu_count = 0, image = "debian-12" } }
  }
  expect_failures = [var.nodes]
}

run "ssh_open_to_the_world_is_refused" {
  command = plan
  variables {
    ssh_allowed_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.ssh_allowed_cidrs]
}

run "private_key_instead_of_public_is_refused" {
  command = plan
  variables {
    ssh_public_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
  }
  expect_failures = [var.ssh_public_key]
}

run "tiny_root_disk_is_refused" {
  command = plan
  variables {
    nodes = { gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12", root_disk_gb = 8 } }
  }
  expect_failures = [var.nodes]
}
